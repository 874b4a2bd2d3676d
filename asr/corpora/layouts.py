"""Corpus layouts on disk -> manifest entries: LibriSpeech, LJSpeech, Common Voice, and generic folders or CSVs.

Nothing is downloaded: each layout function reads a corpus the user already has and returns a Listing whose
entries are ready for asr.manifest.write_manifest. Entries follow the synthetic corpus's manifests: `text` is the
normalized transcript (what training and scoring see), `raw_text` the corpus's own, `id` the corpus's utterance id,
and `speaker` where the corpus names one. Utterances whose transcript normalize() cannot spell with the default
vocabulary (letters such as ß, ø or non-Latin scripts, which it would silently delete, or no words at all) are
dropped and listed in Listing.dropped, rather than trained on a wrong transcript. Layout problems (a missing
file, a malformed row, unreadable audio) raise ManifestError or AudioError naming the file.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import soundfile
from tqdm import tqdm

from ..audio import AUDIO_SUFFIXES, SAMPLE_RATE, load_audio
from ..errors import ManifestError
from ..manifest import write_manifest
from ..text import normalize

LIBRISPEECH_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
                       "test-clean", "test-other")
COMMONVOICE_SPLITS = ("train", "dev", "test", "validated")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Utterance:
    """One utterance as a corpus lists it, before normalization and duration."""

    id: str
    audio: Path
    text: str
    speaker: str | None = None
    duration: float | None = None  # seconds, where the corpus states it (Common Voice's clip_durations.tsv)
    offset: float | None = None  # seconds into the file where the utterance starts (a segment of a recording)
    gender: str | None = None  # "m" / "f" where the corpus says

    def entry(self, text: str, duration: float) -> dict[str, Any]:
        entry = {"audio_filepath": str(self.audio), "duration": duration, "text": text, "raw_text": self.text,
                 "id": self.id}
        optional = {"speaker": self.speaker, "offset": self.offset, "gender": self.gender}
        return entry | {key: value for key, value in optional.items() if value is not None}


@dataclass
class Listing:
    """Manifest entries of one corpus part, and the (id, reason) of utterances left out for their transcript."""

    entries: list[dict[str, Any]]
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def dropped_note(self) -> str:
        """A line saying how many utterances were dropped and why (the first one as example); '' if none."""
        if not self.dropped:
            return ""
        first_id, reason = self.dropped[0]
        return (f"dropped {len(self.dropped)} utterance(s) whose transcript the a-z vocabulary cannot spell "
                f"(first: {first_id}: {reason})")


def save(path: PathLike, entries: list[dict[str, Any]]) -> str:
    """Write a manifest and return a one-line summary of it: utterances, hours, speakers."""
    write_manifest(path, entries)
    hours = sum(entry["duration"] for entry in entries) / 3600
    speakers = len({entry["speaker"] for entry in entries if "speaker" in entry})
    return f"wrote {path}: {len(entries)} utterances, {hours:.2f} h" + (f", {speakers} speakers" if speakers else "")




# Transcripts, durations, splits: what every layout shares.

@functools.lru_cache(maxsize=None)
def _spellable(char: str) -> bool:
    """Whether normalize() keeps something of a letter (é -> e) rather than deleting it (ß, ø, 中)."""
    return bool(normalize(char))


def unspellable(raw: str, normalized: str) -> str | None:
    """Why a transcript cannot be trained on with the default vocabulary, or None when it can."""
    lost = sorted({char for char in raw if char.isalpha() and not _spellable(char)})
    if lost:
        return f"letters {''.join(lost)!r} outside the vocabulary"
    return None if normalized else "no words after normalization"


def audio_duration(path: PathLike) -> float:
    """Seconds of audio in a file: from its header (soundfile), else by decoding it (asr.audio.load_audio)."""
    try:
        info = soundfile.info(str(path))
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except RuntimeError:  # soundfile.LibsndfileError: a format libsndfile cannot read, or not audio at all
        pass
    return len(load_audio(path)) / SAMPLE_RATE  # AudioError names the file when this fails too


def audio_durations(paths: list[Path], jobs: int | None = None) -> list[float]:
    """audio_duration of every path, in jobs processes (default: all CPUs) with a progress bar on a terminal."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    with tqdm(total=len(paths), unit="file", desc="durations", disable=None) as bar:
        if jobs == 1:
            return [_advance(bar, audio_duration(path)) for path in paths]
        with ProcessPoolExecutor(jobs) as pool:
            try:
                chunk = max(1, min(64, len(paths) // (16 * jobs)))
                return [_advance(bar, seconds) for seconds in pool.map(audio_duration, paths, chunksize=chunk)]
            except BaseException:
                pool.shutdown(cancel_futures=True)  # one unreadable file: stop, do not measure the rest first
                raise


def _advance(bar: tqdm, value: float) -> float:
    bar.update()
    return value


def make_listing(utterances: list[Utterance], jobs: int | None) -> Listing:
    """Normalize transcripts, drop those the vocabulary cannot spell, and measure the durations the corpus lacks."""
    kept, dropped = [], []
    for utterance in utterances:
        text = normalize(utterance.text)
        reason = unspellable(utterance.text, text)
        if reason:
            dropped.append((utterance.id, reason))
        else:
            kept.append((utterance, text))
    measured = iter(audio_durations([u.audio for u, _ in kept if u.duration is None], jobs))
    entries = [u.entry(text, next(measured) if u.duration is None else u.duration) for u, text in kept]
    return Listing(entries, dropped)


def stable_unit(key: str) -> float:
    """A number in [0, 1) that depends only on key (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_by_hash(entries: list[dict[str, Any]], dev_size: int, test_size: int) -> dict[str, list[dict[str, Any]]]:
    """Deterministic train/dev/test split of entries by a hash of their `id`.

    Entries ranked by the hash give test its first test_size, dev the next dev_size, train the rest; each split
    keeps the input order. The same corpus gives the same split on any machine, in any listing order.
    """
    if dev_size < 0 or test_size < 0 or dev_size + test_size >= len(entries):
        raise ManifestError(f"cannot split {len(entries)} utterances into dev {dev_size}, test {test_size} "
                            "and a non-empty train set")
    ranked = sorted(range(len(entries)), key=lambda i: (stable_unit(entries[i]["id"]), entries[i]["id"]))
    split_of = {i: "test" for i in ranked[:test_size]} | {i: "dev" for i in ranked[test_size:test_size + dev_size]}
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
    for i, entry in enumerate(entries):
        splits[split_of.get(i, "train")].append(entry)
    return splits


def split_by_speaker(entries: list[dict[str, Any]], dev_speakers: int, test_speakers: int,
                     stratum: Callable[[dict[str, Any]], str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Deterministic train/dev/test split by whole speakers (an entry's `speaker`), so dev and test voices are never
    trained on.

    Speakers are ranked by a hash of their id within each stratum (stratum(entry of theirs), e.g. gender and age
    group), and the strata are interleaved, so test's test_speakers and then dev's dev_speakers spread over the
    strata evenly; the other speakers are train. Each split keeps the input order.
    """
    first_entry: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if "speaker" not in entry:
            raise ManifestError(f"{entry.get('id', entry['audio_filepath'])}: no speaker to split by")
        first_entry.setdefault(entry["speaker"], entry)
    if dev_speakers < 0 or test_speakers < 0 or dev_speakers + test_speakers >= len(first_entry):
        raise ManifestError(f"cannot split {len(first_entry)} speakers into dev {dev_speakers}, test {test_speakers} "
                            "and a non-empty train set")
    strata: dict[str, list[str]] = {}
    for speaker, entry in first_entry.items():
        strata.setdefault(stratum(entry) if stratum else "", []).append(speaker)
    ranked = [sorted(members, key=lambda s: (stable_unit(f"speaker:{s}"), s)) for _, members in sorted(strata.items())]
    order = [members[i] for i in range(max(map(len, ranked))) for members in ranked if i < len(members)]
    split_of = {s: "test" for s in order[:test_speakers]} | \
        {s: "dev" for s in order[test_speakers:test_speakers + dev_speakers]}
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
    for entry in entries:
        splits[split_of.get(entry["speaker"], "train")].append(entry)
    return splits


# Reading corpus files.

def _folder(path: PathLike) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise ManifestError(f"{path}: corpus folder not found")
    return path


def locate_corpus(root: PathLike, marker: str, wrappers: tuple[str, ...] = ()) -> Path:
    """The corpus folder: root if it holds marker, else root/<wrapper> (the folder an archive unpacks to)."""
    root = _folder(root)
    for folder in (root, *(root / wrapper for wrapper in wrappers)):
        if (folder / marker).exists():
            return folder
    elsewhere = "".join(f" (nor {root / wrapper / marker})" for wrapper in wrappers)
    raise ManifestError(f"{root / marker}: not found{elsewhere}")


def _audio_files(folder: Path, suffixes: set[str]) -> dict[str, Path]:
    """name without suffix -> path of the folder's files with one of the suffixes (two of one name are an error)."""
    if not folder.is_dir():
        raise ManifestError(f"{folder}: audio folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes:
            if path.stem in found:
                raise ManifestError(f"{path}: a second audio file for {path.stem} (also {found[path.stem].name})")
            found[path.stem] = path
    return found


def _claim(audio: dict[str, Path], name: str, where: str, expected: Path) -> Path:
    """Take a listed utterance's audio file out of `audio` (what is left had no transcript)."""
    if name not in audio:
        reason = "listed a second time" if expected.is_file() else "audio file not found"
        raise ManifestError(f"{where}: {reason}: {expected}")
    return audio.pop(name)


def _no_leftover(audio: dict[str, Path], listing: Path) -> None:
    if audio:
        raise ManifestError(f"{min(audio.values())}: audio file without a transcript in {listing}")


def _read_rows(path: Path, delimiter: str, quoting: int = csv.QUOTE_NONE) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank row of a UTF-8 delimited text file."""
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        try:
            return [(reader.line_num, row) for row in reader if any(value.strip() for value in row)]
        except UnicodeDecodeError:
            raise ManifestError(f"{path}: not UTF-8 text") from None
        except csv.Error as err:
            raise ManifestError(f"{path}:{reader.line_num}: {err}") from None


def _table(path: Path, delimiter: str, required: tuple[str, ...], quoting: int = csv.QUOTE_NONE,
           header_optional: bool = False) -> Iterator[tuple[str, dict[str, str]]]:
    """("file:line", {column: value}) of each row of a table with a header line.

    With header_optional, a first row lacking the required column names is data, in the required columns' order.
    """
    rows = _read_rows(path, delimiter, quoting)
    header = [name.strip().lower() for name in rows[0][1]] if rows else []
    if header_optional and not set(required) <= set(header):
        header = list(required)
    else:
        if not rows:
            raise ManifestError(f"{path}: empty file")
        missing = [name for name in required if name not in header]
        if missing:
            raise ManifestError(f"{path}:{rows[0][0]}: header lacks column(s) {', '.join(missing)}")
        rows = rows[1:]
    for line_no, row in rows:
        if len(row) != len(header):
            raise ManifestError(f"{path}:{line_no}: expected {len(header)} fields ({', '.join(header)}), "
                                f"got {len(row)}")
        yield f"{path}:{line_no}", dict(zip(header, row))


# LibriSpeech: <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt and <utterance-id>.flac.

def librispeech_subsets(root: PathLike, names: list[str] | None = None) -> dict[str, Path]:
    """Subset name -> folder in root (or root/LibriSpeech): the given names, or every standard subset there."""
    root = _folder(root)
    base = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    names = names or [name for name in LIBRISPEECH_SUBSETS if (base / name).is_dir()]
    if not names:
        raise ManifestError(f"{base}: no LibriSpeech subset folder ({', '.join(LIBRISPEECH_SUBSETS)}) here")
    for name in names:
        if not (base / name).is_dir():
            raise ManifestError(f"{base / name}: subset folder not found")
    return {name: base / name for name in names}


def librispeech(subset: PathLike, jobs: int | None = None) -> Listing:
    """Every utterance of one LibriSpeech subset folder; `speaker` is the LibriSpeech speaker id.

    Every listed utterance must have its .flac and every .flac its transcript line: the corpus has no gaps.
    """
    subset = _folder(subset)
    chapters = sorted(path for path in subset.glob("*/*") if path.is_dir())
    if not chapters:
        raise ManifestError(f"{subset}: no <speaker>/<chapter> folders")
    return make_listing([u for chapter in chapters for u in _librispeech_chapter(chapter)], jobs)


def _librispeech_chapter(chapter: Path) -> list[Utterance]:
    speaker = chapter.parent.name
    transcript = chapter / f"{speaker}-{chapter.name}.trans.txt"
    if not transcript.is_file():
        raise ManifestError(f"{transcript}: transcript file not found")
    audio = _audio_files(chapter, {".flac"})
    utterances = []
    for line_no, (utt_id, *words) in _read_rows(transcript, " "):
        where = f"{transcript}:{line_no}"
        text = " ".join(word for word in words if word)
        if not utt_id or not text:
            raise ManifestError(f"{where}: expected '<utterance-id> <TRANSCRIPT>'")
        utterances.append(Utterance(utt_id, _claim(audio, utt_id, where, chapter / f"{utt_id}.flac"), text, speaker))
    _no_leftover(audio, transcript)
    return utterances


# LJSpeech: <root>/metadata.csv (id|text|normalized text) and <root>/wavs/<id>.wav.

def ljspeech(root: PathLike, jobs: int | None = None) -> Listing:
    """Every utterance of LJSpeech (root holds metadata.csv, or LJSpeech-1.1/ does), with the normalized column's
    text, or the raw column's where that is empty. A single speaker, so no `speaker` key. wavs/ may hold the clips
    in any audio format asr.audio reads; every listed clip needs its file and every file its line."""
    base = locate_corpus(root, "metadata.csv", ("LJSpeech-1.1",))
    metadata = base / "metadata.csv"
    audio = _audio_files(base / "wavs", AUDIO_SUFFIXES)  # the corpus's WAV, or a re-encoded copy (FLAC, Opus, ...)
    utterances = []
    for line_no, row in _read_rows(metadata, "|"):
        where = f"{metadata}:{line_no}"
        if len(row) not in (2, 3) or not row[0].strip():
            raise ManifestError(f"{where}: expected 'id|text|normalized text', got {len(row)} field(s)")
        utt_id, text = row[0].strip(), (row[-1] if row[-1].strip() else row[1]).strip()
        utterances.append(Utterance(utt_id, _claim(audio, utt_id, where, base / "wavs" / f"{utt_id}.wav"), text))
    _no_leftover(audio, metadata)
    return make_listing(utterances, jobs)


# Common Voice: <root>/<split>.tsv (client_id, path, sentence, ...), clips/*.mp3, clip_durations.tsv.

def commonvoice(root: PathLike, split: str, jobs: int | None = None) -> Listing:
    """One split of a Common Voice language folder (train, dev, test or validated); `speaker` is the client_id.

    Durations come from clip_durations.tsv where the release has one; clips it lacks are measured. clips/ also
    holds clips of no split (invalidated, other), so only listed clips are looked at.
    """
    base = locate_corpus(root, f"{split}.tsv")
    if not (base / "clips").is_dir():
        raise ManifestError(f"{base / 'clips'}: audio folder not found")
    clips = set(os.listdir(base / "clips"))
    known = _clip_durations(base / "clip_durations.tsv")
    utterances = []
    for where, row in _table(base / f"{split}.tsv", "\t", ("client_id", "path", "sentence")):
        if row["path"] not in clips:
            raise ManifestError(f"{where}: audio file not found: {base / 'clips' / row['path']}")
        utterances.append(Utterance(Path(row["path"]).stem, base / "clips" / row["path"], row["sentence"].strip(),
                                    row["client_id"], known.get(row["path"])))
    return make_listing(utterances, jobs)


def _clip_durations(path: Path) -> dict[str, float]:
    """clip file name -> seconds from a release's clip_durations.tsv; empty when the release has none."""
    if not path.is_file():
        return {}
    durations = {}
    for where, row in _table(path, "\t", ("clip", "duration[ms]")):
        try:
            milliseconds = float(row["duration[ms]"])
        except ValueError:
            milliseconds = 0.0
        if not milliseconds > 0:
            raise ManifestError(f"{where}: duration[ms] must be a positive number, got {row['duration[ms]']!r}")
        durations[row["clip"]] = milliseconds / 1000
    return durations


# Generic: a folder of audio files with same-named .txt transcripts, or a CSV of path,text rows.

def audio_folder(root: PathLike, jobs: int | None = None) -> Listing:
    """Every audio file below root (recursively) with its transcript in a same-named .txt file beside it.

    An audio file without a .txt, or a .txt without an audio file, is an error: nothing is silently skipped.
    """
    root = _folder(root)
    audio: dict[Path, Path] = {}
    transcripts: dict[Path, Path] = {}
    for path in sorted(path for path in root.rglob("*") if path.is_file()):
        stem, suffix = path.with_suffix(""), path.suffix.lower()
        if suffix in AUDIO_SUFFIXES and stem in audio:
            raise ManifestError(f"{path}: shares its transcript {stem.name}.txt with {audio[stem].name}")
        if suffix in AUDIO_SUFFIXES or suffix == ".txt":
            (transcripts if suffix == ".txt" else audio)[stem] = path
    if not audio:
        raise ManifestError(f"{root}: no audio files ({' '.join(sorted(AUDIO_SUFFIXES))}) found")
    unpaired = sorted(audio.keys() ^ transcripts.keys())
    if unpaired:
        stem = unpaired[0]
        raise ManifestError(f"{audio[stem]}: no transcript {stem.name}.txt beside it" if stem in audio
                            else f"{transcripts[stem]}: transcript without an audio file of the same name")
    return make_listing([Utterance(stem.relative_to(root).as_posix(), path, _read_text(transcripts[stem]))
                     for stem, path in audio.items()], jobs)


def _read_text(path: Path) -> str:
    try:
        return " ".join(path.read_text(encoding="utf-8-sig").split())
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None


def csv_listing(path: PathLike, jobs: int | None = None) -> Listing:
    """Every row of a CSV of path,text (header line optional; with one, a `speaker` column is kept too).

    Relative paths resolve against the CSV's folder. Fields follow the usual CSV quoting ("a, b" in quotes).
    """
    path = Path(path)
    utterances = []
    for where, row in _table(path, ",", ("path", "text"), csv.QUOTE_MINIMAL, header_optional=True):
        audio = path.parent / row["path"].strip()
        if not row["path"].strip() or not audio.is_file():
            raise ManifestError(f"{where}: audio file not found: {audio}")
        utterances.append(Utterance(Path(row["path"].strip()).with_suffix("").as_posix(), audio,
                                    row["text"].strip(), row.get("speaker") or None))
    if not utterances:
        raise ManifestError(f"{path}: no rows")
    return make_listing(utterances, jobs)
