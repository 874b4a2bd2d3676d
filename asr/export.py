"""Export a model as one TorchScript file: 16 kHz waveforms in, CTC log-probabilities out, no asr package needed.

Features and network go into the file together, so a C++ (libtorch) or plain-PyTorch user computes exactly the
log-mel the model was trained on. Decode the output with any CTC decoder; the vocabulary is stored beside it.
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


def export_torchscript(features: LogMel, model: BiLSTMCTC | nn.Module, vocab: Vocabulary,
                       path: str | os.PathLike[str]) -> Path:
    """Trace the pipeline into `path` (a .pt TorchScript file) and write `path`.json with the vocabulary and
    frame rate. Tracing follows any batch size and length: the network has no length-dependent branches."""
    path = Path(path)
    pipeline = WaveformToLogProbs(features.cpu().eval(), model.cpu().eval()).eval()
    # Two utterances of different lengths, neither a multiple of the subsampling factor.
    example = (torch.randn(2, SAMPLE_RATE) * 0.1, torch.tensor([SAMPLE_RATE, 12345]))
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit is marked deprecated; it remains the self-contained format
        traced = torch.jit.trace(pipeline, example, check_trace=False)
    with atomic_path(path) as tmp:
        traced.save(str(tmp))
    frame_s = features.config.hop_length * model.subsampling.factor / features.config.sample_rate
    info = {"tokens": vocab.tokens, "blank_id": vocab.blank_id, "sample_rate": features.config.sample_rate,
            "frame_s": frame_s, "inputs": ["waveforms (batch, samples) float32", "lengths (batch,) int64"],
            "outputs": ["log_probs (batch, frames, tokens)", "frame_lengths (batch,)"]}
    with atomic_open(f"{path}.json") as f:
        f.write(json.dumps(info, indent=2) + "\n")
    return path
