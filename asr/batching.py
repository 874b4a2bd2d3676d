"""Batching of variable-length sequences: zero-padding into one tensor, and grouping by length so padding is small.

Shared by training (data loading on the CPU or the device) and inference (batched transcription), so that both cut
and pad batches the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def pad(sequences: Sequence[Any], dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D sequences (tensors, arrays or lists) -> zero-padded (batch, longest) tensor and the (batch,) lengths.

    At least one column even when every sequence is empty (CTC targets of empty transcripts still need one).
    """
    lengths = torch.tensor([len(s) for s in sequences])
    padded = torch.zeros(len(sequences), max(int(lengths.max()), 1), dtype=dtype, device=device)
    for row, sequence in enumerate(sequences):
        padded[row, : len(sequence)] = torch.as_tensor(sequence, dtype=dtype)
    return padded, lengths


def length_buckets(lengths: Sequence[float], max_padded: float, max_count: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length, shortest first, each batch's padded size (count x its longest
    item) at most max_padded and its count at most max_count; an item longer than max_padded forms its own batch."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        # Sorted ascending, so the newest item is the longest: padded size = count x its length.
        full = max_count is not None and len(batch) >= max_count
        if batch and ((len(batch) + 1) * lengths[i] > max_padded or full):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches
