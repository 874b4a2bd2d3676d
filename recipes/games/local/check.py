"""The independent check of a game clip's transcript: does a recognizer that never heard the clip find the text in it?

For each clip the checking model's CTC score of the game's text is compared with the best the model can say about the
audio at all: gap = (-log P(text | audio) + log P(best path)) / characters, where the best path is the per-frame
argmax. A clip whose audio says the text has a small gap; a clip that says something else (a line recorded
differently from the script, a wrong clip-to-line mapping) has a large one. The threshold is set on the clips
themselves: each clip is also scored against another clip's text of similar length (a known mismatch), and the
threshold is the gap that only `false_accept` of those mismatches stay under. What this costs (the share of clips
kept) and what it buys (the share of mismatches let through) are both reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from asr.manifest import entry_audio
from asr.text import Vocabulary


@dataclass(frozen=True)
class Verdict:
    gap: float  # nats per character above the best path; inf when the text cannot fit the audio's frames
    mismatch_gap: float  # the same for another clip's text (a known mismatch)


@dataclass(frozen=True)
class Calibration:
    threshold: float
    kept_share: float  # of all clips, those whose own text is under the threshold
    false_accept: float  # of the known mismatches, those under the threshold


def text_gap(log_probs: torch.Tensor, vocab: Vocabulary, text: str) -> float:
    """(CTC negative log-likelihood of text - that of the per-frame best path) per character of text."""
    target = torch.tensor(vocab.encode(text))
    if len(target) == 0 or len(target) > len(log_probs):
        return float("inf")
    nll = F.ctc_loss(log_probs[:, None], target[None], torch.tensor([len(log_probs)]), torch.tensor([len(target)]),
                     blank=vocab.blank_id, reduction="sum", zero_infinity=False)
    best = -float(log_probs.max(dim=1).values.sum())
    return (float(nll) - best) / len(target)


def verdicts(transcriber: Any, entries: list[dict[str, Any]]) -> list[Verdict]:
    """The gap of each entry's own text and of a neighbour's in length order (a mismatch of similar length)."""
    outputs = [torch.from_numpy(lp) for lp in transcriber.log_probs_of_files([entry_audio(e) for e in entries])]
    order = sorted(range(len(entries)), key=lambda i: (len(entries[i]["text"]), i))
    partner = {order[k]: order[k + 1 if k + 1 < len(order) else k - 1] for k in range(len(order))}
    result = []
    for i, (entry, log_probs) in enumerate(zip(entries, outputs)):
        other = entries[partner[i]]["text"]
        mismatch = text_gap(log_probs, transcriber.vocab, other) if other != entry["text"] else float("inf")
        result.append(Verdict(text_gap(log_probs, transcriber.vocab, entry["text"]), mismatch))
    return result


def calibrate(found: list[Verdict], false_accept: float) -> Calibration:
    """The threshold under which only `false_accept` of the known mismatches fall."""
    mismatches = np.array([v.mismatch_gap for v in found])
    own = np.array([v.gap for v in found])
    threshold = float(np.quantile(mismatches[np.isfinite(mismatches)], false_accept))
    return Calibration(threshold, float(np.mean(own < threshold)), float(np.mean(mismatches < threshold)))
