"""The server side of the demo's "Adapt to my voice" tab (demo/adaptation.py), in-process: sessions' folders and
recordings, the one-at-a-time queue, the bounded store of adapted models, and the child process that adapts.
The tab on a served demo: test_demo_adapt_sessions.py; the adaptation itself (asr/adapt.py): test_adapt.py."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from asr.adapt import AdaptConfig, AdaptError, Progress, prompts
from asr.audio import load_audio
from asr.corpora.synthetic import Voice, synthesize
from asr.transcribe import load_model

from asr_demo.adaptation import (AdaptationQueue, Adapted, AdaptedModels, Outcome, SessionFolders, Takes,
                                 load_adapted, run_adaptation)


def test_each_session_has_its_own_folder_named_by_the_server(tmp_path):
    folders = SessionFolders(tmp_path)
    a, b = folders.of("abc123"), folders.of("def456")
    assert a != b and a.parent == b.parent == tmp_path
    for bad in ("", "../escape", "a/b", "x y"):
        with pytest.raises(AdaptError, match="no usable id"):
            folders.of(bad)
    (a / "model").mkdir()
    (a / "takes").mkdir()
    folders.remove_model("abc123")
    assert not (a / "model").exists() and (a / "takes").exists()
    folders.remove("abc123")
    assert not a.exists() and b.exists()


def test_takes_keep_undo_and_skip_walk_the_prompts(tmp_path):
    takes = Takes(tmp_path / "takes")
    speech = (np.sin(np.arange(48000) * 0.05) * 8000).astype(np.int16)  # 1 s at 48 kHz, as browsers record
    takes.keep(48000, speech)
    takes.skip()
    takes.keep(48000, speech)
    assert takes.texts == [prompts()[0], prompts()[2]] and takes.prompt == 3
    assert (tmp_path / "takes" / "001.txt").read_text().strip() == prompts()[2]
    assert len(load_audio(tmp_path / "takes" / "001.wav")) == 16000 and takes.total_s == pytest.approx(2.0)
    takes.undo()
    assert takes.texts == [prompts()[0]] and takes.prompt == 2 and not (tmp_path / "takes" / "001.wav").exists()
    with pytest.raises(AdaptError, match="shorter than 0.5 s"):
        takes.keep(48000, speech[:4800])
    with pytest.raises(AdaptError, match="silent"):
        takes.keep(48000, np.zeros(48000, np.int16))
    assert len(takes.texts) == 1  # refused takes leave nothing behind


def test_queue_runs_one_at_a_time_and_tells_the_others_their_place():
    queue = AdaptationQueue()
    first, second, third = queue.join(), queue.join(), queue.join()
    assert [queue.position(t) for t in (first, second, third)] == [0, 1, 2]
    seen = []

    def wait_for_turn() -> None:
        position = queue.position(third)
        while position:
            seen.append(position)
            position = queue.wait(third, timeout=5)
        seen.append(0)

    waiter = threading.Thread(target=wait_for_turn)
    waiter.start()
    time.sleep(0.2)
    queue.leave(first)
    time.sleep(0.2)
    queue.leave(second)
    waiter.join(5)
    assert seen == [2, 1, 0] and len(queue) == 1
    queue.leave(third)
    assert len(queue) == 0


def test_adapted_models_are_per_session_and_bounded(tmp_path):
    models = AdaptedModels(capacity=2)
    made = {name: Adapted(object(), tmp_path / f"{name}.zip", name) for name in "abc"}  # type: ignore[arg-type]
    assert models.put("a", made["a"]) == [] and models.put("b", made["b"]) == []
    assert models.get("a") is made["a"]  # a is now the most recently used
    assert models.put("c", made["c"]) == ["b"]
    assert models.get("b") is None and models.was_dropped("b") and not models.was_dropped("a")
    assert models.get("a") is made["a"] and models.get("c") is made["c"]
    models.put("b", made["b"])  # adapting again brings it back
    assert not models.was_dropped("b") and models.was_dropped("a")
    models.remove("b")
    assert models.get("b") is None and len(models) == 1


@pytest.fixture(scope="module")
def takes_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("takes")
    for i, text in enumerate(prompts()[:9]):
        synthesize(text, Voice("espeak-ng", "en-us", "m3"), folder / f"{i:03d}.wav")
        (folder / f"{i:03d}.txt").write_text(text + "\n")
    return folder


@pytest.mark.slow
def test_adaptation_runs_in_a_child_process_and_streams_progress(takes_folder, tmp_path):
    updates = list(run_adaptation(takes_folder, None, AdaptConfig(steps=3, eval_every=2, threads=1), tmp_path))
    progress, outcome = updates[:-1], updates[-1]
    assert [u.step for u in progress] == [1, 2, 3] and all(isinstance(u, Progress) for u in progress)
    assert isinstance(outcome, Outcome) and outcome.zip_path.is_file() and (outcome.release / "config.json").is_file()
    base = load_model()
    adapted = load_adapted(outcome, base)
    assert adapted.transcriber.decoders is base.decoders  # the LM and lexicon trie are not loaded twice
    assert adapted.transcriber.recommended_decoding == base.recommended_decoding
    assert adapted.transcriber.transcribe(takes_folder / "000.wav").text


@pytest.mark.slow
def test_a_failed_adaptation_raises_its_message_and_a_stopped_one_ends_its_child(takes_folder, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for name in ("000", "001"):
        for suffix in (".wav", ".txt"):
            (few / f"{name}{suffix}").write_bytes((takes_folder / f"{name}{suffix}").read_bytes())
    with pytest.raises(AdaptError, match="too little usable speech"):
        list(run_adaptation(few, None, AdaptConfig(threads=1), tmp_path / "out"))
    updates = run_adaptation(takes_folder, None, AdaptConfig(steps=200, threads=1), tmp_path / "out2")
    assert isinstance(next(updates), Progress)
    import multiprocessing

    children = multiprocessing.active_children()
    updates.close()  # the visitor went away
    assert children and not any(child.is_alive() for child in children)
    assert not (tmp_path / "out2" / "release").exists()
