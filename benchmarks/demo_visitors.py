"""Simulated visitors for load-testing the demo (`benchmarks/demo_load.py` prints its figures, tests/test_demo_load.py
asserts its behaviour): N visitors upload recordings and dictate at the same time for T seconds, on loopback.
`serve_demo` starts the demo for them, and for the other tests that need it served. It lives with the benchmarks,
not in the demo package: a load tester is no part of what the demo ships.

Each visitor is one gradio_client Client (its own session), in a process of its own so that the load generator is
not what limits a crowd, and speaks its own sentence (espeak-ng, en-us); it alternates two things until the time is
up:

  upload    `predict(file, api_name="/transcribe")`: the file goes up, the server transcribes it and draws its
            picture, the client fetches the picture: what the Upload tab's Transcribe button does.
  dictation what the Microphone tab does: `/dictation_start`, then the sentence as 48 kHz 16-bit WAV chunks of the
            app's `stream_every` (0.5 s), recorded in real time, then the stream's close and `/dictation_stop`.

Why this module speaks Gradio's streaming protocol itself: gradio_client (2.7) cannot drive a streaming event.
`submit(api_name="/dictation_stream")` dies on the server's first `process_streaming` message (its
Status.msg_to_status has no entry for it: KeyError), and it has no call that sends a stream's later chunks. So the
chunks go the way Gradio 6's browser client sends them, with httpx (the HTTP library gradio_client itself uses) on
the Client's own session hash, so that the session's gr.State is the one `/dictation_start` and `/dictation_stop`
see: each chunk is uploaded (POST /upload); the first one joins the queue (POST /queue/join with the event's
fn_index), later ones go to POST /stream/{event_id}, and replies arrive on the session's event stream (GET
/queue/data). Like the browser, a visitor whose last chunk is still unanswered holds the chunks it records
meanwhile and sends them together, in one WAV, once the reply arrives. Unlike the browser (which drops chunks
recorded while its event still waits in the queue), it never drops audio.

With `adapt_prompts`, one more visitor uses the "Adapt to my voice" tab meanwhile: it keeps recordings of the first
prompts (`/adapt_keep`, the prompts read by espeak-ng) and adapts (`/adapt`); the others stop when it is done, so
their figures are those of dictation while a model adapts on the same server.

Latency is measured per request: an upload from the start of its file upload to its result; a chunk from the start
of its upload to the partial text it brings back; start and stop from call to result. A request the server refuses
as busy (demo/crowd.py) is counted apart, with the time its answer took, and the visitor tries again a moment later,
as a person would. Every transcript a visitor receives, partial or final, must hold no word of another visitor's
sentence (crosstalk).
"""
from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import multiprocessing.synchronize
import os
import queue
import re
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import soundfile
from gradio_client import Client, handle_file

from asr.adapt import AdaptConfig, prompts
from asr.audio import SAMPLE_RATE, load_audio, resample
from asr.corpora.synthetic import Voice, synthesize
from asr.evaluate import score

import common

ROOT = Path(__file__).resolve().parents[1]  # the checkout, where `asr demo` runs
# One per visitor; no two share a word of four letters or more.
SENTENCES = ["the weather was fine all day", "please open the window", "we walked in the garden",
             "my brother plays the piano", "cats sleep on a warm sofa", "the train leaves at noon",
             "she bought fresh bread and milk", "birds sing in the morning", "cross the bridge carefully",
             "our neighbour grows tall sunflowers", "this coffee tastes bitter", "he painted his kitchen yellow",
             "send me your address today", "children laughed at the clown", "the river flows past old mills",
             "dinner will be ready soon", "my sister lost her keys", "a cold wind blew up north",
             "they sold their boat last year", "now close every door", "the doctor said rest more",
             "we need eggs and butter", "lights went out during storm", "grandma knits woollen socks",
             "football match starts tonight", "wash those dirty plates", "a small dog chased ducks",
             "teachers gave extra homework", "spring blossoms smell sweet", "count slowly to ten",
             "jump across that puddle quickly", "mountains look blue at dusk"]
GREEDY = "greedy (fastest)"  # demo/app.py's label for greedy decoding
BROWSER_RATE = 48000  # what browsers record at
VISIT_KINDS = ("upload", "dictation start", "chunk", "dictation stop")  # what every visitor does
KINDS = VISIT_KINDS + ("adapt keep", "adapt")  # and the adapting visitor
ADAPT_VOICE = Voice("espeak-ng", "en-us", "m3")  # the adapting visitor's voice, reading the built-in prompts
BUSY_BACKOFF_S = 2.0  # how long a visitor told "busy" waits before trying again


@dataclass
class Results:
    """What the visitors saw: latencies (s) and errors per kind of request, and every transcript they received."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    refusals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # "busy" answers' latencies
    transcripts: list[tuple[int, str, str]] = field(default_factory=list)  # (visitor, kind, text)
    audio_s: float = 0.0  # audio transcribed: uploads plus dictations
    wall_s: float = 0.0
    visitors_cpu_s: float = 0.0  # CPU time the visitors' processes took: on one machine, not the server's to use
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)

    def refused(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.refusals[kind].append(seconds)

    def snapshot(self) -> dict:
        """What a visitor's process sends back (the lock stays behind)."""
        return {"latencies": dict(self.latencies), "errors": dict(self.errors), "refusals": dict(self.refusals),
                "transcripts": self.transcripts, "audio_s": self.audio_s}

    def merge(self, snapshot: dict) -> None:
        for name in ("latencies", "errors", "refusals"):
            for kind, values in snapshot[name].items():
                getattr(self, name)[kind].extend(values)
        self.transcripts += snapshot["transcripts"]
        self.audio_s += snapshot["audio_s"]

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            self.errors[kind].append(message)

    def heard(self, visitor: int, kind: str, text: str) -> None:
        with self.lock:
            self.transcripts.append((visitor, kind, text))

    def crosstalk(self) -> list[tuple[int, str, str]]:
        """Transcripts holding two or more words (of four letters or more) of one other visitor's sentence that
        their own has not. (One such word is too often a recognition error: "lost" heard as "last".)"""
        def words(visitor: int) -> set[str]:
            return {w for w in SENTENCES[visitor].split() if len(w) >= 4}

        visitors = {v for v, _, _ in self.transcripts}
        return [(v, kind, text) for v, kind, text in self.transcripts
                if any(len(set(text.split()) & words(o) - words(v)) >= 2 for o in visitors if o != v)]

    def final_cer(self, kind: str) -> float:
        """Mean character error rate of a kind of final transcript against the visitor's own sentence."""
        rows = [(SENTENCES[v], t) for v, k, t in self.transcripts if k == kind]
        return float(np.mean([score([ref], [hyp]).cer for ref, hyp in rows])) if rows else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_demo(log: Path, max_upload_mb: int | None = None, temp_dir: Path | None = None,
               env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`asr demo` on a free loopback port (with `env` added to its environment); yields (url, process) once it
    answers, and stops it afterwards."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    if max_upload_mb is not None:
        env["ASR_DEMO_MAX_UPLOAD_MB"] = str(max_upload_mb)
    if temp_dir is not None:
        env["GRADIO_TEMP_DIR"] = str(temp_dir)
    port = free_port()
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "asr.cli", "demo", "--port", str(port)], cwd=ROOT, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the demo did not start:\n{log.read_text()}") from None
                time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def prepare_audio(folder: Path, count: int) -> list[Path]:
    """A 16 kHz WAV per sentence: a second of silence, the sentence, a second of silence."""
    paths = []
    for i, sentence in enumerate(SENTENCES[:count]):
        path = folder / f"visitor-{i}.wav"
        synthesize(sentence, Voice("espeak-ng", "en-us"), path)
        silence = np.zeros(SAMPLE_RATE, np.float32)  # a second
        soundfile.write(path, np.concatenate([silence, load_audio(path), silence]), SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


class Visitor:
    """One browser tab: a gradio_client Client for the ordinary events, raw HTTP for the microphone's stream."""

    def __init__(self, index: int, url: str, wav: Path, results: Results, download_dir: Path) -> None:
        self.index, self.wav, self.results = index, wav, results
        self.client = Client(url, verbose=False, analytics_enabled=False, download_files=str(download_dir))
        self.http = httpx.Client(timeout=httpx.Timeout(60.0))
        self.api = self.client.src_prefixed  # http://host:port/gradio_api/
        stream = next(d for d in self.client.config["dependencies"] if d.get("api_name") == "dictation_stream")
        self.stream_fn, self.stream_every_s = stream["id"], float(stream.get("stream_every") or 0.5)
        self.mic_id = stream["targets"][0][0]
        self.speech = load_audio(wav)
        self.mic = (resample(self.speech, SAMPLE_RATE, BROWSER_RATE) * 32767).astype(np.int16)
        self.rng = np.random.default_rng(index)

    def run(self, deadline: float, dictate_only: bool = False,
            stop: multiprocessing.synchronize.Event | None = None) -> None:
        turn = self.index  # half the visitors start with an upload, half with a dictation
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            if turn % 2 == 0 and not dictate_only:
                self.upload()
            else:
                self.dictate()
            turn += 1
        self.client.close()
        self.http.close()

    def call(self, kind: str, *args: object, api_name: str) -> tuple | None:
        began = time.perf_counter()
        try:
            result = self.client.predict(*args, api_name=api_name)
        except Exception as err:  # noqa: BLE001 - every failure is counted and reported
            if "busy" in str(err):
                self.results.refused(kind, time.perf_counter() - began)
                time.sleep(BUSY_BACKOFF_S)
            else:
                self.results.error(kind, f"{type(err).__name__}: {err}")
            return None
        self.results.add(kind, time.perf_counter() - began)
        return result

    def dither(self, samples: np.ndarray) -> np.ndarray:
        """The samples with a least significant bit of noise: no two recordings are alike (nor their files on the
        server, which stores uploads by content), as with a real microphone."""
        noisy = samples.astype(np.int32) + self.rng.integers(-1, 2, len(samples))
        return np.clip(noisy, -32768, 32767).astype(np.int16)

    def upload(self) -> None:
        soundfile.write(self.wav, self.dither((self.speech * 32767).astype(np.int16)), SAMPLE_RATE)
        result = self.call("upload", handle_file(str(self.wav)), GREEDY, "", api_name="/transcribe")
        if result is not None:
            self.results.heard(self.index, "upload", result[0])
            with self.results.lock:
                self.results.audio_s += len(self.speech) / SAMPLE_RATE

    def dictate(self) -> None:
        if self.call("dictation start", api_name="/dictation_start") is None:
            return
        if self.stream():
            result = self.call("dictation stop", GREEDY, "", api_name="/dictation_stop")
            if result is not None:
                self.results.heard(self.index, "dictation", result[0])
                with self.results.lock:
                    self.results.audio_s += len(self.mic) / BROWSER_RATE

    def stream(self) -> bool:
        """Send the sentence in real time as the browser does; False if the stream failed."""
        step, mic = int(self.stream_every_s * BROWSER_RATE), self.dither(self.mic)
        chunks = [mic[i : i + step] for i in range(0, len(mic), step)]
        replies: queue.Queue = queue.Queue()
        reader: threading.Thread | None = None
        event_id, sent_at, held = None, None, []
        began = time.monotonic()
        try:
            for k, chunk in enumerate(chunks):
                time.sleep(max(0.0, began + (k + 1) * self.stream_every_s - time.monotonic()))  # recorded
                held.append(chunk)
                if sent_at is not None and self.reply(replies, sent_at, block=False):
                    sent_at = None
                if sent_at is None:
                    sent_at = time.perf_counter()
                    event_id = self.send_chunk(np.concatenate(held), event_id)
                    held = []
                    if reader is None:
                        reader = threading.Thread(target=self.read_events, args=(replies,), daemon=True)
                        reader.start()
            if sent_at is not None:
                self.reply(replies, sent_at, block=True)
            if held:
                sent_at = time.perf_counter()
                self.send_chunk(np.concatenate(held), event_id)
                self.reply(replies, sent_at, block=True)
            return True
        except (httpx.HTTPError, RuntimeError, queue.Empty) as err:
            self.results.error("chunk", f"{type(err).__name__}: {err}")
            return False
        finally:
            if event_id is not None:
                with contextlib.suppress(httpx.HTTPError):
                    self.http.post(f"{self.api}stream/{event_id}/close", json={})
            if reader is not None:
                reader.join(timeout=60)

    def send_chunk(self, samples: np.ndarray, event_id: str | None) -> str:
        """Upload a chunk and hand it to the stream (joining the queue with the first one); returns the event id."""
        data = wav_bytes(samples, BROWSER_RATE)
        response = self.http.post(f"{self.api}upload", files=[("files", ("audio.wav", data, "audio/wav"))])
        response.raise_for_status()
        chunk = {"path": response.json()[0], "orig_name": "audio.wav", "size": len(data), "mime_type": "audio/wav",
                 "meta": {"_type": "gradio.FileData"}}
        body = {"data": [chunk, None, GREEDY, ""], "fn_index": self.stream_fn, "event_data": None,
                "session_hash": self.client.session_hash}
        if event_id is None:
            response = self.http.post(f"{self.api}queue/join", json={**body, "trigger_id": self.mic_id})
            response.raise_for_status()
            return response.json()["event_id"]
        self.http.post(f"{self.api}stream/{event_id}", json=body).raise_for_status()
        return event_id

    def reply(self, replies: queue.Queue, sent_at: float, block: bool) -> bool:
        """Take the reply to the chunk sent at sent_at, if there is one (waiting for it if block)."""
        try:
            arrived, message = replies.get(block=block, timeout=60 if block else None)
        except queue.Empty:
            if block:
                raise
            return False
        if message.get("msg") != "process_streaming" or not message.get("success", True):
            raise RuntimeError(f"the stream ended instead of answering a chunk: {json.dumps(message)[:300]}")
        self.results.add("chunk", arrived - sent_at)
        self.results.heard(self.index, "partial", message["output"]["data"][0])
        return True

    def read_events(self, replies: queue.Queue) -> None:
        """Put the session's stream replies (and an unexpected end) on replies, until the server closes the stream."""
        with self.http.stream("GET", f"{self.api}queue/data", params={"session_hash": self.client.session_hash},
                              timeout=None) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message["msg"] == "close_stream":
                    return
                failed = message["msg"] == "process_completed" and not message.get("success", True)
                if failed or message["msg"] in ("process_streaming", "unexpected_error", "server_stopped"):
                    replies.put((time.perf_counter(), message))
                if message["msg"] in ("unexpected_error", "server_stopped"):
                    return


class Adapter:
    """A visitor of the "Adapt to my voice" tab: keeps recordings of the first prompts (`/adapt_keep`), then adapts
    (`/adapt`) and waits for the result; measures both."""

    def __init__(self, url: str, wavs: list[Path], steps: int, results: Results, download_dir: Path) -> None:
        self.wavs, self.steps, self.results = wavs, steps, results
        self.client = Client(url, verbose=False, analytics_enabled=False, download_files=str(download_dir))
        self.final_status = ""

    def run(self, done: threading.Event) -> None:
        try:
            for wav in self.wavs:
                began = time.perf_counter()
                self.client.predict(handle_file(str(wav)), api_name="/adapt_keep")
                self.results.add("adapt keep", time.perf_counter() - began)
            began = time.perf_counter()
            job = self.client.submit(self.steps, api_name="/adapt")
            while not job.done():
                time.sleep(0.2)
            if job.exception() is not None:
                raise job.exception()
            self.results.add("adapt", time.perf_counter() - began)
            self.final_status = re.sub(r"<[^>]+>", " ", str(job.outputs()[-1][0])).strip()
        except Exception as err:  # noqa: BLE001 - counted and reported like the others'
            self.results.error("adapt", f"{type(err).__name__}: {err}")
        finally:
            self.client.close()
            done.set()


def prepare_prompts(folder: Path, count: int) -> list[Path]:
    """The first `count` built-in prompts read by ADAPT_VOICE, a WAV each."""
    paths = []
    for index, text in enumerate(prompts()[:count]):
        paths.append(folder / f"prompt-{index:03d}.wav")
        if not paths[-1].exists():
            synthesize(text, ADAPT_VOICE, paths[-1])
    return paths


def visit(index: int, url: str, wav: Path, folder: Path, deadline: float, dictate_only: bool,
          stop: multiprocessing.synchronize.Event | None) -> dict:
    """One visitor's whole visit, in its own process; what it saw (Results.snapshot)."""
    results = Results()
    try:
        Visitor(index, url, wav, results, folder).run(deadline, dictate_only, stop)
    except Exception as err:  # noqa: BLE001 - a visitor that could not even connect is an error like any other
        results.error("upload" if not dictate_only else "dictation start", f"{type(err).__name__}: {err}")
    return results.snapshot()


def run_load(url: str, clients: int, seconds: float, folder: Path, dictate_only: bool = False,
             adapt_prompts: int = 0, adapt_steps: int = AdaptConfig.steps) -> tuple[Results, Adapter | None]:
    """clients visitors, each with its own sentence and process, for `seconds` (dictate_only: no uploads); returns
    what they saw. With adapt_prompts, one more visitor records that many prompts and adapts with at most
    adapt_steps steps meanwhile, and the others stop when the adaptation ends: what they saw is what dictation gets
    while a model adapts."""
    if not 1 <= clients <= len(SENTENCES):
        raise ValueError(f"between 1 and {len(SENTENCES)} clients (one sentence each)")
    results = Results()
    wavs = prepare_audio(folder, clients)
    # fork: the visitors start at once and share the parent's imports instead of each loading torch again.
    context = multiprocessing.get_context("fork")
    adapted = context.Event()
    adapter = (Adapter(url, prepare_prompts(folder, adapt_prompts), adapt_steps, results, folder)
               if adapt_prompts else None)
    began, cpu_before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with context.Pool(clients) as pool:
        visits = [pool.apply_async(visit, (i, url, wav, folder, began + seconds, dictate_only,
                                           adapted if adapter else None)) for i, wav in enumerate(wavs)]
        if adapter:
            adapter.run(adapted)
        for outcome in visits:
            results.merge(outcome.get())
        pool.close()
        pool.join()  # reaped, so that their CPU time is counted
    results.wall_s = time.monotonic() - began
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    results.visitors_cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return results, adapter


def table(results: Results) -> str:
    """Count, rate, latency percentiles, errors and "busy" refusals (with their answers' median time) of each kind of
    request, as a Markdown table."""
    rows = []
    for kind in KINDS:
        times = np.array(results.latencies.get(kind, [])) * 1000
        refused = np.array(results.refusals.get(kind, [])) * 1000
        if not len(times) and not results.errors.get(kind) and not len(refused):
            continue
        figures = [f"{value:.0f}" for value in [*np.percentile(times, [50, 90, 95, 99]), times.max()]] \
            if len(times) else ["–"] * 5
        busy = f"{len(refused)} ({np.median(refused):.0f} ms)" if len(refused) else "0"
        rows.append([kind, str(len(times)), f"{len(times) / results.wall_s:.2f}", *figures,
                     str(len(results.errors.get(kind, []))), busy])
    return common.table(["request", "count", "per s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "errors",
                         "busy (median)"], rows)
