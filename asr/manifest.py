"""JSON-lines manifests (the NeMo convention): one utterance per line with audio_filepath, duration, text.

Relative audio paths resolve against the manifest's folder; extra keys (speaker, source, ...) are kept. An entry
with an `offset` (seconds) is the span of `duration` seconds from there in its file (a segment of a longer
recording, as Kaldi's `segments` describe them); entry_audio says what to load.
"""
from __future__ import annotations

import json
import os
import reprlib
import sys
from pathlib import Path
from typing import Any, Iterable

from .atomic import atomic_open
from .audio import AudioSource, AudioSpan
from .errors import ManifestError

REQUIRED_KEYS = ("audio_filepath", "duration", "text")


def read_manifest(path: str | os.PathLike[str], check_audio: bool = True) -> list[dict[str, Any]]:
    """Read a manifest; audio_filepath comes back absolute.

    Raises ManifestError naming the manifest and line for malformed lines, and for missing audio files when
    check_audio is set (a missing file is reported, never silently skipped). A UTF-8 byte order mark may open
    the file, as Windows editors write one.
    """
    path = Path(path)
    if not _is_file(path, str(path)):
        raise ManifestError(f"{path}: manifest not found")
    root = path.parent.absolute()
    entries = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            where = f"{path}:{line_no}"
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError:
                raise ManifestError(f"{where}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
            except ValueError:  # json reads integers of any length; Python refuses to convert over 4300 digits
                raise ManifestError(f"{where}: not valid JSON (a number with thousands of digits)") from None
            except RecursionError:
                raise ManifestError(f"{where}: not valid JSON (nested too deeply)") from None
            if not isinstance(entry, dict):
                raise ManifestError(f"{where}: expected a JSON object, got {type(entry).__name__}")
            missing = [k for k in REQUIRED_KEYS if k not in entry]
            if missing:
                raise ManifestError(f"{where}: missing key(s) {', '.join(missing)}")
            if not isinstance(entry["audio_filepath"], str) or not entry["audio_filepath"]:
                raise ManifestError(f"{where}: audio_filepath must be a non-empty string")
            if not isinstance(entry["text"], str):
                raise ManifestError(f"{where}: text must be a string")
            duration = entry["duration"]
            # Compared, not converted: an integer beyond float's range (10**400) would overflow float().
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) \
                    or not 0 < duration <= sys.float_info.max:
                raise ManifestError(
                    f"{where}: duration must be a positive number of seconds, got {reprlib.repr(duration)}")
            offset = entry.get("offset", 0.0)
            if isinstance(offset, bool) or not isinstance(offset, (int, float)) \
                    or not 0 <= offset <= sys.float_info.max:
                raise ManifestError(f"{where}: offset must be a number of seconds >= 0, got {reprlib.repr(offset)}")
            audio = Path(entry["audio_filepath"])
            if not audio.is_absolute():
                audio = root / audio
            if check_audio and not _is_file(audio, where):
                raise ManifestError(f"{where}: audio file not found: {audio}")
            entry["audio_filepath"] = str(audio)
            entries.append(entry)
    if not entries:
        raise ManifestError(f"{path}: manifest has no entries")
    return entries


def entry_audio(entry: dict[str, Any]) -> AudioSource:
    """The audio of a manifest entry: its file, or the span `offset` to `offset + duration` when it has an offset."""
    if "offset" in entry:
        return AudioSpan(entry["audio_filepath"], float(entry["offset"]), float(entry["duration"]))
    return entry["audio_filepath"]


def _is_file(path: Path, where: str) -> bool:
    """Path.is_file, with the OSErrors it lets through (a name too long, a folder we may not enter) as ManifestError."""
    try:
        return path.is_file()
    except OSError as err:
        raise ManifestError(f"{where}: cannot access {path} ({err.strerror or err})") from None


def write_manifest(path: str | os.PathLike[str], entries: Iterable[dict[str, Any]]) -> int:
    """Write entries as JSON lines, storing audio paths relative to the manifest's folder when inside it.

    Written to a temporary file and renamed, so a crash never leaves half a manifest. Returns the line count.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.parent.resolve()
    count = 0
    with atomic_open(path) as f:
        for entry in entries:
            entry = dict(entry)
            audio = Path(entry["audio_filepath"]).resolve()
            # Inside the manifest's folder: relative, so the corpus folder can move; elsewhere: absolute.
            entry["audio_filepath"] = audio.relative_to(root).as_posix() if audio.is_relative_to(root) else str(audio)
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            count += 1
    return count
