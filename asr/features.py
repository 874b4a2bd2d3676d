"""Log-mel features: one module used by training and inference alike, plus SpecAugment for training only."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable

import torch
import torchaudio
from torch import nn

from .audio import SAMPLE_RATE
from .errors import ConfigError


@dataclass
class FeatureConfig:
    """How audio becomes features; saved inside every checkpoint so inference computes exactly the same thing."""

    # Always SAMPLE_RATE (all audio is read at it); saved so that a model of another rate is refused, not misread.
    sample_rate: int = SAMPLE_RATE
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    # "utterance": mean/variance per utterance and band (robust to unseen microphones and levels);
    # "global": statistics from the training set stored in the model; "none": raw log-mel.
    normalize: str = "utterance"

    def __post_init__(self) -> None:
        if self.normalize not in ("utterance", "global", "none"):
            raise ConfigError(f"features.normalize must be 'utterance', 'global' or 'none', got {self.normalize!r}")
        if self.sample_rate != SAMPLE_RATE:
            raise ConfigError(f"features.sample_rate is {self.sample_rate}, but this toolkit reads all audio at "
                              f"{SAMPLE_RATE} Hz")
        if self.n_mels < 1 or self.hop_length < 1:
            raise ConfigError(f"features: n_mels {self.n_mels} and hop_ms {self.hop_ms} must be positive")
        if not 1 <= self.win_length <= self.n_fft:
            raise ConfigError(f"features.win_ms {self.win_ms} must give a window of 1..n_fft ({self.n_fft}) samples")

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)


@dataclass
class SpecAugmentConfig:
    """SpecAugment masks (Park et al. 2019), applied to normalized features during training only."""

    freq_masks: int = 2
    freq_mask_width: int = 15
    time_masks: int = 2
    time_mask_width: int = 40
    # Stretch each utterance's mel axis by a random factor in [1 - freq_warp, 1 + freq_warp] (0: off), in the
    # spirit of vocal tract length perturbation: the same words from shorter or longer vocal tracts.
    freq_warp: float = 0.0
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width"):
            if getattr(self, name) < 0:
                raise ConfigError(f"spec_augment.{name} must not be negative, got {getattr(self, name)}")
        if not 0.0 <= self.freq_warp < 1.0:
            raise ConfigError(f"spec_augment.freq_warp must be in [0, 1), got {self.freq_warp}")


def num_frames(num_samples: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Frames whose centre lies inside the audio.

    The centred STFT adds one more frame centred past the end, made half of padding; it is dropped so that an
    utterance gets the same features alone (reflection padding) and inside a zero-padded batch.
    """
    return (num_samples - 1).clamp(min=0) // hop_length + 1


class LogMel(nn.Module):
    """Waveforms (batch, samples) + lengths -> normalized log-mel (batch, frames, n_mels) + frame lengths."""

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        # Slaney mel scale and area normalization: the same filterbank as librosa's defaults.
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            power=2.0,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("global_mean", torch.zeros(config.n_mels))
        self.register_buffer("global_std", torch.ones(config.n_mels))

    @torch.no_grad()
    def log_mel(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unnormalized log-mel (batch, frames, n_mels), frame lengths, and the (batch, frames, 1) validity mask."""
        # The STFT runs in float32 even under autocast: log of tiny powers is not safe in bf16.
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            power = self._power(waveforms.float())
        feats = torch.log(power @ self.mel.mel_scale.fb + 1e-6)
        frames = num_frames(lengths, self.config.hop_length).clamp(max=feats.shape[1])
        mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]).unsqueeze(-1)
        return feats, frames, mask

    def _power(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Power spectrogram (batch, frames, n_fft // 2 + 1): what self.mel's Spectrogram computes, with its window,
        but the STFT's real and imaginary parts as a pair rather than a complex tensor, so that the ONNX export
        (asr.export) can express it."""
        spec = self.mel.spectrogram
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # return_complex=False is deprecated in favour of complex tensors
            parts = torch.stft(waveforms, spec.n_fft, spec.hop_length, spec.win_length, spec.window, center=True,
                               pad_mode="reflect", normalized=False, onesided=True, return_complex=False)
        return parts.pow(2).sum(-1).transpose(1, 2)

    @torch.no_grad()
    def fit_global_stats(self, waveforms: Iterable[torch.Tensor]) -> None:
        """Set the per-band mean and standard deviation that "global" normalization uses from (samples,) waveforms."""
        total = torch.zeros(self.config.n_mels, dtype=torch.float64, device=self.global_mean.device)
        squares, count = torch.zeros_like(total), 0
        for waveform in waveforms:
            length = torch.tensor([len(waveform)], device=total.device)
            feats, frames, _ = self.log_mel(waveform[None].to(total.device), length)
            valid = feats[0, : int(frames[0])].double()
            total += valid.sum(0)
            squares += (valid**2).sum(0)
            count += valid.shape[0]
        if count == 0:
            raise ValueError("no audio to estimate global feature statistics from")
        mean = total / count
        self.global_mean.copy_(mean)
        self.global_std.copy_((squares / count - mean**2).clamp(min=1e-10).sqrt())

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, frames, mask = self.log_mel(waveforms, lengths)
        if self.config.normalize == "utterance":
            count = frames.clamp(min=1).to(feats.dtype)[:, None, None]
            mean = (feats * mask).sum(1, keepdim=True) / count
            var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count
            feats = (feats - mean) / (var.sqrt() + 1e-5)
        elif self.config.normalize == "global":
            feats = (feats - self.global_mean) / self.global_std
        return feats * mask, frames  # padding is exactly zero


def warp_frequency(feats: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Stretch (batch, frames, bins) features along the bins by per-utterance factors, interpolating linearly.

    Output bin j takes input bin j / factor: a factor above 1 moves energy up (formants of a shorter vocal
    tract); bins past the top repeat the last one. Zero padding frames stay zero.
    """
    bins = feats.shape[-1]
    source = (torch.arange(bins, device=feats.device)[None, :] / factors[:, None]).clamp(max=bins - 1)
    low = source.floor().long()
    high = (low + 1).clamp(max=bins - 1)
    weight = (source - low).unsqueeze(1).to(feats.dtype)  # (batch, 1, bins)
    expand = (-1, feats.shape[1], -1)
    return torch.lerp(feats.gather(2, low.unsqueeze(1).expand(*expand)),
                      feats.gather(2, high.unsqueeze(1).expand(*expand)), weight)


class SpecAugment(nn.Module):
    """Random frequency warping, frequency and time masks, independent per utterance; the identity in eval mode."""

    def __init__(self, config: SpecAugmentConfig) -> None:
        super().__init__()
        self.config = config
        self.freq = torchaudio.transforms.FrequencyMasking(config.freq_mask_width, iid_masks=True)
        self.time = torchaudio.transforms.TimeMasking(config.time_mask_width, iid_masks=True)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.config.enabled:
            return feats
        if self.config.freq_warp > 0:
            factors = 1 + (torch.rand(feats.shape[0], device=feats.device) * 2 - 1) * self.config.freq_warp
            feats = warp_frequency(feats, factors)
        spec = feats.transpose(1, 2).unsqueeze(1)  # torchaudio masks want (batch, channel, freq, time)
        for _ in range(self.config.freq_masks):
            spec = self.freq(spec)
        for _ in range(self.config.time_masks):
            spec = self.time(spec)
        return spec.squeeze(1).transpose(1, 2)
