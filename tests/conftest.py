"""Shared fixtures: a small speech corpus synthesized with espeak-ng at test time."""
from __future__ import annotations

import atexit
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# What the toolkit caches for a user (unzipped releases, beam search's spellings) goes to a cache of the test run's
# own, it and the commands the tests start: set before asr is imported, which reads it once.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="asr-tests-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from asr.corpora.synthetic import Voice, synthesize
from asr.manifest import write_manifest

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a stitch in time saves nine",
    "she sells sea shells by the sea shore",
    "time flies like an arrow",
    "all that glitters is not gold",
    "the early bird catches the worm",
    "better late than never",
    "knowledge is power",
    "actions speak louder than words",
    "practice makes perfect",
    "where there is smoke there is fire",
    "every cloud has a silver lining",
]
VOICES = [Voice("espeak-ng", "en-us"), Voice("espeak-ng", "en-gb-x-rp"), Voice("espeak-ng", "en-us", "Annie")]


@pytest.fixture(autouse=True)
def fixed_seeds() -> None:
    """Every test starts from the same random state, so a failure reruns the same way whatever ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 utterances (12 sentences x 3 espeak-ng voices) and their manifest, train.jsonl."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required for the end-to-end tests (scripts/setup.sh installs it)")
    root = tmp_path_factory.mktemp("tiny_corpus")
    entries = []
    for v, voice in enumerate(VOICES):
        for s, sentence in enumerate(SENTENCES):
            path = root / "wavs" / f"{v}_{s}.wav"
            duration = synthesize(sentence, voice, path, rate=1.0 + 0.05 * (s % 3))
            entries.append({"audio_filepath": str(path), "duration": duration, "text": sentence, "speaker": voice.id})
    write_manifest(root / "train.jsonl", entries)
    return root


def run_recipe(recipe: str, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    """Run recipes/<recipe>/prepare.py with args as a user would, capturing its output."""
    script = Path(__file__).resolve().parents[1] / "recipes" / recipe / "prepare.py"
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True)


def assert_fails_naming(result: subprocess.CompletedProcess, name: str) -> None:
    """The recipe failed with exit status 1 and one stderr line, an error that names `name`."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and name in lines[0] and "error:" in lines[0], result.stderr
