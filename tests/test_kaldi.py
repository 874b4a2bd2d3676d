"""Kaldi data directories (asr.corpora.kaldi, `asr manifest kaldi`): tiny data dirs made at test time, audio in the
formats real corpora come in, segments of longer recordings read as spans, and one-line errors for bad input,
including wav.scp commands, which are refused and never run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr import ManifestError
from asr.audio import SAMPLE_RATE, AudioSpan, load_audio, stream_audio
from asr.corpora.kaldi import kaldi_data_dir
from asr.data import SpeechDataset
from asr.manifest import entry_audio, read_manifest
from asr.text import Vocabulary

# name -> (soundfile format, subtype, rate, seconds): what corpora ship (Opus at 16 kHz as speechocean762's copy,
# 8 kHz FLAC as the digit corpus, 8-bit PCM at 11,025 Hz as the games, MP3, 48 kHz studio WAV).
FORMATS = {
    "opus": ("OGG", "OPUS", 16000, 1.2),
    "flac": ("FLAC", "PCM_16", 8000, 0.8),
    "wav": ("WAV", "PCM_U8", 11025, 1.0),
    "mp3": ("MP3", "MPEG_LAYER_III", 22050, 1.5),
    "wave": ("WAV", "PCM_24", 48000, 0.6),
}


def chirp(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


def write_audio(path: Path, fmt: str, subtype: str, rate: int, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, chirp(rate, seconds), rate, format=fmt, subtype=subtype)


def make_data_dir(root: Path, segments: bool = False) -> Path:
    """root/corpus/audio/* and root/corpus/train/{wav.scp,text,utt2spk,spk2gender[,segments]}, wav.scp's paths
    relative to corpus/ (as in speechocean762)."""
    corpus, data = root / "corpus", root / "corpus" / "train"
    data.mkdir(parents=True)
    scp, text, utt2spk = [], [], []
    for i, (name, (fmt, subtype, rate, seconds)) in enumerate(FORMATS.items()):
        suffix = "wav" if name == "wave" else name
        write_audio(corpus / "audio" / f"rec{i}.{suffix}", fmt, subtype, rate, seconds)
        scp.append(f"rec{i} audio/rec{i}.{suffix}")
        if segments:
            text += [f"rec{i}-a HELLO THERE", f"rec{i}-b GENERAL KENOBI"]
            utt2spk += [f"rec{i}-a spk{i % 2}", f"rec{i}-b spk{i % 2}"]
        else:
            text.append(f"rec{i}  Hello\tWorld Number {i}")
            utt2spk.append(f"rec{i} spk{i % 2}")
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "text").write_text("\n".join(text) + "\n")
    (data / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    (data / "spk2gender").write_text("spk0 f\nspk1 M\n")
    if segments:
        lines = []
        for i, (_, _, _, seconds) in enumerate(FORMATS.values()):
            lines += [f"rec{i}-a rec{i} 0.00 0.40", f"rec{i}-b rec{i} 0.20 -1"]  # 0.2 s: whole samples at every rate
        (data / "segments").write_text("\n".join(lines) + "\n")
    return data


def test_every_format_comes_in_as_16k_mono(tmp_path):
    data = make_data_dir(tmp_path)
    listing = kaldi_data_dir(data, speaker_prefix="toy:", jobs=1)
    entries = {e["id"]: e for e in listing.entries}
    assert sorted(entries) == [f"rec{i}" for i in range(len(FORMATS))]
    for i, (name, (_, _, rate, seconds)) in enumerate(FORMATS.items()):
        entry = entries[f"rec{i}"]
        assert entry["raw_text"] == f"Hello\tWorld Number {i}" and entry["text"].startswith("hello world number ")
        assert entry["speaker"] == f"toy:spk{i % 2}" and entry["gender"] == ("f" if i % 2 == 0 else "m")
        assert "offset" not in entry
        assert abs(entry["duration"] - seconds) < 0.06, (name, entry["duration"])  # MP3 adds encoder padding
        audio = load_audio(entry["audio_filepath"])
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) / SAMPLE_RATE - entry["duration"]) < 0.06, name


def test_paths_resolve_against_the_root_named(tmp_path):
    data = make_data_dir(tmp_path)
    with pytest.raises(ManifestError, match=r"wav\.scp:1: audio file not found: .*corpus/train/audio/rec0\.opus"):
        kaldi_data_dir(data, root=data, jobs=1)
    (data / "audio").symlink_to(data.parent / "audio")  # the same files, seen from train/
    moved = kaldi_data_dir(data, root=data, jobs=1)
    assert Path(moved.entries[0]["audio_filepath"]) == data / "audio" / "rec0.opus"


def test_segments_become_spans_of_their_recording(tmp_path):
    data = make_data_dir(tmp_path, segments=True)
    entries = {e["id"]: e for e in kaldi_data_dir(data, jobs=1).entries}
    assert len(entries) == 2 * len(FORMATS)
    for i, (name, (_, _, rate, seconds)) in enumerate(FORMATS.items()):
        first, rest = entries[f"rec{i}-a"], entries[f"rec{i}-b"]
        assert (first["offset"], first["duration"]) == (0.0, 0.4)
        assert rest["offset"] == 0.2 and abs(rest["duration"] - (seconds - 0.2)) < 0.06  # end -1: to the end
        whole = load_audio(first["audio_filepath"])
        span = load_audio(entry_audio(rest))
        start = round(0.2 * SAMPLE_RATE)
        assert abs(len(span) - (len(whole) - start)) <= 2, name
        middle = slice(200, len(span) - 200)  # the resampler's edges differ
        assert np.abs(span[middle] - whole[start:][: len(span)][middle]).max() < 2e-3, name
        assert np.array_equal(np.concatenate(list(stream_audio(entry_audio(first)))), load_audio(entry_audio(first)))


def test_a_manifest_with_offsets_trains_on_the_spans(tmp_path):
    data = make_data_dir(tmp_path, segments=True)
    from asr.corpora.layouts import save

    save(tmp_path / "train.jsonl", kaldi_data_dir(data, jobs=1).entries)
    entries = read_manifest(tmp_path / "train.jsonl")
    dataset = SpeechDataset(entries, Vocabulary())
    for index, entry in enumerate(entries):
        item = dataset[index]
        assert abs(len(item.audio) - entry["duration"] * SAMPLE_RATE) <= 2 and item.text == entry["text"]
        assert not item.unusable


def test_a_span_beyond_the_file_is_an_audio_error(tmp_path):
    write_audio(tmp_path / "a.flac", "FLAC", "PCM_16", 8000, 1.0)
    with pytest.raises(Exception, match=r"a\.flac \[2\.000 s to 3\.000 s\]: starts beyond the end"):
        load_audio(AudioSpan(str(tmp_path / "a.flac"), 2.0, 1.0))


def write(data: Path, name: str, content: str | bytes) -> None:
    (data / name).write_bytes(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize("segments, name, content, message", [
    (False, "wav.scp", "rec0 audio/rec0.opus\nrec0 audio/rec1.flac\n", r"wav\.scp:2: key 'rec0' listed a second time \(first at .*wav\.scp:1\)"),
    (False, "text", b"rec0 caf\xe9\n", r"text:1: not UTF-8 text"),
    (False, "utt2spk", "rec0 spk0\n", r"text:2: utterance 'rec1' has no line in .*utt2spk"),
    (False, "wav.scp", "rec0 audio/rec0.opus\nrec1 audio/missing.flac\n", r"wav\.scp:2: audio file not found: .*missing\.flac"),
    (False, "spk2gender", "spk0 x\n", r"spk2gender:1: gender must be m or f, got 'x'"),
    (False, "text", "", r"text: empty file"),
    (False, "utt2spk", "rec0\n", r"utt2spk:1: expected '<key> <value>'"),
    (True, "segments", "rec0-a rec0 0 0.4\nrec0-b rec0 0.3 9.5\n", r"segments: segment rec0-b \(0\.3 to 9\.5 s\) goes beyond the end of recording rec0"),
    (True, "segments", "rec0-a rec0 0.5 0.4\n", r"segments:1: a segment needs 0 <= start < end"),
    (True, "segments", "rec0-a rec9 0 0.4\n", r"segments:1: recording 'rec9' is not in wav\.scp"),
    (True, "segments", "rec0-a rec0 zero 0.4\n", r"segments:1: start and end must be numbers"),
])
def test_bad_data_dirs_name_the_file_and_line(tmp_path, segments, name, content, message):
    data = make_data_dir(tmp_path, segments=segments)
    if segments:  # the damaged lines replace rec0's; the other recordings keep theirs
        content += "".join(line + "\n" for line in (data / name).read_text().splitlines() if not line.startswith("rec0-"))
    write(data, name, content)
    with pytest.raises(ManifestError, match=message):
        kaldi_data_dir(data, jobs=1)


def test_a_wav_scp_command_is_refused_and_never_run(tmp_path):
    data = make_data_dir(tmp_path)
    witness = tmp_path / "ran"
    write(data, "wav.scp", f"rec0 audio/rec0.opus\nrec1 touch {witness} |\n")
    with pytest.raises(ManifestError, match=r"wav\.scp:2: wav\.scp entry is a command"):
        kaldi_data_dir(data, jobs=1)
    result = subprocess.run([sys.executable, "-m", "asr.cli", "manifest", "kaldi", str(data), "--out",
                             str(tmp_path / "out.jsonl")], capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "wav.scp:2" in lines[0] and "command" in lines[0]
    assert not witness.exists() and not (tmp_path / "out.jsonl").exists()


def test_asr_manifest_writes_a_manifest_that_evaluate_reads(tmp_path):
    data = make_data_dir(tmp_path, segments=True)
    out = tmp_path / "manifests" / "train.jsonl"
    result = subprocess.run([sys.executable, "-m", "asr.cli", "manifest", "kaldi", str(data), "--out", str(out),
                             "--speaker-prefix", "toy:", "--jobs", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: {2 * len(FORMATS)} utterances" in result.stdout and "2 speakers" in result.stdout
    entries = read_manifest(out)
    assert {e["speaker"] for e in entries} == {"toy:spk0", "toy:spk1"}
    assert all("offset" in e for e in entries)
