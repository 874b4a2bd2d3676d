"""The training corpus held on the training device (train.data_on_device): batches, augmentation, the trainer."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.augment import AugmentConfig, equalize, reverberate, synthetic_rir
from asr.config import load_config
from asr.data import SpeechDataset, collate
from asr.device_data import DeviceCorpus, mix
from asr.errors import ConfigError
from asr.manifest import read_manifest
from asr.text import Vocabulary
from asr.train import ExperimentConfig, Trainer

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset(tiny_corpus: Path) -> SpeechDataset:
    return SpeechDataset(read_manifest(tiny_corpus / "train.jsonl")[:8], Vocabulary())


def test_batches_hold_the_loaders_audio_and_targets(dataset: SpeechDataset):
    corpus = DeviceCorpus(dataset, CPU)
    batch = corpus.batch([3, 1, 6], epoch=0, number=0)
    expected = collate([dataset[i] for i in (3, 1, 6)])
    assert torch.equal(batch.waveforms, expected.waveforms)  # 16-bit WAVs survive int16 storage exactly
    for name in ("lengths", "targets", "target_lengths"):
        assert torch.equal(getattr(batch, name), getattr(expected, name)), name
    assert batch.texts == expected.texts and batch.indices == [3, 1, 6]
    assert corpus.audio.dtype == torch.int16 and len(corpus.audio) == sum(corpus.lengths)


def test_each_augmentation_changes_the_batch_and_keeps_padding_silent(dataset: SpeechDataset):
    clean = DeviceCorpus(dataset, CPU).batch([0, 1, 2, 3], 0, 0)
    for options in ({"reverb_prob": 1.0}, {"noise_prob": 1.0}, {"babble_prob": 1.0}, {"eq_prob": 1.0}):
        batch = DeviceCorpus(dataset, CPU, AugmentConfig(**options)).batch([0, 1, 2, 3], 0, 0)
        assert torch.equal(batch.lengths, clean.lengths), options
        assert not torch.allclose(batch.waveforms, clean.waveforms, atol=1e-3), options
        assert torch.isfinite(batch.waveforms).all() and batch.waveforms.abs().max() <= 1.0, options
        for row, length in enumerate(batch.lengths.tolist()):
            assert not batch.waveforms[row, length:].any(), options


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_the_lengths(dataset: SpeechDataset, factor: float):
    batch = DeviceCorpus(dataset, CPU, AugmentConfig(speed_factors=[factor])).batch([0, 1], 0, 0)
    assert batch.lengths.tolist() == [int(np.ceil(n / factor)) for n in DeviceCorpus(dataset, CPU).lengths[:2]]


def test_augmentation_replays_from_seed_epoch_and_batch(dataset: SpeechDataset):
    config = AugmentConfig(speed_factors=[0.9, 1.0, 1.1], reverb_prob=0.5, noise_prob=0.5, babble_prob=0.5,
                           eq_prob=0.5)
    corpus = DeviceCorpus(dataset, CPU, config, seed=3)
    first, again = corpus.batch([0, 1, 2], 1, 4), corpus.batch([0, 1, 2], 1, 4)
    assert torch.equal(first.waveforms, again.waveforms)
    assert not torch.equal(first.waveforms[:, :1000], corpus.batch([0, 1, 2], 2, 4).waveforms[:, :1000])


def test_batched_steps_match_the_cpu_loaders(dataset: SpeechDataset):
    corpus = DeviceCorpus(dataset, CPU, AugmentConfig(reverb_prob=1.0, eq_prob=1.0))
    audio = corpus.utterance(0).numpy()
    rir = synthetic_rir(0.4, 16000, np.random.default_rng(0))
    wet = corpus.augment.reverberate(torch.from_numpy(audio)[None], torch.tensor([len(audio)]), [rir])[0]
    np.testing.assert_allclose(wet.numpy(), reverberate(audio, rir), atol=2e-4)
    gains_db = np.array([3.0, -4.0, 6.0, 0.0, -6.0, 2.0, 5.0, -1.0])
    equalized = corpus.augment.equalize(torch.from_numpy(audio)[None], [(gains_db, 120.0)])[0]
    np.testing.assert_allclose(equalized.numpy(), equalize(audio, 16000, gains_db, 120.0), atol=2e-4)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_mix_sets_the_signal_to_noise_ratio(snr_db: float):
    generator = torch.Generator().manual_seed(0)
    audio, noise = torch.randn(16000, generator=generator), torch.randn(12000, generator=generator) * 0.1
    padded = torch.cat([audio[:12000], torch.zeros(4000)])
    mixed = mix(padded, 12000, noise, snr_db)
    added = mixed[:12000] - padded[:12000]
    assert 10 * torch.log10(padded[:12000].square().mean() / added.square().mean()) == pytest.approx(snr_db, abs=1e-3)
    assert not mixed[12000:].any()


@pytest.mark.parametrize(("options", "message"), [
    ({"pitch_prob": 0.1}, "augment.pitch_prob runs in the CPU loader only"),
    ({"codec_prob": 0.1}, "augment.codec_prob runs in the CPU loader only"),
    ({"noise_prob": 0.5, "noise_dir": "noises"}, "augment.noise_dir (files) needs the CPU loader"),
])
def test_cpu_only_augmentations_are_refused(dataset: SpeechDataset, options: dict, message: str):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DeviceCorpus(dataset, CPU, AugmentConfig(**options))


def _first_losses(corpus: Path, out: Path, *overrides: str) -> list[float]:
    config = load_config(ExperimentConfig, None, [
        "model.hidden_size=64", "model.num_layers=1", "model.dropout=0.0", "spec_augment.enabled=false",
        "train.max_batch_seconds=8", "train.num_workers=0", "train.log_every_steps=1", "train.max_steps=3",
        "train.tensorboard=false", f"train.train_manifest={corpus / 'train.jsonl'}", f"train.out_dir={out}",
        *overrides])
    Trainer(config, log=lambda message: None).run()
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines() if "loss" in line]


@pytest.mark.slow
def test_training_on_the_device_equals_training_from_the_loader(tiny_corpus: Path, tmp_path: Path):
    loader = _first_losses(tiny_corpus, tmp_path / "loader")
    device = _first_losses(tiny_corpus, tmp_path / "device", "train.data_on_device=true")
    assert len(loader) == 3 and device == pytest.approx(loader, rel=1e-5)
    augmented = _first_losses(tiny_corpus, tmp_path / "augmented", "train.data_on_device=true",
                              "augment.noise_prob=1.0", "augment.speed_factors=[0.9,1.1]")
    assert len(augmented) == 3 and augmented != pytest.approx(loader, rel=1e-3)
    with pytest.raises(ConfigError, match="data_on_device and train.features_in_loader exclude each other"):
        _first_losses(tiny_corpus, tmp_path / "both", "train.data_on_device=true", "train.features_in_loader=true")


def test_gpu_pack_encodes_the_audio_compactly_and_keeps_lengths(tiny_corpus: Path, tmp_path: Path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "recipes" / "synthetic" / "gpu" / "pack.py"
    result = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "pack"), "--no-wheels",
                             f"train={tiny_corpus / 'train.jsonl'}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("train: 36 utterances, ")
    packed, original = read_manifest(tmp_path / "pack" / "train.jsonl"), read_manifest(tiny_corpus / "train.jsonl")
    assert [e["text"] for e in packed] == [e["text"] for e in original]
    assert all(e["audio_filepath"].endswith(".opus") for e in packed)
    first = DeviceCorpus(SpeechDataset(packed[:3], Vocabulary()), CPU)
    assert first.lengths == DeviceCorpus(SpeechDataset(original[:3], Vocabulary()), CPU).lengths
    wav_bytes = sum(Path(e["audio_filepath"]).stat().st_size for e in original)
    assert sum(Path(e["audio_filepath"]).stat().st_size for e in packed) < wav_bytes / 8
    bad = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "x"), "--no-wheels", "train"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "expected NAME=MANIFEST" in bad.stderr and "Traceback" not in bad.stderr
