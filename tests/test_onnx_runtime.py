"""Transcription with onnxruntime (asr.onnx_network): an exported file or a release's model.onnx, chosen by
--runtime, gives PyTorch's transcripts and word times without importing PyTorch; bad files are refused by name."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import asr
from asr.alignment import forced_path, word_timings
from asr.checkpoint import load_trained, save_release
from asr.cli import main
from asr.corpora.synthetic import Voice, synthesize
from asr.decoding import DecodeConfig, GreedyDecoder
from asr.errors import CheckpointError, ConfigError
from asr.evaluate import score
from asr.export import export_onnx
from asr.onnx_network import OnnxNetwork
from asr.release import PRETRAINED_DIR, RELEASE_ONNX, RELEASE_ONNX_INFO
from asr.text import Vocabulary

SENTENCE = "the weather was fine all day"


@pytest.fixture(scope="module")
def torch_model():
    return asr.load_model(runtime="torch")


@pytest.fixture(scope="module")
def exported(torch_model, tmp_path_factory):
    """The bundled network exported in fp32, and an espeak sentence."""
    folder = tmp_path_factory.mktemp("onnx")
    path = export_onnx(torch_model.network.features, torch_model.network.model, torch_model.vocab,
                       folder / "model.onnx")
    synthesize(SENTENCE, Voice("espeak-ng", "en-us"), folder / "s.wav")
    return path, folder / "s.wav"


def test_onnx_file_transcribes_as_pytorch_does_with_the_same_word_times(torch_model, exported):
    path, wav = exported
    onnx_model = asr.load_model(path)  # runtime auto: an .onnx file runs in onnxruntime
    assert isinstance(onnx_model.network, OnnxNetwork)
    expected, got = torch_model.transcribe(wav), onnx_model.transcribe(wav)
    assert got.text == expected.text and got.text
    for mine, theirs in zip(got.segments[0].words, expected.segments[0].words, strict=True):
        assert mine.word == theirs.word
        assert abs(mine.start - theirs.start) <= 0.03 and abs(mine.end - theirs.end) <= 0.03
    # Beam search with the bundled LM reads the same numpy log-probs.
    beam = DecodeConfig(method="beam", lm=str(PRETRAINED_DIR / "lm.bin"), lexicon=str(PRETRAINED_DIR / "lexicon.txt"))
    assert onnx_model.transcribe(wav, decoding=beam).text == torch_model.transcribe(wav, decoding=beam).text


def test_onnx_transcription_imports_no_pytorch(exported):
    path, wav = exported
    code = ("import sys, asr; t = asr.load_model(sys.argv[1]); print(t.transcribe(sys.argv[2]).text); "
            "import asr.cli, asr.written; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'torchaudio')))")
    result = subprocess.run([sys.executable, "-c", code, str(path), str(wav)], capture_output=True, text=True,
                            check=True)
    text, modules = result.stdout.splitlines()
    assert text and modules == "[]"


def test_release_with_onnx_runs_it_by_default_and_pytorch_on_request(tmp_path, exported):
    _, wav = exported
    release = save_release(tmp_path / "release", load_trained(PRETRAINED_DIR), onnx="int8")
    assert (release / RELEASE_ONNX).is_file() and (release / RELEASE_ONNX_INFO).is_file()
    default, pytorch = asr.load_model(release), asr.load_model(release, runtime="torch")
    assert isinstance(default.network, OnnxNetwork) and not isinstance(pytorch.network, OnnxNetwork)
    assert default.metadata == pytorch.metadata and default.metadata
    assert default.recommended_decoding == pytorch.recommended_decoding
    int8_text, fp32_text = default.transcribe(wav).text, pytorch.transcribe(wav).text
    assert score([SENTENCE], [int8_text]).cer <= score([SENTENCE], [fp32_text]).cer + 0.1
    # A release written again without ONNX loses the stale file: it would hold the old weights.
    save_release(release, load_trained(release))
    assert not (release / RELEASE_ONNX).exists() and not (release / RELEASE_ONNX_INFO).exists()
    assert not isinstance(asr.load_model(release).network, OnnxNetwork)


def test_runtime_choices_that_cannot_work_are_refused(tmp_path, exported, capsys):
    path, wav = exported
    with pytest.raises(ConfigError, match="no ONNX form"):
        asr.load_model(tmp_path, runtime="onnx")
    with pytest.raises(ConfigError, match="runs with the onnx runtime"):
        asr.load_model(path, runtime="torch")
    with pytest.raises(ConfigError, match="--runtime torch"):
        asr.load_model(path, int8=True, runtime="onnx")
    with pytest.raises(ConfigError, match="runtime must be"):
        asr.load_model(path, runtime="tensorflow")
    assert main(["transcribe", "--model", str(path), "--device", "cuda", "--runtime", "onnx", str(wav)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("asr transcribe: error:") and len(err.splitlines()) == 1 and "--runtime torch" in err


def test_damaged_onnx_files_are_refused_naming_the_file(tmp_path, exported):
    path, _ = exported
    shutil.copy(f"{path}.json", tmp_path / "cut.onnx.json")
    (tmp_path / "cut.onnx").write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cut.onnx: not a readable ONNX model"):
        OnnxNetwork(tmp_path / "cut.onnx")
    shutil.copy(path, tmp_path / "bare.onnx")  # without the JSON that says what its outputs mean
    with pytest.raises(CheckpointError, match="bare.onnx.json"):
        OnnxNetwork(tmp_path / "bare.onnx")
    shutil.copy(path, tmp_path / "odd.onnx")
    info = json.loads(path.with_name("model.onnx.json").read_text())
    (tmp_path / "odd.onnx.json").write_text(json.dumps({**info, "tokens": ["a", *info["tokens"][1:]]}))
    with pytest.raises(CheckpointError, match="blank"):
        OnnxNetwork(tmp_path / "odd.onnx")
    with pytest.raises(CheckpointError, match="missing.onnx: no such model file"):
        asr.load_model(tmp_path / "missing.onnx")


def test_forced_path_is_torchaudios_forced_alignment():
    import torchaudio.functional as F

    vocab = Vocabulary()
    rng = np.random.default_rng(0)
    for trial in range(21):
        frames = int(rng.integers(5, 60)) if trial < 20 else 400  # the last: more states than an int8 counts
        log_probs = torch.log_softmax(torch.from_numpy(rng.normal(size=(frames, len(vocab))) * 3), -1).float()
        ids = [int(i) for i in rng.integers(1, len(vocab), int(rng.integers(1, frames // 2 + 1)) if trial < 20 else 150)]
        if trial % 3 == 0:
            ids[len(ids) // 2:] = [ids[0]] * (len(ids) - len(ids) // 2)  # repeats need a blank between them
        if len(ids) + sum(a == b for a, b in zip(ids, ids[1:])) > frames:
            continue
        expected, _ = F.forced_align(log_probs[None], torch.tensor([ids], dtype=torch.int32), blank=0)
        got = forced_path(log_probs.numpy(), ids, 0)
        picked = log_probs.numpy()[np.arange(frames), got]
        best = log_probs.numpy()[np.arange(frames), expected[0].numpy()]
        assert np.isclose(picked.sum(), best.sum(), atol=1e-4)  # equally likely (ties may pick either path)
        assert GreedyDecoder(vocab).decode_ids(np.log(np.eye(len(vocab))[got] + 1e-9)[None], [frames])[0] == ids
    with pytest.raises(ValueError, match="cannot align"):
        word_timings(np.zeros((2, len(vocab)), np.float32), [3, 3], vocab, 0.03)
