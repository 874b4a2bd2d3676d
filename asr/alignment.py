"""Word timings from the CTC forced alignment of a decoded token sequence (as whisper's timing.py is to its
decoding), in numpy: transcription with onnxruntime imports no PyTorch."""
from __future__ import annotations

from typing import Any

import numpy as np

from .decoding.base import emissions
from .decoding.greedy import best_path, collapse
from .text import Vocabulary
from .transcript import Word


def forced_path(log_probs: np.ndarray, ids: list[int], blank_id: int) -> np.ndarray:
    """The most likely CTC path (a token per frame) through exactly these tokens: Viterbi over the tokens with
    blanks between them. The best path of all frames spells greedy decoding's tokens, so for those it is taken
    as it is, at no cost."""
    path = best_path(log_probs)
    if collapse(path, blank_id) == ids:
        return path
    frames = len(log_probs)
    states = np.full(2 * len(ids) + 1, blank_id)
    states[1::2] = ids
    if frames < len(ids) + sum(a == b for a, b in zip(ids, ids[1:])):
        raise ValueError(f"{len(ids)} tokens cannot align to {frames} frames")
    # A state may be entered from itself, the one before, or (a token after a blank, not repeating the token
    # before it) two before.
    skip = np.zeros(len(states), dtype=bool)
    skip[3::2] = states[3::2] != states[1:-2:2]
    score = np.full(len(states), -np.inf)
    score[:2] = log_probs[0, states[:2]]
    back = np.zeros((frames, len(states)), dtype=np.int8)  # how many states back each best entry came from
    options = np.full((3, len(states)), -np.inf)
    for t in range(1, frames):
        options[0] = score
        options[1, 1:] = score[:-1]
        options[2, 2:] = np.where(skip[2:], score[:-2], -np.inf)
        back[t] = options.argmax(axis=0)
        score = options[back[t], np.arange(len(states))] + log_probs[t, states]
    state = len(states) - 1 if len(states) == 1 or score[-1] >= score[-2] else len(states) - 2
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = states[state]
        state -= int(back[t, state])
    return path


def word_timings(log_probs: Any, ids: list[int], vocab: Vocabulary, frame_s: float,
                 offset_s: float = 0.0) -> list[Word]:
    """Words of a decoded token sequence with start/end times and a confidence, from the CTC forced alignment.

    log_probs: (frames, vocab) of one utterance (valid frames only; numpy or torch). Each character gets the frames
    the best CTC path through exactly these tokens spends on it; a word runs from its first character's first frame
    to its last character's last frame. Confidence is the mean posterior of its characters over their frames.
    """
    if not ids:
        return []
    log_probs = emissions(log_probs)
    path = forced_path(log_probs, ids, vocab.blank_id)
    posteriors = np.exp(log_probs[np.arange(len(path)), path])
    # Character spans: runs of one non-blank token (start frame, end frame exclusive, token, mean posterior).
    starts = np.flatnonzero(np.diff(path, prepend=-1))
    ends = np.append(starts[1:], len(path))
    words: list[Word] = []
    current: list[tuple[int, int, float]] = []
    for start, end in [*zip(starts.tolist(), ends.tolist()), (None, None)]:
        token = None if start is None else int(path[start])
        if token == vocab.blank_id:
            continue
        if token is None or vocab.chars[token - 1] == " ":
            if current:
                text = vocab.decode([c[2] for c in current])
                confidence = sum(float(posteriors[s:e].mean()) for s, e, _ in current) / len(current)
                words.append(Word(text, round(offset_s + current[0][0] * frame_s, 3),
                                  round(offset_s + current[-1][1] * frame_s, 3), round(confidence, 3)))
            current = []
        else:
            current.append((start, end, token))
    return words
