"""The demo's bounds on a crowd (demo/crowd.py): who is admitted, who is told "busy" at once, and when the
model is contended."""
from __future__ import annotations

import threading
import time

import pytest

from asr_demo.crowd import Busy, Crowd


def test_dictations_beyond_the_bound_are_refused_until_a_place_frees():
    crowd = Crowd(max_dictations=2, max_uploads=1, idle_s=60)
    crowd.dictating("a")
    crowd.dictating("b")
    crowd.dictating("a")  # a session already dictating keeps its place
    with pytest.raises(Busy, match=r"busy \(2 people are dictating, the most it serves at once\): try again"):
        crowd.dictating("c")
    crowd.done_dictating("b")
    crowd.dictating("c")
    assert crowd.dictations == 2 and crowd.refused == 1


def test_a_dictation_that_went_quiet_gives_its_place_up():
    crowd = Crowd(max_dictations=1, max_uploads=1, idle_s=0.05)
    crowd.dictating("closed-tab")
    time.sleep(0.1)
    crowd.dictating("next")
    assert crowd.dictations == 1


def test_uploads_beyond_the_bound_are_refused_at_once_while_the_others_are_served():
    crowd = Crowd(max_dictations=1, max_uploads=2)
    release, inside = threading.Event(), threading.Semaphore(0)

    def hold() -> None:
        with crowd.upload():
            inside.release()
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    inside.acquire(timeout=10)  # one holds the model, the other waits for it
    began = time.monotonic()
    with pytest.raises(Busy, match="2 files are being transcribed"):
        with crowd.upload():
            pass
    assert time.monotonic() - began < 0.1  # told at once, not after waiting
    release.set()
    for t in threads:
        t.join(10)
    with crowd.upload():
        assert not crowd.contended()


def test_the_model_is_contended_while_another_request_waits_for_it():
    crowd = Crowd()
    waiting = threading.Event()
    seen = []

    def wait_for_the_model() -> None:
        waiting.set()
        with crowd.turn():
            pass

    with crowd.turn():
        seen.append(crowd.contended())
        other = threading.Thread(target=wait_for_the_model)
        other.start()
        waiting.wait(10)
        deadline = time.monotonic() + 10
        while not crowd.contended() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(crowd.contended())
    other.join(10)
    assert seen == [False, True]


def test_bounds_below_one_are_refused():
    with pytest.raises(ValueError, match="at least one dictation"):
        Crowd(max_dictations=0)


def test_a_streaming_update_goes_before_uploads_that_waited_longer():
    from asr_demo.crowd import UPDATE, UPLOAD

    crowd = Crowd()
    order = []

    def request(name: str, priority: int) -> None:
        with crowd.turn(priority):
            order.append(name)

    def queued(count: int) -> None:
        deadline = time.monotonic() + 10
        while crowd._queued < count and time.monotonic() < deadline:
            time.sleep(0.01)

    with crowd.turn(UPLOAD):
        threads = []
        for name, priority in [("upload 1", UPLOAD), ("upload 2", UPLOAD), ("update", UPDATE)]:
            threads.append(threading.Thread(target=request, args=(name, priority)))
            threads[-1].start()
            queued(len(threads) + 1)
    for t in threads:
        t.join(10)
    assert order == ["update", "upload 1", "upload 2"]


def test_the_heap_is_trimmed_once_after_each_busy_spell(monkeypatch):
    import asr_demo.crowd as crowd_module

    trims = []
    monkeypatch.setattr(crowd_module, "trim_memory", lambda: trims.append(time.monotonic()))
    crowd = Crowd()
    crowd.trim_when_idle(idle_s=0.1)
    time.sleep(0.3)
    assert trims == []  # nothing happened yet: nothing to give back
    with crowd.turn():
        pass
    time.sleep(0.4)
    assert len(trims) == 1
    time.sleep(0.3)
    assert len(trims) == 1  # still idle: not again


def test_trimming_gives_freed_heap_memory_back_to_the_system():
    from pathlib import Path

    from asr_demo.crowd import limit_malloc_arenas, trim_memory

    def rss_mb() -> float:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    limit_malloc_arenas()  # as `asr demo` starts (at most 2 arenas: the test process only shares them more)
    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # 190 MB on the C heap (below malloc's mmap threshold)
    kept = blocks[::10]  # every tenth stays, so the freed memory lies in holes the heap cannot shrink past
    del blocks
    before = rss_mb()
    trim_memory()
    assert before - rss_mb() > 100 and len(kept) == 300
