"""`asr adapt`: fine-tuning the bundled model to one voice, its guard rails (each a one-line error and nothing
written), recordings that do not match their transcript (reported, left out), and the releases it writes (a
folder or a zip, both taken by `asr transcribe --model`). The demo's tab that runs it: test_demo_adaptation.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.adapt import AdaptConfig, AdaptError, Recording, adapt, check_output, prompts, split_held_out
from asr.checkpoint import load_trained
from asr.cli import main
from asr.corpora.synthetic import Voice, synthesize
from asr.errors import CheckpointError, ConfigError
from asr.release import PRETRAINED_DIR, RELEASE_CONFIG, RELEASE_LEXICON, RELEASE_LM_BINARY, unzip_release

VOICE = Voice("espeak-ng", "en-gb-x-rp")
OTHER_TEXT = "please call stella and ask her to bring these things with her from the store"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """The first nine built-in prompts read by one espeak-ng voice (26 s): a folder of WAV + same-named .txt."""
    folder = tmp_path_factory.mktemp("voice")
    for i, text in enumerate(prompts()[:9]):
        synthesize(text, VOICE, folder / f"{i:02d}.wav")
        (folder / f"{i:02d}.txt").write_text(text + "\n")
    return folder


def copy_of(recordings: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(recordings, tmp_path / "recordings"))


def run(capsys, *args: object) -> tuple[int, str, str]:
    """`asr adapt ARGS` in this process: (exit status, stdout, stderr)."""
    status = main(["adapt", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 1, err
    assert len(lines) == 1 and lines[0].startswith("asr adapt: error: "), err
    assert all(fragment in lines[0] for fragment in fragments), err
    assert "Traceback" not in err


def test_prompts_are_short_everyday_sentences_the_model_can_spell():
    sentences = prompts()
    assert len(sentences) >= 100 and len(set(sentences)) == len(sentences)
    from asr.text import DEFAULT_CHARS, normalize

    for sentence in sentences:
        assert 3 <= len(sentence.split()) <= 12, sentence
        assert set(normalize(sentence)) <= set(DEFAULT_CHARS), sentence


@pytest.mark.slow  # trains
def test_adapt_writes_a_release_that_transcribes_and_keeps_the_language_model(recordings, tmp_path, capsys):
    status, out, err = run(capsys, recordings, "--out", tmp_path / "mine", "--steps", 6, "--threads", 2)
    assert status == 0, err
    assert "held-out WER (2 recordings): greedy" in out and "with the language model" in out, out
    assert "held_out_wer=" in err  # the progress bar shows it
    release = json.loads((tmp_path / "mine" / RELEASE_CONFIG).read_text())
    bundled = json.loads((PRETRAINED_DIR / RELEASE_CONFIG).read_text())
    assert release["decoding"] == bundled["decoding"]  # LM and tuned weights kept
    for name in (RELEASE_LM_BINARY, RELEASE_LEXICON):
        assert (tmp_path / "mine" / name).read_bytes() == (PRETRAINED_DIR / name).read_bytes()
    assert release["metadata"]["recordings"] == 7 and release["metadata"]["held_out"] == 2
    adapted, original = load_trained(tmp_path / "mine"), load_trained(PRETRAINED_DIR)
    changed = [k for k in original.weights if not np.allclose(adapted.weights[k], original.weights[k], atol=1e-3)]
    assert changed, "adaptation changed no weight"
    # As a user would run it: a fresh interpreter, the adapted model, one of the recordings.
    result = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", "--model", str(tmp_path / "mine"),
                             str(recordings / "00.wav")], capture_output=True, text=True)
    assert result.returncode == 0 and "garage" in result.stdout, result.stderr


@pytest.mark.slow  # trains
def test_adapt_to_a_zip_that_transcribe_takes(recordings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status, out, err = run(capsys, recordings, "--out", tmp_path / "voice.zip", "--steps", 2)
    assert status == 0, err
    with zipfile.ZipFile(tmp_path / "voice.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"voice/{name}" for name in
                                                    (RELEASE_CONFIG, "model.safetensors", RELEASE_LM_BINARY,
                                                     RELEASE_LEXICON))
    result = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", "--model", str(tmp_path / "voice.zip"),
                             "--decoder", "beam", str(recordings / "01.wav")], capture_output=True, text=True,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0 and "vegetables" in result.stdout, result.stderr
    assert len(list((tmp_path / "cache" / "asr" / "releases").iterdir())) == 1  # unpacked once, in the cache


@pytest.mark.slow  # trains
def test_adaptation_lowers_the_held_out_loss_and_keeps_the_best_weights(recordings):
    progress = []
    result = adapt(recordings, None, AdaptConfig(steps=12, eval_every=4, threads=2), progress.append,
                   log=lambda line: None)
    assert result.after.loss < result.before.loss
    assert [p.step for p in progress] == list(range(1, result.steps + 1))
    scored = [p for p in progress if p.held_out is not None]
    assert [p.step for p in scored] == [4, 8, 12][: len(scored)]
    assert result.after.loss == pytest.approx(min([result.before.loss] + [p.held_out.loss for p in scored]), rel=1e-4)
    assert result.best_step in [0] + [p.step for p in scored]


def test_batches_with_a_non_finite_loss_are_skipped_and_counted(recordings, monkeypatch):
    """Adaptation takes the trainer's step: a NaN loss applies nothing (the held-out loss stays) and is counted."""
    import asr.adapt

    def nan_loss(*args, **kwargs):
        loss_sum, ok = forward_loss(*args, **kwargs)
        return loss_sum * float("nan"), ok

    forward_loss = asr.adapt.forward_loss
    monkeypatch.setattr(asr.adapt, "forward_loss", nan_loss)
    result = adapt(recordings, None, AdaptConfig(steps=3, eval_every=3, threads=2), log=lambda line: None)
    assert result.steps == result.skipped_steps == 3
    assert result.best_step == 0 and result.after.loss == pytest.approx(result.before.loss, rel=1e-5)
    assert "3 steps skipped" in result.summary()


@pytest.mark.slow  # trains
def test_a_transcript_that_does_not_match_is_reported_and_left_out(recordings, tmp_path, capsys):
    folder = copy_of(recordings, tmp_path)
    (folder / "03.txt").write_text(OTHER_TEXT)
    status, out, err = run(capsys, folder, "--out", tmp_path / "mine", "--steps", 2)
    assert status == 0, err
    assert f"left out {folder / '03.wav'}: the audio does not seem to match the transcript" in err
    assert json.loads((tmp_path / "mine" / RELEASE_CONFIG).read_text())["metadata"]["recordings"] == 6


def test_too_little_audio_is_refused_and_nothing_is_written(recordings, tmp_path, capsys):
    folder = tmp_path / "few"
    folder.mkdir()
    for name in ("00", "01", "02"):
        shutil.copy(recordings / f"{name}.wav", folder)
        shutil.copy(recordings / f"{name}.txt", folder)
    status, _, err = run(capsys, folder, "--out", tmp_path / "mine")
    assert_one_line_error(status, err, "too little usable speech to adapt: 3 recordings", "at least 5 recordings")
    assert not (tmp_path / "mine").exists()


@pytest.mark.parametrize("damage, fragment", [
    ("garbage", "02.wav: not a readable audio file"),
    ("silent", "02.wav: the recording is silent"),
    ("short", "02.wav: only 0.10 s of audio"),
    ("empty transcript", "02.txt: no words after normalization"),
    ("letters", "02.txt: letters '中文' outside the vocabulary"),
])
def test_a_bad_recording_is_named_and_nothing_is_written(recordings, tmp_path, capsys, damage, fragment):
    folder = copy_of(recordings, tmp_path)
    wav, txt = folder / "02.wav", folder / "02.txt"
    if damage == "garbage":
        wav.write_bytes(b"RIFF not really a wave file" * 20)
    elif damage == "silent":
        soundfile.write(wav, np.zeros(3 * 16000, np.int16), 16000)
    elif damage == "short":
        soundfile.write(wav, (np.random.default_rng(0).standard_normal(1600) * 3000).astype(np.int16), 16000)
    elif damage == "empty transcript":
        txt.write_text("  \n")
    else:
        txt.write_text("the garage door squeaks 中文")
    status, _, err = run(capsys, folder, "--out", tmp_path / "mine")
    assert_one_line_error(status, err, fragment)
    assert not (tmp_path / "mine").exists() and not list(tmp_path.glob(".mine*"))


def test_bad_options_and_outputs_are_refused_before_any_work(recordings, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    status, _, err = run(capsys, recordings, "--out", tmp_path / "notes")
    assert_one_line_error(status, err, "notes: exists and is not a model release")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    status, _, err = run(capsys, recordings, "--out", tmp_path / "missing" / "mine")
    assert_one_line_error(status, err, "the folder to write the model in does not exist")
    status, _, err = run(capsys, recordings, "--out", tmp_path / "mine", "--steps", 0)
    assert_one_line_error(status, err, "steps must be at least 1")
    status, _, err = run(capsys, tmp_path / "nothing-here.txt", "--out", tmp_path / "mine")
    assert_one_line_error(status, err, "nothing-here.txt: expected a JSONL manifest or a folder")
    status, _, err = run(capsys, recordings, "--out", tmp_path / "mine", "--model", tmp_path / "no-model")
    assert_one_line_error(status, err, "no-model")


@pytest.mark.slow  # trains
def test_an_earlier_adapted_release_is_replaced(recordings, tmp_path, capsys):
    out = tmp_path / "mine"
    assert run(capsys, recordings, "--out", out, "--steps", 1)[0] == 0
    first = json.loads((out / RELEASE_CONFIG).read_text())["metadata"]
    check_output(out)  # a release may be overwritten
    assert run(capsys, recordings, "--out", out, "--steps", 2, "--seed", 1)[0] == 0
    second = json.loads((out / RELEASE_CONFIG).read_text())["metadata"]
    assert (first["steps"], second["steps"]) == (1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folder left


def test_a_zip_that_is_not_a_release_is_refused_and_unpacks_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr("asr.release.RELEASE_CACHE", tmp_path / "cache")
    with zipfile.ZipFile(tmp_path / "holiday.zip", "w") as archive:
        archive.writestr("photo.jpg", b"not a model")
    with pytest.raises(CheckpointError, match="holiday.zip: not a zipped model release"):
        load_trained(tmp_path / "holiday.zip")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="broken.zip: not a readable zip of a model release"):
        load_trained(tmp_path / "broken.zip")
    # A crafted member name cannot write outside the cache: only the release's own file names are taken.
    with zipfile.ZipFile(tmp_path / "crafted.zip", "w") as archive:
        archive.write(PRETRAINED_DIR / RELEASE_CONFIG, "m/config.json")
        archive.writestr("../../escaped.txt", b"x")
        archive.writestr("m/../../model.safetensors", b"x")
    folder = unzip_release(tmp_path / "crafted.zip")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]
    assert not (tmp_path / "escaped.txt").exists()


def test_config_is_checked_and_the_held_out_split_is_seeded():
    for bad, fragment in [({"steps": 0}, "steps must be at least 1"), ({"held_out": 1.0}, "held-out must be"),
                          ({"lr": 0.0}, "lr must be positive"), ({"threads": 0}, "threads must be at least 1")]:
        with pytest.raises(ConfigError, match=fragment):
            AdaptConfig(**bad)
    recordings = [Recording(str(i), "a", np.zeros(16000, np.float32)) for i in range(10)]
    train, held_out = split_held_out(recordings, 0.2, seed=3)
    assert len(held_out) == 2 and len(train) == 8 and not {r.path for r in train} & {r.path for r in held_out}
    assert [r.path for r in split_held_out(recordings, 0.2, seed=3)[1]] == [r.path for r in held_out]
    assert issubclass(AdaptError, Exception)
