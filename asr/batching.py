"""Batching of variable-length sequences: zero-padding into one tensor, and grouping by length so padding is small.

Shared by training (data loading on the CPU or the device) and inference (batched transcription), so that both cut
and pad batches the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def pad(sequences: Sequence[Any], dtype: torch.dtype | None = None,
        device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D sequences (tensors, arrays or lists) -> zero-padded (batch, longest) tensor (float32 unless dtype says
    otherwise) and the (batch,) lengths.

    At least one column even when every sequence is empty (CTC targets of empty transcripts still need one).
    """
    import torch  # here, so that onnxruntime transcription (pad_arrays, length_buckets) runs without PyTorch

    dtype = dtype or torch.float32
    lengths = torch.tensor([len(s) for s in sequences])
    padded = torch.zeros(len(sequences), max(int(lengths.max()), 1), dtype=dtype, device=device)
    for row, sequence in enumerate(sequences):
        padded[row, : len(sequence)] = torch.as_tensor(sequence, dtype=dtype)
    return padded, lengths


def pad_arrays(sequences: Sequence[np.ndarray], dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """pad for numpy: 1-D arrays -> zero-padded (batch, longest) array and (batch,) int64 lengths."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    padded = np.zeros((len(sequences), max(int(lengths.max(initial=0)), 1)), dtype)
    for row, sequence in enumerate(sequences):
        padded[row, : len(sequence)] = sequence
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
