"""Export a model as one file, TorchScript or ONNX: 16 kHz waveforms in, CTC log-probabilities out, no asr package
needed.

Features and network go into the file together, so a C++ (libtorch), plain-PyTorch or onnxruntime user computes
exactly the log-mel the model was trained on. Decode the output with any CTC decoder; the vocabulary is stored
beside it (`FILE.json`).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_open, atomic_path
from .audio import SAMPLE_RATE
from .errors import ConfigError
from .features import LogMel
from .model import BiLSTMCTC
from .text import Vocabulary


class WaveformToLogProbs(nn.Module):
    """(batch, samples) float waveforms + (batch,) sample counts -> (batch, frames, vocab) log-probs + frame counts."""

    def __init__(self, features: LogMel, model: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.model = model

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, frames = self.features(waveforms, lengths)
        return self.model(feats, frames)


def _example() -> tuple[torch.Tensor, torch.Tensor]:
    """Two utterances of different lengths, neither a multiple of the subsampling factor."""
    return torch.randn(2, SAMPLE_RATE) * 0.1, torch.tensor([SAMPLE_RATE, 12345])


def export_torchscript(features: LogMel, model: BiLSTMCTC | nn.Module, vocab: Vocabulary,
                       path: str | os.PathLike[str]) -> Path:
    """Trace the pipeline into `path` (a .pt TorchScript file) and write `path`.json with the vocabulary and
    frame rate. Tracing follows any batch size and length: the network has no length-dependent branches."""
    path = Path(path)
    pipeline = WaveformToLogProbs(features.cpu().eval(), model.cpu().eval()).eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit is marked deprecated; it remains the self-contained format
        traced = torch.jit.trace(pipeline, _example(), check_trace=False)
    with atomic_path(path) as tmp:
        traced.save(str(tmp))
    _write_info(features, model, vocab, path)
    return path


def export_onnx(features: LogMel, model: BiLSTMCTC, vocab: Vocabulary, path: str | os.PathLike[str],
                int8: bool = False) -> Path:
    """Write the pipeline as an ONNX model (opset 18: its STFT) with dynamic batch and length, inputs `waveforms`
    (batch, samples) float32 and `lengths` (batch,) int64, outputs `log_probs` and `frame_lengths`; and `path`.json.
    int8: the network's LSTM and linear weights quantized by onnxruntime's dynamic quantization.

    TorchScript-based export (dynamo=False): torch.export unrolls an LSTM over the example's frames, which would
    fix the length; ONNX's LSTM operator takes any."""
    try:
        import onnx  # noqa: F401 - torch's exporter and onnxruntime's quantizer need it
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'onnx>=1.16' (or the toolkit's [onnx] "
                          "extra)") from None
    path = Path(path)
    pipeline = WaveformToLogProbs(features.cpu().eval(), model.cpu().eval()).eval()
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values in the graph; lengths stay tensors
        torch.onnx.export(pipeline, _example(), str(tmp), dynamo=False, opset_version=18,
                          input_names=["waveforms", "lengths"], output_names=["log_probs", "frame_lengths"],
                          dynamic_axes={"waveforms": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                                        "log_probs": {0: "batch", 1: "frames"}, "frame_lengths": {0: "batch"}})
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            import onnx

            # The features stay float: 8-bit activations of the power spectrum into the mel filterbank lose the
            # quiet bands (greedy CER of espeak sentences 0.08 -> 0.38); quantizing only the network loses nothing.
            features_part = [n.name for n in onnx.load(str(tmp)).graph.node if n.name.startswith("/features/")]
            quantized = tmp.with_name(tmp.name + ".int8")
            quantize_dynamic(str(tmp), str(quantized), weight_type=QuantType.QInt8, nodes_to_exclude=features_part)
            quantized.replace(tmp)
    _write_info(features, model, vocab, path)
    return path


def _write_info(features: LogMel, model: BiLSTMCTC | nn.Module, vocab: Vocabulary, path: Path) -> None:
    """`path`.json: what a user of the exported file needs to turn its output into text and times."""
    frame_s = features.config.hop_length * model.subsampling.factor / features.config.sample_rate
    info = {"tokens": vocab.tokens, "blank_id": vocab.blank_id, "sample_rate": features.config.sample_rate,
            "frame_s": frame_s, "inputs": ["waveforms (batch, samples) float32", "lengths (batch,) int64"],
            "outputs": ["log_probs (batch, frames, tokens)", "frame_lengths (batch,)"]}
    with atomic_open(f"{path}.json") as f:
        f.write(json.dumps(info, indent=2) + "\n")
