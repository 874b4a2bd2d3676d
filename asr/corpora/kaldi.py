"""Kaldi data directories -> manifest entries: the corpus format Kaldi, ESPnet and icefall/Lhotse recipes hold.

A data directory is a few text tables, one `<key> <value>` per line (UTF-8):

- `wav.scp`: `<recording-id> <audio path>`; relative paths resolve against a root folder you name (default: the
  data directory's parent, where Kaldi's `data/<set>` and corpora such as speechocean762 put them);
- `text`: `<utterance-id> <transcript>`;
- `utt2spk`: `<utterance-id> <speaker-id>`;
- `segments` (optional): `<utterance-id> <recording-id> <start> <end>` in seconds (end -1: to the recording's end),
  so an utterance is a span of a longer recording (the manifest entry gets an `offset`; nothing is cut or copied);
  without it, an utterance id is its recording id;
- `spk2gender` (optional): `<speaker-id> m|f`.

Audio comes in any format asr.audio reads (WAV of any PCM width, FLAC, Ogg Vorbis/Opus, MP3, ... at any rate).
A `wav.scp` line that is a command (Kaldi's `sox in.sph -t wav - |`) is refused, naming the file and line: this
reader never runs anything. Duplicate keys, utterances without audio, speaker or transcript (and audio nobody
uses), bad numbers, segments beyond the end of their recording and non-UTF-8 text raise ManifestError with the file
and line, like the other layouts (asr.corpora.layouts).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ManifestError
from .layouts import Listing, PathLike, Utterance, audio_durations, make_listing

# A segment may end this far past the end of its recording (rounding of times written with two decimals).
SEGMENT_END_TOLERANCE_S = 0.02


def kaldi_data_dir(data_dir: PathLike, root: PathLike | None = None, speaker_prefix: str = "",
                   jobs: int | None = None) -> Listing:
    """Every utterance of a Kaldi data directory, with `speaker` (speaker_prefix + the speaker id), `gender` where
    spk2gender gives one, and `offset` + `duration` for the segments of longer recordings."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ManifestError(f"{data_dir}: data directory not found")
    root = Path(root) if root is not None else data_dir.resolve().parent
    recordings = {key: _audio_path(value, root, where) for key, (value, where) in _table(data_dir / "wav.scp").items()}
    texts = _table(data_dir / "text", allow_empty_value=True)
    speakers = _table(data_dir / "utt2spk")
    genders = _genders(data_dir / "spk2gender")
    spans = _segments(data_dir / "segments", recordings) if (data_dir / "segments").exists() else None
    audio_of = spans if spans is not None else {key: (key, 0.0, None) for key in recordings}
    _same_keys(texts, data_dir / "text", audio_of, data_dir / ("segments" if spans is not None else "wav.scp"))
    _same_keys(texts, data_dir / "text", speakers, data_dir / "utt2spk")
    if spans is not None:
        _all_used(recordings, {recording for recording, _, _ in spans.values()}, data_dir / "wav.scp")
    utterances = []
    for utt_id, (text, _) in texts.items():
        recording, start, end = audio_of[utt_id]
        speaker = speakers[utt_id][0]
        utterances.append(Utterance(utt_id, recordings[recording], text, speaker_prefix + speaker,
                                    None if end is None else end - start, offset=None if spans is None else start,
                                    gender=genders.get(speaker)))
    if spans is not None:
        utterances = _check_segment_ends(utterances, audio_of, recordings, data_dir / "segments", jobs)
    return make_listing(utterances, jobs)


def _table(path: Path, allow_empty_value: bool = False) -> dict[str, tuple[str, str]]:
    """key -> (value, "file:line") of a Kaldi table file; a key listed twice is an error."""
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    rows: dict[str, tuple[str, str]] = {}
    for line_no, raw in enumerate(path.read_bytes().splitlines(), start=1):
        where = f"{path}:{line_no}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ManifestError(f"{where}: not UTF-8 text") from None
        if not line.strip():
            continue
        key, *rest = line.split(maxsplit=1)
        value = rest[0].strip() if rest else ""
        if not value and not allow_empty_value:
            raise ManifestError(f"{where}: expected '<key> <value>', got {line.strip()!r}")
        if key in rows:
            raise ManifestError(f"{where}: key {key!r} listed a second time (first at {rows[key][1]})")
        rows[key] = (value, where)
    if not rows:
        raise ManifestError(f"{path}: empty file")
    return rows


def _audio_path(value: str, root: Path, where: str) -> Path:
    """The file a wav.scp value names; commands and Kaldi's extended file names are refused, never run."""
    if value.endswith("|") or value.startswith("|"):
        raise ManifestError(f"{where}: wav.scp entry is a command ({value!r}); this reader runs no commands: "
                            f"convert the audio to files and list their paths")
    path = Path(value)
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise ManifestError(f"{where}: audio file not found: {path}")
    return path


def _genders(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    genders = {}
    for speaker, (value, where) in _table(path).items():
        if value.lower() not in ("m", "f"):
            raise ManifestError(f"{where}: gender must be m or f, got {value!r}")
        genders[speaker] = value.lower()
    return genders


def _segments(path: Path, recordings: dict[str, Path]) -> dict[str, tuple[str, float, float | None]]:
    """utterance id -> (recording id, start, end or None for "to the end") from a segments file."""
    spans = {}
    for utt_id, (value, where) in _table(path).items():
        fields = value.split()
        if len(fields) != 3:
            raise ManifestError(f"{where}: expected '<utterance-id> <recording-id> <start> <end>'")
        recording, start_text, end_text = fields
        if recording not in recordings:
            raise ManifestError(f"{where}: recording {recording!r} is not in wav.scp")
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise ManifestError(f"{where}: start and end must be numbers of seconds, got {start_text!r} "
                                f"{end_text!r}") from None
        if not (0 <= start < 1e9) or not (end == -1 or start < end < 1e9):
            raise ManifestError(f"{where}: a segment needs 0 <= start < end (or end -1), got {start_text} "
                                f"{end_text}")
        spans[utt_id] = (recording, start, None if end == -1 else end)
    return spans


def _check_segment_ends(utterances: list[Utterance], audio_of: dict[str, tuple[str, float, float | None]],
                        recordings: dict[str, Path], segments: Path, jobs: int | None) -> list[Utterance]:
    """Measure the recordings; refuse segments that end beyond theirs, and give "to the end" ones a duration."""
    used = sorted({recording for recording, _, _ in audio_of.values()})
    length = dict(zip(used, audio_durations([recordings[r] for r in used], jobs)))
    checked = []
    for utterance in utterances:
        recording, start, end = audio_of[utterance.id]
        stop = length[recording] if end is None else end
        if stop > length[recording] + SEGMENT_END_TOLERANCE_S or start >= length[recording]:
            raise ManifestError(f"{segments}: segment {utterance.id} ({start:g} to {stop:g} s) goes beyond the end "
                                f"of recording {recording} ({length[recording]:.3f} s)")
        checked.append(Utterance(utterance.id, utterance.audio, utterance.text, utterance.speaker,
                                 min(stop, length[recording]) - start, offset=start, gender=utterance.gender))
    return checked


def _same_keys(table: dict[str, tuple[str, str]], table_path: Path, other: dict, other_path: Path) -> None:
    """Every utterance of `table` is in `other` and the other way round; the first one missing is named."""
    for key in table:
        if key not in other:
            raise ManifestError(f"{table[key][1]}: utterance {key!r} has no line in {other_path}")
    for key in other:
        if key not in table:
            raise ManifestError(f"{other_path}: utterance {key!r} has no line in {table_path}")


def _all_used(recordings: dict[str, Path], used: set[str], wav_scp: Path) -> None:
    unused = sorted(set(recordings) - used)
    if unused:
        raise ManifestError(f"{wav_scp}: recording {unused[0]!r} is used by no segment"
                            + (f" (and {len(unused) - 1} more)" if len(unused) > 1 else ""))
