"""Output files of `asr transcribe`: plain text, JSON, and SRT/WebVTT subtitles cut into readable cues."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from .atomic import atomic_open
from .transcript import Segment, Transcript, Word

FORMATS = ("txt", "json", "srt", "vtt")
OUTPUT_FORMATS = (*FORMATS, "all")  # the choices of --output-format


@dataclass(frozen=True)
class CueLimits:
    """How subtitle cues are cut from word timings (common broadcast guidelines: 42 characters, 2 lines, ~7 s).

    A pause of at least `pause_s` between words is a preferred place to end a cue that must be cut.
    """

    max_line_chars: int = 42
    max_lines: int = 2
    max_duration_s: float = 7.0
    pause_s: float = 0.3


@dataclass
class Cue:
    """One subtitle: shown from `start` to `end` seconds; `text` holds its lines separated by newlines."""

    start: float
    end: float
    text: str


def _milliseconds(seconds: float) -> int:
    """Seconds rounded half up to whole milliseconds, as the number is written (3725.0045 -> 3725005).

    round() on the binary float would give 3725004 here, and JSON and subtitles must agree on every time.
    """
    return int((Decimal(repr(seconds)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """HH:MM:SS.mmm (WebVTT) or, with decimal_marker=",", HH:MM:SS,mmm (SRT); hours grow past two digits."""
    ms = _milliseconds(seconds)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def to_txt(transcript: Transcript) -> str:
    """The text, one line per segment (the whole text on one line when there are no segments)."""
    lines = [" ".join(s.text.split()) for s in _segments(transcript)]
    return "".join(f"{line}\n" for line in lines if line)


def to_json(transcript: Transcript) -> str:
    """transcript.to_dict() with times rounded to milliseconds and confidences to 3 decimals."""
    data = transcript.to_dict()
    data["duration"] = _round_s(data["duration"])
    for segment in data["segments"]:
        segment["start"], segment["end"] = _round_s(segment["start"]), _round_s(segment["end"])
        for word in segment["words"]:
            word["start"], word["end"] = _round_s(word["start"]), _round_s(word["end"])
            word["confidence"] = round(word["confidence"], 3)
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def to_srt(transcript: Transcript, limits: CueLimits = CueLimits()) -> str:
    """SubRip: numbered cues from 1, HH:MM:SS,mmm times; no speech gives an empty file."""
    blocks = [f"{n}\n{format_timestamp(c.start, ',')} --> {format_timestamp(c.end, ',')}\n{c.text}"
              for n, c in enumerate(subtitle_cues(transcript, limits), start=1)]
    return "".join(f"{block}\n\n" for block in blocks)


def to_vtt(transcript: Transcript, limits: CueLimits = CueLimits()) -> str:
    """WebVTT: the WEBVTT header, then cues with HH:MM:SS.mmm times and &, <, > escaped (cue text is markup)."""
    blocks = [f"{format_timestamp(c.start)} --> {format_timestamp(c.end)}\n{_escape_vtt(c.text)}"
              for c in subtitle_cues(transcript, limits)]
    return "WEBVTT\n\n" + "".join(f"{block}\n\n" for block in blocks)


def subtitle_cues(transcript: Transcript, limits: CueLimits = CueLimits()) -> list[Cue]:
    """Readable cues in time order that never overlap: segments with words are cut by `limits` at word
    boundaries, a segment without words is one cue (its lines wrapped, but not limited in number).
    """
    cues = [cue for segment in sorted(_segments(transcript), key=lambda s: s.start)
            for cue in _segment_cues(segment, limits)]
    previous_end = 0.0
    for cue in cues:  # overlapping or negative times from upstream must not reach a player
        cue.start = max(cue.start, previous_end)
        cue.end = previous_end = max(cue.end, cue.start)
    return cues


def render(transcript: Transcript, fmt: str, limits: CueLimits = CueLimits()) -> str:
    """The content of one format's file (for printing, or writing elsewhere)."""
    if fmt == "txt":
        return to_txt(transcript)
    if fmt == "json":
        return to_json(transcript)
    if fmt == "srt":
        return to_srt(transcript, limits)
    if fmt == "vtt":
        return to_vtt(transcript, limits)
    raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")


def write_transcript(transcript: Transcript, output_dir: str | os.PathLike[str],
                     formats: str | Iterable[str] = "all", *, limits: CueLimits = CueLimits(),
                     taken: set[str] | None = None) -> list[Path]:
    """Write `transcript` into output_dir as <stem>.<format> for each format ("all" = every one); return the paths.

    The stem is the source's file name without its extension ("-" gives "stdin", an array "transcript").
    Same-stem rule: `taken` holds the stems already written in this run (the caller keeps one set per run);
    a stem already in it gets the first free suffix -2, -3, ... (talk, talk-2), compared case-insensitively
    because some file systems are. Files of an earlier run are replaced. Each file is written to a hidden
    temporary file in output_dir and renamed over the target, so a crash never leaves a half-written file.
    """
    names = [formats] if isinstance(formats, str) else list(formats)
    unknown = sorted(set(names) - set(OUTPUT_FORMATS))
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(OUTPUT_FORMATS)}")
    chosen = [f for f in FORMATS if f in names or "all" in names]
    stem = _unique_stem(_stem(transcript.source), set() if taken is None else taken)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in chosen:
        path = output_dir / f"{stem}.{fmt}"
        with atomic_open(path) as f:
            f.write(render(transcript, fmt, limits))
        paths.append(path)
    return paths


def _segments(transcript: Transcript) -> list[Segment]:
    """The segments, or the whole text as one segment over the audio when a caller gave text only."""
    if transcript.segments or not transcript.text.strip():
        return transcript.segments
    return [Segment(0.0, transcript.duration, transcript.text)]


def _segment_cues(segment: Segment, limits: CueLimits) -> list[Cue]:
    """Cut one segment: each cue takes as many words as fit the limits; when the next word no longer fits, the
    cue ends at the longest pause (>= pause_s) in its second half, or else just before that word.
    """
    words = [w for w in segment.words if w.word.strip()]
    if not words:
        tokens = segment.text.split()
        return [Cue(segment.start, segment.end, "\n".join(_balanced(tokens, limits.max_line_chars)))] if tokens else []
    cues, i = [], 0
    while i < len(words):
        j = i + 1  # words[i:j] is the cue; a single word always fits, however long
        while j < len(words) and _fits(words[i:j + 1], limits):
            j += 1
        if j < len(words):
            j = _break_at(words, i, j, limits.pause_s)
        cue_words = words[i:j]
        cues.append(Cue(cue_words[0].start, cue_words[-1].end,
                        "\n".join(_balanced([w.word.strip() for w in cue_words], limits.max_line_chars))))
        i = j
    return cues


def _fits(words: list[Word], limits: CueLimits) -> bool:
    """Whether these words make one cue within the duration and the line limits."""
    if words[-1].end - words[0].start > limits.max_duration_s:
        return False
    return len(_wrap([w.word.strip() for w in words], limits.max_line_chars)) <= limits.max_lines


def _break_at(words: list[Word], i: int, j: int, pause_s: float) -> int:
    """Where to end the cue words[i:j] that cannot take words[j]: the longest pause of at least pause_s before a
    word in its second half (so a cue is never cut to a stub), the later one on ties; else j.
    """
    best, best_gap = j, pause_s
    for k in range(i + max(1, (j - i + 1) // 2), j + 1):
        gap = words[k].start - words[k - 1].end
        if gap >= best_gap:
            best, best_gap = k, gap
    return best


def _wrap(tokens: list[str], width: int) -> list[str]:
    """Greedy line filling (fewest lines for this width); a token longer than the width gets a line of its own."""
    lines: list[str] = []
    for token in tokens:
        if lines and len(lines[-1]) + 1 + len(token) <= width:
            lines[-1] += " " + token
        else:
            lines.append(token)
    return lines


def _balanced(tokens: list[str], width: int) -> list[str]:
    """As few lines as greedy filling at `width` needs, but as even as possible: the narrowest width that still
    needs no more lines (avoids a full first line over a one-word second line).
    """
    lines = _wrap(tokens, width)
    for narrower in range(max(map(len, tokens)), width):
        if len(candidate := _wrap(tokens, narrower)) <= len(lines):
            return candidate
    return lines


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _round_s(seconds: float) -> float:
    return _milliseconds(seconds) / 1000


def _stem(source: str) -> str:
    if source == "-":
        return "stdin"
    return Path(source).stem or "transcript"


def _unique_stem(stem: str, taken: set[str]) -> str:
    """The stem, or stem-2, stem-3, ... if already taken (case-insensitively); records the one returned."""
    name, n = stem, 1
    while name.casefold() in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name.casefold())
    return name


