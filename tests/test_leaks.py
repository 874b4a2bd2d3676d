"""Memory stays flat over long runs in one process: 1,000 transcriptions with the bundled model (and a live
dictation, start to finish, after every twentieth), and the demo's engine as visitors keep changing hotwords.
The demo's disk stays bounded too: its Gradio cache forgets old uploads, chunks and pictures.

Each run is a fresh Python subprocess (so its resident memory is the workload's alone) on one torch thread; it
warms up first (allocator pools, torch's caches, lazy imports), then samples its RSS from /proc/self/statm.
The long form: ASR_LEAK_ITERATIONS=20000 pytest tests/test_leaks.py (the bound stays the same).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from asr.corpora.synthetic import Voice, synthesize

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

ROOT = Path(__file__).parents[1]
ITERATIONS = int(os.environ.get("ASR_LEAK_ITERATIONS", 1000))
MAX_GROWTH_MB = 20.0

PRELUDE = """
import gc, json, os, sys, time
import torch
torch.set_num_threads(1)

def rss_mb():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
"""

TRANSCRIPTIONS = PRELUDE + """
import numpy as np
import asr
from asr.audio import load_audio, resample
from asr.dictation import Dictation

wav, iterations = sys.argv[1], int(sys.argv[2])
model = asr.load_model()
audio = load_audio(wav)
mic = (resample(audio, 16000, 48000) * 32767).astype(np.int16)  # what the browser sends: 48 kHz int16

def dictate():
    session = Dictation(model, max_duration_s=300.0)  # as the demo makes one per recording
    for start in range(0, len(mic), 24000):
        session.push(48000, mic[start : start + 24000])
    return session.finish().text

def step(i):
    text = model.transcribe(audio if i % 2 else wav, 16000 if i % 2 else None).text
    return dictate() if i % 20 == 19 else text

for i in range(50):
    step(i)
fds, warm, began, samples = len(os.listdir("/proc/self/fd")), rss_mb(), time.perf_counter(), []
for i in range(iterations):
    text = step(i)
    if i % 100 == 99:
        samples.append(round(rss_mb(), 1))
print(json.dumps({"warm_mb": warm, "samples_mb": samples, "seconds": time.perf_counter() - began, "text": text,
                  "fds": [fds, len(os.listdir("/proc/self/fd"))]}))
"""

HOTWORDS = PRELUDE + """
import asr
from asr.audio import load_audio
from asr_demo.app import BEAM, Engine

audio = load_audio(sys.argv[1])
engine = Engine(asr.load_model(), "bundled")
capacity = engine.transcriber.decoders.capacity

def use(i):
    return engine.transcriber.transcribe(audio, 16000, decoding=engine.decoding(BEAM, f"door, window{i}")).text

for i in range(capacity + 1):  # fills the cache, then replaces its oldest decoder
    use(i)
warm = rss_mb()
for i in range(capacity + 1, 2 * capacity + 1):
    text = use(i)
print(json.dumps({"warm_mb": warm, "samples_mb": [round(rss_mb(), 1)], "decoders": len(engine.transcriber.decoders),
                  "max_decoders": capacity, "text": text}))
"""


CACHE_SWEEP = """
import json, os, sys, time
from pathlib import Path
import asr
import asr_demo.app as app
from gradio_client import Client, handle_file

app.CACHE_SWEEP_S, app.CACHE_MAX_AGE_S = 1, 2
blocks = app.build_app(app.Engine(asr.load_model(), "bundled")).queue()
_, url, _ = blocks.launch(prevent_thread_lock=True, quiet=True)
cache = Path(os.environ["GRADIO_TEMP_DIR"])
names = lambda: sorted(p.name for p in cache.rglob("*") if p.is_file())
client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
client.predict(handle_file(sys.argv[1]), app.GREEDY, "", api_name="/transcribe")
after_upload = names()
examples = {p.name for p in app.EXAMPLES_DIR.glob("*.wav")}
deadline = time.monotonic() + 20
while set(names()) - examples and time.monotonic() < deadline:  # the upload and its picture, swept in turn
    time.sleep(0.5)
later = names()
client.close()
blocks.close()
print(json.dumps({"after_upload": after_upload, "later": later,
                  "examples": sorted(p.name for p in app.EXAMPLES_DIR.glob("*.wav"))}))
"""


@pytest.fixture(scope="module")
def utterance(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("leaks") / "open-the-door.wav"
    synthesize("open the door", Voice("espeak-ng", "en-us"), path)  # 1.1 s
    return path


def run(script: str, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(report)
    return report


def test_memory_stays_flat_over_1000_transcriptions(utterance):
    report = run(TRANSCRIPTIONS, str(utterance), str(ITERATIONS))
    assert "open" in report["text"]
    growth = max(report["samples_mb"]) - report["warm_mb"]
    assert growth < MAX_GROWTH_MB, report
    assert report["fds"][1] <= report["fds"][0], report  # no file left open


def test_demo_engine_memory_is_bounded_as_hotwords_change(utterance):
    """Each hotword list needs a decoder of its own, with its own trie of the lexicon (about 180 MB for the bundled
    model's 150,000 words); the engine keeps only the last few, so new lists stop adding memory once its cache is
    full."""
    report = run(HOTWORDS, str(utterance))
    assert report["decoders"] == report["max_decoders"]
    assert "open" in report["text"]
    assert report["samples_mb"][0] - report["warm_mb"] < 30.0, report  # about 4 x 180 MB before the bound


def test_demo_cache_forgets_old_files_but_keeps_the_examples(utterance, tmp_path):
    """Every upload, microphone chunk and picture lands in Gradio's cache; the demo sweeps out old ones (here after
    2 s instead of an hour), except the cached copies of its examples, which the page keeps offering."""
    env = {"GRADIO_TEMP_DIR": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False"}
    report = run(CACHE_SWEEP, str(utterance), env=env)
    assert utterance.name in report["after_upload"] and "image.webp" in report["after_upload"], report
    assert report["examples"] and report["later"] == report["examples"], report
