"""What the demo's "Adapt to my voice" tab runs on the server, apart from the page itself (demo/voice_tab.py).

- `SessionFolders`: each browser session's own folder for its recordings and its adapted model, named by the
  server from the session's id (never from anything the browser sends), deleted when the session ends.
- `Takes`: a session's recordings of the built-in prompts, kept as WAV + .txt pairs, the layout `asr adapt` reads.
- `AdaptationQueue`: one adaptation at a time per server; the others wait and know their place in the queue.
- `run_adaptation`: asr.adapt.adapt in a child process with its own thread count at a lower CPU priority, so that
  dictation in the other sessions keeps its share of the CPU; it streams progress back and can be stopped.
- `AdaptedModels`: the adapted models in memory, one per session, at most `capacity` (least recently used dropped).
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.adapt import MIN_RECORDING_S, SILENCE_PEAK, AdaptConfig, AdaptError, Progress, Scores, adapt, prompts, write_adapted
from asr.audio import SAMPLE_RATE, load_audio, save_wav
from asr.checkpoint import build_model, load_trained
from asr.errors import ASRError
from asr.model import TorchNetwork
from asr.release import zip_release
from asr.transcribe import Transcriber

MODEL_ZIP = "my-voice-model.zip"


class SessionFolders:
    """A folder per browser session under one root (deleted at exit by whoever made the root)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def of(self, session: str) -> Path:
        if not session or not session.replace("-", "").replace("_", "").isalnum():
            raise AdaptError("this browser session has no usable id; reload the page")
        folder = self.root / session
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def remove(self, session: str) -> None:
        if session:
            shutil.rmtree(self.root / session, ignore_errors=True)

    def remove_model(self, session: str) -> None:
        """Delete a session's adapted model (dropped from memory), keeping its recordings."""
        if session:
            shutil.rmtree(self.root / session / "model", ignore_errors=True)


@dataclass
class Takes:
    """A session's kept recordings (folder/takes/NNN.wav with NNN.txt) and the prompt it is at."""

    folder: Path
    texts: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    prompt: int = 0  # index into prompts()

    @property
    def total_s(self) -> float:
        return sum(self.seconds)

    def keep(self, sample_rate: int, samples: np.ndarray) -> None:
        """Keep a recording of the current prompt and move on to the next one."""
        audio = load_audio(samples, sample_rate)
        if len(audio) < MIN_RECORDING_S * SAMPLE_RATE:
            raise AdaptError(f"the recording is shorter than {MIN_RECORDING_S:g} s: record the whole sentence")
        if float(np.abs(audio).max()) < SILENCE_PEAK:
            raise AdaptError("the recording is silent: check that the browser may use the microphone")
        text = prompts()[self.prompt % len(prompts())]
        stem = self.folder / f"{len(self.texts):03d}"
        self.folder.mkdir(parents=True, exist_ok=True)
        save_wav(stem.with_suffix(".wav"), audio, SAMPLE_RATE)
        stem.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        self.texts.append(text)
        self.seconds.append(len(audio) / SAMPLE_RATE)
        self.prompt += 1

    def undo(self) -> None:
        """Drop the last kept recording; its prompt comes back."""
        if self.texts:
            stem = self.folder / f"{len(self.texts) - 1:03d}"
            stem.with_suffix(".wav").unlink(missing_ok=True)
            stem.with_suffix(".txt").unlink(missing_ok=True)
            self.texts.pop()
            self.seconds.pop()
            self.prompt -= 1

    def skip(self) -> None:
        self.prompt += 1


class AdaptationQueue:
    """Tickets in arrival order: the first holds the turn, the others wait (position 1, 2, ...)."""

    def __init__(self) -> None:
        self._waiting: list[object] = []
        self._changed = threading.Condition()

    def join(self) -> object:
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
        return ticket

    def position(self, ticket: object) -> int:
        """0: this ticket's turn; n: n adaptations go first."""
        with self._changed:
            return self._waiting.index(ticket)

    def wait(self, ticket: object, timeout: float) -> int:
        """The position, after waiting up to `timeout` seconds for it to change."""
        with self._changed:
            before = self._waiting.index(ticket)
            self._changed.wait_for(lambda: self._waiting.index(ticket) != before, timeout)
            return self._waiting.index(ticket)

    def leave(self, ticket: object) -> None:
        with self._changed:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._waiting)


@dataclass
class Outcome:
    """A finished adaptation: the release folder and its zip, and what adaptation reports."""

    release: Path
    zip_path: Path
    summary: str
    before: Scores
    after: Scores
    left_out: list[tuple[str, str]]


def _child(recordings: str, model: str | None, config: AdaptConfig, out: str, connection) -> None:  # noqa: ANN001
    """The child process: adapt at a lower priority, send progress, write the release and its zip."""
    os.nice(10)
    try:
        result = adapt(recordings, model, config, lambda update: connection.send(("progress", update)),
                       log=lambda line: None)
        release = write_adapted(result.trained, Path(out) / "release")
        zip_path = zip_release(release, Path(out) / MODEL_ZIP)
        connection.send(("done", Outcome(release, zip_path, result.summary(), result.before, result.after,
                                         result.left_out)))
    except ASRError as err:
        connection.send(("error", str(err)))
    except Exception as err:  # noqa: BLE001 - the visitor gets one line, the server log the rest
        connection.send(("error", f"adaptation failed ({type(err).__name__}: {err})"))
        raise


def run_adaptation(recordings: Path, model: str | None, config: AdaptConfig, out: Path
                   ) -> Iterator[Progress | Outcome]:
    """Adapt in a child process: yields its Progress updates, then the Outcome; AdaptError when it fails. Closing
    the iterator (the visitor went away) stops the child."""
    out.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of the server's threads and locks
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(str(recordings), model, config, str(out), sender), daemon=True)
    child.start()
    sender.close()
    try:
        while True:
            if receiver.poll(0.5):
                try:
                    kind, value = receiver.recv()
                except EOFError:
                    kind, value = "error", None
                if kind == "progress":
                    yield value
                    continue
                if kind == "done":
                    yield value
                    return
                raise AdaptError(value or f"adaptation stopped unexpectedly (exit code {child.exitcode})")
            if not child.is_alive() and not receiver.poll():
                raise AdaptError(f"adaptation stopped unexpectedly (exit code {child.exitcode})")
    finally:
        if child.is_alive():
            child.terminate()
        child.join(10)
        receiver.close()


@dataclass
class Adapted:
    """A session's adapted model, ready to transcribe, and the zip to download."""

    transcriber: Transcriber
    zip_path: Path
    summary: str


def load_adapted(outcome: Outcome, base: Transcriber) -> Adapted:
    """The adapted release as a Transcriber that shares the base model's decoders (the language model and the
    lexicon's trie take hundreds of MB; they do not depend on the network's weights)."""
    model, features, _ = build_model(load_trained(outcome.release))
    return Adapted(base.with_network(TorchNetwork(features, model)), outcome.zip_path, outcome.summary)


class AdaptedModels:
    """Each session's adapted model, at most `capacity` of them: adding one more drops the least recently used,
    whose session is then told (`was_dropped`). Thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._models: OrderedDict[str, Adapted] = OrderedDict()
        self._dropped: set[str] = set()
        self._lock = threading.Lock()

    def put(self, session: str, adapted: Adapted) -> list[str]:
        """Keep a session's model (replacing its earlier one); returns the sessions whose models were dropped."""
        with self._lock:
            self._models[session] = adapted
            self._models.move_to_end(session)
            self._dropped.discard(session)
            dropped = []
            while len(self._models) > self.capacity:
                old, _ = self._models.popitem(last=False)
                self._dropped.add(old)
                dropped.append(old)
            return dropped

    def get(self, session: str) -> Adapted | None:
        with self._lock:
            adapted = self._models.get(session)
            if adapted is not None:
                self._models.move_to_end(session)
            return adapted

    def was_dropped(self, session: str) -> bool:
        with self._lock:
            return session in self._dropped

    def remove(self, session: str) -> None:
        with self._lock:
            self._models.pop(session, None)
            self._dropped.discard(session)

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


def scores_line(before: Scores, after: Scores) -> str:
    """Before -> after on the held-out recordings, greedy and (where the model has one) with the LM."""
    line = f"greedy {before.wer:.0%} → {after.wer:.0%}"
    if before.beam_wer is not None and after.beam_wer is not None:
        line += f"; with the language model {before.beam_wer:.0%} → {after.beam_wer:.0%}"
    return line

