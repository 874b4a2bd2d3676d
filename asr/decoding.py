"""Decoders from per-frame CTC log-probabilities to token ids and text, and word timings from the alignment.

Two strategies behind one interface (`decode_ids`, `decode`): greedy best-path decoding here, and beam search with
lexicon, n-gram LM and hotwords in asr/beam_search.py (flashlight-text, imported only when asked for).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from .errors import ConfigError
from .text import Vocabulary
from .transcript import Word


@dataclass
class DecodeConfig:
    """How per-frame log-probabilities become text."""

    method: str = "greedy"  # "greedy" or "beam"
    beam_size: int = 50  # hypotheses kept per frame
    beam_size_token: int | None = None  # tokens tried per hypothesis and frame (None: all)
    beam_threshold: float = 25.0  # drop hypotheses this far (log-prob) below the best one
    # An ARPA n-gram model: a word LM (decoding is then constrained to a lexicon, by default the LM's words) or a
    # character LM written by asr.lm with `|` between words (lexicon-free decoding, so unseen words stay possible).
    # Or a word LM in KenLM's binary format (loads in a fraction of the time), which needs a lexicon.
    lm: str | None = None
    # Words the decoder may output, one per line (a word list, or a flashlight lexicon whose first column is the
    # word). With a word LM and no lexicon, the LM's vocabulary. Without either, decoding is lexicon-free.
    lexicon: str | None = None
    lm_weight: float = 1.0  # weight of the LM's natural-log probability in the hypothesis score
    word_score: float = 0.0  # added per word: positive values favour more, shorter words
    # Words (or phrases) to favour, such as names the LM does not know: added to the lexicon, and each of their
    # words gets hotword_weight (natural-log units) whenever the decoder completes it. Needs lexicon decoding.
    hotwords: list[str] = field(default_factory=list)
    hotword_weight: float = 5.0

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam"):
            raise ConfigError(f"decoding method must be 'greedy' or 'beam', got {self.method!r}")
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be at least 1, got {self.beam_size}")
        for name in ("lm", "lexicon"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{path}: {name} file not found")


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


def build_decoder(vocab: Vocabulary, config: DecodeConfig | None = None) -> Decoder:
    """The decoder a DecodeConfig asks for (greedy when config is None)."""
    if config is None or config.method == "greedy":
        return GreedyDecoder(vocab)
    from .beam_search import BeamSearchDecoder

    return BeamSearchDecoder(vocab, config)


def word_timings(log_probs: torch.Tensor, ids: list[int], vocab: Vocabulary, frame_s: float,
                 offset_s: float = 0.0) -> list[Word]:
    """Words of a decoded token sequence with start/end times and a confidence, from the CTC forced alignment.

    log_probs: (frames, vocab) of one utterance (valid frames only). Each character gets the frames the best
    CTC path through exactly these tokens spends on it; a word runs from its first character's first frame to
    its last character's last frame. Confidence is the mean posterior of its characters over their frames.
    """
    import torchaudio.functional as F

    if not ids:
        return []
    targets = torch.tensor([ids], dtype=torch.int32)
    emissions = log_probs.detach().float().cpu()[None]
    if emissions.shape[1] < len(ids):  # cannot happen for a decoded sequence; guards a caller's mistake
        raise ValueError(f"{len(ids)} tokens cannot align to {emissions.shape[1]} frames")
    alignment, scores = F.forced_align(emissions, targets, blank=vocab.blank_id)
    spans = F.merge_tokens(alignment[0], scores[0].exp(), blank=vocab.blank_id)
    words: list[Word] = []
    current: list[Any] = []
    for span in [*spans, None]:
        if span is None or vocab.chars[span.token - 1] == " ":
            if current:
                text = vocab.decode([s.token for s in current])
                confidence = sum(s.score for s in current) / len(current)
                words.append(Word(text, round(offset_s + current[0].start * frame_s, 3),
                                  round(offset_s + current[-1].end * frame_s, 3), round(confidence, 3)))
            current = []
        else:
            current.append(span)
    return words
