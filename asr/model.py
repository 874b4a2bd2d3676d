"""BiLSTM-CTC acoustic model: subsampling front -> N bidirectional LSTM layers -> linear -> log-probs."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .batching import pad
from .config import resolve_device
from .errors import ConfigError
from .features import LogMel


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

    def __post_init__(self) -> None:
        if self.subsampling not in ("stack", "conv"):
            raise ConfigError(f"model.subsampling must be 'stack' or 'conv', got {self.subsampling!r}")
        if not 1 <= self.subsampling_factor <= 8:
            raise ConfigError(f"model.subsampling_factor must be in 1..8, got {self.subsampling_factor}")
        for name, lowest in (("input_dim", 1), ("vocab_size", 2), ("hidden_size", 1), ("num_layers", 1)):
            if getattr(self, name) < lowest:
                raise ConfigError(f"model.{name} must be at least {lowest}, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


class Subsampling(nn.Module):
    """Reduce the frame rate by `factor`: frame stacking (no parameters) or a strided convolution."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
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
        # Pad to a multiple of the factor so the last frames are not dropped. Unconditionally (a pad of 0 is a
        # no-op): a Python branch on the length would freeze into a traced (exported) model.
        pad = -frames % self.factor
        feats = nn.functional.pad(feats, (0, 0, 0, pad))
        if self.kind == "conv":
            return nn.functional.gelu(self.conv(feats.transpose(1, 2))).transpose(1, 2)
        return feats.reshape(batch, (frames + pad) // self.factor, dim * self.factor)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a (batch, time, dim) tensor within its own length; padding stays at the end."""
    steps = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
    source = lengths[:, None] - 1 - steps
    source = torch.where(source >= 0, source, steps)
    return x.gather(1, source.unsqueeze(-1).expand_as(x))


class BiLSTMLayer(nn.Module):
    """One bidirectional LSTM layer on a zero-padded batch, with padding kept out of both directions.

    The forward LSTM meets padding only after an utterance's last frame; the backward LSTM reads each utterance
    reversed within its own length, so it too starts on real frames. This computes exactly what packed sequences
    compute, but on a plain padded tensor, which keeps the fused CPU kernels: packed LSTM backward is about
    3.5x slower on CPU (measured with torch 2.14 on 2 cores).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        forward, _ = self.forward_lstm(x)
        backward, _ = self.backward_lstm(reverse_padded(x, lengths))
        return torch.cat([forward, reverse_padded(backward, lengths)], dim=-1)


class BiLSTMCTC(nn.Module):
    """Features (batch, frames, input_dim) -> per-frame log-probabilities (batch, frames', vocab)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.subsampling = Subsampling(config)
        sizes = [self.subsampling.output_dim] + [2 * config.hidden_size] * (config.num_layers - 1)
        self.layers = nn.ModuleList(BiLSTMLayer(size, config.hidden_size) for size in sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, config.vocab_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.subsampling.output_lengths(lengths)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.subsampling(feats)
        out_lengths = self.output_lengths(lengths).clamp(min=1, max=x.shape[1])
        for i, layer in enumerate(self.layers):
            x = layer(self.dropout(x) if i else x, out_lengths)
        logits = self.output(self.dropout(x))
        return logits.float().log_softmax(dim=-1), out_lengths

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class TorchNetwork:
    """Log-mel features and a network in PyTorch on `device`, as an asr.network.Network. Takes the modules as they
    are (mode, device): callers that transcribe hand them over in eval mode on `device`."""

    def __init__(self, features: LogMel, model: nn.Module, device: torch.device | str = "cpu") -> None:
        self.features, self.model = features, model
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.sample_rate = features.config.sample_rate
        # Seconds per output frame: the feature hop times the model's subsampling.
        self.frame_s = features.config.hop_length * model.subsampling.factor / self.sample_rate

    @torch.inference_mode()
    def __call__(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        batch, lengths = pad(waveforms)
        feats, frames = self.features(batch.to(self.device), lengths.to(self.device))
        log_probs, out_lengths = self.model(feats, frames)
        return log_probs.float().cpu().numpy(), out_lengths.cpu().numpy()


def quantize_int8(model: BiLSTMCTC) -> nn.Module:
    """A copy with int8 weights in the LSTM and linear layers (dynamic quantization: activations are quantized
    on the fly per batch), for faster CPU inference; the float model is left as it is.

    Uses torch.ao's dynamic quantization, the one path PyTorch offers for int8 LSTMs; torch marks it deprecated.
    """
    import copy
    import warnings

    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as err:  # pragma: no cover - depends on the installed torch
        raise RuntimeError(f"this PyTorch has no dynamic int8 quantization ({err})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notices of torch.ao
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8)
