import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
from scipy.signal import lfilter

from asr.audio import load_audio
from asr.augment import (
    CODECS,
    EQ_POINTS_HZ,
    AugmentConfig,
    WaveformAugment,
    add_noise,
    align,
    babble,
    codec_round_trip,
    coloured_noise,
    equalize,
    g711,
    reverberate,
    shift_voice,
    speed_perturb,
    synthetic_rir,
    band_limit,
    telephone,
    time_stretch,
)
from asr.data import SpeechDataset
from asr.errors import ConfigError
from asr.text import Vocabulary

RATE = 16000
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                  reason="ffmpeg is not installed (apt install ffmpeg): codec round trips run it")


def sine(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * RATE / len(audio))


def vowel(f0: float = 120.0, formants: tuple[float, ...] = (500.0, 1500.0, 2500.0)) -> np.ndarray:
    """One second of a vowel: a glottal pulse train at f0 through resonators (80 Hz wide) at the formants."""
    audio = np.zeros(RATE)
    audio[:: round(RATE / f0)] = 1.0
    radius = np.exp(-np.pi * 80.0 / RATE)
    for formant in formants:
        audio = lfilter([1 - radius], [1, -2 * radius * np.cos(2 * np.pi * formant / RATE), radius**2], audio)
    return (0.3 * audio / np.abs(audio).max()).astype(np.float32)


def lowest_formants(audio: np.ndarray, count: int = 2) -> np.ndarray:
    """The lowest resonances of an all-pole (LPC) fit: an estimate of the envelope independent of the STFT."""
    roots = np.roots(librosa.lpc(audio.astype(np.float64) * np.hanning(len(audio)), order=8))
    freqs = sorted(np.angle(r) * RATE / (2 * np.pi) for r in roots if r.imag > 0)
    return np.array([f for f in freqs if f > 200.0][:count])


def pitch_hz(audio: np.ndarray) -> float:
    """f0 from the autocorrelation peak between 60 and 400 Hz."""
    correlation = np.correlate(audio, audio, "full")[len(audio) - 1 :]
    low, high = RATE // 400, RATE // 60
    return RATE / (low + int(np.argmax(correlation[low:high])))


def band_power_db(audio: np.ndarray, low_hz: float, high_hz: float) -> float:
    """Mean power per FFT bin between low_hz and high_hz, in dB (Hann window: the cut ends leak nothing)."""
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    power = np.abs(np.fft.rfft(audio.astype(np.float64) * np.hanning(len(audio)))) ** 2
    return float(10 * np.log10(power[(freqs >= low_hz) & (freqs < high_hz)].mean() + 1e-30))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def speech(tiny_corpus: Path) -> np.ndarray:
    """A few seconds of espeak-ng speech at 16 kHz."""
    return load_audio(tiny_corpus / "wavs" / "0_0.wav")


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_duration_and_pitch(factor):
    out = speed_perturb(sine(440.0), factor, RATE)
    assert abs(len(out) - RATE / factor) <= 2
    assert dominant_frequency(out) == pytest.approx(440.0 * factor, abs=3.0)
    assert np.array_equal(speed_perturb(sine(440.0), 1.0, RATE), sine(440.0))


@pytest.mark.parametrize("semitones", [-3.0, 3.0])
def test_pitch_shift_moves_a_sine_and_keeps_the_duration(semitones):
    factor = 2 ** (semitones / 12)
    out = shift_voice(sine(440.0), factor, 1.0, RATE)
    assert len(out) == RATE
    assert dominant_frequency(out) == pytest.approx(440.0 * factor, abs=3.0)


def test_pitch_shift_keeps_the_formants():
    original = vowel()
    out = shift_voice(original, 2 ** (3 / 12), 1.0, RATE)
    assert pitch_hz(out) == pytest.approx(120.0 * 2 ** (3 / 12), rel=0.02)
    assert lowest_formants(out) == pytest.approx(lowest_formants(original), rel=0.06)


@pytest.mark.parametrize("factor", [0.85, 1.2])
def test_formant_shift_moves_the_envelope_and_keeps_f0(factor):
    original = vowel()
    out = shift_voice(original, 1.0, factor, RATE)
    assert len(out) == len(original)
    assert pitch_hz(out) == pytest.approx(pitch_hz(original), rel=0.01)
    # F1 and F2 each move at least half and at most 1.5 times the requested way (on a log scale).
    moved = np.log(lowest_formants(out) / lowest_formants(original)) / np.log(factor)
    assert np.all((moved > 0.5) & (moved < 1.5)), moved


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_tempo_changes_the_duration_and_keeps_the_pitch(rate):
    out = time_stretch(sine(440.0), rate, RATE)
    assert len(out) == round(RATE / rate)
    assert dominant_frequency(out) == pytest.approx(440.0, abs=3.0)
    slow_vowel = time_stretch(vowel(), rate, RATE)
    assert pitch_hz(slow_vowel) == pytest.approx(120.0, rel=0.02)


@pytest.mark.parametrize("companding", ["none", "mulaw", "alaw"])
def test_telephone_keeps_only_the_300_to_3400_hz_band(companding):
    noise = 0.1 * coloured_noise(2 * RATE, 0.0, np.random.default_rng(4))
    out = telephone(noise, RATE, companding)
    assert len(out) == len(noise)
    passband = band_power_db(out, 500.0, 3000.0)
    assert passband == pytest.approx(band_power_db(noise, 500.0, 3000.0), abs=1.0)
    assert band_power_db(out, 4100.0, 8000.0) < passband - 60.0  # nothing above the 8 kHz line's Nyquist
    assert band_power_db(out, 20.0, 150.0) < passband - 20.0  # 4th-order high-pass at 300 Hz


@pytest.mark.parametrize("cutoff", [4000.0, 5512.5])
def test_band_limit_keeps_what_a_lower_sampling_rate_would(cutoff):
    noise = 0.1 * coloured_noise(2 * RATE, 0.0, np.random.default_rng(5))
    out = band_limit(noise, RATE, cutoff)
    assert len(out) == len(noise) and out.dtype == np.float32
    passband = band_power_db(out, 300.0, cutoff * 0.9)
    assert passband == pytest.approx(band_power_db(noise, 300.0, cutoff * 0.9), abs=0.5)
    assert band_power_db(out, cutoff * 1.05, 8000.0) < passband - 50.0
    assert band_limit(noise, RATE, 8000.0) is noise  # nothing above 8 kHz to take away at 16 kHz


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
@pytest.mark.parametrize("amplitude", [0.5, 0.01])
def test_g711_companding_keeps_quiet_and_loud_signals_clean(law, amplitude):
    clean = sine(440.0) * (amplitude / 0.5)
    error = g711(clean, law) - clean
    snr_db = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(error.astype(np.float64) ** 2))
    # 8-bit linear PCM would give 0.01 of full scale about 0 dB; companding keeps ~30 dB at every level.
    assert 25.0 < snr_db < 45.0


@needs_ffmpeg
@pytest.mark.parametrize("codec, bitrate", [(c, b) for c, spec in CODECS.items() for b in spec.bitrates or [None]])
def test_codec_round_trip_keeps_length_and_alignment(speech, codec, bitrate):
    out = codec_round_trip(speech, codec, bitrate, RATE)
    assert out.dtype == np.float32 and len(out) == len(speech)  # the codec's delay and padding are cut
    # Correlated sample by sample: aligned within a fraction of a pitch period, not just within a codec frame.
    assert 0.6 < correlation(out, speech) < 0.9999
    shifted = np.roll(out, 40)  # 2.5 ms late
    assert correlation(shifted, speech) < correlation(out, speech) - 0.05


@pytest.mark.parametrize("delay", [-300, 0, 1105])
def test_align_undoes_a_delay_and_keeps_the_length(delay):
    reference = coloured_noise(RATE // 2, 1.0, np.random.default_rng(7))
    late, early = max(delay, 0), max(-delay, 0)  # a negative delay: the signal starts early
    delayed = np.concatenate([np.zeros(late, np.float32), reference[early:], np.ones(50, np.float32)])
    aligned = align(delayed, reference, max_lag=4000)
    assert len(aligned) == len(reference)
    assert np.array_equal(aligned[300:-300], reference[300:-300])
    assert len(align(reference[:10], reference[:20], max_lag=4000)) == 20  # shorter than max_lag: no index error


@needs_ffmpeg
def test_gsm_round_trip_is_narrowband(speech):
    out = codec_round_trip(speech, "gsm", None, RATE)
    assert band_power_db(out, 4200.0, 8000.0) < band_power_db(speech, 4200.0, 8000.0) - 30.0


@needs_ffmpeg
def test_a_codec_round_trip_that_fails_leaves_the_clip_without_it(speech, monkeypatch, caplog):
    """ffmpeg stopped as too slow (a paused or loaded machine) must not end a training run from a loader worker."""
    from asr import augment as augment_module

    def stalled(*args, **kwargs):
        raise augment_module.AudioError("<array>: ffmpeg mp3 decoding took over 34 s and was stopped")

    augmenter = WaveformAugment(AugmentConfig(codec_prob=1.0, codecs=("mp3",)), RATE)
    monkeypatch.setattr(augment_module, "codec_round_trip", stalled)
    out = augmenter(speech, np.random.default_rng(0))
    assert np.array_equal(out, speech / max(1.0, float(np.max(np.abs(speech)))))
    assert "codec augmentation skipped for one clip" in caplog.text


def test_codecs_without_ffmpeg_are_refused_when_built(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg there
    with pytest.raises(ConfigError, match="needs ffmpeg"):
        WaveformAugment(AugmentConfig(codec_prob=0.1), RATE)
    WaveformAugment(AugmentConfig(telephone_prob=1.0), RATE)  # G.711 is done in numpy: no ffmpeg needed


def test_equalization_follows_its_curve_and_keeps_the_length():
    noise = 0.1 * coloured_noise(4 * RATE, 0.0, np.random.default_rng(5))
    gains_db = np.array([0.0, 6.0, -6.0, 0.0, 6.0, 0.0, -6.0, 0.0])
    out = equalize(noise, RATE, gains_db, highpass_hz=0.0)
    assert len(out) == len(noise)
    for point, gain in zip(EQ_POINTS_HZ, gains_db):
        measured = band_power_db(out, point * 0.97, point * 1.03) - band_power_db(noise, point * 0.97, point * 1.03)
        assert measured == pytest.approx(gain, abs=1.0), point
    high_passed = equalize(noise, RATE, np.zeros(len(EQ_POINTS_HZ)), highpass_hz=400.0)
    assert band_power_db(high_passed, 50.0, 100.0) < band_power_db(noise, 50.0, 100.0) - 20.0  # 12 dB/octave
    assert band_power_db(high_passed, 2000.0, 4000.0) == pytest.approx(band_power_db(noise, 2000.0, 4000.0), abs=0.2)


def test_babble_sums_unit_level_talkers():
    talkers = [sine(300.0, 0.3) * 0.1, sine(700.0, 2.0) * 0.4]
    mix = babble(talkers, [0, 1000], RATE)
    assert len(mix) == RATE
    expected = np.resize(talkers[0], RATE) / np.sqrt(np.mean(talkers[0] ** 2))
    expected += talkers[1][1000 : 1000 + RATE] / np.sqrt(np.mean(talkers[1] ** 2))
    assert np.allclose(mix, expected, atol=1e-4)


def test_babble_adds_other_utterances_at_the_requested_snr(tmp_path):
    pool = []
    for freq in (300.0, 700.0):
        pool.append(tmp_path / f"{freq:.0f}.wav")
        soundfile.write(pool[-1], sine(freq, 1.5) * 0.3, RATE)
    config = AugmentConfig(babble_prob=1.0, babble_talkers=[2, 2], babble_snr_db=[10.0, 10.0])
    clean = sine(1500.0) * 0.2
    out = WaveformAugment(config, RATE, babble_pool=pool)(clean, np.random.default_rng(6))
    added = out - clean
    snr_db = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    assert snr_db == pytest.approx(10.0, abs=0.1)
    assert dominant_frequency(added) in (pytest.approx(300.0, abs=2.0), pytest.approx(700.0, abs=2.0))
    assert band_power_db(added, 1400.0, 1600.0) < band_power_db(added, 250.0, 750.0) - 40.0  # not the clean one


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
        ({"pitch_prob": 1.5}, "pitch_prob must be a probability"),
        ({"codec_prob": -0.1}, "codec_prob must be a probability"),
        ({"pitch_semitones": [3.0, -3.0]}, "pitch_semitones"),
        ({"pitch_semitones": [-24.0, 3.0]}, "pitch_semitones"),
        ({"formant_factor": [0.2, 1.1]}, "formant_factor"),
        ({"tempo_factor": [0.9]}, "tempo_factor"),
        ({"babble_talkers": [0, 3]}, "babble_talkers"),
        ({"babble_snr_db": [20.0, 5.0]}, "babble_snr_db"),
        ({"eq_gain_db": -1.0}, "eq_gain_db"),
        ({"eq_highpass_hz": [300.0, 100.0]}, "eq_highpass_hz"),
        ({"bandlimit_hz": [500.0, 4000.0]}, "bandlimit_hz"),
        ({"telephone_companding": ["ulaw"]}, "telephone_companding"),
        ({"codecs": []}, "codecs"),
        ({"codecs": ["aac"]}, "codecs"),
        ({"babble_prob": 0.2}, "babble_pool is empty"),
    ],
)
def test_bad_augment_config_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WaveformAugment(AugmentConfig(**kwargs), RATE)


@pytest.mark.parametrize("key", [k for k in vars(AugmentConfig()) if k.endswith("_prob")])
def test_each_probability_switches_augmentation_on(key):
    assert not AugmentConfig().enabled
    assert AugmentConfig(**{key: 0.1}).enabled


def all_on(tmp_path: Path) -> tuple[AugmentConfig, list[Path]]:
    """Every augmentation at probability 1 (the codec only where ffmpeg is installed), and a babble pool."""
    pool = []
    for i, freq in enumerate((250.0, 400.0, 650.0)):
        pool.append(tmp_path / f"talker{i}.wav")
        soundfile.write(pool[-1], vowel(freq / 2, (freq, 3 * freq)), RATE)
    config = AugmentConfig(
        speed_factors=[0.9, 1.0, 1.1], pitch_prob=1.0, formant_prob=1.0, tempo_prob=1.0, reverb_prob=1.0,
        noise_prob=1.0, babble_prob=1.0, eq_prob=1.0, bandlimit_prob=1.0, telephone_prob=1.0,
        codec_prob=1.0 if shutil.which("ffmpeg") else 0.0)
    return config, pool


def test_every_augmentation_is_reproducible_from_the_seed(tmp_path):
    config, pool = all_on(tmp_path)
    augment = WaveformAugment(config, RATE, babble_pool=pool)
    audio = vowel()
    first = augment(audio, np.random.default_rng([1, 2, 3]))
    assert np.array_equal(first, augment(audio, np.random.default_rng([1, 2, 3])))
    rebuilt = WaveformAugment(config, RATE, babble_pool=pool)  # as in a resumed run's fresh workers
    assert np.array_equal(first, rebuilt(audio, np.random.default_rng([1, 2, 3])))
    other = augment(audio, np.random.default_rng([1, 2, 4]))
    assert not (len(other) == len(first) and np.allclose(other, first, atol=1e-3))
    assert np.isfinite(first).all() and np.abs(first).max() <= 1.0


@pytest.mark.parametrize("key", ["pitch_prob", "formant_prob", "tempo_prob", "babble_prob", "eq_prob",
                                 "bandlimit_prob", "telephone_prob", pytest.param("codec_prob", marks=needs_ffmpeg)])
def test_each_augmentation_alone_is_seeded(tmp_path, key):
    _, pool = all_on(tmp_path)
    augment = WaveformAugment(AugmentConfig(**{key: 1.0}), RATE, babble_pool=pool)
    audio = vowel()
    outputs = [augment(audio, np.random.default_rng([0, 0, i])) for i in range(6)]
    assert np.array_equal(outputs[0], augment(audio, np.random.default_rng([0, 0, 0])))
    assert not np.array_equal(outputs[0], audio)
    assert len({o.tobytes() for o in outputs}) > 1  # the drawn parameters vary


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
    config = AugmentConfig(speed_factors=[0.9, 1.0, 1.1], noise_prob=0.5, reverb_prob=0.5, pitch_prob=0.5,
                           babble_prob=0.5, babble_talkers=[1, 2], eq_prob=0.5, telephone_prob=0.5)
    pool = [e["audio_filepath"] for e in entries]  # as the trainer passes its manifest's utterances
    dataset = SpeechDataset(entries, Vocabulary(), RATE, WaveformAugment(config, RATE, pool), seed=3)
    loader = DataLoader(dataset, batch_size=None, num_workers=1, persistent_workers=True)
    outputs = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        from_workers = [item[0] for item in loader]
        direct = [dataset[i][0] for i in range(len(dataset))]  # computed here, in this process, for this epoch
        assert all(np.array_equal(a, b) for a, b in zip(from_workers, direct)), f"epoch {epoch}"
        outputs.append(from_workers)
    assert any(not np.array_equal(a, b) for a, b in zip(outputs[0], outputs[2]))  # epochs differ
