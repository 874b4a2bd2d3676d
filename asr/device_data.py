"""Training batches cut from a corpus held in the training device's memory (train.data_on_device).

On a GPU, reading WAV files and augmenting them in loader processes costs more CPU than a host has for tens of
thousands of audio seconds a second. Held as int16 on the GPU (100 hours take 11.5 GB), the corpus is cut into
batches and augmented there, whole batches at a time, and the step waits for nothing. The augmentations are
asr.augment's, batched in torch, in its order: speed, reverberation, noise, babble (other utterances of the
corpus), microphone EQ. The others (pitch, formants, tempo, band limit, telephone, codecs, noise or
impulse-response files) need the CPU loader. Random parameters are drawn on the CPU from a generator seeded by (seed, epoch, batch), so a
resumed run replays exactly what an uninterrupted one would have drawn.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .audio import load_audio
from .augment import (NOISE_BANK_S, AugmentConfig, coloured_noise, eq_response, happens,
                      synthetic_rir)
from .batching import pad
from .data import Batch, SpeechDataset
from .errors import ConfigError
from .manifest import entry_audio

INT16_SCALE = 32768.0  # 16-bit PCM full scale, as load_audio reads it
CPU_ONLY = ("pitch_prob", "formant_prob", "tempo_prob", "bandlimit_prob", "telephone_prob", "codec_prob")
EQ_PADDING_S = 0.1  # room for the EQ's short impulse response, as in augment.filter_response


def check_device_augment(config: AugmentConfig) -> None:
    """ConfigError for augmentations the device path does not do."""
    for name in CPU_ONLY:
        if getattr(config, name) > 0:
            raise ConfigError(f"augment.{name} runs in the CPU loader only: set it to 0 with train.data_on_device")
    for name in ("noise_dir", "rir_dir"):
        if getattr(config, name):
            raise ConfigError(f"augment.{name} (files) needs the CPU loader: unset it with train.data_on_device")


class DeviceCorpus:
    """A SpeechDataset's audio as one int16 tensor on `device`, and batches cut from it (augmented if asked)."""

    def __init__(self, dataset: SpeechDataset, device: torch.device, augment: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        if augment is not None and augment.enabled:
            check_device_augment(augment)
        self.device, self.seed, self.sample_rate = device, seed, dataset.sample_rate
        self.texts = dataset.texts
        self.targets = [dataset.vocab.encode(text) for text in dataset.texts]
        pieces = [np.clip(np.round(load_audio(entry_audio(e), target_rate=self.sample_rate) * INT16_SCALE),
                          -INT16_SCALE, INT16_SCALE - 1).astype(np.int16) for e in dataset.entries]
        self.lengths = [len(piece) for piece in pieces]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64).tolist()
        self.audio = torch.from_numpy(np.concatenate(pieces) if pieces else np.zeros(0, np.int16)).to(device)
        self.augment = BatchAugment(augment, self) if augment is not None and augment.enabled else None

    def utterance(self, index: int) -> torch.Tensor:
        """One utterance as float32 samples on the device."""
        start = self.offsets[index]
        return self.audio[start : start + self.lengths[index]].float() / INT16_SCALE

    def batch(self, indices: Sequence[int], epoch: int, number: int) -> Batch:
        """The utterances padded into a Batch on the device; augmented with draws seeded by (seed, epoch, number)."""
        entries = [i % len(self.lengths) for i in indices]  # a mix's repeated copies (SpeechDataset)
        waveforms, lengths = pad([self.utterance(i) for i in entries], device=self.device)
        if self.augment is not None:
            waveforms, lengths = self.augment(waveforms, lengths, np.random.default_rng([self.seed, epoch, number]))
        targets, target_lengths = pad([self.targets[i] for i in entries], dtype=torch.long)
        return Batch(waveforms, lengths.to(self.device), targets.to(self.device), target_lengths.to(self.device),
                     [self.texts[i] for i in entries], list(indices))


class BatchAugment:
    """asr.augment's device-friendly augmentations applied to a padded batch; per utterance draws, one pass each."""

    def __init__(self, config: AugmentConfig, corpus: DeviceCorpus) -> None:
        self.config, self.corpus, self.rate = config, corpus, corpus.sample_rate
        bank_rng = np.random.default_rng(0)  # the CPU loader's bank: white, pink and brown noise
        self.noise_bank = torch.stack([torch.from_numpy(coloured_noise(int(NOISE_BANK_S * self.rate), exponent,
                                                                       bank_rng)) for exponent in (0.0, 1.0, 2.0)]
                                      ).to(corpus.device) if config.noise_prob > 0 else None

    def __call__(self, waveforms: torch.Tensor, lengths: torch.Tensor, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        waveforms, lengths = self.speed(waveforms, lengths, rng.choice(cfg.speed_factors, len(lengths)))
        rows = range(len(lengths))
        reverb = [row for row in rows if happens(rng, cfg.reverb_prob)]
        if reverb:
            rirs = [synthetic_rir(float(rng.uniform(*cfg.rt60_s)), self.rate, rng) for _ in reverb]
            waveforms[reverb] = self.reverberate(waveforms[reverb], lengths[reverb], rirs)
        for row in rows:
            if happens(rng, cfg.noise_prob):
                noise = self.bank_noise(int(lengths[row]), rng)
                waveforms[row] = mix(waveforms[row], int(lengths[row]), noise, float(rng.uniform(*cfg.snr_db)))
        for row in rows:
            if happens(rng, cfg.babble_prob):
                talkers = self.babble(int(lengths[row]), rng)
                waveforms[row] = mix(waveforms[row], int(lengths[row]), talkers,
                                     float(rng.uniform(*cfg.babble_snr_db)))
        equalized = [row for row in rows if happens(rng, cfg.eq_prob)]
        if equalized:
            curves = [(rng.uniform(-cfg.eq_gain_db, cfg.eq_gain_db, 8), float(rng.uniform(*cfg.eq_highpass_hz)))
                      for _ in equalized]
            waveforms[equalized] = self.equalize(waveforms[equalized], curves)
        mask = torch.arange(waveforms.shape[1], device=waveforms.device) < lengths.to(waveforms.device)[:, None]
        waveforms = waveforms * mask
        peaks = waveforms.abs().amax(dim=1, keepdim=True).clamp(min=1.0)  # only clipping utterances are scaled down
        return waveforms / peaks, lengths

    def speed(self, waveforms: torch.Tensor, lengths: torch.Tensor, factors: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each utterance played `factor` times faster, as augment.speed_perturb (resampled from rate x factor)."""
        import torchaudio.functional as AF

        if np.all(factors == 1.0):
            return waveforms, lengths
        new_lengths = torch.tensor([int(np.ceil(int(n) / f)) for n, f in zip(lengths, factors)])
        out = waveforms.new_zeros(len(lengths), int(new_lengths.max()))
        for factor in np.unique(factors):
            rows = np.flatnonzero(factors == factor).tolist()
            moved = waveforms[rows] if factor == 1.0 else AF.resample(waveforms[rows], round(self.rate * factor),
                                                                      self.rate)
            width = min(moved.shape[1], out.shape[1])
            out[rows, :width] = moved[:, :width]
        return out, new_lengths

    def reverberate(self, waveforms: torch.Tensor, lengths: torch.Tensor, rirs: list[np.ndarray]) -> torch.Tensor:
        """augment.reverberate for several utterances at once: FFT convolution, direct path aligned, level kept."""
        rirs = [rir[int(np.argmax(np.abs(rir))):] for rir in rirs]
        size = waveforms.shape[1] + max(len(rir) for rir in rirs) - 1
        kernels = waveforms.new_zeros(len(rirs), max(len(rir) for rir in rirs))
        for row, rir in enumerate(rirs):
            kernels[row, : len(rir)] = torch.from_numpy(rir).to(waveforms.device)
        wet = torch.fft.irfft(torch.fft.rfft(waveforms, size) * torch.fft.rfft(kernels, size), size)
        wet = wet[:, : waveforms.shape[1]]
        mask = torch.arange(wet.shape[1], device=wet.device) < lengths.to(wet.device)[:, None]
        wet = wet * mask
        dry_energy, wet_energy = waveforms.square().sum(dim=1), wet.square().sum(dim=1)
        gain = torch.where(wet_energy > 0, (dry_energy / wet_energy.clamp(min=1e-20)).sqrt(), 1.0)
        return wet * gain[:, None]

    def bank_noise(self, num_samples: int, rng: np.random.Generator) -> torch.Tensor:
        """A random stretch of a random colour of the noise bank, repeated if the utterance is longer."""
        noise = self.noise_bank[int(rng.integers(len(self.noise_bank)))]
        start = int(rng.integers(max(1, len(noise) - num_samples + 1)))
        return noise[(start + torch.arange(num_samples, device=noise.device)) % len(noise)]

    def babble(self, num_samples: int, rng: np.random.Generator) -> torch.Tensor:
        """augment.babble from the corpus: a few utterances at unit RMS, each looped from a random start."""
        low, high = self.config.babble_talkers
        total = torch.zeros(num_samples, device=self.corpus.device)
        for index in rng.integers(len(self.corpus.lengths), size=int(rng.integers(low, high + 1))):
            talker = self.corpus.utterance(int(index))
            rms = talker.square().mean().sqrt()
            if len(talker) and rms > 0:
                start = int(rng.integers(len(talker)))
                total += talker[(start + torch.arange(num_samples, device=talker.device)) % len(talker)] / rms
        return total

    def equalize(self, waveforms: torch.Tensor, curves: list[tuple[np.ndarray, float]]) -> torch.Tensor:
        """augment.equalize for several utterances: each its own eq_response, applied in one FFT."""
        size = waveforms.shape[1] + int(EQ_PADDING_S * self.rate)
        freqs = np.fft.rfftfreq(size, 1 / self.rate)
        gains = torch.from_numpy(np.stack([eq_response(freqs, gains_db, highpass) for gains_db, highpass in curves]))
        spectrum = torch.fft.rfft(waveforms, size) * gains.to(waveforms.device, waveforms.dtype)
        return torch.fft.irfft(spectrum, size)[:, : waveforms.shape[1]]


def mix(audio: torch.Tensor, length: int, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """augment.add_noise on a padded row: noise (length samples) mixed into the first `length` samples."""
    signal_power = audio[:length].square().mean()
    noise_power = noise.square().mean()
    if length == 0 or signal_power == 0 or noise_power == 0:
        return audio
    mixed = audio.clone()
    mixed[:length] += (signal_power / (noise_power * 10 ** (snr_db / 10))).sqrt() * noise
    return mixed
