"""Fast CPU inference paths: int8 dynamic quantization, and the TorchScript and ONNX exports of the whole pipeline."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import asr
from asr.audio import load_audio
from asr.corpora.synthetic import Voice, synthesize
from asr.errors import ConfigError
from asr.evaluate import score
from asr.export import export_onnx, export_torchscript
from asr.model import quantize_int8

SENTENCE = "the weather was fine all day"
# Loading a TorchScript file is how users consume the export; torch marks torch.jit deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def model():
    return asr.load_model(runtime="torch")  # the exporter's input: PyTorch modules


def test_exported_pipeline_matches_eager(model, tmp_path):
    path = export_torchscript(model.network.features, model.network.model, model.vocab, tmp_path / "model.pt")
    exported = torch.jit.load(str(path))
    # Batch size, lengths and padding unlike the trace's example.
    waveforms = torch.randn(3, 50000) * 0.1
    lengths = torch.tensor([50000, 31234, 4001])
    with torch.no_grad():
        expected, expected_frames = model.network.model(*model.network.features(waveforms, lengths))
        got, got_frames = exported(waveforms, lengths)
    assert torch.equal(got_frames, expected_frames)
    assert torch.allclose(got, expected, atol=1e-5)
    info = json.loads((tmp_path / "model.pt.json").read_text())
    assert info["tokens"] == model.vocab.tokens and info["frame_s"] == pytest.approx(0.03)


def greedy_text(log_probs: np.ndarray, info: dict) -> str:
    """CTC greedy decoding with nothing but the exported file's tokens: what a user of the ONNX file writes."""
    best = log_probs.argmax(-1)
    kept = [t for i, t in enumerate(best) if t != info["blank_id"] and (i == 0 or t != best[i - 1])]
    return " ".join("".join(info["tokens"][t] for t in kept).split())


def test_onnx_export_matches_torch_in_onnxruntime(model, tmp_path):
    import onnxruntime

    path = export_onnx(model.network.features, model.network.model, model.vocab, tmp_path / "model.onnx")
    info = json.loads((tmp_path / "model.onnx.json").read_text())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # Batch size, lengths and padding unlike the export's example.
    waveforms = torch.randn(3, 50000) * 0.1
    lengths = torch.tensor([50000, 31234, 4001])
    with torch.no_grad():
        expected, expected_frames = model.network.model(*model.network.features(waveforms, lengths))
    got, got_frames = session.run(None, {"waveforms": waveforms.numpy(), "lengths": lengths.numpy()})
    assert np.array_equal(got_frames, expected_frames.numpy())
    for row, frames in enumerate(got_frames):  # padding frames are the network's business, not the user's
        assert np.allclose(got[row, :frames], expected[row, :frames].numpy(), atol=1e-3)

    wav = tmp_path / "s.wav"
    synthesize(SENTENCE, Voice("espeak-ng", "en-us"), wav)
    audio = load_audio(wav)[None]
    onnx_text = greedy_text(session.run(None, {"waveforms": audio, "lengths": np.array([audio.shape[1]])})[0][0], info)
    assert onnx_text == model.transcribe_files([str(wav)])[0]

    int8 = export_onnx(model.network.features, model.network.model, model.vocab, tmp_path / "int8.onnx", int8=True)
    assert int8.stat().st_size < 0.4 * path.stat().st_size
    quantized = onnxruntime.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    int8_text = greedy_text(quantized.run(None, {"waveforms": audio, "lengths": np.array([audio.shape[1]])})[0][0],
                            info)
    assert score([SENTENCE], [int8_text]).cer <= score([SENTENCE], [onnx_text]).cer + 0.1


def test_int8_model_is_smaller_and_nearly_as_accurate(model, tmp_path):
    wav = tmp_path / "s.wav"
    synthesize(SENTENCE, Voice("espeak-ng", "en-us"), wav)
    int8 = asr.load_model(int8=True)
    def quantized(module: torch.nn.Module) -> bool:
        return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in module.modules())

    assert quantized(int8.network.model) and not quantized(model.network.model)
    fp32_text, int8_text = model.transcribe(wav).text, int8.transcribe(wav).text
    assert score([SENTENCE], [int8_text]).cer <= score([SENTENCE], [fp32_text]).cer + 0.1
    int8_net = quantize_int8(model.network.model)
    path = export_torchscript(model.network.features, int8_net, model.vocab, tmp_path / "int8.pt")
    assert path.stat().st_size < 0.4 * export_torchscript(model.network.features, model.network.model, model.vocab,
                                                           tmp_path / "fp32.pt").stat().st_size
    waveforms, lengths = torch.randn(2, 30000) * 0.1, torch.tensor([30000, 20000])
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(path))(waveforms, lengths)[0],
                              int8_net(*model.network.features(waveforms, lengths))[0], atol=1e-5)


def test_int8_refuses_gpu():
    with pytest.raises(ConfigError, match="CPU only"):
        asr.load_model(int8=True, device="cuda")


def test_export_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "asr.cli", "export", "--int8", "--out", str(tmp_path / "m.pt")],
                         capture_output=True, text=True, check=True)
    assert "TorchScript" in out.stdout and (tmp_path / "m.pt").is_file() and (tmp_path / "m.pt.json").is_file()
    out = subprocess.run([sys.executable, "-m", "asr.cli", "export", "--format", "onnx", "--out",
                          str(tmp_path / "m.onnx")], capture_output=True, text=True, check=True)
    assert "ONNX" in out.stdout and (tmp_path / "m.onnx").is_file() and (tmp_path / "m.onnx.json").is_file()
