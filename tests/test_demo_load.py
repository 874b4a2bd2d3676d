"""The demo under load and under bad requests, through gradio_client and raw HTTP on loopback: a bounded run of
benchmarks/demo_visitors.py's visitors (three uploading and dictating at once), oversize uploads, malformed requests.
The demo runs with ASR_DEMO_MAX_UPLOAD_MB=1, so an oversize file is small to make, and serves at most 3 dictations."""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import soundfile
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from asr.evaluate import score

import demo_visitors  # benchmarks/demo_visitors.py (pyproject.toml: pytest's pythonpath)

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

GREEDY = demo_visitors.GREEDY
MAX_UPLOAD_MB = 1
MAX_DICTATIONS = 3  # as many as the concurrent visitors' test has dictating at once


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[str, subprocess.Popen]:
    folder = tmp_path_factory.mktemp("demo-load")
    (folder / "gradio").mkdir()
    with demo_visitors.serve_demo(folder / "demo.log", max_upload_mb=MAX_UPLOAD_MB, temp_dir=folder / "gradio",
                                  env={"ASR_DEMO_MAX_DICTATIONS": str(MAX_DICTATIONS)}) as served:
        yield served


@pytest.fixture(scope="module")
def sentence_wav(tmp_path_factory) -> Path:
    """The first visitor's sentence, as the load test speaks it."""
    return demo_visitors.prepare_audio(tmp_path_factory.mktemp("sentence"), 1)[0]


def post(url: str, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
    """One request on its own connection: after a 500 the server drops the connection it answered on."""
    return httpx.post(url, headers={**(headers or {}), "Connection": "close"}, timeout=60, **kwargs)


def transcribe(url: str, path: Path) -> str:
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    try:
        return client.predict(handle_file(str(path)), GREEDY, "", api_name="/transcribe")[0]
    finally:
        client.close()


def assert_still_serving(url: str, server: subprocess.Popen, sentence_wav: Path) -> None:
    assert server.poll() is None, "the demo exited"
    assert score([demo_visitors.SENTENCES[0]], [transcribe(url, sentence_wav)]).cer < 0.2


def test_the_crosstalk_check_sees_another_visitors_words():
    results = demo_visitors.Results()
    for visitor, kind, text in [(0, "upload", "the weather was fine all day"), (1, "partial", "please op"),
                                (1, "partial", "please open the weather"), (1, "dictation", "please open the weather fine")]:
        results.heard(visitor, kind, text)
    assert results.crosstalk() == [(1, "dictation", "please open the weather fine")]  # one word may be misheard


def test_concurrent_visitors_succeed_and_see_only_their_own_words(demo, tmp_path):
    url, server = demo
    results, _ = demo_visitors.run_load(url, clients=3, seconds=15, folder=tmp_path)
    print(demo_visitors.table(results))
    assert not results.errors, dict(results.errors)
    assert all(results.latencies[kind] for kind in demo_visitors.VISIT_KINDS), dict(results.latencies)
    assert not results.crosstalk()
    for visitor in range(3):  # each uploaded and dictated, and got its own sentence back each time
        finals = [(kind, text) for v, kind, text in results.transcripts if v == visitor and kind != "partial"]
        assert {kind for kind, _ in finals} == {"upload", "dictation"}, finals
        for kind, text in finals:
            assert score([demo_visitors.SENTENCES[visitor]], [text]).cer < 0.3, (visitor, kind, text)
    assert server.poll() is None


def test_a_dictation_beyond_the_bound_is_told_busy_at_once_and_served_once_a_place_frees(demo):
    import time

    url, server = demo
    clients = [Client(url, verbose=False, analytics_enabled=False) for _ in range(MAX_DICTATIONS + 1)]
    try:
        for client in clients[:MAX_DICTATIONS]:
            client.predict(api_name="/dictation_start")
        began = time.monotonic()
        with pytest.raises(AppError, match=r"busy \(3 people are dictating, the most it serves at once\)"):
            clients[-1].predict(api_name="/dictation_start")
        assert time.monotonic() - began < 5  # told, not kept waiting
        clients[0].predict(GREEDY, "", api_name="/dictation_stop")
        clients[-1].predict(api_name="/dictation_start")
    finally:
        for client in clients[1:]:
            client.predict(GREEDY, "", api_name="/dictation_stop")
            client.close()
        clients[0].close()
    assert server.poll() is None


def test_oversize_uploads_are_refused_with_a_readable_message(demo, tmp_path, sentence_wav):
    url, server = demo
    limit = MAX_UPLOAD_MB * 2**20
    big = tmp_path / "big.wav"
    soundfile.write(big, np.zeros(limit // 2 + 16000, np.int16), 16000)  # a little over the limit
    # gradio_client reads the limit from the app's config and refuses before sending...
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {limit} bytes"):
        transcribe(url, big)
    # ...and the server refuses a client that sends it anyway, with a status and a sentence.
    response = post(f"{url}gradio_api/upload", files=[("files", ("big.wav", big.read_bytes(), "audio/wav"))])
    assert response.status_code == 413
    assert response.text == f"File size exceeded maximum allowed size of {limit} bytes."
    assert_still_serving(url, server, sentence_wav)


def stream_events(url: str, session_hash: str) -> list[dict]:
    """A session's event-stream messages until the server closes it."""
    messages = []
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session_hash},
                      timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                messages.append(json.loads(line[5:]))
                if messages[-1]["msg"] == "close_stream":
                    return messages
    return messages


def test_malformed_requests_get_errors_and_the_server_keeps_serving(demo, tmp_path, sentence_wav):
    url, server = demo
    api = f"{url}gradio_api/"
    config = httpx.get(f"{url}config").json()
    stream_fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "dictation_stream")
    join = {"fn_index": 0, "session_hash": "malformed", "event_data": None}

    # Bodies that are not what the API routes take.
    assert post(f"{api}queue/join", json={"foo": [1, 2]}).status_code == 422
    assert post(f"{api}queue/join", content=b"\x00\xff{not json", headers={"Content-Type": "application/json"}
                ).status_code == 400
    assert post(f"{api}queue/join", json={**join, "data": "not a list"}).status_code == 422
    assert post(f"{api}call/transcribe", json={"data": 12}).status_code == 422
    assert post(f"{api}upload", content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=x"}
                ).status_code == 400
    # Endpoints that do not exist. (Gradio 6.31 answers an unknown api_name or fn_index with 500 and a traceback
    # in the server's log, not 404; the server carries on all the same.)
    assert post(f"{api}call/no_such_endpoint", json={"data": []}).status_code >= 400
    assert post(f"{api}queue/join", json={**join, "fn_index": 999, "data": []}).status_code >= 400
    assert post(f"{api}stream/no-such-event", json={**join, "data": []}).status_code == 404
    with pytest.raises(ValueError, match="Cannot find a function"):
        Client(url, verbose=False, analytics_enabled=False).predict(api_name="/no_such_endpoint")

    # Files that are not audio, or not whole: a readable message naming the file.
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio\n" * 50)
    header_only = tmp_path / "header-only.wav"
    header_only.write_bytes(sentence_wav.read_bytes()[:30])
    for path in (not_audio, header_only):
        with pytest.raises(AppError, match=f"{path.name}: not a readable audio file"):
            transcribe(url, path)
    half = tmp_path / "half.wav"  # cut mid-data: the audio that is there is transcribed
    half.write_bytes(sentence_wav.read_bytes()[: sentence_wav.stat().st_size // 2])
    transcribe(url, half)

    # A server file the client never uploaded is not read.
    passwd = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}
    response = post(f"{api}call/transcribe", json={"data": [passwd, GREEDY, "", "the model the demo started with"]})
    answer = httpx.get(f"{api}call/transcribe/{response.json()['event_id']}", timeout=60).text
    assert "event: error" in answer and "not uploaded by a user" in answer

    # An upload cut off mid-body: the request announces 100 kB, sends 1 kB and hangs up.
    host = urlparse(url)
    with socket.create_connection((host.hostname, host.port)) as raw:
        raw.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                    b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\nContent-Disposition: form-data; "
                    b'name="files"; filename="cut.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF' + bytes(1000))

    # A microphone chunk that is not audio ends that stream with an error.
    uploaded = post(f"{api}upload", files=[("files", ("audio.wav", not_audio.read_bytes(), "audio/wav"))]).json()[0]
    chunk = {"path": uploaded, "orig_name": "audio.wav", "meta": {"_type": "gradio.FileData"}}
    session = {**join, "fn_index": stream_fn, "session_hash": "bad-microphone"}
    assert post(f"{api}queue/join", json={**session, "data": [chunk, None, GREEDY, ""]}).status_code == 200
    ends = [m for m in stream_events(url, "bad-microphone") if m["msg"] == "process_completed"]
    assert len(ends) == 1 and not ends[0]["success"], ends

    assert_still_serving(url, server, sentence_wav)
