"""Voice-activity segmentation: 16 kHz audio of any length in, speech segments of bounded length out.

An energy detector whose threshold follows the recording's noise floor finds pauses; each segment is speech
between pauses plus a little context. Speech that runs on without a pause is cut at its quietest moment before
`max_segment_s`, and those forced cuts overlap so a word cut in two is still heard whole by one segment. Every
segment owns a region of the file's timeline; the regions tile it, so keeping the words whose midpoint falls in
their segment's region transcribes each word exactly once.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from .audio import SAMPLE_RATE, stream_audio
from .errors import ConfigError

_HOP = SAMPLE_RATE // 100  # 10 ms frames: fine enough to place a cut, coarse enough to loop over in Python
_FLOOR_EVERY = 10  # frames between noise-floor updates; a percentile per frame would be slow
_WARMUP_FRAMES = 50  # the first floor is taken over 0.5 s, so speech at the very start is not its own floor
_PRE_EMPHASIS = 0.97  # weighs the speech band over rumble and hum, whose energy wobbles far more in 10 ms frames


@dataclass(frozen=True)
class SegmenterConfig:
    """Detector thresholds and segment bounds (levels in dB, times in seconds)."""

    threshold_db: float = 12.0  # speech starts this far above the noise floor (stationary noise wobbles ~1-3 dB)
    hysteresis_db: float = 6.0  # ... and goes on until it falls this much lower, so fading syllables stay in
    min_level_db: float = -70.0  # speech also reaches this (dBFS): digital silence has no noise floor to sit above
    floor_percentile: float = 10.0  # pauses fill more than this share of ordinary speech, so this is their level
    floor_window_s: float = 10.0  # how far back the floor looks: follows level changes within a few seconds
    min_pause_s: float = 0.3  # quieter stretches than this are stop closures and gaps inside or between words
    min_speech_s: float = 0.1  # less voiced time than this is a click or a knock, not speech
    pad_s: float = 0.15  # context kept on each side of the speech (quiet onsets and releases under the threshold)
    max_segment_s: float = 30.0
    overlap_s: float = 1.0  # each side of a forced cut: longer than a word, so one side hears it whole
    cut_search_s: float = 5.0  # a forced cut goes at the quietest frame of this last stretch before the limit

    def __post_init__(self) -> None:
        if self.max_segment_s < 4 * self.overlap_s or self.max_segment_s < 1.0:  # so each forced cut moves on
            raise ConfigError(f"max_segment_s={self.max_segment_s} must be at least 1 s and 4 x overlap_s")
        if min(self.min_pause_s, self.min_speech_s, self.pad_s, self.overlap_s, self.cut_search_s) < 0:
            raise ConfigError("segmenter durations must not be negative")


@dataclass(frozen=True, eq=False)
class AudioSegment:
    """Speech audio cut from a stream, where it lies in the stream, and the part of the timeline it answers for.

    Times are seconds from the start of the stream. The owned region [own_start, own_end) may reach past the
    audio into the silence around it, and at a forced cut it ends in the middle of the overlap.
    """

    audio: np.ndarray  # 16 kHz mono float32
    offset: int  # index of audio[0] in the stream, in samples
    own_start: float
    own_end: float

    @property
    def start(self) -> float:
        return self.offset / SAMPLE_RATE

    @property
    def end(self) -> float:
        return (self.offset + len(self.audio)) / SAMPLE_RATE


def frame_energy(audio: np.ndarray, previous: float) -> np.ndarray:
    """Energy (dB) of each 10 ms frame of `audio` (whole frames), pre-emphasized and DC removed; `previous` is the
    sample before audio[0], so consecutive pieces give the energies the whole would."""
    emphasized = audio - _PRE_EMPHASIS * np.concatenate([[previous], audio[:-1]])
    return 10 * np.log10(emphasized.reshape(-1, _HOP).var(axis=1, dtype=np.float64) + 1e-10)


def thresholds(window_db: np.ndarray, config: SegmenterConfig) -> tuple[float, float]:
    """(start, stop) levels of speech from the noise floor: a low percentile of the frame energies in the window."""
    rank = int(config.floor_percentile / 100 * (len(window_db) - 1))
    floor = float(np.partition(window_db, rank)[rank])  # np.percentile's overhead would dominate the run time
    start = max(floor + config.threshold_db, config.min_level_db)
    return start, start - config.hysteresis_db


def quietest_frame(energy_db: np.ndarray) -> int:
    """The frame of energy_db[2:-2] with the least power over the 50 ms around it (a dip in the speech, not one
    quiet pitch period), as an index into energy_db[2:-2]."""
    return int(np.argmin(np.convolve(10 ** (energy_db / 10), np.ones(5), mode="valid")))


class _Stream:
    """The recent audio of a stream and its frame energies, addressed by sample and frame numbers from the start of
    the stream; what nothing will look at again is let go (forget)."""

    def __init__(self) -> None:
        self.chunks: deque[np.ndarray] = deque()  # the audio still held, from sample chunks_start on
        self.chunks_start = 0
        self.samples = 0  # pushed so far
        self.energy = np.zeros(0)  # dB per frame, from frame energy_start on
        self.energy_start = 0
        self.last_sample = 0.0  # the one before the first frame without an energy, for the pre-emphasis

    @property
    def frames(self) -> int:
        """Frames with an energy so far."""
        return self.energy_start + len(self.energy)

    def append(self, chunk: np.ndarray) -> None:
        self.chunks.append(chunk)
        self.samples += len(chunk)
        first, last = self.frames, self.samples // _HOP
        if last > first:
            audio = self.audio(first * _HOP, last * _HOP)
            self.energy = np.concatenate([self.energy, frame_energy(audio, self.last_sample)])
            self.last_sample = float(audio[-1])

    def audio(self, start: int, end: int) -> np.ndarray:
        """A copy of samples [start, end), all of which are still held."""
        pieces, position = [], self.chunks_start
        for chunk in self.chunks:
            if position + len(chunk) > start and position < end:
                pieces.append(chunk[max(start - position, 0) : end - position])
            position += len(chunk)
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def energies(self, first: int, last: int | None = None) -> np.ndarray:
        """The energies of frames [first, last) (to the newest without last)."""
        return self.energy[first - self.energy_start : None if last is None else last - self.energy_start]

    def forget(self, before_sample: int, before_frame: int, min_frames: int) -> None:
        """Let go of the audio before a sample, and of the energies before a frame once more than min_frames can go
        (trimming now and then, not on every push)."""
        while self.chunks and self.chunks_start + len(self.chunks[0]) <= before_sample:
            self.chunks_start += len(self.chunks.popleft())
        drop = before_frame - self.energy_start
        if drop > min_frames:
            self.energy, self.energy_start = self.energy[drop:], self.energy_start + drop


@dataclass
class _OpenSegment:
    start: int  # its first sample, context included
    speech_end: int  # the frame after its last loud one
    speech_frames: int  # loud frames in it


class SpeechSegmenter:
    """Incremental voice-activity segmenter: push() 16 kHz audio as it arrives, get each segment once it ends.

    A segment ends after `min_pause_s` of quiet (the endpoint a live dictation waits for) or at `max_segment_s`.
    It holds at most about `max_segment_s` of audio. flush() ends the stream and readies it for a new one.
    """

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.config = c = config or SegmenterConfig()
        self._pad = round(c.pad_s * SAMPLE_RATE)
        self._max = round(c.max_segment_s * SAMPLE_RATE)
        self._overlap = round(c.overlap_s * SAMPLE_RATE)
        self._search = round(c.cut_search_s * SAMPLE_RATE)
        self._close_frames = max(round(c.min_pause_s * SAMPLE_RATE / _HOP), math.ceil(self._pad / _HOP))
        self._min_speech_frames = round(c.min_speech_s * SAMPLE_RATE / _HOP)
        self._window_frames = round(c.floor_window_s * SAMPLE_RATE / _HOP)
        self._reset()

    def _reset(self) -> None:
        self._stream = _Stream()
        self._frame = 0  # next frame to decide
        self._levels = (0.0, 0.0)  # (start, stop) thresholds in dB
        self._open: _OpenSegment | None = None
        self._owned_until = 0  # sample where the next segment's owned region begins

    @property
    def in_speech(self) -> bool:
        """Whether an open segment has enough speech that it will be emitted."""
        return self._open is not None and self._open.speech_frames >= self._min_speech_frames

    def open_segment(self) -> AudioSegment | None:
        """The speech heard since the last finished segment, context included, if a segment is open: what a
        live transcript shows as its partial text. It owns the timeline from the last segment to now."""
        if not self.in_speech:
            return None
        samples = self._stream.samples
        return AudioSegment(self._stream.audio(self._open.start, samples), self._open.start,
                            self._owned_until / SAMPLE_RATE, samples / SAMPLE_RATE)

    def push(self, chunk: np.ndarray) -> list[AudioSegment]:
        """Add 16 kHz mono audio of any length (copied); return the segments it finished, in order."""
        chunk = np.array(chunk, dtype=np.float32)  # a copy: sound-card callbacks reuse their buffers
        if chunk.ndim != 1:
            raise ValueError(f"expected 1-D 16 kHz mono audio, got shape {chunk.shape}")
        self._stream.append(chunk)
        segments = self._decide(final=False)
        # Keep the open segment's audio (or a pad before the next), and the energies the next floor (a window back
        # from the next frame) and a forced cut (no further back than the segment) look at.
        keep = self._open.start if self._open else self._frame * _HOP - self._pad
        self._stream.forget(keep, min(self._frame - self._window_frames - _FLOOR_EVERY, keep // _HOP),
                            self._window_frames)
        return segments

    def flush(self) -> list[AudioSegment]:
        """End the stream: the last open segment, which owns the timeline to the end."""
        segments = self._decide(final=True)
        if self._open is not None:
            samples = self._stream.samples
            end = min(self._open.speech_end * _HOP + self._pad, samples, self._open.start + self._max)
            segment = self._close(end, own_end=samples)
            segments += [segment] if segment else []
        self._reset()
        return segments

    def _decide(self, final: bool) -> list[AudioSegment]:
        """Run the speech/pause state machine over the undecided frames."""
        segments = []
        available, first = self._stream.frames, self._frame
        energy = self._stream.energies(first).tolist()  # Python floats loop faster than numpy's
        while self._frame < available:
            i = self._frame
            if i % _FLOOR_EVERY == 0:
                upto = max(i + _FLOOR_EVERY, _WARMUP_FRAMES)
                if upto > available and not final:
                    break  # thresholds depend only on the audio, never on how it was chunked
                upto = min(upto, available)
                self._levels = thresholds(self._stream.energies(max(upto - self._window_frames, 0), upto), self.config)
            db, (start_db, stop_db) = energy[i - first], self._levels
            self._frame += 1
            if self._open is None:
                if db > start_db:
                    self._open = _OpenSegment(max(i * _HOP - self._pad, 0), i + 1, 1)
                continue
            if db > stop_db:
                self._open.speech_end, self._open.speech_frames = i + 1, self._open.speech_frames + 1
            if i + 1 - self._open.speech_end >= self._close_frames:
                segment = self._close(self._open.speech_end * _HOP + self._pad)
                segments += [segment] if segment else []
            elif (i + 1) * _HOP - self._open.start >= self._max:
                segments.append(self._force_cut())
        return segments

    def _close(self, end: int, own_end: int | None = None) -> AudioSegment | None:
        """End the open segment at sample `end`; None when it held too little speech to keep."""
        closing, self._open = self._open, None
        if closing.speech_frames < self._min_speech_frames:
            return None  # its stretch of the timeline goes to the next segment
        own_end = end if own_end is None else own_end
        segment = AudioSegment(self._stream.audio(closing.start, end), closing.start,
                               self._owned_until / SAMPLE_RATE, own_end / SAMPLE_RATE)
        self._owned_until = own_end
        return segment

    def _force_cut(self) -> AudioSegment:
        """Cut the open segment, at its limit, at the quietest moment of its last stretch; the next one overlaps it."""
        segment_start = self._open.start
        latest = segment_start + self._max - self._overlap
        earliest = max(latest - self._search, segment_start + self._max // 2)
        first, last = math.ceil(earliest / _HOP), min(latest // _HOP, self._frame - 3)  # candidate frames
        cut = (first + quietest_frame(self._stream.energies(first - 2, last + 3))) * _HOP
        segment = AudioSegment(self._stream.audio(segment_start, cut + self._overlap), segment_start,
                               self._owned_until / SAMPLE_RATE, cut / SAMPLE_RATE)
        self._owned_until, self._open.start = cut, cut - self._overlap
        # Only speech after the cut counts for the next segment: none, and the cut fell where the speech ended.
        after = self._stream.energies(cut // _HOP, self._frame)
        self._open.speech_frames = int(np.count_nonzero(after > self._levels[1]))
        return segment


def segment_audio(
    source: str | os.PathLike[str] | np.ndarray,
    sample_rate: int | None = None,
    config: SegmenterConfig | None = None,
) -> Segments:
    """Speech segments of a file or array, in order, reading the file block by block (see stream_audio).

    Memory stays at about one segment whatever the length. The owned regions tile [0, duration] of the 16 kHz
    audio; input with no speech yields nothing. Bad input raises AudioError here, or NaN samples when reached.
    """
    return Segments(stream_audio(source, sample_rate), SpeechSegmenter(config))


class Segments:
    """The speech segments of a stream of 16 kHz blocks, in order (one pass), owned regions tiling the stream;
    `duration` is its length in seconds once the pass is over.

    A segment ended by a pause is held until more speech starts: if none does, it owns the rest of the stream.
    """

    def __init__(self, blocks: Iterable[np.ndarray], segmenter: SpeechSegmenter) -> None:
        self._blocks, self._segmenter = blocks, segmenter
        self.duration: float | None = None

    def __iter__(self) -> Iterator[AudioSegment]:
        held, samples = None, 0
        for block in self._blocks:
            samples += len(block)
            for segment in self._segmenter.push(block):
                if held is not None:
                    yield held
                held = segment
            if held is not None and self._segmenter.in_speech:
                yield held
                held = None
        for segment in self._segmenter.flush():
            if held is not None:
                yield held
            held = segment
        self.duration = samples / SAMPLE_RATE
        if held is not None:
            yield dataclasses.replace(held, own_end=self.duration)
