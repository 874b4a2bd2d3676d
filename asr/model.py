"""BiLSTM-CTC acoustic model: subsampling front -> N bidirectional LSTM layers -> linear -> log-probs."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class ModelConfig:
    """Shape of the network; saved with the weights so a checkpoint rebuilds itself."""

    input_dim: int = 80
    vocab_size: int = 29
    # Stacking 3 frames gives 33 outputs per second: enough for CTC on fast speech (about 15-20 characters
    # per second plus the blanks needed between repeated letters) while making the LSTM 3x cheaper.
    subsampling: str = "stack"  # "stack" (concatenate frames) or "conv" (strided 1-D convolution)
    subsampling_factor: int = 3
    hidden_size: int = 256
    num_layers: int = 4
    dropout: float = 0.15


class Subsampling(nn.Module):
    """Reduce the frame rate by `factor`: frame stacking (no parameters) or a strided convolution."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.subsampling not in ("stack", "conv"):
            raise ValueError(f"subsampling must be 'stack' or 'conv', got {config.subsampling!r}")
        if not 1 <= config.subsampling_factor <= 8:
            raise ValueError(f"subsampling_factor must be in 1..8, got {config.subsampling_factor}")
        self.factor = config.subsampling_factor
        self.kind = config.subsampling
        if self.kind == "conv":
            self.conv = nn.Conv1d(config.input_dim, config.hidden_size, kernel_size=self.factor, stride=self.factor)
            self.output_dim = config.hidden_size
        else:
            self.output_dim = config.input_dim * self.factor

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths + self.factor - 1, self.factor, rounding_mode="floor")

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        batch, frames, dim = feats.shape
        pad = -frames % self.factor  # pad to a multiple of the factor so the last frames are not dropped
        if pad:
            feats = nn.functional.pad(feats, (0, 0, 0, pad))
        if self.kind == "conv":
            return nn.functional.gelu(self.conv(feats.transpose(1, 2))).transpose(1, 2)
        return feats.reshape(batch, (frames + pad) // self.factor, dim * self.factor)


class BiLSTMCTC(nn.Module):
    """Features (batch, frames, input_dim) -> per-frame log-probabilities (batch, frames', vocab)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.subsampling = Subsampling(config)
        self.lstm = nn.LSTM(
            input_size=self.subsampling.output_dim,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, config.vocab_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.subsampling.output_lengths(lengths)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.subsampling(feats)
        out_lengths = self.output_lengths(lengths).clamp(min=1, max=x.shape[1])
        # Packing keeps the padding out of the backward direction: without it the reverse LSTM of a short
        # utterance would start from padded frames and its outputs would depend on the batch it sits in.
        packed = pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
        y, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        logits = self.output(self.dropout(y))
        return logits.float().log_softmax(dim=-1), out_lengths

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
