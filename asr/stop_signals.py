"""Stopping on request: SIGINT and SIGTERM ask long work (training) to stop at a safe point instead of killing it."""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def ignore_stop_signals(worker_id: int = 0) -> None:
    """For helper processes such as data-loading workers (a DataLoader worker_init_fn): leave SIGINT/SIGTERM to the
    main process, which stops at a safe point and then ends its helpers. Schedulers (Slurm preemption) and
    `pkill -f` signal every process of a job, and a worker killed mid-epoch would crash the run instead."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


class StopRequests:
    """While inside this context manager, SIGINT/SIGTERM are recorded in `received` (the first one) for the work to
    act on when it can; a second signal gets the handler from before, for when stopping hangs. The handlers are
    restored on the way out. Only the main thread may set handlers: elsewhere this records nothing."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._before: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
            for s, handler in self._before.items():
                if handler is not signal.SIG_IGN:  # ignored by whoever started us (a background job's SIGINT): stays so
                    signal.signal(s, self._request)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        for s, handler in self._before.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._before = {}

    def _request(self, signum: int, frame: FrameType | None) -> None:  # no printing: it could re-enter a print
        if self.received is None:
            self.received = signum
            return
        self._restore()
        signal.raise_signal(signum)
