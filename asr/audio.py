"""Audio loading: any file or array in, 16 kHz mono float32 in [-1, 1] out, or an AudioError that says why."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a"}  # what folders of recordings are searched for


def load_audio(
    source: str | os.PathLike[str] | np.ndarray,
    sample_rate: int | None = None,
    target_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Load a file (WAV/FLAC/OGG via soundfile, MP3 and the rest via librosa/ffmpeg) or an array.

    An array needs its sample_rate; it may be (samples,), (samples, channels) or (channels, samples) with at most
    8 channels. Integer arrays are scaled from their type's full range. Returns a 1-D float32 array at target_rate.
    """
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError("<array>: sample_rate is required when passing an array")
        audio, rate, name = _from_array(source), int(sample_rate), "<array>"
    else:
        name = str(source)
        audio, rate = _read_file(Path(source))
    return _prepare(audio, rate, target_rate, name)


def _from_array(array: np.ndarray) -> np.ndarray:
    """Bring an array to (samples, channels) float32, scaling integer PCM to [-1, 1]."""
    if array.ndim == 1:
        array = array[:, None]
    elif array.ndim == 2:
        if array.shape[0] <= 8 and array.shape[1] > array.shape[0]:
            array = array.T  # (channels, samples), as torchaudio and librosa lay it out
    else:
        raise AudioError(f"<array>: expected 1 or 2 dimensions, got shape {array.shape}")
    if array.shape[1] > 8:
        raise AudioError(f"<array>: shape {array.shape} is ambiguous; expected (samples, channels) with at most 8 channels")
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if info.min == 0:  # unsigned PCM (8-bit WAV) is centred on the middle of its range
            return ((array.astype(np.float64) - (info.max + 1) / 2) / ((info.max + 1) / 2)).astype(np.float32)
        return (array.astype(np.float64) / -float(info.min)).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    raise AudioError(f"<array>: unsupported sample type {array.dtype}")


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty")
    import soundfile

    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return audio, int(rate)
    except soundfile.LibsndfileError as err:
        first_error = str(err)
    except (RuntimeError, ValueError, MemoryError) as err:
        first_error = str(err) or type(err).__name__
    return _read_with_librosa(path, first_error)


def _read_with_librosa(path: Path, first_error: str) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (MP3 on old libsndfile, M4A, ...) go through librosa's audioread/ffmpeg."""
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns about the audioread fallback on every call
            audio, rate = librosa.load(str(path), sr=None, mono=False, dtype=np.float32)
    except Exception as err:  # audioread raises many unrelated types; all mean the same thing here
        raise AudioError(f"{path}: not a readable audio file ({first_error})") from err
    if rate <= 0:  # ffmpeg "decodes" some garbage into nothing at rate 0
        raise AudioError(f"{path}: not a readable audio file ({first_error})")
    audio = np.atleast_2d(audio).T  # librosa gives (channels, samples)
    return audio, int(rate)


def _prepare(audio: np.ndarray, rate: int, target_rate: int, name: str) -> np.ndarray:
    """Validate, mix to mono and resample (samples, channels) float32 audio."""
    if rate <= 0:
        raise AudioError(f"{name}: invalid sample rate {rate}")
    if audio.shape[0] == 0 or audio.size == 0:
        raise AudioError(f"{name}: audio has zero samples")
    if not np.isfinite(audio).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    mono = resample(audio.mean(axis=1, dtype=np.float32), rate, target_rate)
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


def resample(audio: np.ndarray, orig_rate: float, target_rate: float) -> np.ndarray:
    """Band-limited resampling of a 1-D signal (soxr through librosa); a no-op when the rates agree."""
    if orig_rate == target_rate:
        return audio
    import librosa

    return librosa.resample(audio, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq")
