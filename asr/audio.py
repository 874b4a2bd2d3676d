"""Audio loading: any file or array in, 16 kHz mono float32 in [-1, 1] out, or an AudioError that says why."""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .atomic import atomic_path
from .errors import AudioError

if TYPE_CHECKING:
    import soundfile

SAMPLE_RATE = 16000  # the one rate of the toolkit: every source is read, resampled and streamed at it
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a"}  # what folders of recordings are searched for
# Rates outside this range come from corrupt headers; a rate of a few Hz would also make resampling to 16 kHz
# multiply the audio's size thousands of times.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_000_000
# Float samples beyond even 32-bit integer PCM stored as float are corrupt data; mixing and resampling values
# near float32's limit would overflow to inf and NaN.
MAX_SAMPLE_MAGNITUDE = 2.0**32
# Files are decoded in reads of at most this many samples, so memory follows what the file holds, never what its
# header claims (a FLAC or Ogg header can promise 2^36 frames and more).
READ_BLOCK_SAMPLES = 2**22


@dataclass(frozen=True)
class AudioSpan:
    """A stretch of an audio file: duration_s seconds (None: to the end) from offset_s. What a manifest entry with
    an `offset` (a Kaldi `segments` line) points at, so a long recording is never cut into copies."""

    path: str
    offset_s: float
    duration_s: float | None = None

    def __str__(self) -> str:
        end = "end" if self.duration_s is None else f"{self.offset_s + self.duration_s:.3f} s"
        return f"{self.path} [{self.offset_s:.3f} s to {end}]"


AudioSource = str | os.PathLike[str] | AudioSpan


def load_audio(
    source: AudioSource | np.ndarray,
    sample_rate: int | None = None,
    target_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Load a file (WAV/FLAC/OGG/Opus/MP3 via soundfile, the rest via audioread/ffmpeg), a span of one, or an array.

    An array needs its sample_rate; it may be (samples,), (samples, channels) or (channels, samples) with at most
    8 channels. Integer arrays are scaled from their type's full range. Returns a 1-D float32 array at target_rate.
    Rates outside 1 kHz to 1 MHz and float samples beyond MAX_SAMPLE_MAGNITUDE raise AudioError, like NaN, and so
    does a span that starts beyond the end of its file.
    """
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError("<array>: sample_rate is required when passing an array")
        audio, rate, name = from_array(source), sample_rate, "<array>"
    elif isinstance(source, AudioSpan):
        name = str(source)
        audio, rate = _read_span(source)
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
    if array.dtype.kind in "iu":  # not np.issubdtype(..., np.integer), which timedelta64 passes
        info = np.iinfo(array.dtype)
        if info.min == 0:  # unsigned PCM (8-bit WAV) is centred on the middle of its range
            return ((array.astype(np.float64) - (info.max + 1) / 2) / ((info.max + 1) / 2)).astype(np.float32)
        return (array.astype(np.float64) / -float(info.min)).astype(np.float32)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    raise AudioError(f"<array>: unsupported sample type {array.dtype}")


def _check_rate(rate: float, name: str) -> int:
    """The sample rate as an int, or AudioError when it is not a number within the plausible range."""
    if not isinstance(rate, numbers.Real) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:  # NaN fails too
        raise AudioError(f"{name}: invalid sample rate {rate!r} (expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)")
    return int(rate)


def _check_samples(audio: np.ndarray, name: str) -> None:
    """AudioError for NaN, infinite or absurdly large float samples."""
    low, high = float(audio.min()), float(audio.max())  # a NaN propagates to both
    if not (np.isfinite(low) and np.isfinite(high)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if max(-low, high) > MAX_SAMPLE_MAGNITUDE:
        raise AudioError(f"{name}: sample magnitude {max(-low, high):.3g} is out of range (float audio is about ±1)")


def _check_file(path: Path) -> None:
    try:
        if not path.exists():
            raise AudioError(f"{path}: file not found")
        if not path.is_file():
            raise AudioError(f"{path}: not a file")
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: file is empty")
    except OSError as err:  # a name too long for the file system, a folder we may not enter, ...
        raise AudioError(f"{path}: cannot access file ({err.strerror or err})") from None


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    _check_file(path)
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as file:
            rate, channels = file.samplerate, file.channels
            blocks = list(_read_blocks(file, file.frames))
    except (RuntimeError, ValueError, MemoryError) as err:  # soundfile.LibsndfileError is a RuntimeError
        return _read_with_ffmpeg(path, str(err) or type(err).__name__)
    audio = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    return audio, int(rate)


def _read_span(span: AudioSpan) -> tuple[np.ndarray, int]:
    """The span's samples: libsndfile seeks to its start (exact for PCM, FLAC and Ogg; MP3 is decoded up to it);
    formats libsndfile cannot read are decoded whole by ffmpeg and cut."""
    path = Path(span.path)
    _check_file(path)
    import soundfile

    if not (span.offset_s >= 0 and (span.duration_s is None or span.duration_s > 0)):
        raise AudioError(f"{span}: a span needs an offset >= 0 and a positive duration")
    try:
        with soundfile.SoundFile(str(path)) as file:
            rate, channels = file.samplerate, file.channels
            start = round(span.offset_s * rate)
            if start >= file.frames:
                raise AudioError(f"{span}: starts beyond the end of the file ({file.frames / rate:.3f} s)")
            if file.format == "MP3":  # libsndfile's MP3 seek lands a decoder delay (~1,100 samples) off
                file.seekable = lambda: False
                for _ in _read_blocks(file, start, stop=start):
                    pass
            else:
                file.seek(start)
            wanted = None if span.duration_s is None else round(span.duration_s * rate)
            blocks = list(_read_blocks(file, wanted or file.frames, stop=wanted))
    except (RuntimeError, ValueError, MemoryError) as err:  # soundfile.LibsndfileError is a RuntimeError
        audio, rate = _read_with_ffmpeg(path, str(err) or type(err).__name__)
        start = round(span.offset_s * rate)
        if start >= len(audio):
            raise AudioError(f"{span}: starts beyond the end of the file ({len(audio) / rate:.3f} s)") from None
        end = None if span.duration_s is None else start + round(span.duration_s * rate)
        return audio[start:end], rate
    audio = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    return audio, int(rate)


def _read_with_ffmpeg(path: Path, first_error: str) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (M4A, ...) are decoded by ffmpeg through audioread. Not through librosa.load:
    it would first retry soundfile, which allocates for however many frames a damaged header claims (2^32 stereo
    frames: 32 GiB). Nor through audioread.audio_open: its first choice, the standard library's wave/aifc/sunau,
    reads 1024 frames at a time of however many channels the header claims (2^20 in an AU header: 2 GiB)."""
    from audioread.ffdec import FFmpegAudioFile

    try:
        with FFmpegAudioFile(str(path)) as reader:
            rate, channels = int(reader.samplerate), int(reader.channels)
            pcm = b"".join(reader)  # 16-bit signed little-endian, channels interleaved
    except Exception as err:  # audioread raises many unrelated types; all mean the same thing here
        raise AudioError(f"{path}: not a readable audio file ({first_error})") from err
    if rate <= 0 or channels <= 0:  # ffmpeg "decodes" some garbage into nothing at rate 0
        raise AudioError(f"{path}: not a readable audio file ({first_error})")
    samples = np.frombuffer(pcm, "<i2")[: len(pcm) // (2 * channels) * channels]
    return (samples.astype(np.float32) / 32768).reshape(-1, channels), rate


def _prepare(audio: np.ndarray, rate: float, target_rate: int, name: str) -> np.ndarray:
    """Validate, mix to mono and resample (samples, channels) float32 audio."""
    rate = _check_rate(rate, name)
    if audio.shape[0] == 0 or audio.size == 0:
        raise AudioError(f"{name}: audio has zero samples")
    _check_samples(audio, name)
    mono = resample(audio.mean(axis=1, dtype=np.float32), rate, target_rate)
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


def resample(audio: np.ndarray, orig_rate: float, target_rate: float) -> np.ndarray:
    """Band-limited resampling of a 1-D signal (soxr through librosa); a no-op when the rates agree."""
    if orig_rate == target_rate:
        return audio
    import librosa

    return librosa.resample(audio, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq")


def save_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> None:
    """Write mono samples as 16-bit PCM WAV, atomically (a temp file, then a rename): whole or not at all."""
    import soundfile

    with atomic_path(path) as tmp:
        soundfile.write(tmp, audio, sample_rate, subtype="PCM_16", format="WAV")


def stream_audio(
    source: AudioSource | np.ndarray,
    sample_rate: int | None = None,
    target_rate: int = SAMPLE_RATE,
    block_s: float = 1.0,
) -> Iterator[np.ndarray]:
    """load_audio in consecutive blocks of about block_s seconds, for files too long to hold decoded.

    Files libsndfile opens (WAV, FLAC, OGG Vorbis/Opus, MP3, ...) are decoded block by block and resampled by a
    streaming resampler, so memory stays at a block whatever the length; the other formats (M4A, ...) are decoded
    whole through audioread/ffmpeg first, and so are spans (segments are short). Concatenated, the blocks equal
    load_audio(source). A missing, empty or
    unreadable file raises AudioError here; NaN, infinite or out-of-range samples raise it when their block is
    reached.
    """
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError("<array>: sample_rate is required when passing an array")
        audio, name, rate = from_array(source), "<array>", _check_rate(sample_rate, "<array>")
        samples, blocks = audio.size, _array_blocks(audio, rate, block_s)
    elif isinstance(source, AudioSpan):
        (audio, rate), name = _read_span(source), str(source)
        samples, blocks = audio.size, _array_blocks(audio, rate, block_s)
    else:
        import soundfile

        path, name = Path(source), str(source)
        _check_file(path)
        try:
            info = soundfile.info(name)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
            audio, rate = _read_with_ffmpeg(path, str(err) or type(err).__name__)
            samples, blocks = audio.size, _array_blocks(audio, rate, block_s)
        else:
            rate, samples = int(info.samplerate), info.frames * info.channels
            blocks = _file_blocks(path, max(1, round(block_s * rate)))
    rate = _check_rate(rate, name)
    if samples == 0:  # an array of shape (n, 0) too, which would otherwise mix to n NaNs
        raise AudioError(f"{name}: audio has zero samples")
    return _prepare_blocks(blocks, rate, target_rate, name)


def _array_blocks(audio: np.ndarray, rate: int, block_s: float) -> Iterator[np.ndarray]:
    step = max(1, round(block_s * rate))
    return (audio[i : i + step] for i in range(0, len(audio), step))


def _file_blocks(path: Path, frames: int) -> Iterator[np.ndarray]:
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as file:
            yield from _read_blocks(file, frames)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(f"{path}: not a readable audio file ({err or type(err).__name__})") from err


def _read_blocks(file: soundfile.SoundFile, frames: int, stop: int | None = None) -> Iterator[np.ndarray]:
    """(frames, channels) float32 blocks of an open soundfile.SoundFile until it ends (or `stop` frames are read),
    however many frames its header promised; a block never holds more than READ_BLOCK_SAMPLES samples, whatever
    the channel count."""
    # soundfile seeks to where it already is after every read of a seekable file; in a mono MP3 below
    # 32 kHz (MPEG-2/2.5) that seek upsets the decoder and garbles the start of every block. Not seekable, it
    # also reads exactly the frames asked for instead of allocating for the frame count the header claims.
    file.seekable = lambda: False
    frames = max(1, min(frames, READ_BLOCK_SAMPLES // file.channels))
    left = stop
    while (left is None or left > 0) and len(block := file.read(frames if left is None else min(frames, left),
                                                                 dtype="float32", always_2d=True)):
        if left is not None:
            left -= len(block)
        yield block


def _prepare_blocks(blocks: Iterator[np.ndarray], rate: int, target_rate: int, name: str) -> Iterator[np.ndarray]:
    """_prepare for a stream of (samples, channels) blocks, the resampler carrying its state across them."""
    import soxr

    resampler = None
    if rate != target_rate:  # the quality librosa's "soxr_hq" asks for, so the output matches resample()
        resampler = soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
    samples_in = samples_out = 0
    for block in blocks:
        _check_samples(block, name)
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
