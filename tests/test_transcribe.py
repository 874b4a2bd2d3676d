"""Transcription with the bundled model: word times against known silences, files of any length in bounded
memory with times on the file's timeline, many inputs, output files and standard input through the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import asr
from asr.audio import load_audio
from asr.corpora.synthetic import Voice, synthesize
from asr.decoding.lm import read_word_list
from asr.evaluate import score

WORDS = ["morning", "yellow", "people", "window", "seven", "garden", "water", "remember"]
SENTENCES = ["the weather was fine all day", "please open the window", "she has seven brothers",
             "we walked in the garden", "water is good for you", "i remember that morning"]
VOICE = Voice("espeak-ng", "en-us")


@pytest.fixture(scope="module")
def model() -> asr.transcribe.Transcriber:
    return asr.load_model()


def trimmed(text: str, path: Path) -> np.ndarray:
    """Speech of text with the synthesizer's leading and trailing silence cut off."""
    synthesize(text, VOICE, path)
    audio = load_audio(path)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1]


def test_word_times_match_known_silences(model, tmp_path):
    """Isolated words between silences of known length: each recognized word starts and ends within 0.1 s."""
    rng = np.random.default_rng(0)
    pieces, truth, t = [], [], 0.0
    for i, word in enumerate(WORDS):
        speech = trimmed(word, tmp_path / f"{i}.wav")
        gap = np.zeros(int(16000 * rng.uniform(0.4, 0.9)), np.float32)
        pieces += [gap, speech]
        truth.append((word, t + len(gap) / 16000, t + (len(gap) + len(speech)) / 16000))
        t = truth[-1][2]
    result = model.transcribe(np.concatenate([*pieces, np.zeros(8000, np.float32)]), 16000)
    words = [w for segment in result.segments for w in segment.words]
    assert score([" ".join(WORDS)], [result.text]).cer < 0.25
    for word, start, end in truth:
        heard = [w for w in words if start - 0.2 < (w.start + w.end) / 2 < end + 0.2]
        assert heard, f"nothing heard for {word!r} at {start:.2f}-{end:.2f} s"
        assert abs(heard[0].start - start) < 0.1 and abs(heard[-1].end - end) < 0.1, (word, start, end, heard)
        assert all(0.0 <= w.confidence <= 1.0 for w in heard)


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory) -> tuple[Path, list[tuple[str, float, float]]]:
    """31 minutes of sentences and pauses, written block by block; returns the file and (text, start, end)."""
    root = tmp_path_factory.mktemp("long")
    speech = [trimmed(text, root / f"{i}.wav") for i, text in enumerate(SENTENCES)]
    rng = np.random.default_rng(1)
    truth, t = [], 0.0
    path = root / "long.flac"
    with soundfile.SoundFile(path, "w", 16000, 1, format="FLAC") as f:
        while t < 31 * 60:
            i = int(rng.integers(len(SENTENCES)))
            gap = np.zeros(int(16000 * rng.uniform(0.5, 1.5)), np.float32)
            f.write(gap)
            f.write(speech[i])
            truth.append((SENTENCES[i], t + len(gap) / 16000, t + (len(gap) + len(speech[i])) / 16000))
            t = truth[-1][2]
        f.write(np.zeros(16000, np.float32))
    return path, truth


@pytest.mark.slow
def test_long_file_is_transcribed_on_its_own_timeline(model, long_recording):
    path, truth = long_recording
    result = model.transcribe(path)
    assert result.duration == pytest.approx(truth[-1][2] + 1.0, abs=1e-3)
    words = [w for segment in result.segments for w in segment.words]
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))  # in order, no word twice
    for text, start, end in truth[:3] + truth[len(truth) // 2 : len(truth) // 2 + 3] + truth[-3:]:
        heard = " ".join(w.word for w in words if start - 0.2 < (w.start + w.end) / 2 < end + 0.2)
        assert score([text], [heard]).cer < 0.3, (text, start, heard)
    assert score([" ".join(t for t, _, _ in truth)], [result.text]).cer < 0.2


PEAK_RSS = """
import resource, sys
import asr
model = asr.load_model()
model.transcribe(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.slow
def test_long_file_memory_is_bounded(long_recording, tmp_path):
    """Peak memory for 31 minutes exceeds that for 1 minute by far less than the decoded audio (119 MB)."""
    path, truth = long_recording
    short = tmp_path / "short.flac"
    audio, rate = soundfile.read(path, frames=60 * 16000, dtype="float32")
    soundfile.write(short, audio, rate)
    peaks = [int(subprocess.run([sys.executable, "-c", PEAK_RSS, str(p)], capture_output=True, text=True,
                                check=True).stdout.split()[-1]) for p in (short, path)]
    assert peaks[1] - peaks[0] < 60, f"peak RSS {peaks[0]} MB for 1 minute, {peaks[1]} MB for 31 minutes"


def test_cli_many_inputs_output_files_and_stdin(tmp_path):
    folder = tmp_path / "audio"
    for i, text in enumerate(SENTENCES[:3]):
        synthesize(text, VOICE, folder / f"clip{i}.wav")
    (folder / "broken.wav").write_bytes(b"RIFF not really a wav")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", str(folder), "-", "--output-format", "all",
                          "--output-dir", str(out)], input=(folder / "clip0.wav").read_bytes(), capture_output=True)
    # The broken file is reported in one line and fails the run; every other input is still written.
    assert run.returncode == 1
    errors = [line for line in run.stderr.decode().splitlines() if "error" in line]
    assert len(errors) == 2 and "broken.wav" in errors[0] and "1 of 5 inputs" in errors[1]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}.{ext}" for stem in ("clip0", "clip1", "clip2", "stdin") for ext in ("txt", "json", "srt", "vtt"))
    clip0 = json.loads((out / "clip0.json").read_text())
    assert clip0["source"].endswith("clip0.wav") and clip0["segments"][0]["words"][0]["start"] >= 0
    assert json.loads((out / "stdin.json").read_text())["text"] == clip0["text"]
    assert score([SENTENCES[0]], [clip0["text"]]).cer < 0.3
    assert (out / "clip1.srt").read_text().startswith("1\n00:00:00,")
    assert (out / "clip2.vtt").read_text().startswith("WEBVTT\n")


@pytest.mark.slow
def test_cli_beam_search_with_the_bundled_lm_and_hotwords(tmp_path):
    wav = tmp_path / "s.wav"
    synthesize("we walked in the garden with zorbanix", VOICE, wav)

    def transcribe(*options: str) -> str:
        return subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", str(wav), "--no-punctuate", *options],
                              capture_output=True, text=True, check=True).stdout.strip()

    beam = transcribe("--decoder", "beam")
    # Words from the bundled LM's lexicon only, which lacks the made-up "zorbanix" until it is a hotword.
    assert beam.startswith("we walked in the garden with") and "zorbanix" not in beam
    assert "zorbanix" not in read_word_list(asr.load_model().recommended_decoding.lexicon)
    assert transcribe("--decoder", "beam", "--lm", "none")  # lexicon-free beam search without an LM
    assert transcribe("--hotword", "Zorbanix", "--hotword-weight", "8").endswith("zorbanix")


def test_cli_writes_numbers_as_digits_with_the_spoken_words_times_unless_raw(tmp_path):
    wav = tmp_path / "pets.wav"
    synthesize("i have six cats and twenty five dogs", VOICE, wav)

    def words(*options: str) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", str(wav), "--output-format", "json",
                              *options], capture_output=True, text=True, check=True).stdout
        return [w for s in json.loads(out)["segments"] for w in s["words"]]

    written, spoken = words("--no-punctuate"), words("--raw")
    assert [w["word"] for w in spoken][-4:] == ["and", "twenty", "five", "dogs"]
    assert [w["word"] for w in written][-3:] == ["and", "25", "dogs"]
    number = written[-2]
    assert (number["start"], number["end"]) == (spoken[-3]["start"], spoken[-2]["end"])
    assert written[:2] == spoken[:2]  # untouched words keep their times and confidences
