"""Releases (safetensors + JSON) and the bundled default model."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import asr
from asr.checkpoint import FORMAT, TrainedModel, load_release, save_checkpoint, save_release
from asr.config import to_dict
from asr.decoding import DecodeConfig
from asr.decoding.lm import build_ngram_lm
from asr.errors import CheckpointError
from asr.evaluate import score
from asr.features import FeatureConfig, LogMel
from asr.manifest import read_manifest, write_manifest
from asr.model import BiLSTMCTC, ModelConfig
from asr.text import DEFAULT_CHARS
from asr.transcribe import PRETRAINED_DIR, load_model

from conftest import SENTENCES


def random_checkpoint() -> dict:
    torch.manual_seed(0)
    model_config = ModelConfig(input_dim=80, vocab_size=len(DEFAULT_CHARS) + 1, hidden_size=32, num_layers=2)
    model, features = BiLSTMCTC(model_config), LogMel(FeatureConfig())
    config = {"model": to_dict(model_config), "features": to_dict(FeatureConfig()), "vocab": list(DEFAULT_CHARS)}
    return {"format": FORMAT, "config": config, "model": model.state_dict(), "features": features.state_dict(),
            "state": {"step": 7, "epoch": 1, "best_dev_wer": 0.5}}


def test_release_round_trip_matches_the_checkpoint(tmp_path):
    checkpoint = random_checkpoint()
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    save_checkpoint(tmp_path / "run" / "best.pt", checkpoint)
    reference = load_model(tmp_path / "run").log_probs([audio])[0]
    trained = TrainedModel.from_checkpoint(checkpoint, tmp_path / "run" / "best.pt")
    save_release(tmp_path / "fp32", trained, torch.float32)
    save_release(tmp_path / "fp16", trained, torch.float16)
    assert np.array_equal(load_model(tmp_path / "fp32").log_probs([audio])[0], reference)
    assert np.allclose(load_model(tmp_path / "fp16").log_probs([audio])[0], reference, atol=2e-2)
    # Half precision halves the file; no pickle is involved (safetensors is a header plus raw tensors).
    size32 = (tmp_path / "fp32" / "model.safetensors").stat().st_size
    size16 = (tmp_path / "fp16" / "model.safetensors").stat().st_size
    assert size16 < 0.6 * size32
    assert json.loads((tmp_path / "fp16" / "config.json").read_text())["model"]["hidden_size"] == 32
    assert all((tmp_path / "fp16" / name).stat().st_mode & 0o044 == 0o044  # group and others may read a release
               for name in ("model.safetensors", "config.json"))


def test_package_command_writes_a_release_that_transcribes(tmp_path):
    save_checkpoint(tmp_path / "run" / "best.pt", random_checkpoint())
    result = subprocess.run([sys.executable, "-m", "asr.cli", "package", str(tmp_path / "run"), "--out",
                             str(tmp_path / "release")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "model.safetensors" in result.stdout
    metadata = json.loads((tmp_path / "release" / "config.json").read_text())["metadata"]
    assert metadata == {"checkpoint": "best.pt", "step": 7, "epoch": 1, "best_dev_wer": 0.5}
    silence = asr.load_model(tmp_path / "release").transcribe(np.zeros(8000, np.float32), 16000)
    assert (silence.text, silence.segments, silence.duration) == ("", [], 0.5)


@pytest.mark.parametrize("damage, reason", [
    ("config_garbage", "config.json: not a readable model config"),
    ("config_wrong_format", "config.json: not an asr model config"),
    ("weights_missing", "model.safetensors: not readable weights"),
    ("weights_garbage", "model.safetensors: not readable weights"),
    ("weights_wrong_shape", "does not match"),
])
def test_damaged_release_is_refused(tmp_path, damage, reason):
    release = save_release(tmp_path / "release", TrainedModel.from_checkpoint(random_checkpoint(), tmp_path))
    config, weights = release / "config.json", release / "model.safetensors"
    if damage == "config_garbage":
        config.write_bytes(b"\x00\xff not json")
    elif damage == "config_wrong_format":
        config.write_text(json.dumps({"format": "something-else"}))
    elif damage == "weights_missing":
        weights.unlink()
    elif damage == "weights_garbage":
        weights.write_bytes(b"garbage" * 100)
    else:
        data = json.loads(config.read_text())
        data["model"]["hidden_size"] = 64
        config.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=reason):
        load_model(release)


def test_bundled_model_is_the_default_and_transcribes(tiny_corpus: Path):
    assert (PRETRAINED_DIR / "model.safetensors").stat().st_size <= 25 * 1024 * 1024
    assert load_release(PRETRAINED_DIR).spec.model.num_layers >= 1
    model = asr.load_model()  # no path: the bundled model
    entries = read_manifest(tiny_corpus / "train.jsonl")
    hypotheses = model.transcribe_files([e["audio_filepath"] for e in entries])
    report = score([e["text"] for e in entries], hypotheses)
    # The bundled model never saw these sentences; its synthetic test split has CER ~21 % (RESULTS.md).
    assert report.cer < 0.35, (report.wer, report.cer, hypotheses[:3])


@pytest.mark.slow
def test_release_ships_a_language_model_for_beam_search(tmp_path, tiny_corpus: Path):
    lm = tmp_path / "lm.arpa"
    build_ngram_lm([s.split() for s in SENTENCES], order=2).write_arpa(lm)
    # asr tune-lm --json's best setting (here the grid's one point) is what asr package --tuned ships.
    dev = tmp_path / "dev.jsonl"
    write_manifest(dev, read_manifest(tiny_corpus / "train.jsonl")[:3])
    subprocess.run([sys.executable, "-m", "asr.cli", "tune-lm", "--manifest", str(dev), "--lm", str(lm),
                    "--lm-weights", "1.5", "--word-scores", "0.5", "--json", str(tmp_path / "tuned.json")],
                   capture_output=True, text=True, check=True)
    tuned = json.loads((tmp_path / "tuned.json").read_text())
    assert (tuned["best"]["lm_weight"], tuned["best"]["word_score"], tuned["utterances"]) == (1.5, 0.5, 3)
    assert [(row["lm_weight"], row["word_score"]) for row in tuned["grid"]] == [(1.5, 0.5)]
    out = subprocess.run([sys.executable, "-m", "asr.cli", "package", str(PRETRAINED_DIR), "--out",
                          str(tmp_path / "release"), "--lm", str(lm), "--tuned", str(tmp_path / "tuned.json")],
                         capture_output=True, text=True, check=True)
    assert "lm.arpa.gz" in out.stdout
    model = load_model(tmp_path / "release")
    recommended = model.recommended_decoding
    assert (recommended.method, recommended.lm_weight, recommended.word_score, recommended.beam_size) == \
        ("beam", 1.5, 0.5, DecodeConfig().beam_size)
    refused = subprocess.run([sys.executable, "-m", "asr.cli", "package", str(PRETRAINED_DIR), "--out",
                              str(tmp_path / "other"), "--lm", str(lm), "--tuned", str(dev)],
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "dev.jsonl: not the results of asr tune-lm --json" in refused.stderr
    assert Path(recommended.lm) == tmp_path / "release" / "lm.arpa.gz"
    # With an LM of exactly these sentences, beam search fixes the bundled model's spelling.
    entries = read_manifest(tiny_corpus / "train.jsonl")[:12]
    greedy = score([e["text"] for e in entries], model.transcribe_files([e["audio_filepath"] for e in entries]))
    beam = score([e["text"] for e in entries],
                 model.transcribe_files([e["audio_filepath"] for e in entries], decoding=recommended))
    assert beam.wer < greedy.wer / 2, (greedy.wer, beam.wer)
    (tmp_path / "release" / "lm.arpa.gz").unlink()
    with pytest.raises(CheckpointError, match="language model lm.arpa.gz is missing"):
        load_model(tmp_path / "release")


@pytest.mark.slow
def test_release_with_a_binary_lm_ships_its_lexicon(tmp_path):
    bundled = asr.load_model().recommended_decoding
    release = tmp_path / "release"
    package = [sys.executable, "-m", "asr.cli", "package", str(PRETRAINED_DIR), "--out", str(release)]
    out = subprocess.run([*package, "--lm", bundled.lm], capture_output=True, text=True)
    assert out.returncode == 1 and "lm.bin: a binary KenLM model does not list its words" in out.stderr
    subprocess.run([*package, "--lm", bundled.lm, "--lexicon", bundled.lexicon], check=True, capture_output=True)
    recommended = load_model(release).recommended_decoding
    assert (Path(recommended.lm), Path(recommended.lexicon)) == (release / "lm.bin", release / "lexicon.txt")
    (release / "lexicon.txt").unlink()
    with pytest.raises(CheckpointError, match="its lexicon lexicon.txt is missing"):
        load_model(release)
    # Re-packaged with an ARPA LM, the folder keeps no file of the binary one.
    lm = tmp_path / "lm.arpa"
    build_ngram_lm([s.split() for s in SENTENCES], order=2).write_arpa(lm)
    subprocess.run([*package, "--lm", str(lm)], check=True, capture_output=True)
    assert sorted(p.name for p in release.iterdir()) == ["config.json", "lm.arpa.gz", "model.safetensors"]


def test_bundled_model_recommends_beam_search_with_its_lm():
    recommended = asr.load_model().recommended_decoding
    assert recommended is not None and recommended.method == "beam" and Path(recommended.lm).is_file()
    assert Path(recommended.lm).stat().st_size + Path(recommended.lexicon).stat().st_size < 20 * 1024 * 1024
