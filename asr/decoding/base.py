"""The interface every decoder offers, and the text of its token ids."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..text import Vocabulary


class Decoder(Protocol):
    vocab: Vocabulary

    def decode_ids(self, log_probs: Any, lengths: Sequence[int]) -> list[list[int]]:
        """log_probs (batch, frames, vocab), a numpy array or a torch tensor, + valid frame counts -> one token-id
        list per utterance."""


def emissions(log_probs: Any) -> np.ndarray:
    """log-probabilities as a float32 numpy array: a numpy array as it is, a torch tensor (on any device) copied
    to the CPU where it is not there. Decoders take either, and import no PyTorch themselves."""
    if hasattr(log_probs, "detach"):  # a torch tensor
        log_probs = log_probs.detach().float().cpu().numpy()
    return np.asarray(log_probs, dtype=np.float32)


def ids_to_text(vocab: Vocabulary, ids: list[int]) -> str:
    """Text of a token-id sequence, with runs of spaces collapsed and no leading or trailing space."""
    return " ".join(vocab.decode(ids).split())


def decode(decoder: Decoder, log_probs: Any, lengths: Sequence[int]) -> list[str]:
    """Text per utterance with any decoder."""
    return [ids_to_text(decoder.vocab, ids) for ids in decoder.decode_ids(log_probs, lengths)]
