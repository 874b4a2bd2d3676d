"""Live dictation: microphone chunks in (any rate, mono or stereo, any size), settled and partial text out.

The model is bidirectional, so it cannot extend a transcript frame by frame. Instead the voice-activity
segmenter marks pauses: each finished segment is decoded once and its text settled; the speech since the last
pause is re-decoded on every update as the partial text. Segments are at most `max_segment_s` long, so an
update costs the same however long the dictation runs.
"""
from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE, from_array
from .decoding import DecodeConfig
from .errors import AudioError
from .segmenter import SegmenterConfig, SpeechSegmenter
from .transcribe import Transcriber
from .transcript import Segment, Transcript

# Shorter than for files: the partial text re-decodes up to this much audio twice a second.
LIVE_SEGMENTER = SegmenterConfig(max_segment_s=12.0)


class Dictation:
    """One speaker's stream. Keep one per browser session; it holds no more than one open segment of audio."""

    def __init__(self, transcriber: Transcriber, config: SegmenterConfig = LIVE_SEGMENTER,
                 max_duration_s: float | None = None) -> None:
        self.transcriber = transcriber
        self.max_duration_s = max_duration_s
        self._segmenter = SpeechSegmenter(config)
        self._resampler = None
        self._rate = 0
        self.samples = 0  # 16 kHz samples received
        self.settled: list[Segment] = []
        self.partial = ""
        self.partial_at_s = 0.0  # how much of the stream had been heard when the partial text was last decoded

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def text(self) -> str:
        """Settled text followed by the partial text."""
        return " ".join(t for t in [*(s.text for s in self.settled), self.partial] if t)

    def push(self, sample_rate: int, chunk: np.ndarray, decoding: DecodeConfig | None = None,
             partial: bool = True) -> str:
        """Add a chunk (int16 or float, (samples,) or (samples, channels)); returns the text so far, decoded with
        `decoding` (default: the transcriber's). partial=False settles what the chunk ends but leaves the open
        segment's text as it was (cleared if a segment settled): the cheap update of a server under load, where
        re-decoding the open segment is most of an update's cost.

        Raises AudioError for unusable audio, or once the stream is longer than max_duration_s."""
        if self.max_duration_s is not None and self.duration_s >= self.max_duration_s:
            raise AudioError(f"<microphone>: recordings are limited to {self.max_duration_s:.0f} s")
        audio = self._to_16k(sample_rate, chunk)
        if len(audio):
            self.samples += len(audio)
            finished = self._segmenter.push(audio)
            self._settle(finished, decoding)
            open_segment = self._segmenter.open_segment()
            if open_segment is None:
                self.partial = ""
            elif partial:
                decoded = self.transcriber.decode_segments([open_segment], decoding=decoding)[0]
                self.partial = decoded.text if decoded is not None else ""
                self.partial_at_s = self.duration_s
            elif finished:
                self.partial = ""  # its words were the settled segment's
        return self.text

    def finish(self, decoding: DecodeConfig | None = None) -> Transcript:
        """End the stream: settle what is still open and return the whole transcript."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self.samples += len(tail)
            self._settle(self._segmenter.push(tail) if len(tail) else [], decoding)
        self._settle(self._segmenter.flush(), decoding)
        self.partial = ""
        return Transcript(self.text, list(self.settled), round(self.duration_s, 3), "<microphone>")

    def _settle(self, segments: list, decoding: DecodeConfig | None) -> None:
        if segments:
            self.settled += [s for s in self.transcriber.decode_segments(segments, decoding=decoding) if s is not None]

    def _to_16k(self, sample_rate: int, chunk: np.ndarray) -> np.ndarray:
        """Mono float32 at 16 kHz, resampled by a stream that carries its state from chunk to chunk."""
        import soxr

        if sample_rate <= 0:
            raise AudioError(f"<microphone>: invalid sample rate {sample_rate}")
        audio = from_array(np.asarray(chunk)).mean(axis=1, dtype=np.float32)
        if not np.isfinite(audio).all():
            raise AudioError("<microphone>: audio contains NaN or infinite samples")
        if sample_rate != self._rate:  # the first chunk, or a device that changed its rate
            self._rate = sample_rate
            self._resampler = None if sample_rate == SAMPLE_RATE else soxr.ResampleStream(
                sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        return np.clip(audio, -1.0, 1.0)
