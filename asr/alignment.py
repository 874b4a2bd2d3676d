"""Word timings from the CTC forced alignment of a decoded token sequence (as whisper's timing.py is to its
decoding)."""
from __future__ import annotations

from typing import Any

import torch

from .text import Vocabulary
from .transcript import Word


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
