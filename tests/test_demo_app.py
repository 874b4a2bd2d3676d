"""The demo page's description of its model: what the model says about itself, never another model's figures."""
from __future__ import annotations

from pathlib import Path

import asr
from asr.checkpoint import TrainedModel

from asr_demo.app import Engine, model_summary


def test_the_bundled_model_is_described_by_its_own_release():
    transcriber = asr.load_model()
    assert transcriber.metadata["description"] in Engine(transcriber, "the bundled model").describe()


def test_a_training_checkpoint_says_where_it_stands():
    checkpoint = {"config": {"model": {}, "features": {}}, "model": {}, "features": {},
                  "state": {"step": 660, "epoch": 11, "best_dev_wer": 0.7784}}
    metadata = TrainedModel.from_checkpoint(checkpoint, Path("run/best.pt")).metadata
    assert metadata == {"checkpoint": "best.pt", "step": 660, "epoch": 11, "best_dev_wer": 0.7784}
    assert model_summary(metadata) == "A training checkpoint (best.pt, step 660, best dev WER 77.8%)."


def test_an_adapted_model_says_what_it_was_adapted_from():
    metadata = {"adapted_from": "the bundled model", "recordings": 12, "held_out_before": {"wer": 0.5},
                "held_out_after": {"wer": 0.25}}
    assert model_summary(metadata) == ("Adapted from the bundled model on 12 recordings: held-out WER 50% before, "
                                       "25% after.")
    assert model_summary({"description": "A model of mine."}) == "A model of mine."
    assert model_summary({}) == "It carries no description."


def test_a_beam_decoder_is_built_outside_the_lock_that_requests_take(monkeypatch):
    import asr.decoding as decoding
    from asr_demo.app import BEAM, GREEDY

    engine = Engine(asr.load_model(), "the bundled model")
    held_while_building = []
    real = decoding.build_decoder

    def watched_build(vocab, config):  # noqa: ANN001, ANN202
        held_while_building.append(engine.crowd.holding)
        return real(vocab, config)

    monkeypatch.setattr(decoding, "build_decoder", watched_build)
    warm = engine.warm_up()
    warm.join(60)
    assert held_while_building == [False]  # the recommended beam decoder, built in the background
    assert engine.ready(BEAM, "") is not None and len(held_while_building) == 1  # then found ready
    engine.ready(GREEDY, "")
    engine.ready(BEAM, "zyzzyva")  # hotwords: another decoder, still built outside the lock
    assert held_while_building == [False, False, False]


def test_uploads_and_dictations_show_numbers_as_digits_and_punctuation(tmp_path):
    import numpy as np

    from asr.audio import load_audio
    from asr.corpora.synthetic import Voice, synthesize
    from asr_demo.app import GREEDY

    wav = tmp_path / "pets.wav"
    synthesize("i have six cats and twenty five dogs", Voice("espeak-ng", "en-us"), wav)
    engine = Engine(asr.load_model(), "the bundled model")
    text, rows, _ = engine.transcribe_upload(str(wav), GREEDY, "")
    assert text[0].isupper() and text.endswith("and 25 dogs.") and [row[0] for row in rows][-3:] == ["and", "25", "dogs."]

    class Request:
        session_hash = "pets"

    audio = (load_audio(wav) * 32767).astype(np.int16)
    state, _, _ = engine.start(None, "", Request())
    for start in range(0, len(audio), 8000):
        partial, state, _ = engine.stream((16000, audio[start : start + 8000]), state, GREEDY, "", Request())
    final, _, _ = engine.stop(state, GREEDY, "", Request())
    assert final[0].isupper() and final.endswith("and 25 dogs.") and "twenty" not in partial


def test_the_cache_sweep_deletes_old_files_while_uploads_keep_arriving(tmp_path):
    import threading

    import gradio as gr

    from asr_demo.app import sweep_cache

    with gr.Blocks() as app:
        kept = gr.Audio()
    old = [tmp_path / f"chunk-{i}.wav" for i in range(3000)]
    for path in old:
        path.write_bytes(b"RIFF")
    app.upload_file_set.update(map(str, old))
    kept.keep_in_cache.add(str(old[0]))  # an example the page offers: never swept
    arriving, stop = iter(range(10**9)), threading.Event()

    def uploads() -> None:  # what a busy server's upload route does meanwhile (Gradio's own sweep dies of it)
        while not stop.is_set():
            app.upload_file_set.add(str(tmp_path / f"new-{next(arriving)}.wav"))

    thread = threading.Thread(target=uploads)
    thread.start()
    try:
        deleted = sweep_cache(app, max_age_s=0.0)
    finally:
        stop.set()
        thread.join()
    assert deleted == 2999 and [p.name for p in tmp_path.iterdir()] == ["chunk-0.wav"]
