"""Greedy (best path) CTC decoding: no language model, batched, fast."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text import Vocabulary
from .base import decode, emissions


def best_path(log_probs: np.ndarray) -> np.ndarray:
    """The most likely token of each frame of one utterance's (frames, vocab) log-probabilities."""
    return log_probs.argmax(axis=-1)


def collapse(path: np.ndarray, blank_id: int) -> list[int]:
    """The tokens a CTC path spells: repeats merged, then blanks dropped."""
    if not len(path):
        return []
    keep = np.empty(len(path), dtype=bool)
    keep[0] = True
    keep[1:] = path[1:] != path[:-1]
    tokens = path[keep]
    return tokens[tokens != blank_id].tolist()


class GreedyDecoder:
    """Best path decoding: argmax per frame, merge repeats, drop blanks. Batched, no language model."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab

    def decode_ids(self, log_probs: Any, lengths: Sequence[int]) -> list[list[int]]:
        best = emissions(log_probs).argmax(axis=-1)
        return [collapse(path[: int(length)], self.vocab.blank_id) for path, length in zip(best, lengths)]

    def decode(self, log_probs: Any, lengths: Sequence[int]) -> list[str]:
        return decode(self, log_probs, lengths)
