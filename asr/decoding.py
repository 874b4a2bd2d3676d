"""Decoders from per-frame CTC log-probabilities to token ids and text."""
from __future__ import annotations

import torch

from .text import Vocabulary


class GreedyDecoder:
    """Best path decoding: argmax per frame, merge repeats, drop blanks. Batched, no language model."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab

    def decode_ids(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """log_probs (batch, frames, vocab) + valid frame counts -> one token-id list per utterance."""
        best = log_probs.argmax(dim=-1).cpu()
        results = []
        for path, length in zip(best, lengths.tolist()):
            ids = torch.unique_consecutive(path[:length])
            results.append(ids[ids != self.vocab.blank_id].tolist())
        return results

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Text per utterance, with runs of spaces collapsed and no leading or trailing space."""
        return [" ".join(self.vocab.decode(ids).split()) for ids in self.decode_ids(log_probs, lengths)]
