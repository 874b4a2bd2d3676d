"""Input fuzzing (hypothesis) of asr.audio.load_audio / stream_audio, asr.manifest.read_manifest and
asr.corpora.kaldi.kaldi_data_dir.

Every input, however damaged, comes back as audio (a 1-D float32 array at the target rate, finite, within
[-1, 1]) or as a list of manifest entries, or raises the library's typed error (AudioError, ManifestError) with a
message naming the file: never another exception, never a hang (each call runs under a watchdog), never memory
that follows what a header claims rather than what the file holds (each call's traced peak is bounded).

Inputs: numpy arrays of every dtype, 0 to 3 dimensions, 0 to 600+ samples, 0 to 10 channels, NaN/Inf, any
sample rate; files soundfile writes (WAV PCM_U8/16/24/32, FLOAT, DOUBLE, u-law, ADPCM; FLAC 8/16/24-bit; OGG
Vorbis and Opus; MP3; AIFF, CAF, W64, RF64, AU) at 8-96 kHz with 1-8 channels and 0, 1 or more frames, then
truncated (inside the header too), byte-flipped, with size/rate/channel fields and Ogg granule positions set to
absurd values (CRC fixed, so the reader believes them), bytes inserted, removed or appended, and named with a
wrong extension; random bytes behind real magic numbers; manifests of random bytes, random JSON, wrongly typed
fields, non-UTF-8, BOMs, blank, very long and deeply nested lines; Kaldi data directories with duplicate keys,
non-UTF-8 lines, wav.scp commands (never run), missing or damaged audio, missing lines and files, segments beyond
their recording and garbage.

By default each test runs a few dozen to a few hundred cases (about a minute for the file). The long form:
    ASR_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_inputs.py --hypothesis-show-statistics
The cases each test ran and how they ended are printed after the session and written to
test-artifacts/fuzz-counts.json (or $ASR_TEST_ARTIFACTS).
"""
from __future__ import annotations

import collections
import contextlib
import faulthandler
import io
import json
import math
import numbers
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from asr import AudioError, ManifestError
from asr.audio import load_audio, stream_audio
from asr.manifest import read_manifest

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

EXAMPLES = int(os.environ.get("ASR_FUZZ_EXAMPLES", "0"))  # 0: each test's default
TIME_LIMIT_S = 30.0  # one call; the slowest seen is well under 2 s (an ffmpeg fallback on a busy machine)
ARTIFACTS = Path(os.environ.get("ASR_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
SUFFIXES = [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".txt", ""]


def fuzz(default_examples: int) -> settings:
    """Settings for one fuzz test: its default case count unless ASR_FUZZ_EXAMPLES is set; no example database,
    so nothing is written into the source tree; a deadline that flags slowness well before the watchdog."""
    return settings(
        max_examples=EXAMPLES or default_examples,
        deadline=timedelta(seconds=10),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- harness: watchdog, memory, outcome counting -----------------------------------------------------------------

class Hang(BaseException):
    """A call ran past TIME_LIMIT_S. A BaseException, so the library's `except Exception` cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float = TIME_LIMIT_S):
    """SIGALRM interrupts a hang that returns to Python now and then (a wait on an ffmpeg pipe); should C code hold
    on without returning, faulthandler ends the whole run with every thread's traceback at twice the limit."""

    def expire(signum, frame):
        raise Hang(f"ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(2 * seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def memory_limit(input_bytes: int) -> int:
    """The traced peak allowed for one call on an input of this size: two of the library's 16 MiB read blocks and
    change, plus 1000 bytes per input byte (upsampling 1 kHz to 48 kHz float32 is 192 per 8-bit sample). A header
    that sets the allocation (a FLAC's 10^9 frames, a WAV at 1 Hz) goes far past it."""
    return 48 * 2**20 + 1000 * input_bytes


def outcome(test: str, call):
    """call() under the watchdog and tracemalloc: (its result, or the typed error it raised; traced peak bytes).
    Any other exception propagates and fails the test."""
    start = time.perf_counter()
    tracemalloc.start()
    try:
        with time_limit():
            result = call()
    except (AudioError, ManifestError) as err:
        result = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        COUNTS[test]["slowest call s"] = max(COUNTS[test]["slowest call s"], time.perf_counter() - start)
    return result, peak


def count(test: str, what: str) -> None:
    COUNTS[test][what] += 1
    event(what)  # hypothesis statistics (--hypothesis-show-statistics)


def check_audio(test: str, function: str, call, name: str, input_bytes: int) -> np.ndarray | None:
    """call() returned valid audio, or raised AudioError whose one-line message names `name`, within the time and
    memory limits. Returns the audio, or None after an AudioError."""
    result, peak = outcome(test, call)
    assert peak < memory_limit(input_bytes), f"{function}({name}) peaked at {peak / 2**20:.0f} MiB traced"
    count(test, f"{function}: {type(result).__name__ if isinstance(result, Exception) else 'audio'}")
    if isinstance(result, Exception):
        message = str(result)
        assert isinstance(result, AudioError), repr(result)
        assert name in message and "\n" not in message, message
        return None
    assert isinstance(result, np.ndarray) and result.dtype == np.float32 and result.ndim == 1, repr(result)
    assert result.size >= 1
    assert np.isfinite(result).all()
    assert result.min() >= -1.0 and result.max() <= 1.0
    return result


def load_and_stream(test: str, source, name: str, sample_rate=None, target_rate: int = 16000, block_s: float = 1.0):
    """check_audio for load_audio and for the whole of stream_audio (None for a call that raised)."""
    size = source.nbytes if isinstance(source, np.ndarray) else source.stat().st_size
    loaded = check_audio(test, "load_audio", lambda: load_audio(source, sample_rate, target_rate), name, size)
    streamed = check_audio(
        test, "stream_audio",
        lambda: np.concatenate(list(stream_audio(source, sample_rate, target_rate, block_s))),  # [] fails: no audio
        name, size,
    )
    return loaded, streamed


def assert_same_audio(loaded: np.ndarray | None, streamed: np.ndarray | None) -> None:
    """stream_audio's blocks, concatenated, equal load_audio; and one raises exactly when the other does."""
    assert (loaded is None) == (streamed is None), (loaded, streamed)
    if loaded is not None:
        assert len(loaded) == len(streamed)
        np.testing.assert_allclose(streamed, loaded, atol=1e-4)


@contextlib.contextmanager
def case(test: str):
    """Count one case of `test` and the seconds it took."""
    start = time.perf_counter()
    try:
        yield
    finally:
        COUNTS[test]["cases"] += 1
        COUNTS[test]["seconds"] += time.perf_counter() - start


class _Report:
    """A plugin registered at module teardown: prints the case counts at the end of the session."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_sep("-", "input fuzzing: cases run (tests/test_fuzz_inputs.py)")
        for test, counts in COUNTS.items():
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if ":" in k)
            terminalreporter.write_line(f"{test}: {counts['cases']} cases in {counts['seconds']:.1f} s, slowest call "
                                        f"{counts['slowest call s']:.2f} s ({outcomes})")


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    if not COUNTS:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    summary = {test: dict(counts) for test, counts in COUNTS.items()}
    summary["examples_setting"] = EXAMPLES or "default"
    (ARTIFACTS / "fuzz-counts.json").write_text(json.dumps(summary, indent=1))
    request.config.pluginmanager.register(_Report(), "asr-fuzz-report")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the cases' files."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def warm_up(workdir):
    """A resample and a fallback decode first, so that importing librosa, soxr and audioread (seconds, and memory
    tracemalloc would see) is not charged to the first case."""
    load_audio(np.zeros(10, np.float32), 8000)
    list(stream_audio(np.zeros(10, np.float32), 8000))
    (workdir / "warm.mp3").write_bytes(b"\x00not audio" * 100)
    with pytest.raises(AudioError):
        load_audio(workdir / "warm.mp3")


# -- arrays --------------------------------------------------------------------------------------------------------

PCM_DTYPES = st.sampled_from([np.int8, np.uint8, np.int16, np.uint16, ">i2", np.int32, np.uint32, np.int64,
                              np.uint64, np.float16, np.float32, ">f4", np.float64, np.longdouble])
OTHER_DTYPES = st.sampled_from([bool, np.complex64, np.complex128, object, "m8[ns]", "M8[s]", "U4", "S2",
                                [("left", "<i2"), ("right", "<i2")]])
OBJECTS = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3))
COMMON_RATES = st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000])
SAMPLE_RATES = st.one_of(
    COMMON_RATES,
    COMMON_RATES,  # twice: half the cases have a plausible rate
    st.integers(-10, 2_000_000),
    st.floats(),
    st.sampled_from([0, 1, 999, 1000, 1_000_000, 1_000_001, 2**31, 2**64, True, None, "16000", np.int64(16000),
                     np.float32(22050.0)]),
)


@st.composite
def sample_arrays(draw) -> np.ndarray:
    dtype = np.dtype(draw(PCM_DTYPES | PCM_DTYPES | OTHER_DTYPES))  # two in three of a type audio comes in
    size = st.one_of(st.integers(0, 10), st.integers(0, 600))
    ndim = draw(st.sampled_from([0, 1, 1, 1, 2, 2, 2, 3]))
    shape = tuple(draw(size) if ndim < 3 else draw(st.integers(0, 4)) for _ in range(ndim))
    elements = OBJECTS if dtype == object else None
    if dtype.kind == "f" and draw(st.booleans()):  # half plausible audio, half anything a float holds
        elements = st.floats(-1.0, 1.0, width=min(dtype.itemsize * 8, 64))
    return draw(hnp.arrays(dtype, shape, elements=elements))


def array_frames(array: np.ndarray) -> int | None:
    """Frames in an array load_audio must accept (its documented rules), or None when it must raise."""
    if array.dtype.kind not in "iuf" or array.ndim not in (1, 2) or array.size == 0:
        return None
    frames, channels = (len(array), 1) if array.ndim == 1 else array.shape
    if array.ndim == 2 and array.shape[0] <= 8 and array.shape[1] > array.shape[0]:  # (channels, samples)
        frames, channels = channels, frames
    if channels > 8:
        return None
    if array.dtype.kind == "f":
        with np.errstate(over="ignore"):
            as32 = array.astype(np.float32)
        if not np.isfinite(as32).all() or np.abs(as32).max() > 2.0**32:
            return None
    return frames


@given(array=sample_arrays(), sample_rate=SAMPLE_RATES, target_rate=st.sampled_from([16000, 8000, 22050, 48000]),
       block_s=st.sampled_from([1.0, 0.25, 0.01]))
@fuzz(500)
def test_arrays_give_audio_or_audio_error(array, sample_rate, target_rate, block_s):
    """Any array at any rate: valid audio of the right length, or AudioError; stream_audio agrees with load_audio."""
    with case("arrays"), np.errstate(all="ignore"):
        loaded, streamed = load_and_stream("arrays", array, "<array>", sample_rate, target_rate, block_s)
        assert_same_audio(loaded, streamed)
        frames = array_frames(array)
        if frames is None or not isinstance(sample_rate, numbers.Real) or not 1000 <= sample_rate <= 1_000_000:
            assert loaded is None, "an array the rules refuse was accepted"
        else:
            assert loaded is not None, "an array the rules accept was refused"
            assert len(loaded) == math.ceil(frames * (target_rate / int(sample_rate)))  # as librosa.resample


# -- files: valid ones, then damaged -------------------------------------------------------------------------------

ANY_RATE = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000)  # plus any integer in 8000..96000
# (format, subtype, the rates it takes or None for any, most channels, suffix)
WRITABLE = [
    *[("WAV", s, None, 8, ".wav") for s in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")],
    *[("WAV", s, None, 8, ".wav") for s in ("ULAW", "ALAW")],
    *[("WAV", s, None, 2, ".wav") for s in ("IMA_ADPCM", "MS_ADPCM")],
    *[("FLAC", s, None, 8, ".flac") for s in ("PCM_S8", "PCM_16", "PCM_24")],
    ("OGG", "VORBIS", None, 8, ".ogg"),
    ("OGG", "OPUS", (8000, 12000, 16000, 24000, 48000), 8, ".ogg"),
    ("MP3", "MPEG_LAYER_III", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000), 2, ".mp3"),
    *[(f, s, None, 8, ".wav") for f in ("AIFF", "CAF", "W64", "RF64", "AU") for s in ("PCM_16", "FLOAT")],
    ("WAVEX", "PCM_24", None, 8, ".wav"),
]
FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
INEXACT_LENGTH = {"IMA_ADPCM", "MS_ADPCM", "VORBIS", "OPUS", "MPEG_LAYER_III"}  # coded in blocks of frames


def write_audio(fmt: str, subtype: str, rate: int, channels: int, frames: int, content: str, seed: int):
    """The file's bytes, and whether its samples are ones load_audio takes (finite, not absurdly large)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / rate
    audio = {
        "noise": lambda: rng.uniform(-1, 1, (frames, channels)),
        "sine": lambda: 0.5 * np.sin(2 * np.pi * 440 * t + np.arange(channels)),
        "silence": lambda: np.zeros((frames, channels)),
        "loud": lambda: rng.uniform(-8, 8, (frames, channels)),  # clipped by integer formats, kept by float ones
        "nonfinite": lambda: rng.choice([0.1, np.nan, np.inf, -np.inf], (frames, channels)),
        "huge": lambda: rng.choice([0.1, 1e30, -3e38], (frames, channels)),
    }[content]()
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    if subtype == "FLOAT":
        audio = audio.astype(np.float32)
    valid = subtype not in FLOAT_SUBTYPES or (np.isfinite(audio).all() and not (np.abs(audio) > 2.0**32).any())
    return buffer.getvalue(), valid


# Ogg pages carry a CRC: a field edited without fixing it only tests the CRC check, so edits recompute it.
def _crc_entry(i: int) -> int:
    r = i << 24
    for _ in range(8):
        r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
    return r & 0xFFFFFFFF


OGG_CRC = [_crc_entry(i) for i in range(256)]


def ogg_pages(data: bytes | bytearray) -> list[tuple[int, int]]:
    """(start, end) of each well-formed Ogg page, in order, up to the first that is not."""
    pages, start = [], 0
    while data[start : start + 4] == b"OggS" and start + 27 <= len(data):
        segments = data[start + 26]
        end = start + 27 + segments + sum(data[start + 27 : start + 27 + segments])
        if end > len(data):
            break
        pages.append((start, end))
        start = end
    return pages


def fix_ogg_crcs(data: bytearray) -> None:
    for start, end in ogg_pages(data):
        data[start + 22 : start + 26] = b"\0\0\0\0"
        crc = 0
        for byte in data[start:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ OGG_CRC[(crc >> 24) ^ byte]
        struct.pack_into("<I", data, start + 22, crc)


def header_fields(data: bytes) -> dict[str, tuple[int, str, int, int]]:
    """Where the sizes, frame counts, rates and channel counts sit, by name: (offset, unsigned struct format, bit
    shift, bit width). RIFF/RF64 WAV, W64, AIFF, AU, CAF, FLAC STREAMINFO, Ogg granule positions and the
    Vorbis/Opus identification headers, the MP3 Xing/Info frame count."""
    def whole(offset: int, fmt: str) -> tuple[int, str, int, int]:
        return offset, fmt, 0, struct.calcsize(fmt) * 8

    fields, find = {}, data.find
    if data[:4] in (b"RIFF", b"RF64"):
        fields["riff_size"] = whole(4, "<I")
        if (fmt := find(b"fmt ")) >= 0:
            fields.update(fmt_size=whole(fmt + 4, "<I"), channels=whole(fmt + 10, "<H"), rate=whole(fmt + 12, "<I"),
                          byte_rate=whole(fmt + 16, "<I"), block_align=whole(fmt + 20, "<H"),
                          bits=whole(fmt + 22, "<H"))
        if (chunk := find(b"data")) >= 0:
            fields["data_size"] = whole(chunk + 4, "<I")
        if (ds64 := find(b"ds64")) >= 0:  # RF64's 64-bit sizes
            fields.update(ds64_riff_size=whole(ds64 + 8, "<Q"), ds64_data_size=whole(ds64 + 16, "<Q"),
                          ds64_frames=whole(ds64 + 24, "<Q"))
    elif data[:4] == b"riff":  # W64: 16-byte chunk GUIDs, 64-bit sizes
        fields["riff_size"] = whole(16, "<Q")
        if (fmt := find(b"fmt ")) >= 0:
            fields.update(fmt_size=whole(fmt + 16, "<Q"), channels=whole(fmt + 26, "<H"), rate=whole(fmt + 28, "<I"))
        if (chunk := find(b"data")) >= 0:
            fields["data_size"] = whole(chunk + 16, "<Q")
    elif data[:4] == b"FORM":  # AIFF
        fields["form_size"] = whole(4, ">I")
        if (comm := find(b"COMM")) >= 0:
            fields.update(channels=whole(comm + 8, ">H"), frames=whole(comm + 10, ">I"), bits=whole(comm + 14, ">H"),
                          rate_exponent=whole(comm + 16, ">H"))
        if (ssnd := find(b"SSND")) >= 0:
            fields["ssnd_size"] = whole(ssnd + 4, ">I")
    elif data[:4] == b".snd":  # AU
        fields.update(data_offset=whole(4, ">I"), data_size=whole(8, ">I"), encoding=whole(12, ">I"),
                      rate=whole(16, ">I"), channels=whole(20, ">I"))
    elif data[:4] == b"caff":
        if (desc := find(b"desc")) >= 0:
            fields.update(rate=whole(desc + 12, ">Q"), channels=whole(desc + 40, ">I"))  # rate: float64 bits
        if (chunk := find(b"data")) >= 0:
            fields["data_size"] = whole(chunk + 4, ">Q")  # -1: to the end of the file
    elif data[:4] == b"fLaC":  # STREAMINFO; then rate 20 bits, channels-1 3, bits-1 5, total samples 36 (0: unknown)
        fields.update(min_block=whole(8, ">H"), max_block=whole(10, ">H"), total_samples=(18, ">Q", 0, 36),
                      bits=(18, ">Q", 36, 5), channels=(18, ">Q", 41, 3), rate=(18, ">Q", 44, 20))
    elif data[:4] == b"OggS":
        pages = ogg_pages(data)
        for i, (start, _) in [*enumerate(pages[:2]), (-1, pages[-1])] if pages else []:
            fields[f"granule_{'last' if i < 0 else i}"] = whole(start + 6, "<Q")
        if (head := find(b"\x01vorbis")) >= 0:
            fields.update(channels=(head + 11, "<B", 0, 8), rate=whole(head + 12, "<I"))
        if (head := find(b"OpusHead")) >= 0:
            fields.update(channels=(head + 9, "<B", 0, 8), pre_skip=whole(head + 10, "<H"), rate=whole(head + 12, "<I"))
    for tag in (b"Xing", b"Info"):  # MP3 VBR/CBR header: flags, then the frame count
        if (xing := find(tag)) >= 0:
            fields.update(xing_flags=whole(xing + 4, ">I"), xing_frames=whole(xing + 8, ">I"))
    return {name: f for name, f in fields.items() if f[0] + struct.calcsize(f[1]) <= len(data)}


def set_field(data: bytearray, field: tuple[int, str, int, int], value: int) -> None:
    offset, fmt, shift, width = field
    (word,) = struct.unpack_from(fmt, data, offset)
    mask = ((1 << width) - 1) << shift
    struct.pack_into(fmt, data, offset, (word & ~mask) | ((value << shift) & mask))


@st.composite
def damaged(draw, data: bytes) -> tuple[bytes, list[str]]:
    """data after 0 to 3 kinds of damage, and their names."""
    data, names = bytearray(data), []
    for kind in draw(st.lists(st.sampled_from(["field", "field", "truncate", "flip", "zero", "insert", "delete",
                                                "append"]), max_size=3)):
        n = len(data)
        head = st.integers(0, max(min(n, 96) - 1, 0))  # inside the header
        anywhere = st.integers(0, max(n - 1, 0))
        if kind == "field" and (fields := header_fields(bytes(data))):
            name = draw(st.sampled_from(sorted(fields)))
            field, width = fields[name], fields[name][3]
            value = draw(st.sampled_from([0, 1, 2, (1 << width) - 1, (1 << (width - 1)) - 1, n + 1, n * 1000, 7])
                         | st.integers(0, (1 << width) - 1))
            set_field(data, field, value)
            if data[:4] == b"OggS":
                fix_ogg_crcs(data)
            names.append(f"{name}={value}")
        elif kind == "truncate" and n:
            cut = draw(head | anywhere)
            del data[cut:]
            names.append(f"truncate@{cut}")
        elif kind == "flip" and n:
            for position in draw(st.lists(head | anywhere, min_size=1, max_size=8)):
                data[position] ^= draw(st.integers(1, 255))
            names.append("flip")
        elif kind == "zero" and n:
            start, length = draw(head | anywhere), draw(st.integers(1, 64))
            data[start : start + length] = bytes(len(data[start : start + length]))
            names.append(f"zero@{start}")
        elif kind == "insert":
            position = draw(head | anywhere)
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
            names.append(f"insert@{position}")
        elif kind == "delete" and n:
            start = draw(head | anywhere)
            del data[start : start + draw(st.integers(1, 64))]
            names.append(f"delete@{start}")
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=256) | st.just(bytes(data)))  # garbage, or the file twice
            names.append("append")
    return bytes(data), names


@st.composite
def audio_files(draw) -> tuple[bytes, dict]:
    fmt, subtype, rates, max_channels, suffix = draw(st.sampled_from(WRITABLE))
    rate = draw(st.sampled_from(rates) if rates else st.sampled_from(ANY_RATE) | st.integers(8000, 96000))
    if fmt == "FLAC" and rate > 65535:  # a FLAC frame header holds such a rate only in tens of Hz
        rate -= rate % 10
    channels = draw(st.integers(1, max_channels))
    frames = draw(st.sampled_from([0, 1, 2]) | st.integers(0, 1500))
    contents = ["noise", "sine", "silence", "loud"] + (["nonfinite", "huge"] if subtype in FLOAT_SUBTYPES else [])
    content = draw(st.sampled_from(contents))
    data, valid = write_audio(fmt, subtype, rate, channels, frames, content, draw(st.integers(0, 2**32 - 1)))
    return data, dict(fmt=fmt, subtype=subtype, rate=rate, channels=channels, frames=frames, content=content,
                      valid_samples=valid, suffix=suffix)


@given(written=audio_files(), damage=st.data(), suffix=st.sampled_from([None, *SUFFIXES]),
       target_rate=st.sampled_from([16000, 16000, 8000, 48000]), block_s=st.sampled_from([1.0, 0.1]))
@fuzz(400)
def test_written_and_damaged_files_give_audio_or_audio_error(workdir, written, damage, suffix, target_rate, block_s):
    """Valid files load (lossless ones to the exact length) and stream to the same audio; damaged ones, under any
    name, load or raise AudioError, in bounded time and memory."""
    data, info = written
    data, damages = damage.draw(damaged(data), label="damage")
    suffix = info["suffix"] if suffix is None else suffix  # None: the right extension
    path = workdir / f"file{suffix}"
    path.write_bytes(data)
    with case("files"), np.errstate(all="ignore"):
        loaded, streamed = load_and_stream("files", path, str(path), target_rate=target_rate, block_s=block_s)
        count("files", "file: damaged" if damages else "file: intact")
        if damages:
            return
        assert_same_audio(loaded, streamed)
        if info["frames"] == 0 or not info["valid_samples"]:
            assert loaded is None, info
        elif info["subtype"] not in INEXACT_LENGTH:
            assert loaded is not None, info
            assert len(loaded) == math.ceil(info["frames"] * (target_rate / info["rate"])), info


MAGIC = [b"", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", b"RIFF\xff\xff\xff\xffWAVE",
         b"RF64\xff\xff\xff\xffWAVEds64",
         b"riff.\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00", b"fLaC\x00\x00\x00\x22", b"OggS\x00\x02",
         b"ID3\x03\x00\x00\x00\x00\x00\x00", b"\xff\xfb\x90\x64", b"FORM\x00\x00\x00\x00AIFFCOMM", b".snd",
         b"caff\x00\x01\x00\x00", b"\x00\x00\x00\x20ftypM4A ", b"#!AMR\n", b"NIST_1A\n", b"#EXTM3U\n"]


@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
@fuzz(100)
def test_random_bytes_give_audio_or_audio_error(workdir, magic, body, suffix):
    """Random bytes, bare or behind a real format's magic number, under every extension the loaders see."""
    path = workdir / f"random{suffix}"
    path.write_bytes(magic + body)
    with case("random bytes"), np.errstate(all="ignore"):
        load_and_stream("random bytes", path, str(path))


# -- regressions found by the fuzzing ------------------------------------------------------------------------------

def sine_file(path: Path, fmt: str = "WAV", subtype: str = "PCM_16", rate: int = 16000, frames: int = 16000) -> bytes:
    sf.write(path, 0.5 * np.sin(np.arange(frames) / 10), rate, format=fmt, subtype=subtype)
    return path.read_bytes()


def edited(data: bytes, fields: dict[str, int]) -> bytes:
    """data with header fields set to values (Ogg CRCs fixed)."""
    data = bytearray(data)
    for name, value in fields.items():
        set_field(data, header_fields(bytes(data))[name], value)
    if data[:4] == b"OggS":
        fix_ogg_crcs(data)
    return bytes(data)


@pytest.mark.parametrize(
    ("array", "sample_rate", "reason"),
    [
        (np.zeros(100, "m8[ns]"), 16000, "unsupported sample type"),  # was ValueError from np.iinfo
        (np.zeros(100, np.float32), float("nan"), "invalid sample rate"),  # was ValueError from int()
        (np.zeros(100, np.float32), float("inf"), "invalid sample rate"),  # was OverflowError
        (np.zeros(100, np.float32), "16000", "invalid sample rate"),
        (np.zeros(16000, np.float32), 1, "invalid sample rate"),  # was 16000x the samples: 1 s became 4.4 hours
        (np.zeros(100, np.float32), 10**9, "invalid sample rate"),
        # Finite float32 samples whose mix overflows: load_audio raised librosa's ParameterError, stream_audio
        # returned NaN.
        (np.full((100, 4), 3e38, np.float32) * np.float32([1, 1, -1, -1]), 8000, "out of range"),
        (np.full((100, 2), 3e38, np.float32), 8000, "out of range"),  # the same
        (np.zeros((0, 5), np.float32), 16000, "zero samples"),  # stream_audio returned 5 NaNs
        (np.zeros((5, 0), np.float32), 16000, "zero samples"),
    ],
    ids=["timedelta", "rate_nan", "rate_inf", "rate_str", "rate_1hz", "rate_1ghz", "overflowing_mix",
         "overflowing_resample", "no_channels_0x5", "no_channels_5x0"],
)
def test_array_regressions(array, sample_rate, reason):
    for call in (lambda: load_audio(array, sample_rate), lambda: list(stream_audio(array, sample_rate))):
        with pytest.raises(AudioError, match=reason):
            call()


def test_path_too_long_for_the_file_system(tmp_path):
    path = tmp_path / ("x" * 300 + ".wav")  # was OSError(ENAMETOOLONG) from Path.exists
    for call in (load_audio, stream_audio):
        with pytest.raises(AudioError, match="cannot access") as info:
            call(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("fmt", "subtype", "fields", "frames"),
    [
        ("FLAC", "PCM_16", {"total_samples": 2**36 - 1}, 16000),  # tried to allocate 256 GiB, then "not readable"
        ("FLAC", "PCM_16", {"total_samples": 10**9}, 16000),  # allocated 4 GB (untouched, so RSS hid it)
        ("FLAC", "PCM_16", {"total_samples": 0}, 16000),  # 0 = unknown, as streaming encoders write: "too big"
        # Two channels declared, one coded: soundfile fails mid-read, and the fallback through librosa.load retried
        # soundfile, which allocated 2^32 stereo frames (32 GiB). Found by the fuzzer's long form.
        ("FLAC", "PCM_16", {"channels": 1, "total_samples": 2**32 + 1}, None),
        # Too many channels for libsndfile; the fallback's first choice, the standard library's sunau, read 1024
        # frames of 2^20 channels at a time (2 GiB). Found by the fuzzer's long form.
        ("AU", "PCM_16", {"channels": 2**20}, None),
        ("OGG", "VORBIS", {"granule_last": 2**62}, None),  # CRC fixed, so the reader believes it
        ("WAV", "PCM_16", {"data_size": 2**32 - 1}, 16000),
        ("WAV", "PCM_16", {"riff_size": 2**32 - 1}, 16000),
        ("RF64", "PCM_16", {"ds64_frames": 2**62}, None),
        ("AIFF", "PCM_16", {"frames": 2**32 - 1}, None),
        ("WAV", "PCM_16", {"rate": 1}, "rate"),  # 1 Hz: was 256M samples, 2.1 GB and 11 s; now refused
    ],
    ids=["flac_total_2^36", "flac_total_1e9", "flac_total_unknown", "flac_channels_changed", "au_channels_2^20",
         "ogg_granule_2^62", "wav_data_2^32", "wav_riff_2^32", "rf64_count_2^62", "aiff_frames_2^32", "wav_rate_1hz"],
)
def test_absurd_declared_sizes_in_a_fresh_process(tmp_path, fmt, subtype, fields, frames):
    """What a header claims never sets the memory: traced peak and the process's peak RSS growth stay small; a
    FLAC whose header has the wrong (or no) length still loads in full."""
    path = tmp_path / "absurd.audio"
    path.write_bytes(edited(sine_file(tmp_path / "valid", fmt, subtype), fields))
    child = """
import json, resource, sys, tracemalloc
import audioread, librosa, numpy as np, soundfile, soxr  # imported before the baseline, as a run would have
from asr import AudioError
from asr.audio import load_audio, stream_audio
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {}
calls = [("load", lambda: load_audio(sys.argv[1])),
         ("stream", lambda: np.concatenate(list(stream_audio(sys.argv[1]))))]
for name, call in calls:
    tracemalloc.start()
    try:
        result[name] = len(call())
    except AudioError as err:
        result[name] = str(err)
    result[name + "_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
result["rss_growth"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
print(json.dumps(result))
"""
    run = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    for name in ("load", "stream"):
        assert result[name + "_peak"] < 64 * 2**20, result
        assert isinstance(result[name], int) or str(path) in result[name], result
    assert result["rss_growth"] < 256 * 2**20, result
    if frames == 16000:
        assert result["load"] == result["stream"] == 16000, result
    elif frames == "rate":
        assert "invalid sample rate 1 " in result["load"] and "invalid sample rate 1 " in result["stream"], result


# -- manifests -----------------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
GOOD = {
    "audio_filepath": st.sampled_from(["a.wav", "sub/b.flac", "./sub/../a.wav", "ABSOLUTE"]),
    "duration": st.floats(1e-3, 1e5) | st.integers(1, 10**6) | st.sampled_from([5e-324, 1e308, 10**300]),
    "text": TEXT,
}
OFFSETS = st.floats(0, 1e5) | st.integers(0, 10**6)  # optional: a span of the file (Kaldi segments)
BAD = {
    "offset": st.sampled_from([-1, -1e-9, math.nan, math.inf, True, None, "0", [0], 10**400]),
    "audio_filepath": st.sampled_from(["", "missing.wav", "sub", "x" * 5000, "a\0b", "\ud800", "/", 5, None, [],
                                       {}, True]),
    "duration": st.sampled_from([0, -0.0, -1, -1e-9, math.nan, math.inf, -math.inf, True, False, None, "1.5", "",
                                 [1], {"s": 1}, 10**400, -(10**400), 1e309]) | st.text(max_size=3),
    "text": JSON_VALUES.filter(lambda v: not isinstance(v, str)),
}
BLANK = [b"", b"   ", b"\t", b"\r", b" \x0c "]


@st.composite
def manifest_lines(draw, root: Path) -> tuple[list[bytes], bool]:
    """Lines of a manifest (without their ends) and whether every one is a valid entry or blank."""
    lines, all_valid = [], True
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["valid"] * 8 + ["wrong field", "wrong field", "missing field", "json", "text",
                                                    "bytes", "blank", "bom", "long", "deep", "huge integer"]))
        entry = {key: draw(strategy) for key, strategy in GOOD.items()}
        if entry["audio_filepath"] == "ABSOLUTE":
            entry["audio_filepath"] = str(root / "a.wav")
        entry.update(draw(st.dictionaries(st.sampled_from(["speaker", "source", "lang"]), JSON_VALUES, max_size=2)))
        if draw(st.booleans()):
            entry["offset"] = draw(OFFSETS)
        if kind == "wrong field":
            key = draw(st.sampled_from(list(BAD)))
            entry[key] = draw(BAD[key])
        elif kind == "missing field":
            del entry[draw(st.sampled_from(list(GOOD)))]
        elif kind == "long":
            entry["text"] = "long " * draw(st.sampled_from([1000, 200_000]))
        line = json.dumps(entry, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        line = {
            "json": lambda: json.dumps(draw(JSON_VALUES)).encode(),
            "text": lambda: draw(st.text(max_size=40)).replace("\n", " ").encode("utf-8", "surrogatepass"),
            "bytes": lambda: draw(st.binary(max_size=40)).replace(b"\n", b" "),
            "blank": lambda: draw(st.sampled_from(BLANK)),
            "bom": lambda: b"\xef\xbb\xbf" + line,  # at line 1 a BOM is allowed; later, not
            "deep": lambda: b"[" * (n := draw(st.sampled_from([10, 900, 1100, 100_000]))) + b"]" * n,
            "huge integer": lambda: b'{"audio_filepath": "a.wav", "text": "", "duration": 1' + b"0" * 5000 + b"}",
        }.get(kind, lambda: line)()
        lines.append(line)
        all_valid &= kind in ("valid", "long", "blank") or (kind == "bom" and len(lines) == 1)
    return lines, all_valid


@given(data=st.data(), check_audio=st.booleans(), crlf=st.booleans(), final_newline=st.booleans())
@fuzz(300)
def test_manifests_give_entries_or_manifest_error(workdir, data, check_audio, crlf, final_newline):
    """Manifests of good, wrongly typed and garbage lines: all-valid ones read in full; the rest read as entries that
    keep the format's promises, or raise ManifestError naming the manifest."""
    root = workdir / "manifests"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    for name in ("a.wav", "sub/b.flac"):
        (root / name).write_bytes(b"RIFF")
    lines, all_valid = data.draw(manifest_lines(root), label="lines")
    end = b"\r\n" if crlf else b"\n"
    path = root / "m.jsonl"
    path.write_bytes(end.join(lines) + (end if final_newline and lines else b""))
    with case("manifests"):
        entries = check_manifest("manifests", path, check_audio)
    if all_valid and any(line.strip() for line in lines):
        assert entries is not None, "a manifest of valid lines was refused"
        assert len(entries) == sum(1 for line in lines if line.strip(b" \t\r\x0c\xef\xbb\xbf"))


@given(body=st.binary(max_size=2000) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
       prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b'{"audio_filepath": "a.wav", "duration": 1, "text": ""}\n']),
       check_audio=st.booleans())
@fuzz(150)
def test_random_bytes_manifests_give_entries_or_manifest_error(workdir, body, prefix, check_audio):
    path = workdir / "random.jsonl"
    path.write_bytes(prefix + body)
    with case("manifest bytes"):
        check_manifest("manifest bytes", path, check_audio)


def check_manifest(test: str, path: Path, check_audio: bool) -> list[dict] | None:
    """read_manifest returned entries with the format's promises, or raised ManifestError naming the manifest."""
    result, peak = outcome(test, lambda: read_manifest(path, check_audio=check_audio))
    assert peak < memory_limit(path.stat().st_size), f"read_manifest({path}) peaked at {peak / 2**20:.0f} MiB traced"
    count(test, f"read_manifest: {type(result).__name__ if isinstance(result, Exception) else 'entries'}")
    if isinstance(result, Exception):
        assert isinstance(result, ManifestError), repr(result)
        assert str(path) in str(result), str(result)
        return None
    assert isinstance(result, list) and result
    for entry in result:
        assert isinstance(entry, dict)
        assert isinstance(entry["audio_filepath"], str) and Path(entry["audio_filepath"]).is_absolute()
        assert isinstance(entry["text"], str)
        duration = entry["duration"]
        assert type(duration) in (int, float) and math.isfinite(float(duration)) and duration > 0
        if check_audio:
            assert Path(entry["audio_filepath"]).is_file()
    return result


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"audio_filepath": "a.wav", "text": "", "duration": 1' + b"0" * 400 + b"}", "duration"),  # was OverflowError
        (b'{"audio_filepath": "a.wav", "text": "", "duration": 1' + b"0" * 5000 + b"}", "not valid JSON"),  # ValueError
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # was RecursionError
        (b'{"audio_filepath": "' + b"x" * 5000 + b'", "text": "", "duration": 1}', "cannot access"),  # was OSError
    ],
    ids=["duration_10^400", "integer_5000_digits", "nesting_100000", "audio_path_too_long"],
)
def test_manifest_regressions(tmp_path, content, reason):
    path = tmp_path / "m.jsonl"
    path.write_bytes(content + b"\n")
    with pytest.raises(ManifestError, match=reason) as info:
        read_manifest(path)
    assert f"{path}:1:" in str(info.value)


def test_manifest_path_too_long_and_byte_order_mark(tmp_path):
    with pytest.raises(ManifestError, match="cannot access"):  # was OSError
        read_manifest(tmp_path / ("m" * 300 + ".jsonl"))
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    path = tmp_path / "bom.jsonl"  # Windows editors write a BOM: it was "not valid JSON", now it is read
    path.write_bytes(b'\xef\xbb\xbf{"audio_filepath": "a.wav", "duration": 1.5, "text": "hi"}\n')
    assert [e["text"] for e in read_manifest(path)] == ["hi"]


# -- Kaldi data directories ----------------------------------------------------------------------------------------

KALDI_FILES = ("wav.scp", "text", "utt2spk", "segments", "spk2gender")


@st.composite
def kaldi_damage(draw):
    """A list of (file, kind, number) damages to a good data directory."""
    kinds = st.sampled_from(["duplicate key", "bad utf-8", "command", "missing audio", "drop line", "beyond the end",
                             "garbage line", "random bytes", "empty", "crlf", "delete", "damaged audio"])
    return draw(st.lists(st.tuples(st.sampled_from(KALDI_FILES), kinds, st.integers(0, 5)), max_size=4))


def good_kaldi_dir(folder: Path, segments: bool) -> dict[str, list[bytes]]:
    """Two recordings (16 kHz 16-bit, 8 kHz 8-bit) and the lines of a valid data dir over them."""
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    tone = 0.3 * np.sin(np.linspace(0, 400 * np.pi, 16000)).astype(np.float32)
    sf.write(folder / "audio" / "r1.wav", tone, 16000, subtype="PCM_16")
    sf.write(folder / "audio" / "r2.wav", tone[::2], 8000, subtype="PCM_U8")
    lines = {"wav.scp": [b"r1 audio/r1.wav", b"r2 audio/r2.wav"], "spk2gender": [b"s1 f", b"s2 m"]}
    if segments:
        lines["segments"] = [b"u1 r1 0.0 0.4", b"u2 r1 0.4 -1", b"u3 r2 0 0.9"]
    utts = ["u1", "u2", "u3"] if segments else ["r1", "r2"]
    lines["text"] = [f"{u} hello number {i}".encode() for i, u in enumerate(utts)]
    lines["utt2spk"] = [f"{u} s{1 + i % 2}".encode() for i, u in enumerate(utts)]
    return lines


@given(segments=st.booleans(), damages=kaldi_damage(), data=st.data())
@fuzz(200)
def test_kaldi_data_dirs_give_entries_or_a_typed_error_and_never_run_a_command(workdir, segments, damages, data):
    """Kaldi data directories with duplicate keys, non-UTF-8 lines, commands in wav.scp, missing or damaged audio,
    missing lines and files, segments beyond their recording, garbage: entries whose audio exists, or a
    ManifestError/AudioError naming the file; a command is never run."""
    from asr.corpora.kaldi import kaldi_data_dir

    folder = workdir / "kaldi"
    if folder.exists():
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    lines = good_kaldi_dir(folder, segments)
    sentinel = workdir / "kaldi-command-ran"
    crlf: set[str] = set()
    for name, kind, number in damages:
        rows = lines.setdefault(name, [])
        at = number % len(rows) if rows else 0
        if kind == "duplicate key" and rows:
            rows.append(rows[at])
        elif kind == "bad utf-8":
            rows.insert(at, b"u9 caf\xe9 \xff")
        elif kind == "command":
            rows.insert(at, f"r9 touch {sentinel} |".encode() if number % 2 else f"r9 | touch {sentinel}".encode())
        elif kind == "missing audio":
            rows.insert(at, b"r9 audio/missing.wav")
        elif kind == "drop line" and rows:
            del rows[at]
        elif kind == "beyond the end":
            rows.insert(at, b"u1 r1 0.5 100.0" if number % 2 else b"u1 r2 5 -1")
        elif kind == "garbage line":
            rows.insert(at, data.draw(st.binary(max_size=30)).replace(b"\n", b" ").replace(b"\r", b" "))
        elif kind == "random bytes":
            lines[name] = [data.draw(st.binary(max_size=200))]
        elif kind == "empty":
            lines[name] = []
        elif kind == "crlf":
            crlf.add(name)
        elif kind == "delete":
            lines.pop(name, None)
        elif kind == "damaged audio":
            (folder / "audio" / "r2.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(number * 7))
    for name, rows in lines.items():
        (folder / name).write_bytes((b"\r\n" if name in crlf else b"\n").join(rows))
    with case("kaldi"):
        result, _ = outcome("kaldi", lambda: kaldi_data_dir(folder, root=folder, jobs=1))
    count("kaldi", f"kaldi_data_dir: {type(result).__name__ if isinstance(result, Exception) else 'entries'}")
    assert not sentinel.exists(), "a wav.scp command was run"
    if isinstance(result, Exception):
        assert str(folder) in str(result) and "\n" not in str(result), str(result)
        return
    if not damages:
        assert len(result.entries) == (3 if segments else 2), "a valid data directory lost utterances"
    for entry in result.entries:
        assert Path(entry["audio_filepath"]).is_file() and entry["duration"] > 0 and entry["speaker"]
