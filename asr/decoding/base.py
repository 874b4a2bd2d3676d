"""The interface every decoder offers, and the text of its token ids."""
from __future__ import annotations

from typing import Protocol

import torch

from ..text import Vocabulary


class Decoder(Protocol):
    vocab: Vocabulary

    def decode_ids(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """log_probs (batch, frames, vocab) + valid frame counts -> one token-id list per utterance."""


def ids_to_text(vocab: Vocabulary, ids: list[int]) -> str:
    """Text of a token-id sequence, with runs of spaces collapsed and no leading or trailing space."""
    return " ".join(vocab.decode(ids).split())


def decode(decoder: Decoder, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Text per utterance with any decoder."""
    return [ids_to_text(decoder.vocab, ids) for ids in decoder.decode_ids(log_probs, lengths)]
