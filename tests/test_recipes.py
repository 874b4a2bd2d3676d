"""Corpus recipes: tiny LibriSpeech, LJSpeech, Common Voice and generic trees built in their real layouts, read by
asr.corpora and by the recipes' prepare scripts; manifests, durations, splits, and one-line errors on bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr import AudioError, ManifestError
from asr.corpora import layouts
from asr.manifest import read_manifest
from asr.text import normalize

REPO = Path(__file__).resolve().parents[1]
TOLERANCE_S = 0.01


def tone(path: Path, seconds: float, rate: int = 16000) -> float:
    """Write a sine tone in the format the suffix names; returns its exact duration."""
    frames = round(seconds * rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 220 * np.arange(frames) / rate).astype(np.float32), rate)
    return frames / rate


def prepare(corpus: str, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    script = REPO / "recipes" / corpus / "prepare.py"
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True)


def assert_fails_naming(result: subprocess.CompletedProcess, name: str) -> None:
    """Exit status 1 and one line on stderr that names the file, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and name in lines[0] and "error:" in lines[0], result.stderr


def check_durations(entries: list[dict], truth: dict[str, float]) -> None:
    for entry in entries:
        assert abs(entry["duration"] - truth[entry["id"]]) < TOLERANCE_S, entry


# LibriSpeech

LIBRISPEECH = {  # subset -> utterance id -> transcript
    "train-clean-100": {"19-198-0000": "NORTHANGER ABBEY",
                        "19-198-0001": "THIS LITTLE WORK WAS FINISHED IN THE YEAR EIGHTEEN O THREE",
                        "26-495-0000": "IT'S A FINE DAY"},
    "train-clean-360": {"100-121669-0000": "TOM THE PIPER'S SON"},
    "dev-clean": {"84-121123-0000": "GO DO YOU HEAR",
                  "84-121123-0001": "BUT IN LESS THAN FIVE MINUTES THE STAIRCASE GROANED"},
}


def make_librispeech(root: Path) -> dict[str, float]:
    """root/LibriSpeech/<subset>/<speaker>/<chapter>/ with FLAC and .trans.txt; returns id -> duration."""
    durations = {}
    for subset, utterances in LIBRISPEECH.items():
        chapters = defaultdict(list)
        for i, (utt_id, text) in enumerate(utterances.items()):
            speaker, chapter, _ = utt_id.split("-")
            folder = root / "LibriSpeech" / subset / speaker / chapter
            durations[utt_id] = tone(folder / f"{utt_id}.flac", 0.4 + 0.13 * i)
            chapters[folder].append(f"{utt_id} {text}\n")
        for folder, lines in chapters.items():
            (folder / f"{folder.parent.name}-{folder.name}.trans.txt").write_text("".join(lines))
    return durations


def test_librispeech_entries(tmp_path):
    durations = make_librispeech(tmp_path)
    subsets = layouts.librispeech_subsets(tmp_path)  # the folder that holds LibriSpeech/
    assert list(subsets) == ["train-clean-100", "train-clean-360", "dev-clean"]
    assert list(layouts.librispeech_subsets(tmp_path / "LibriSpeech", ["dev-clean"])) == ["dev-clean"]
    listing = layouts.librispeech(subsets["train-clean-100"], jobs=1)
    assert not listing.dropped
    assert [e["id"] for e in listing.entries] == list(LIBRISPEECH["train-clean-100"])
    for entry in listing.entries:
        assert entry["raw_text"] == LIBRISPEECH["train-clean-100"][entry["id"]]
        assert entry["text"] == normalize(entry["raw_text"]) and entry["text"].islower()
        assert entry["speaker"] == entry["id"].split("-")[0]
        assert Path(entry["audio_filepath"]).name == f"{entry['id']}.flac"
    check_durations(listing.entries, durations)


def test_librispeech_script_writes_subsets_and_combined_train(tmp_path):
    durations = make_librispeech(tmp_path)
    out = tmp_path / "LibriSpeech"  # manifests beside the subset folders: audio paths written relative
    result = prepare("librispeech", tmp_path, "--out", out, "--jobs", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for subset, utterances in LIBRISPEECH.items():
        entries = read_manifest(out / f"{subset}.jsonl")
        assert [e["id"] for e in entries] == list(utterances)
        check_durations(entries, durations)
    first = json.loads((out / "dev-clean.jsonl").read_text().splitlines()[0])
    assert first["audio_filepath"] == "dev-clean/84/121123/84-121123-0000.flac"
    assert len(read_manifest(out / "train-460.jsonl")) == 4
    assert not (out / "dev-clean.jsonl.tmp").exists() and result.stdout.count("wrote") == 4


def _remove(path: Path) -> None:
    path.unlink()


def _garble(path: Path) -> None:
    path.write_bytes(b"this is not audio " * 20)


CHAPTER = "LibriSpeech/train-clean-100/19/198"
LIBRISPEECH_ERRORS = [  # what to break, how, and what the error must say
    (f"{CHAPTER}/19-198.trans.txt", _remove, ManifestError, r"19-198\.trans\.txt: transcript file not found"),
    (f"{CHAPTER}/19-198-0001.flac", _remove, ManifestError, r"19-198\.trans\.txt:2: audio file not found"),
    (f"{CHAPTER}/19-198-0002.flac", lambda p: tone(p, 0.3), ManifestError,
     r"19-198-0002\.flac: audio file without a transcript"),
    (f"{CHAPTER}/19-198.trans.txt", lambda p: p.write_text(p.read_text() + "19-198-0003\n"), ManifestError,
     r"19-198\.trans\.txt:3: expected"),
    (f"{CHAPTER}/19-198-0000.flac", _garble, AudioError, r"19-198-0000\.flac: not a readable audio file"),
]


@pytest.mark.parametrize("relative, damage, error, message", LIBRISPEECH_ERRORS)
def test_librispeech_errors_name_the_file(tmp_path, relative, damage, error, message):
    make_librispeech(tmp_path)
    damage(tmp_path / relative)
    with pytest.raises(error, match=message):
        layouts.librispeech(tmp_path / "LibriSpeech" / "train-clean-100", jobs=1)


def test_librispeech_missing_folders(tmp_path):
    with pytest.raises(ManifestError, match="nowhere: corpus folder not found"):
        layouts.librispeech_subsets(tmp_path / "nowhere")
    make_librispeech(tmp_path)
    with pytest.raises(ManifestError, match="test-other: subset folder not found"):
        layouts.librispeech_subsets(tmp_path, ["dev-clean", "test-other"])


def test_librispeech_script_fails_in_one_line(tmp_path):
    make_librispeech(tmp_path)
    tone(tmp_path / CHAPTER / "19-198-0002.flac", 0.3)
    assert_fails_naming(prepare("librispeech", tmp_path, "--out", tmp_path / "out", cwd=tmp_path), "19-198-0002.flac")
    assert not (tmp_path / "out" / "train-clean-100.jsonl").exists()


# LJSpeech

LJSPEECH = [  # id, text, normalized text
    *[(f"LJ001-{i:04d}", f"Sentence {i}.", f"Sentence {normalize(str(i))}.") for i in range(1, 11)],
    ("LJ002-0001", 'He said "yes" to the 3rd offer', 'He said "yes" to the third offer'),  # quotes: no CSV quoting
    ("LJ002-0002", "It is dated 1850", ""),  # empty normalized column: the text column is used
    ("LJ002-0003", "Herr Straße", "Herr Straße"),  # ß is spelled ss
    ("LJ002-0004", "Он сказал", "Он сказал"),  # Cyrillic: normalize() would delete it, so the utterance is dropped
]


def make_ljspeech(root: Path) -> dict[str, float]:
    """root/LJSpeech-1.1/{metadata.csv, wavs/*.wav} at 22.05 kHz; returns id -> duration."""
    base = root / "LJSpeech-1.1"
    durations = {utt_id: tone(base / "wavs" / f"{utt_id}.wav", 0.3 + 0.05 * i, 22050)
                 for i, (utt_id, _, _) in enumerate(LJSPEECH)}
    (base / "metadata.csv").write_text("".join("|".join(row) + "\n" for row in LJSPEECH), encoding="utf-8")
    return durations


def test_ljspeech_entries_and_dropped_transcripts(tmp_path):
    durations = make_ljspeech(tmp_path)
    listing = layouts.ljspeech(tmp_path, jobs=2)  # the folder holding LJSpeech-1.1/; two processes
    assert len(listing.entries) == len(LJSPEECH) - 1
    assert listing.dropped == [("LJ002-0004", "letters 'Оазклнс' outside the vocabulary")]
    assert {e["id"]: e for e in listing.entries}["LJ002-0003"]["text"] == "herr strasse"
    by_id = {e["id"]: e for e in listing.entries}
    assert by_id["LJ002-0001"]["raw_text"] == 'He said "yes" to the third offer'
    assert by_id["LJ002-0001"]["text"] == "he said yes to the third offer"
    assert by_id["LJ002-0002"]["text"] == "it is dated eighteen fifty"
    assert by_id["LJ001-0007"]["text"] == "sentence seven"
    assert all("speaker" not in e for e in listing.entries)
    check_durations(listing.entries, durations)


def test_split_by_hash_is_deterministic_disjoint_and_sized(tmp_path):
    entries = [{"id": f"utt{i:03d}"} for i in range(40)]
    splits = layouts.split_by_hash(entries, dev_size=5, test_size=3)
    assert {name: len(part) for name, part in splits.items()} == {"train": 32, "dev": 5, "test": 3}
    ids = [{e["id"] for e in part} for part in splits.values()]
    assert set.union(*ids) == {e["id"] for e in entries} and sum(map(len, ids)) == len(entries)
    assert layouts.split_by_hash(entries, 5, 3) == splits
    reordered = layouts.split_by_hash(entries[::-1], 5, 3)  # the order of the listing does not matter
    assert {name: sorted(e["id"] for e in part) for name, part in reordered.items()} == \
        {name: [e["id"] for e in part] for name, part in splits.items()}
    with pytest.raises(ManifestError, match="cannot split 40 utterances"):
        layouts.split_by_hash(entries, 20, 20)


def test_ljspeech_script_writes_the_same_split_twice(tmp_path):
    durations = make_ljspeech(tmp_path)
    texts = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = prepare("ljspeech", tmp_path / "LJSpeech-1.1", "--out", out, "--dev-size", 2, "--test-size", 3,
                         "--jobs", 1, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "dropped 1 utterance(s)" in result.stdout and "LJ002-0004" in result.stdout
        texts.append([(out / f"{split}.jsonl").read_text() for split in ("train", "dev", "test")])
    assert texts[0] == texts[1]
    splits = {split: read_manifest(tmp_path / "a" / f"{split}.jsonl") for split in ("train", "dev", "test")}
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [len(LJSPEECH) - 1 - 2 - 3, 2, 3]  # one dropped
    for entries in splits.values():
        check_durations(entries, durations)
    first = json.loads(texts[0][1].splitlines()[0])
    assert Path(first["audio_filepath"]).is_absolute()  # the audio lies outside the manifests' folder


@pytest.mark.parametrize("damage, message", [
    (lambda base: (base / "metadata.csv").open("a").write("LJ009-0001|a|b|c\n"),
     rf"metadata\.csv:{len(LJSPEECH) + 1}: expected 'id\|text\|normalized text', got 4 field\(s\)"),
    (lambda base: (base / "wavs" / "LJ001-0004.wav").unlink(), r"metadata\.csv:4: audio file not found: .*LJ001-0004"),
    (lambda base: tone(base / "wavs" / "LJ009-0009.wav", 0.2), r"LJ009-0009\.wav: audio file without a transcript"),
    (lambda base: (base / "metadata.csv").unlink(), r"metadata\.csv: not found"),
])
def test_ljspeech_errors_name_the_file(tmp_path, damage, message):
    make_ljspeech(tmp_path)
    damage(tmp_path / "LJSpeech-1.1")
    with pytest.raises(ManifestError, match=message):
        layouts.ljspeech(tmp_path / "LJSpeech-1.1", jobs=1)


def test_ljspeech_script_fails_in_one_line(tmp_path):
    make_ljspeech(tmp_path)
    with (tmp_path / "LJSpeech-1.1" / "metadata.csv").open("a") as f:
        f.write("LJ009-0001\n")
    assert_fails_naming(prepare("ljspeech", tmp_path, "--out", tmp_path / "out", cwd=tmp_path), f"metadata.csv:{len(LJSPEECH) + 1}")


# Common Voice

CV_HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
             "gender", "accents", "variant", "locale", "segment"]
COMMONVOICE = {  # split -> (client_id, clip number, sentence)
    "train": [("c1a", 1, 'He said "hello" twice.'), ("c1a", 2, "A café in town."), ("c2b", 3, "Ιθάκη is an island."),
              ("c2b", 4, "Numbers like 42 work.")],
    "dev": [("c3c", 5, "Good morning.")],
    "test": [("c4d", 6, "See you soon."), ("c4d", 7, "Bye now.")],
}


def clip(number: int) -> str:
    return f"common_voice_en_{number}.mp3"


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.write_text("".join("\t".join(map(str, row)) + "\n" for row in [header, *rows]), encoding="utf-8")


def make_commonvoice(root: Path) -> dict[str, float]:
    """root/{train,dev,test,validated}.tsv and clips/*.mp3 (48 kHz), plus a clip of no split; returns id -> duration."""
    durations = {clip(n).removesuffix(".mp3"): tone(root / "clips" / clip(n), 0.3 + 0.07 * n, 48000)
                 for n in range(1, 9)}
    rows = {split: [[speaker, clip(n), f"s{n}", sentence, "", 2, 0, "", "", "", "", "en", ""]
                    for speaker, n, sentence in utterances] for split, utterances in COMMONVOICE.items()}
    for split, split_rows in [*rows.items(), ("validated", [row for r in rows.values() for row in r])]:
        write_tsv(root / f"{split}.tsv", CV_HEADER, split_rows)
    return durations


def test_commonvoice_entries_measured(tmp_path):
    durations = make_commonvoice(tmp_path)
    listing = layouts.commonvoice(tmp_path, "train", jobs=1)
    assert listing.dropped == [("common_voice_en_3", "letters 'Ιάηθκ' outside the vocabulary")]
    assert [(e["speaker"], e["raw_text"], e["text"]) for e in listing.entries] == [
        ("c1a", 'He said "hello" twice.', "he said hello twice"),
        ("c1a", "A café in town.", "a cafe in town"),
        ("c2b", "Numbers like 42 work.", "numbers like forty two work"),
    ]
    check_durations(listing.entries, durations)
    assert len(layouts.commonvoice(tmp_path, "validated", jobs=1).entries) == 6


def test_commonvoice_uses_clip_durations_tsv(tmp_path):
    durations = make_commonvoice(tmp_path)
    write_tsv(tmp_path / "clip_durations.tsv", ["clip", "duration[ms]"], [[clip(1), 1234], [clip(2), 2345]])
    entries = layouts.commonvoice(tmp_path, "train", jobs=1).entries
    assert [e["duration"] for e in entries[:2]] == [1.234, 2.345]  # taken from the file, not measured
    check_durations(entries[2:], durations)  # clip 4 is not in the file: measured


def test_commonvoice_script(tmp_path):
    durations = make_commonvoice(tmp_path)
    result = prepare("commonvoice", tmp_path, "--out", tmp_path / "out", "--jobs", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "train: dropped 1 utterance(s)" in result.stdout
    counts = {split: len(read_manifest(tmp_path / "out" / f"{split}.jsonl")) for split in ("train", "dev", "test")}
    assert counts == {"train": 3, "dev": 1, "test": 2} and not (tmp_path / "out" / "validated.jsonl").exists()
    check_durations(read_manifest(tmp_path / "out" / "test.jsonl"), durations)


def _append(name: str, line: str):
    return lambda root: (root / name).open("a").write(line + "\n")


@pytest.mark.parametrize("damage, error, message", [
    (_append("train.tsv", "c9\tcommon_voice_en_8.mp3\ts8\tToo few fields"), ManifestError,
     r"train\.tsv:6: expected 13 fields"),
    (lambda root: (root / "clips" / clip(2)).unlink(), ManifestError,
     r"train\.tsv:3: audio file not found: .*common_voice_en_2\.mp3"),
    (lambda root: write_tsv(root / "train.tsv", ["client_id", "path"], []), ManifestError,
     r"train\.tsv:1: header lacks column\(s\) sentence"),
    (lambda root: write_tsv(root / "clip_durations.tsv", ["clip", "duration[ms]"], [[clip(1), "n/a"]]), ManifestError,
     r"clip_durations\.tsv:2: duration\[ms\] must be a positive number"),
    (lambda root: _garble(root / "clips" / clip(4)), AudioError, r"common_voice_en_4\.mp3: not a readable audio file"),
    (lambda root: (root / "train.tsv").unlink(), ManifestError, r"train\.tsv: not found"),
])
def test_commonvoice_errors_name_the_file(tmp_path, damage, error, message):
    make_commonvoice(tmp_path)
    damage(tmp_path)
    with pytest.raises(error, match=message):
        layouts.commonvoice(tmp_path, "train", jobs=1)


def test_commonvoice_script_fails_in_one_line(tmp_path):
    make_commonvoice(tmp_path)
    (tmp_path / "clips" / clip(6)).unlink()
    assert_fails_naming(prepare("commonvoice", tmp_path, "--out", tmp_path / "out", cwd=tmp_path), clip(6))


# Generic: a folder with .txt transcripts, or a CSV

def make_folder(root: Path) -> dict[str, float]:
    """root/a.wav, root/sub/b.flac, root/sub/deeper/c.wav, each with a .txt; returns id -> duration."""
    files = {"a.wav": "Hello world.", "sub/b.flac": "Second,  file\non two lines", "sub/deeper/c.wav": "Third one"}
    durations = {}
    for i, (name, text) in enumerate(files.items()):
        durations[name.rpartition(".")[0]] = tone(root / name, 0.3 + 0.1 * i, 16000 if i else 8000)
        (root / name).with_suffix(".txt").write_text(text)
    return durations


def test_audio_folder_entries(tmp_path):
    durations = make_folder(tmp_path)
    listing = layouts.audio_folder(tmp_path, jobs=1)
    assert [(e["id"], e["raw_text"], e["text"]) for e in listing.entries] == [
        ("a", "Hello world.", "hello world"),
        ("sub/b", "Second, file on two lines", "second file on two lines"),
        ("sub/deeper/c", "Third one", "third one"),
    ]
    check_durations(listing.entries, durations)


def test_csv_listing_with_and_without_header(tmp_path):
    durations = {"wavs/x": tone(tmp_path / "wavs" / "x.wav", 0.5), "wavs/y": tone(tmp_path / "wavs" / "y.flac", 0.7)}
    (tmp_path / "with.csv").write_text('path,text,speaker\nwavs/x.wav,"Hello, there",alice\nwavs/y.flac,Bye,bob\n')
    (tmp_path / "without.csv").write_text(f'wavs/x.wav,"Hello, there"\n{tmp_path / "wavs" / "y.flac"},Bye\n')
    with_header = layouts.csv_listing(tmp_path / "with.csv", jobs=1).entries
    assert [(e["id"], e["text"], e["speaker"]) for e in with_header] == [("wavs/x", "hello there", "alice"),
                                                                          ("wavs/y", "bye", "bob")]
    without = layouts.csv_listing(tmp_path / "without.csv", jobs=1).entries
    assert [e["audio_filepath"] for e in without] == [str(tmp_path / "wavs" / n) for n in ("x.wav", "y.flac")]
    check_durations(with_header, durations)


def test_generic_script_split(tmp_path):
    corpus = tmp_path / "corpus"
    for i in range(10):
        tone(corpus / f"rec{i}.wav", 0.2)
        (corpus / f"rec{i}.txt").write_text(f"recording {i}")
    outputs = []
    for run in ("a", "b"):
        result = prepare("generic", corpus, "--out", tmp_path / run, "--dev-fraction", 0.2, "--test-fraction", 0.1,
                         "--jobs", 1, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs.append([(tmp_path / run / f"{split}.jsonl").read_text() for split in ("train", "dev", "test")])
    assert outputs[0] == outputs[1]
    splits = [{e["id"] for e in read_manifest(tmp_path / "a" / f"{split}.jsonl")} for split in ("train", "dev", "test")]
    assert [len(s) for s in splits] == [7, 2, 1] and len(set.union(*splits)) == 10


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "a.txt").unlink(), r"a\.wav: no transcript a\.txt beside it"),
    (lambda root: (root / "sub" / "b.flac").unlink(), r"b\.txt: transcript without an audio file"),
    (lambda root: tone(root / "sub" / "b.wav", 0.2), r"b\.wav: shares its transcript b\.txt with b\.flac"),
    (lambda root: (root / "sub" / "deeper" / "c.txt").write_bytes(b"\xff\xfe\xfa"), r"c\.txt: not UTF-8 text"),
])
def test_audio_folder_errors_name_the_file(tmp_path, damage, message):
    make_folder(tmp_path)
    damage(tmp_path)
    with pytest.raises(ManifestError, match=message):
        layouts.audio_folder(tmp_path, jobs=1)


@pytest.mark.parametrize("content, message", [
    ("wavs/x.wav,hello,extra\n", r"list\.csv:1: expected 2 fields"),
    ("path,text\nwavs/x.wav,hello\nwavs/missing.wav,hi\n", r"list\.csv:3: audio file not found: .*missing\.wav"),
    ("", r"list\.csv: no rows"),
])
def test_csv_listing_errors_name_the_file(tmp_path, content, message):
    tone(tmp_path / "wavs" / "x.wav", 0.2)
    (tmp_path / "list.csv").write_text(content)
    with pytest.raises(ManifestError, match=message):
        layouts.csv_listing(tmp_path / "list.csv", jobs=1)


def test_generic_script_fails_in_one_line(tmp_path):
    (tmp_path / "list.csv").write_text("gone.wav,hello\n")
    assert_fails_naming(prepare("generic", tmp_path / "list.csv", "--out", tmp_path / "out", cwd=tmp_path),
                        "list.csv:1")


# Whole-speaker splits

def test_split_by_speaker_keeps_speakers_whole_and_spreads_the_strata():
    entries = [{"id": f"{s}-{u}", "audio_filepath": "x", "speaker": f"spk{s}", "group": "kid" if s % 2 else "adult"}
               for s in range(20) for u in range(3)]
    splits = layouts.split_by_speaker(entries, dev_speakers=4, test_speakers=2, stratum=lambda e: e["group"])
    speakers = {name: {e["speaker"] for e in part} for name, part in splits.items()}
    assert [len(speakers[n]) for n in ("train", "dev", "test")] == [14, 4, 2]
    assert not (speakers["train"] & speakers["dev"]) and not (speakers["dev"] & speakers["test"])
    assert all(len(part) == 3 * len(speakers[name]) for name, part in splits.items())  # every utterance of a speaker
    for name in ("dev", "test"):  # both groups in each held-out split
        assert {e["group"] for e in splits[name]} == {"kid", "adult"}
    assert layouts.split_by_speaker(entries[::-1], 4, 2, lambda e: e["group"])["dev"] == splits["dev"][::-1]
    with pytest.raises(ManifestError, match="cannot split 20 speakers"):
        layouts.split_by_speaker(entries, 10, 10)


# speechocean762: Kaldi data dirs train/ and test/ with spk2age, Opus audio under WAVE/

def make_speechocean(root: Path) -> None:
    for split, first in (("train", 1), ("test", 21)):
        data = root / split
        data.mkdir(parents=True)
        scp, text, utt2spk, genders, ages = [], [], [], [], []
        for speaker in range(first, first + 12):
            spk = f"{speaker:04d}"
            genders.append(f"{spk} {'mf'[speaker % 2]}")
            ages.append(f"{spk} {8 if speaker % 3 else 30}")
            for utt in range(2):
                utt_id = f"{spk}{utt:05d}"
                folder = root / "WAVE" / f"SPEAKER{spk}"
                folder.mkdir(parents=True, exist_ok=True)
                soundfile.write(folder / f"{utt_id}.opus", 0.1 * np.ones(8000, np.float32), 16000, format="OGG",
                                subtype="OPUS")
                scp.append(f"{utt_id} WAVE/SPEAKER{spk}/{utt_id}.opus")
                text.append(f"{utt_id} WE CALL IT BEAR {utt}")
                utt2spk.append(f"{utt_id} {spk}")
        for name, lines in (("wav.scp", scp), ("text", text), ("utt2spk", utt2spk), ("spk2gender", genders),
                            ("spk2age", ages)):
            (data / name).write_text("\n".join(lines) + "\n")


def test_speechocean762_script_holds_out_test_speakers(tmp_path):
    make_speechocean(tmp_path / "so")
    result = prepare("speechocean762", tmp_path / "so", "--out", tmp_path / "out", "--dev-speakers", 4,
                     "--test-speakers", 3, "--jobs", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    splits = {name: read_manifest(tmp_path / "out" / f"{name}.jsonl") for name in ("train", "dev", "test")}
    speakers = {name: {e["speaker"] for e in part} for name, part in splits.items()}
    assert [len(speakers[n]) for n in ("train", "dev", "test")] == [12 + 5, 4, 3]
    test_split = {f"so762:{s:04d}" for s in range(21, 33)}
    assert speakers["dev"] | speakers["test"] <= test_split  # held out from the corpus's own test speakers
    assert not (speakers["train"] & (speakers["dev"] | speakers["test"]))
    entry = splits["dev"][0]
    assert entry["text"].startswith("we call it bear ") and entry["gender"] in "mf"
    assert entry["source"] == ("speechocean762/child" if entry["age"] == 8 else "speechocean762/adult")
    (tmp_path / "so" / "test" / "spk2age").write_text("0021 8\n")
    assert_fails_naming(prepare("speechocean762", tmp_path / "so", "--out", tmp_path / "out2", cwd=tmp_path),
                        "spk2age")


# Free Spoken Digit Dataset: recordings/{digit}_{speaker}_{index}.flac at 8 kHz

def test_digits_script_writes_speaker_splits(tmp_path):
    recordings = tmp_path / "recordings"
    for speaker in ("george", "jackson", "lucas", "theo"):
        for digit in range(3):
            tone(recordings / f"{digit}_{speaker}_0.flac", 0.3, 8000)
    result = prepare("digits", recordings, "--out", tmp_path / "out", "--jobs", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    splits = {name: read_manifest(tmp_path / "out" / f"{name}.jsonl") for name in ("train", "dev", "test")}
    assert [len({e["speaker"] for e in splits[n]}) for n in ("train", "dev", "test")] == [2, 1, 1]
    assert {e["text"] for e in splits["dev"]} == {"zero", "one", "two"} and splits["dev"][0]["source"] == "fsdd"
    tone(recordings / "seven.flac", 0.3, 8000)
    assert_fails_naming(prepare("digits", recordings, "--out", tmp_path / "out", cwd=tmp_path), "seven.flac")


# The dev/test sets of people, composed from the corpora's held-out parts

def test_people_script_composes_caps_and_checks_disjointness(tmp_path):
    from asr.manifest import write_manifest

    def corpus(name: str, speakers: list[str], count: int, source: bool = True) -> Path:
        entries = []
        for i in range(count):
            path = tmp_path / name / f"{i}.wav"
            tone(path, 0.2)
            entry = {"audio_filepath": str(path), "duration": 0.2, "text": "hello", "id": f"{name}/{i}",
                     "speaker": speakers[i % len(speakers)]}
            entries.append(entry | ({"source": name} if source else {}))
        write_manifest(tmp_path / name / "part.jsonl", entries)
        return tmp_path / name / "part.jsonl"

    dev_a, dev_b = corpus("a", ["x:1"], 10), corpus("b", ["y:1", "y:2"], 30, source=False)
    train = corpus("train", ["x:2"], 5)
    result = prepare("people", "--out", tmp_path / "people", "--dev", dev_a, f"{dev_b}:12", "--train", train,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dev = read_manifest(tmp_path / "people" / "dev.jsonl")
    assert len(dev) == 22 and {e["source"] for e in dev} == {"a", "b"}  # b's folder name is its source
    again = prepare("people", "--out", tmp_path / "again", "--dev", dev_a, f"{dev_b}:12", cwd=tmp_path)
    assert again.returncode == 0 and (tmp_path / "again" / "dev.jsonl").read_text() == \
        (tmp_path / "people" / "dev.jsonl").read_text()
    leaky = corpus("leaky", ["y:2"], 3)  # a dev speaker in training
    assert_fails_naming(prepare("people", "--out", tmp_path / "p2", "--dev", f"{dev_b}:12", "--train", leaky,
                                cwd=tmp_path), "speaker y:2")
