"""asr.audio.load_audio: every supported file format, rate, sample type and channel count comes out as 16 kHz
mono float32 in [-1, 1] with its content intact; every kind of bad input raises AudioError saying which and why."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from asr import ASRError, AudioError
from asr.audio import load_audio

FREQ = 440.0
AMP = 0.5
SINE_RMS = AMP / np.sqrt(2)  # 0.3536
OUT_RATE = 16000


def sine(rate: int, seconds: float = 1.0, freq: float = FREQ, amp: float = AMP) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def dominant_freq(y: np.ndarray, rate: int = OUT_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum)) * rate / len(y)


def band_rms(y: np.ndarray, freq: float, rate: int = OUT_RATE) -> float:
    """Amplitude of the component at `freq` (a sine of amplitude A gives about A)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)))) / (len(y) / 4)
    k = int(round(freq * len(y) / rate))
    return float(spectrum[max(k - 3, 0) : k + 4].max())


def trimmed_rms(y: np.ndarray) -> float:
    edge = len(y) // 20  # ignore resampler / codec transients at the ends
    return float(np.sqrt(np.mean(np.square(y[edge:-edge], dtype=np.float64))))


def assert_sine(y: np.ndarray, seconds: float = 1.0, length_tol: int = 2, rms_rel: float = 0.01) -> None:
    """A 440 Hz, 0.5-amplitude sine of `seconds`, as load_audio must return it."""
    assert isinstance(y, np.ndarray)
    assert y.dtype == np.float32
    assert y.ndim == 1
    assert abs(len(y) - seconds * OUT_RATE) <= length_tol, len(y)
    assert np.isfinite(y).all()
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert trimmed_rms(y) == pytest.approx(SINE_RMS, rel=rms_rel)
    assert dominant_freq(y) == pytest.approx(FREQ, abs=2.0)


def write_mp3(path, audio: np.ndarray, rate: int):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    wav = path.with_suffix(".src.wav")
    sf.write(wav, audio, rate)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "128k",
         str(path)],
        check=True,
    )
    wav.unlink()
    return path


# -- files: formats x sample rates -------------------------------------------------------------------------------

RATES = [8000, 16000, 22050, 44100, 48000]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"), ("MP3", None, "mp3")],
)
def test_file_formats_and_rates(tmp_path, fmt, subtype, ext, rate):
    path = tmp_path / f"sine_{rate}.{ext}"
    if fmt == "MP3":
        write_mp3(path, sine(rate), rate)
        # The encoder scales the level a little (about -5%) and may pad by up to a frame.
        length_tol, rms_rel = 1200, 0.1
    else:
        sf.write(path, sine(rate), rate, format=fmt, subtype=subtype)
        length_tol, rms_rel = (2, 0.01) if fmt != "OGG" else (2, 0.03)
    y = load_audio(path)
    assert_sine(y, length_tol=length_tol, rms_rel=rms_rel)


def test_path_may_be_str(tmp_path):
    path = tmp_path / "sine.wav"
    sf.write(path, sine(16000), 16000)
    np.testing.assert_array_equal(load_audio(str(path)), load_audio(path))


# -- files: sample types -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [16000, 44100])
@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_sample_types(tmp_path, subtype, rate):
    path = tmp_path / f"sine_{subtype}.wav"
    sf.write(path, sine(rate), rate, subtype=subtype)
    assert sf.info(path).subtype == subtype
    y = load_audio(path)
    assert_sine(y, rms_rel=0.01)
    if rate == OUT_RATE:  # no resampling: the samples themselves must come back, scaled to [-1, 1]
        atol = 1.0 / 64 if subtype == "PCM_U8" else 1e-4
        np.testing.assert_allclose(y, sine(rate), atol=atol)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_flac_bit_depths(tmp_path, subtype):
    path = tmp_path / "sine.flac"
    sf.write(path, sine(16000), 16000, format="FLAC", subtype=subtype)
    y = load_audio(path)
    assert_sine(y)
    np.testing.assert_allclose(y, sine(16000), atol=1e-4)


def test_loud_float_wav_is_clipped_to_unit_range(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, sine(16000, amp=1.5), 16000, subtype="FLOAT")  # float WAV may exceed full scale
    y = load_audio(path)
    assert y.dtype == np.float32
    assert y.max() == pytest.approx(1.0) and y.min() == pytest.approx(-1.0)
    assert y.max() <= 1.0 and y.min() >= -1.0


def test_longer_file_keeps_its_duration(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, sine(22050, seconds=3.5), 22050)
    assert_sine(load_audio(path), seconds=3.5)


# -- files: channels ---------------------------------------------------------------------------------------------

def test_mono_file(tmp_path):
    path = tmp_path / "mono.wav"
    sf.write(path, sine(16000)[:, None], 16000)
    assert_sine(load_audio(path))


def test_stereo_is_the_mean_of_the_channels(tmp_path):
    # left = A + B, right = A - B: the mean is A exactly; either channel alone carries B (1 kHz).
    a, b = sine(16000), sine(16000, freq=1000.0, amp=0.3)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([a + b, a - b], axis=1), 16000, subtype="FLOAT")
    y = load_audio(path)
    assert_sine(y)
    np.testing.assert_allclose(y, a, atol=1e-6)
    assert band_rms(y, 1000.0) < 1e-3


@pytest.mark.parametrize("rate", [16000, 48000])
def test_six_channels_are_averaged(tmp_path, rate):
    a = sine(rate)
    # Channel pairs cancel each other's extra tone, so the mean is the 440 Hz sine alone.
    extras = [sine(rate, freq=f, amp=0.3) for f in (1000.0, 2000.0, 3000.0)]
    channels = [a + e for e in extras] + [a - e for e in extras]
    path = tmp_path / "six.wav"
    sf.write(path, np.stack(channels, axis=1), rate, subtype="PCM_24")
    assert sf.info(path).channels == 6
    y = load_audio(path)
    assert_sine(y)
    for f in (1000.0, 2000.0, 3000.0):
        assert band_rms(y, f) < 2e-3, f
    if rate == OUT_RATE:
        np.testing.assert_allclose(y, a, atol=1e-5)


def test_six_channel_flac_with_distinct_channels(tmp_path):
    rng = np.random.default_rng(0)
    channels = rng.uniform(-0.9, 0.9, size=(16000, 6))
    path = tmp_path / "six.flac"
    sf.write(path, channels, 16000, format="FLAC", subtype="PCM_24")
    y = load_audio(path)
    assert y.shape == (16000,) and y.dtype == np.float32
    np.testing.assert_allclose(y, channels.mean(axis=1), atol=1e-5)


def test_stereo_ogg_and_mp3_are_mixed_down(tmp_path):
    a, b = sine(44100), sine(44100, freq=1000.0, amp=0.3)
    stereo = np.stack([a + b, a - b], axis=1)
    ogg = tmp_path / "stereo.ogg"
    sf.write(ogg, stereo, 44100, format="OGG", subtype="VORBIS")
    y = load_audio(ogg)
    assert_sine(y, rms_rel=0.05)
    assert band_rms(y, 1000.0) < 0.03  # lossy: the tone cancels up to coding noise (0.3 if it did not)
    mp3 = write_mp3(tmp_path / "stereo.mp3", stereo, 44100)
    y = load_audio(mp3)
    assert_sine(y, length_tol=1200, rms_rel=0.1)
    assert band_rms(y, 1000.0) < 0.03


# -- arrays ------------------------------------------------------------------------------------------------------

def to_dtype(x: np.ndarray, dtype) -> np.ndarray:
    if dtype == np.int16:
        return np.round(x * 32767).astype(np.int16)
    if dtype == np.int32:
        return np.round(x * 2147483647).astype(np.int32)
    if dtype == np.uint8:
        return np.round(x * 127 + 128).astype(np.uint8)
    return x.astype(dtype)


ARRAY_TOL = {np.int16: 1e-4, np.int32: 1e-6, np.uint8: 1.0 / 64, np.float32: 1e-6, np.float64: 1e-6}


@pytest.mark.parametrize("layout", ["(n,)", "(n, ch)", "(ch, n)"])
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.float32, np.float64])
def test_array_dtypes_and_layouts(dtype, layout):
    a, b = sine(16000), sine(16000, freq=1000.0, amp=0.3)
    if layout == "(n,)":
        array, expected = to_dtype(a, dtype), a
    else:
        stacked = np.stack([a + b, a - b], axis=1)  # mean over channels = a
        array, expected = to_dtype(stacked, dtype), a
        if layout == "(ch, n)":
            array = np.ascontiguousarray(array.T)
    y = load_audio(array, sample_rate=16000)
    assert_sine(y)
    np.testing.assert_allclose(y, expected, atol=ARRAY_TOL[dtype])


@pytest.mark.parametrize("layout", ["(n, ch)", "(ch, n)"])
def test_array_six_channels(layout):
    rng = np.random.default_rng(1)
    channels = rng.uniform(-0.9, 0.9, size=(16000, 6)).astype(np.float32)
    array = channels if layout == "(n, ch)" else channels.T
    y = load_audio(array, sample_rate=16000)
    assert y.shape == (16000,)
    np.testing.assert_allclose(y, channels.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([-32768, 0, 16384], dtype=np.int16), [-1.0, 0.0, 0.5]),
        (np.array([-(2**31), 0, 2**30], dtype=np.int32), [-1.0, 0.0, 0.5]),
        (np.array([0, 128, 192], dtype=np.uint8), [-1.0, 0.0, 0.5]),
    ],
    ids=["int16", "int32", "uint8"],
)
def test_integer_arrays_scale_from_full_range(array, expected):
    y = load_audio(array, sample_rate=16000)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_array_is_resampled(rate):
    y = load_audio(sine(rate).astype(np.float32), sample_rate=rate)
    assert_sine(y)


def test_array_target_rate():
    y = load_audio(sine(16000), sample_rate=16000, target_rate=8000)
    assert y.dtype == np.float32 and abs(len(y) - 8000) <= 2
    assert dominant_freq(y, 8000) == pytest.approx(FREQ, abs=2.0)


def test_array_values_are_clipped():
    y = load_audio(np.array([2.0, -3.0, 0.25]), sample_rate=16000)
    np.testing.assert_allclose(y, [1.0, -1.0, 0.25])


# -- bad input ---------------------------------------------------------------------------------------------------

def test_audio_error_is_an_asr_error():
    assert issubclass(AudioError, ASRError)
    assert issubclass(ASRError, Exception)


def _bad_file(tmp_path, case):
    """Write the bad input `case` into tmp_path; return (path, reason fragment the message must contain)."""
    rng = np.random.default_rng(0)
    if case == "missing":
        return tmp_path / "missing.wav", "not found"
    if case == "directory":
        (tmp_path / "folder.wav").mkdir()
        return tmp_path / "folder.wav", "not a file"
    if case == "empty":
        (tmp_path / "empty.wav").write_bytes(b"")
        return tmp_path / "empty.wav", "empty"
    if case == "text":
        (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
        return tmp_path / "text.wav", "not a readable audio file"
    if case.startswith("random_"):
        path = tmp_path / f"random.{case.split('_')[1]}"
        path.write_bytes(rng.bytes(4000))
        return path, "not a readable audio file"
    if case == "truncated_header":
        good = tmp_path / "good.wav"
        sf.write(good, sine(16000), 16000)
        (tmp_path / "truncated.wav").write_bytes(good.read_bytes()[:20])
        return tmp_path / "truncated.wav", "not a readable audio file"
    if case == "zero_samples":
        sf.write(tmp_path / "zero.wav", np.zeros((0, 1)), 16000)
        assert (tmp_path / "zero.wav").stat().st_size > 0  # a valid header, no frames
        return tmp_path / "zero.wav", "zero samples"
    bad = {"nan": np.nan, "inf": np.inf, "neg_inf": -np.inf}[case]
    x = sine(16000)
    x[1234] = bad
    sf.write(tmp_path / f"{case}.wav", x, 16000, subtype="FLOAT")
    return tmp_path / f"{case}.wav", "NaN or infinite"


BAD_FILES = ["missing", "directory", "empty", "text", "random_wav", "random_flac", "random_mp3", "truncated_header",
             "zero_samples", "nan", "inf", "neg_inf"]
@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_raise_audio_error(tmp_path, case):
    path, reason = _bad_file(tmp_path, case)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert path.name in message
    assert reason in message
    assert "\n" not in message  # one line, fit for the CLI's one-line errors


def test_random_flac_still_raises_audio_error_naming_the_file(tmp_path):
    """What holds for random bytes named .flac even with the misleading reason above."""
    path, _ = _bad_file(tmp_path, "random_flac")
    with pytest.raises(AudioError) as info:
        load_audio(str(path))
    message = str(info.value)
    assert path.name in message
    assert len(message.replace(str(path), "").strip(" :")) >= 5  # a reason beyond the name


def test_array_without_sample_rate():
    with pytest.raises(AudioError, match="sample_rate"):
        load_audio(sine(16000))


@pytest.mark.parametrize("shape", [(2, 2, 100), (1, 1, 1, 16000)])
def test_array_with_too_many_dimensions(shape):
    with pytest.raises(AudioError, match="dimensions"):
        load_audio(np.zeros(shape, dtype=np.float32), sample_rate=16000)


@pytest.mark.parametrize("rate", [0, -16000])
def test_array_with_invalid_sample_rate(rate):
    with pytest.raises(AudioError, match="sample rate"):
        load_audio(sine(16000), sample_rate=rate)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_array_with_non_finite_samples(bad):
    x = sine(16000).astype(np.float32)
    x[10] = bad
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(x, sample_rate=16000)


@pytest.mark.parametrize("array", [np.zeros(0, dtype=np.float32), np.zeros((0, 2), dtype=np.int16)], ids=["1d", "2d"])
def test_empty_array(array):
    with pytest.raises(AudioError, match="zero samples"):
        load_audio(array, sample_rate=16000)


@pytest.mark.parametrize("dtype", [bool, np.complex64, object])
def test_array_with_unsupported_sample_type(dtype):
    with pytest.raises(AudioError, match="unsupported sample type"):
        load_audio(np.zeros(100, dtype=dtype), sample_rate=16000)


def test_array_with_more_than_eight_channels_is_refused():
    with pytest.raises(AudioError):
        load_audio(np.zeros((16, 16000), dtype=np.float32), sample_rate=16000)
