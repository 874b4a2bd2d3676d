"""How the demo holds a crowd on a few cores: one request at a time on the model, a bounded number of people
dictating, a bounded wait for uploads, and whoever is over a bound told so at once instead of waiting into a
timeout (docs/benchmarks.md, "The demo under load", has the measurements that set the bounds)."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import heapq
import itertools
import os
import threading
import time
from typing import Iterator

# People dictating at once. Each one's audio is decoded once as it settles (about 15 ms per second of speech on
# 2 idle cores) plus, while the model is free, their partial text; 16 visitors on 2 cores kept the streaming updates'
# p95 under a second (docs/benchmarks.md, "A crowd").
MAX_DICTATIONS = int(os.environ.get("ASR_DEMO_MAX_DICTATIONS", 16))
# Uploads waiting for the model or being transcribed; one more is refused. They wait behind streaming updates, so
# under a crowd more of them would only wait longer (16 visitors: upload p95 5.8 s with this bound).
MAX_UPLOADS = int(os.environ.get("ASR_DEMO_MAX_UPLOADS", 4))
# A dictation that has sent nothing for this long is over (its tab closed without stopping): its place is free.
IDLE_DICTATION_S = 10.0
# After a crowd, once no request has come for this long, the C heap's free memory goes back to the system.
TRIM_AFTER_IDLE_S = 10.0
BUSY = "The demo is busy ({what}): try again in a moment."
UPDATE, STOP, UPLOAD = 0, 1, 2  # the priorities of requests for the model, most urgent first


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, whose allocator the two functions below tune; None elsewhere (they then do nothing). Looked up once:
    find_library runs ldconfig."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most `arenas` malloc arenas: glibc's default (8 per core) gives each Gradio worker thread its own, whose
    free memory a crowd leaves behind (8 visitors: 150 MB more RSS with the default, 84 MB with 2). Call before the
    server starts its threads."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(-8, arenas)  # M_ARENA_MAX


def trim_memory() -> None:
    """Give the C heap's free memory back to the system (glibc's malloc_trim)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class Busy(Exception):
    """A request refused because the server is at one of its bounds; its message is for the visitor."""


class Crowd:
    """The model's turn-taking and the bounds on who is served. Thread-safe: every Gradio worker thread calls it."""

    def __init__(self, max_dictations: int = MAX_DICTATIONS, max_uploads: int = MAX_UPLOADS,
                 idle_s: float = IDLE_DICTATION_S) -> None:
        if max_dictations < 1 or max_uploads < 1:
            raise ValueError(f"the demo must serve at least one dictation and one upload, got {max_dictations} "
                             f"and {max_uploads}")
        self.max_dictations, self.max_uploads, self.idle_s = max_dictations, max_uploads, idle_s
        self._turns = threading.Condition()  # one request at a time on the model: they share the CPU's threads
        self._waiting: list[tuple[int, int]] = []  # heap of (priority, ticket) of the requests waiting for it
        self._tickets = itertools.count()
        self._busy = False  # whether a request holds the model
        self._queued = 0  # requests waiting for the model or holding it
        self._guard = threading.Lock()  # for the dictations and uploads
        self._uploads = 0
        self._dictations: dict[str, float] = {}  # session -> when it last sent audio (time.monotonic)
        self.refused = 0  # requests told "busy" since start
        self._last_request = 0.0  # time.monotonic() of the last turn's end; 0: none since the last trim

    @contextlib.contextmanager
    def turn(self, priority: int = UPDATE) -> Iterator[None]:
        """The model, once every waiting request of a more urgent priority (UPDATE, then STOP, then UPLOAD) and
        every earlier one of the same priority has had it: the next streaming update never waits behind a queue of
        uploads, and nobody is overtaken by a later request of their own kind."""
        with self._turns:
            ticket = (priority, next(self._tickets))
            heapq.heappush(self._waiting, ticket)
            self._queued += 1
            try:
                while self._busy or self._waiting[0] != ticket:
                    self._turns.wait()
            except BaseException:  # interrupted while waiting: leave the queue, or everyone behind waits forever
                self._waiting.remove(ticket)
                heapq.heapify(self._waiting)
                self._queued -= 1
                self._turns.notify_all()
                raise
            heapq.heappop(self._waiting)
            self._busy = True
        try:
            yield
        finally:
            with self._turns:
                self._busy = False
                self._queued -= 1
                self._last_request = time.monotonic()
                self._turns.notify_all()

    def trim_when_idle(self, idle_s: float = TRIM_AFTER_IDLE_S) -> threading.Thread:
        """A daemon thread that trims the heap (trim_memory) once requests have stopped for idle_s, after each
        busy spell."""
        def watch() -> None:
            while True:
                time.sleep(idle_s / 2)
                with self._turns:
                    quiet = self._last_request and not self._queued and time.monotonic() - self._last_request >= idle_s
                    if quiet:
                        self._last_request = 0.0
                if quiet:
                    trim_memory()

        thread = threading.Thread(target=watch, name="heap-trim", daemon=True)
        thread.start()
        return thread

    def contended(self) -> bool:
        """Called during a turn: whether another request waits for the model. Then a dictation update does only
        the work that cannot wait (asr.dictation.Dictation.push with partial=False)."""
        return self._queued > 1

    def dictating(self, session: str) -> None:
        """A chunk of this session's dictation arrived: admit it if it is new and there is room, else raise Busy."""
        now = time.monotonic()
        with self._guard:
            if session not in self._dictations:
                for other, last in list(self._dictations.items()):
                    if now - last > self.idle_s:
                        del self._dictations[other]
                if len(self._dictations) >= self.max_dictations:
                    self.refused += 1
                    raise Busy(BUSY.format(what=f"{len(self._dictations)} people are dictating, the most it serves "
                                                f"at once"))
            self._dictations[session] = now

    def done_dictating(self, session: str) -> None:
        with self._guard:
            self._dictations.pop(session, None)

    @property
    def dictations(self) -> int:
        return len(self._dictations)

    @property
    def holding(self) -> bool:
        """Whether a request holds the model now."""
        return self._busy

    @contextlib.contextmanager
    def upload(self) -> Iterator[None]:
        """An upload's turn on the model; Busy at once if max_uploads are already waiting or running."""
        with self._guard:
            if self._uploads >= self.max_uploads:
                self.refused += 1
                raise Busy(BUSY.format(what=f"{self._uploads} files are being transcribed"))
            self._uploads += 1
        try:
            with self.turn(UPLOAD):
                yield
        finally:
            with self._guard:
                self._uploads -= 1
