"""Greedy (best path) CTC decoding: no language model, batched, fast."""
from __future__ import annotations

import torch

from ..text import Vocabulary
from .base import decode


class GreedyDecoder:
    """Best path decoding: argmax per frame, merge repeats, drop blanks. Batched, no language model."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab

    def decode_ids(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        best = log_probs.argmax(dim=-1).cpu()
        results = []
        for path, length in zip(best, lengths.tolist()):
            ids = torch.unique_consecutive(path[:length])
            results.append(ids[ids != self.vocab.blank_id].tolist())
        return results

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return decode(self, log_probs, lengths)
