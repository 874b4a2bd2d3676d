"""The demo's "Adapt to my voice" tab through gradio_client, as separate browser sessions would use it: each keeps
its own recordings, adaptations run one at a time (the second is told its place in the queue), each session
dictates and uploads with its own adapted model, the server keeps at most ASR_DEMO_MAX_ADAPTED of them (here 1:
the least recently used is dropped and its session told), and a session's files go when the session ends.
The same parts in-process: test_demo_adaptation.py; in a browser: test_demo_browser.py."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from asr.adapt import prompts
from asr.checkpoint import load_trained
from asr.corpora.synthetic import Voice, synthesize
from asr.evaluate import score

import demo_visitors  # benchmarks/demo_visitors.py (pyproject.toml: pytest's pythonpath)

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

MINE, GREEDY = "my adapted model", demo_visitors.GREEDY


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("voices")


@pytest.fixture(scope="module")
def demo(tmp_path_factory, voices_dir) -> str:
    folder = tmp_path_factory.mktemp("demo-adapt")
    with demo_visitors.serve_demo(folder / "demo.log", env={"ASR_DEMO_VOICES_DIR": str(voices_dir),
                                                            "ASR_DEMO_MAX_ADAPTED": "1"}) as (url, _):
        yield url


@pytest.fixture(scope="module")
def prompt_wavs(tmp_path_factory) -> list[Path]:
    """The first eight prompts, read by an espeak-ng voice (24 s)."""
    folder = tmp_path_factory.mktemp("prompts")
    wavs = []
    for i, text in enumerate(prompts()[:8]):
        synthesize(text, Voice("espeak-ng", "en-us", "m3"), folder / f"{i}.wav")
        wavs.append(folder / f"{i}.wav")
    return wavs


def client(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False)


def session_folders(voices_dir: Path) -> set[str]:
    return {p.name for root in voices_dir.iterdir() for p in root.iterdir()}


def test_sessions_adapt_in_turn_and_each_dictates_with_its_own_model(demo, prompt_wavs, voices_dir, tmp_path):
    first, second, stranger = client(demo), client(demo), client(demo)
    for visitor in (first, second):
        for wav in prompt_wavs:
            collected = visitor.predict(handle_file(str(wav)), api_name="/adapt_keep")[1]
        assert "**Collected:** 8 sentences" in collected
    assert session_folders(voices_dir) == {first.session_hash, second.session_hash}
    # Another session sees none of their recordings.
    with pytest.raises(AppError, match="Record at least 5 sentences"):
        stranger.predict(5, api_name="/adapt")

    jobs = [first.submit(5, api_name="/adapt"), second.submit(5, api_name="/adapt")]
    while not all(job.done() for job in jobs):
        time.sleep(0.5)
    statuses = [[str(output[0]) for output in job.outputs()] for job in jobs]
    waited = [any("1 ahead of yours in the queue" in s for s in status) for status in statuses]
    assert sorted(waited) == [False, True], statuses  # one ran at once, the other waited its turn
    for job, status in zip(jobs, statuses):
        assert any("<progress" in s and "Adapting: step" in s for s in status), status
        assert "<b>Adapted</b> (trained " in status[-1] and "→" in status[-1], status[-1]
        _, choice, download = job.outputs()[-1]  # component updates: the model switch and the download button
        assert choice["value"] == MINE and choice["visible"] and download["visible"]
        assert load_trained(download["value"]).metadata["steps"] <= 5  # the downloaded zip is a release

    # With room for one adapted model, the session that finished first lost its model to the other one.
    later, earlier = (first, second) if waited[0] else (second, first)
    assert later.predict(MINE, api_name="/dictation_start")[1] == "Listening…"
    note = earlier.predict(MINE, api_name="/dictation_start")[1]
    assert "your adapted model is gone: the server keeps at most 1 adapted models" in note
    text = later.predict(handle_file(str(prompt_wavs[0])), GREEDY, "", MINE, api_name="/transcribe")[0]
    assert score([prompts()[0]], [text]).cer < 0.3, text
    assert stranger.predict(None, api_name="/dictation_start")[1] == "Listening…"

    # A session that ends takes its recordings and its model with it; the others keep theirs.
    later.close()
    deadline = time.monotonic() + 90
    while later.session_hash in session_folders(voices_dir) and time.monotonic() < deadline:
        time.sleep(1)
    assert session_folders(voices_dir) == {earlier.session_hash}
    for visitor in (earlier, stranger):
        visitor.close()
