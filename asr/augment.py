"""Waveform augmentation for training: speed perturbation, simulated reverberation, additive noise.

Applied per utterance in the data-loading workers, before features (SpecAugment, on the features, lives in
features.py). Every random choice comes from a generator the caller seeds with (seed, epoch, utterance), so a
resumed run sees exactly the augmented audio an uninterrupted one would have seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import AUDIO_SUFFIXES, load_audio, resample
from .errors import ConfigError

NOISE_BANK_S = 30.0  # seconds of each generated noise colour; utterances take a random stretch of it


@dataclass
class AugmentConfig:
    """Which waveform augmentations run during training; all off by default."""

    # One factor per utterance, chosen uniformly (0.9/1.0/1.1 is the Kaldi/ESPnet recipe). Changes tempo and pitch
    # together, like a tape played faster or slower, which also imitates shorter or longer vocal tracts.
    speed_factors: list[float] = field(default_factory=lambda: [1.0])
    reverb_prob: float = 0.0
    rt60_s: list[float] = field(default_factory=lambda: [0.15, 0.7])  # reverberation time range, uniform
    rir_dir: str | None = None  # folder of real room impulse responses; None: exponentially decaying noise
    noise_prob: float = 0.0
    snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])  # signal-to-noise ratio range, uniform
    noise_dir: str | None = None  # folder of noise recordings; None: generated white/pink/brown noise

    @property
    def enabled(self) -> bool:
        return self.speed_factors != [1.0] or self.reverb_prob > 0 or self.noise_prob > 0


def speed_perturb(audio: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play the audio `factor` times faster: resample as if it had been recorded at sample_rate x factor."""
    if factor == 1.0:
        return audio
    return resample(audio, sample_rate * factor, sample_rate).astype(np.float32, copy=False)


def coloured_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectral density ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0  # leave DC as drawn rather than divide by zero
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix noise (tiled or cut to length) into audio at the given signal-to-noise ratio in dB."""
    if len(noise) < len(audio):
        noise = np.tile(noise, math.ceil(len(audio) / len(noise)))
    noise = noise[: len(audio)]
    signal_power = float(np.dot(audio, audio)) / len(audio)
    noise_power = float(np.dot(noise, noise)) / len(noise)
    if signal_power == 0 or noise_power == 0:
        return audio
    scale = math.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


def synthetic_rir(rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: the direct sound, then a diffuse tail of noise decaying 60 dB in rt60_s.

    Exponentially decaying Gaussian noise is the statistical model of late reverberation (Polack); the tail
    starts after a few milliseconds and its level relative to the direct sound varies from room to room.
    """
    length = max(1, int(rt60_s * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-math.log(1000.0) * t / rt60_s)
    tail[: int(rng.uniform(0.002, 0.01) * sample_rate)] = 0.0  # initial time gap before the first reflections
    tail *= rng.uniform(0.3, 1.0) / (np.sqrt(np.sum(tail**2)) + 1e-12)  # tail energy below the direct sound's
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response, keeping the original length and alignment (the tail past the end is cut)."""
    peak = int(np.argmax(np.abs(rir)))  # align the direct path with the dry signal, as in a recorded RIR
    rir = rir[peak:]
    size = len(audio) + len(rir) - 1
    n_fft = 1 << (size - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(audio, n_fft) * np.fft.rfft(rir, n_fft), n_fft)[: len(audio)]
    # Keep the level of the dry signal so the augmentation changes the room, not the loudness.
    dry_rms, wet_rms = np.sqrt(np.mean(audio**2)), np.sqrt(np.mean(wet**2))
    if wet_rms > 0:
        wet *= dry_rms / wet_rms
    return wet.astype(np.float32)


def _audio_files(folder: str, what: str) -> list[Path]:
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"{folder}: {what} folder not found")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ConfigError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in the {what} folder")
    return files


class WaveformAugment:
    """Applies the configured augmentations, in the order a recording would meet them: speed, room, noise."""

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        if any(f <= 0 for f in config.speed_factors) or not config.speed_factors:
            raise ConfigError(f"augment.speed_factors must be positive numbers, got {config.speed_factors}")
        for name in ("rt60_s", "snr_db"):
            low_high = getattr(config, name)
            if len(low_high) != 2 or low_high[0] > low_high[1]:
                raise ConfigError(f"augment.{name} must be [low, high], got {low_high}")
        if config.rt60_s[0] <= 0:
            raise ConfigError(f"augment.rt60_s must be positive, got {config.rt60_s}")
        self.config = config
        self.sample_rate = sample_rate
        self.noise_files = _audio_files(config.noise_dir, "noise") if config.noise_dir else []
        # Generating noise per utterance costs more than all the other augmentations together; stationary noise
        # loses nothing by being cut from a fixed bank at a random offset.
        bank_rng = np.random.default_rng(0)
        self.noise_bank = [] if self.noise_files or not config.noise_prob else [
            coloured_noise(int(NOISE_BANK_S * sample_rate), exponent, bank_rng) for exponent in (0.0, 1.0, 2.0)]
        self.rir_files = _audio_files(config.rir_dir, "impulse response") if config.rir_dir else []

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        audio = speed_perturb(audio, float(rng.choice(cfg.speed_factors)), self.sample_rate)
        if rng.random() < cfg.reverb_prob:
            audio = reverberate(audio, self._rir(rng))
        if rng.random() < cfg.noise_prob:
            audio = add_noise(audio, self._noise(len(audio), rng), float(rng.uniform(*cfg.snr_db)))
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        return audio / peak if peak > 1.0 else audio

    def _rir(self, rng: np.random.Generator) -> np.ndarray:
        if self.rir_files:
            return load_audio(self.rir_files[rng.integers(len(self.rir_files))], target_rate=self.sample_rate)
        return synthetic_rir(float(rng.uniform(*self.config.rt60_s)), self.sample_rate, rng)

    def _noise(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        if self.noise_files:
            noise = load_audio(self.noise_files[rng.integers(len(self.noise_files))], target_rate=self.sample_rate)
        else:
            noise = self.noise_bank[rng.integers(len(self.noise_bank))]  # white, pink or brown
        start = int(rng.integers(max(1, len(noise) - num_samples + 1)))
        return noise[start : start + num_samples]
