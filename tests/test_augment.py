import numpy as np
import pytest
import soundfile

from asr.augment import (
    AugmentConfig,
    WaveformAugment,
    add_noise,
    coloured_noise,
    reverberate,
    speed_perturb,
    synthetic_rir,
)
from asr.data import SpeechDataset
from asr.errors import ConfigError
from asr.text import Vocabulary

RATE = 16000


def sine(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * RATE / len(audio))


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_duration_and_pitch(factor):
    out = speed_perturb(sine(440.0), factor, RATE)
    assert abs(len(out) - RATE / factor) <= 2
    assert dominant_frequency(out) == pytest.approx(440.0 * factor, abs=3.0)
    assert np.array_equal(speed_perturb(sine(440.0), 1.0, RATE), sine(440.0))


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_noise_is_mixed_at_the_requested_snr(snr_db):
    clean = sine(300.0, 2.0)
    noisy = add_noise(clean, coloured_noise(RATE // 3, 1.0, np.random.default_rng(0)), snr_db)
    noise = noisy - clean
    measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert measured == pytest.approx(snr_db, abs=0.1)
    assert len(noisy) == len(clean)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_coloured_noise_slopes(exponent):
    noise = coloured_noise(RATE * 4, exponent, np.random.default_rng(1))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=1e-3)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
    low = power[(freqs > 100) & (freqs < 200)].mean()
    high = power[(freqs > 3200) & (freqs < 6400)].mean()
    # Power per band falls by exponent x 10*log10(32) dB from the 100-200 Hz band to the 3.2-6.4 kHz band.
    assert 10 * np.log10(low / high) == pytest.approx(exponent * 10 * np.log10(32), abs=2.0)


def test_synthetic_rir_decays_sixty_db_in_rt60():
    rt60 = 0.5
    rir = synthetic_rir(rt60, RATE, np.random.default_rng(2))
    assert rir[0] == 1.0 and len(rir) == int(rt60 * RATE)
    tail = rir[1:].astype(np.float64) ** 2
    early = tail[: RATE // 20][tail[: RATE // 20] > 0].mean()  # first 50 ms of the tail
    late = tail[int(0.4 * RATE) : int(0.45 * RATE)].mean()  # 50 ms, 0.4 s later
    # 60 dB per rt60 -> 48 dB over 0.4 s; the Gaussian tail's sample energy scatters by a few dB.
    assert 10 * np.log10(early / late) == pytest.approx(48.0, abs=6.0)


def test_reverberation_keeps_length_alignment_and_level():
    dry = np.zeros(RATE, np.float32)
    dry[RATE // 2] = 1.0
    rir = np.concatenate([np.zeros(10, np.float32), synthetic_rir(0.3, RATE, np.random.default_rng(3))])
    wet = reverberate(dry, rir)
    assert len(wet) == len(dry)
    assert int(np.argmax(np.abs(wet))) == RATE // 2  # the direct path stays where the dry sound was
    assert np.abs(wet[: RATE // 2]).max() < 1e-4  # nothing before the sound (no smearing backwards)
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(dry**2)), rel=1e-3)


def test_augment_is_identity_when_off_and_deterministic_per_seed():
    audio = sine(220.0)
    assert not AugmentConfig().enabled
    config = AugmentConfig(speed_factors=[0.9, 1.0, 1.1], reverb_prob=0.5, noise_prob=0.5)
    augment = WaveformAugment(config, RATE)
    outputs = [augment(audio, np.random.default_rng([0, epoch, 5])) for epoch in range(8)]
    again = augment(audio, np.random.default_rng([0, 3, 5]))
    assert np.array_equal(outputs[3], again)
    assert len({len(o) for o in outputs}) > 1  # speed factors vary across epochs
    assert all(np.abs(o).max() <= 1.0 for o in outputs)


def test_noise_and_rir_folders(tmp_path):
    noise_dir, rir_dir = tmp_path / "noise", tmp_path / "rirs"
    noise_dir.mkdir()
    rir_dir.mkdir()
    hum = sine(50.0, 0.5) * 0.2
    soundfile.write(noise_dir / "hum.wav", hum, RATE)
    rir = np.zeros(800, np.float32)
    rir[0], rir[400] = 1.0, 0.5  # a single echo 25 ms later
    soundfile.write(rir_dir / "echo.flac", rir, RATE)
    dry = np.zeros(RATE, np.float32)
    dry[1000] = 0.5
    config = AugmentConfig(reverb_prob=1.0, rir_dir=str(rir_dir))
    wet = WaveformAugment(config, RATE)(dry, np.random.default_rng(0))
    assert wet[1400] == pytest.approx(wet[1000] * 0.5, rel=1e-3)  # the echo from the file, not a synthetic room
    config = AugmentConfig(noise_prob=1.0, noise_dir=str(noise_dir), snr_db=[10.0, 10.0])
    noisy = WaveformAugment(config, RATE)(sine(1000.0), np.random.default_rng(0))
    assert dominant_frequency(noisy - sine(1000.0)) == pytest.approx(50.0, abs=2.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"speed_factors": [0.0]}, "speed_factors"),
        ({"snr_db": [30.0, 5.0]}, "snr_db"),
        ({"rt60_s": [0.0, 0.5]}, "rt60_s"),
        ({"noise_prob": 1.0, "noise_dir": "/nonexistent/noise"}, "noise folder not found"),
    ],
)
def test_bad_augment_config_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WaveformAugment(AugmentConfig(**kwargs), RATE)


def test_dataset_augments_differently_per_epoch_and_replays(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, sine(200.0), RATE)
    entries = [{"audio_filepath": str(path), "duration": 1.0, "text": "a"}]
    config = AugmentConfig(speed_factors=[0.9, 1.1], noise_prob=1.0)
    dataset = SpeechDataset(entries, Vocabulary(), RATE, WaveformAugment(config, RATE), seed=7)
    by_epoch = []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        by_epoch.append(dataset[0][0])
    assert any(not np.array_equal(by_epoch[0], other) for other in by_epoch[1:])
    dataset.set_epoch(2)
    assert np.array_equal(dataset[0][0], by_epoch[2])
    plain = SpeechDataset(entries, Vocabulary(), RATE)
    assert np.allclose(plain[0][0], sine(200.0), atol=1e-4)


def test_persistent_loader_workers_follow_the_epoch(tmp_path):
    from torch.utils.data import DataLoader

    entries = []
    for i in range(3):
        path = tmp_path / f"{i}.wav"
        soundfile.write(path, sine(200.0 + 50 * i), RATE)
        entries.append({"audio_filepath": str(path), "duration": 1.0, "text": "a"})
    config = AugmentConfig(speed_factors=[0.9, 1.0, 1.1], noise_prob=0.5, reverb_prob=0.5)
    dataset = SpeechDataset(entries, Vocabulary(), RATE, WaveformAugment(config, RATE), seed=3)
    loader = DataLoader(dataset, batch_size=None, num_workers=1, persistent_workers=True)
    outputs = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        from_workers = [item[0] for item in loader]
        direct = [dataset[i][0] for i in range(len(dataset))]  # computed here, in this process, for this epoch
        assert all(np.array_equal(a, b) for a, b in zip(from_workers, direct)), f"epoch {epoch}"
        outputs.append(from_workers)
    assert any(not np.array_equal(a, b) for a, b in zip(outputs[0], outputs[2]))  # epochs differ
