"""What a transcription returns: the text, time-stamped segments and words with a confidence each."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Word:
    """One recognized word; times in seconds on the audio file's timeline, confidence in [0, 1]."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass
class Segment:
    """A stretch of speech between pauses (long files are decoded segment by segment)."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    """The transcription of one audio source."""

    text: str
    segments: list[Segment]
    duration: float  # seconds of audio
    source: str = ""  # file name, "-" for standard input, "" for an array

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: text, segments, and words with start, end and confidence."""
        return asdict(self)
