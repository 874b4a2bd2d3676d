"""Audio loading: any file or array in, 16 kHz mono float32 in [-1, 1] out, or an AudioError that says why."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator

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
        audio, rate, name = from_array(source), int(sample_rate), "<array>"
    else:
        name = str(source)
        audio, rate = _read_file(Path(source))
    return _prepare(audio, rate, target_rate, name)


def from_array(array: np.ndarray) -> np.ndarray:
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


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty")


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    _check_file(path)
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


def stream_audio(
    source: str | os.PathLike[str] | np.ndarray,
    sample_rate: int | None = None,
    target_rate: int = SAMPLE_RATE,
    block_s: float = 1.0,
) -> Iterator[np.ndarray]:
    """load_audio in consecutive blocks of about block_s seconds, for files too long to hold decoded.

    Files libsndfile opens (WAV, FLAC, OGG Vorbis/Opus, MP3, ...) are decoded block by block and resampled by a
    streaming resampler, so memory stays at a block whatever the length; the other formats (M4A, ...) are decoded
    whole through librosa/ffmpeg first. Concatenated, the blocks equal load_audio(source). A missing, empty or
    unreadable file raises AudioError here; NaN or infinite samples raise it when their block is reached.
    """
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError("<array>: sample_rate is required when passing an array")
        audio, name, rate = from_array(source), "<array>", int(sample_rate)
        frames, blocks = len(audio), _array_blocks(audio, rate, block_s)
    else:
        import soundfile

        path, name = Path(source), str(source)
        _check_file(path)
        try:
            info = soundfile.info(name)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
            audio, rate = _read_with_librosa(path, str(err) or type(err).__name__)
            frames, blocks = len(audio), _array_blocks(audio, rate, block_s)
        else:
            rate, frames = int(info.samplerate), info.frames
            blocks = _file_blocks(path, max(1, round(block_s * rate)))
    if rate <= 0:
        raise AudioError(f"{name}: invalid sample rate {rate}")
    if frames == 0:
        raise AudioError(f"{name}: audio has zero samples")
    return _prepare_blocks(blocks, rate, target_rate, name)


def _array_blocks(audio: np.ndarray, rate: int, block_s: float) -> Iterator[np.ndarray]:
    step = max(1, round(block_s * rate))
    return (audio[i : i + step] for i in range(0, len(audio), step))


def _file_blocks(path: Path, frames: int) -> Iterator[np.ndarray]:
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as file:
            # soundfile seeks to where it already is after every read of a seekable file; in a mono MP3 below
            # 32 kHz (MPEG-2/2.5) that seek upsets the decoder and garbles the start of every block.
            file.seekable = lambda: False
            while len(block := file.read(frames, dtype="float32", always_2d=True)):
                yield block
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(f"{path}: not a readable audio file ({err or type(err).__name__})") from err


def _prepare_blocks(blocks: Iterator[np.ndarray], rate: int, target_rate: int, name: str) -> Iterator[np.ndarray]:
    """_prepare for a stream of (samples, channels) blocks, the resampler carrying its state across them."""
    import soxr

    resampler = None
    if rate != target_rate:  # the quality librosa's "soxr_hq" asks for, so the output matches resample()
        resampler = soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
    samples_in = samples_out = 0
    for block in blocks:
        if not np.isfinite(block).all():
            raise AudioError(f"{name}: audio contains NaN or infinite samples")
        samples_in += len(block)
        mono = block.mean(axis=1, dtype=np.float32)
        if resampler is not None:
            mono = resampler.resample_chunk(mono)
        if len(mono):
            samples_out += len(mono)
            yield np.clip(mono, -1.0, 1.0)
    if samples_in == 0:  # a header may promise frames that do not decode
        raise AudioError(f"{name}: audio has zero samples")
    if resampler is not None:
        # librosa.resample (hence load_audio) pads or trims its one-shot result to this length.
        wanted = int(np.ceil(samples_in * (float(target_rate) / rate))) - samples_out
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)[: max(wanted, 0)]
        tail = np.pad(tail, (0, max(wanted - len(tail), 0)))
        if len(tail):
            yield np.clip(tail, -1.0, 1.0)
