"""The demo page's description of its model: what the model says about itself, never another model's figures."""
from __future__ import annotations

from pathlib import Path

import asr
from asr.checkpoint import model_metadata

from asr_demo.app import Engine, model_summary


def test_the_bundled_model_is_described_by_its_own_release():
    transcriber = asr.load_model()
    assert transcriber.metadata["description"] in Engine(transcriber, "the bundled model").describe()


def test_a_training_checkpoint_says_where_it_stands():
    metadata = model_metadata({"state": {"step": 660, "epoch": 11, "best_dev_wer": 0.7784}}, Path("run/best.pt"))
    assert metadata == {"checkpoint": "best.pt", "step": 660, "epoch": 11, "best_dev_wer": 0.7784}
    assert model_summary(metadata) == "A training checkpoint (best.pt, step 660, best dev WER 77.8%)."


def test_an_adapted_model_says_what_it_was_adapted_from():
    metadata = model_metadata({"metadata": {"adapted_from": "the bundled model", "recordings": 12,
                                            "held_out_before": {"wer": 0.5}, "held_out_after": {"wer": 0.25}}},
                              Path("mine"))
    assert model_summary(metadata) == ("Adapted from the bundled model on 12 recordings: held-out WER 50% before, "
                                       "25% after.")
    assert model_summary({"description": "A model of mine."}) == "A model of mine."
    assert model_summary({}) == "It carries no description."
