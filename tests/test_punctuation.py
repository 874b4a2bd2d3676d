"""Punctuation and capitals (asr/punctuation.py, recipes/punctuation): the tags of raw text, the bundled tagger on
sentences it never saw, transcripts and every output format keeping their word times, the CLI switches, the
recipe's training and export, and damaged model files."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.cli import main
from asr.corpora.synthetic import Voice, synthesize
from asr.errors import CheckpointError
from asr.punctuation import BUNDLED, MARKS, Punctuator, bundled_punctuator, labelled_words, written_form
from asr.transcript import Segment, Transcript, Word
from asr.writers import render
from asr.written import written, written_text

ROOT = Path(__file__).resolve().parent.parent


def text_of(raw: str) -> str:
    return " ".join(written_form(*tags) for tags in labelled_words(raw))


@pytest.mark.parametrize("raw, expected", [
    ('"Well, Mr. Darcy," said she, "I am NOT well-known!"', "Well, Mr. Darcy, said she, I am NOT well known!"),
    ("It was 1984; the clock struck 3:30.", "It was 1984, the clock struck 3:30."),
    ("Don't you think so? Yes\u2014I do...", "Don't you think so? Yes, I do."),
    ("Is it you?!", "Is it you!"),
])
def test_raw_text_becomes_words_with_their_case_and_mark(raw, expected):
    assert text_of(raw) == expected


def test_text_that_is_not_words_gives_no_tags():
    assert labelled_words("See http://example.org for more.") is None
    assert labelled_words("x = f(2) + 1") is None
    words = labelled_words("He paid $25 for it.")
    assert [w for w, _, _ in words] == ["he", "paid", "$25", "for", "it"] and words[-1][2] == MARKS.index(".")


def test_the_bundled_tagger_writes_sentences_it_never_saw():
    punctuator = bundled_punctuator()
    words = ("my name is john and i live in london what is your name where do you live "
             "the weather was fine all day so we walked in the garden").split()
    text = " ".join(punctuator.written(words))
    assert text[0] == "P" or text.startswith("My")
    assert text.endswith(".") and text.count(".") >= 2 and "John" in text and "London" in text
    assert text.lower().replace(",", "").replace(".", "").replace("?", "") == " ".join(words)
    # A text still being spoken gets no full stop forced at its end.
    assert not punctuator.written("and then we went".split(), complete=False)[-1].endswith(".")


def timed(text: str, start: float = 0.0) -> list[Word]:
    return [Word(w, start + i, start + i + 0.8, 0.9) for i, w in enumerate(text.split())]


def test_a_transcript_is_punctuated_as_one_text_with_its_word_times_kept():
    spoken = Transcript("i have six cats and twenty five dogs what about you",
                        [Segment(0.0, 6.8, "i have six cats and twenty five dogs", timed("i have six cats and twenty five dogs")),
                         Segment(10.0, 12.8, "what about you", timed("what about you", 10.0))], 13.0, "pets.wav")
    result = written(spoken)
    words = [w for s in result.segments for w in s.words]
    assert result.text[0].isupper() and result.text.endswith(("?", "."))
    assert "6 cats" in result.text and "25 dogs" in result.text
    assert [s.text for s in result.segments] == [" ".join(w.word for w in s.words) for s in result.segments]
    unpunctuated = [w for s in written(spoken, punctuate=False).segments for w in s.words]
    assert [(w.start, w.end, w.confidence) for w in words] == [(w.start, w.end, w.confidence) for w in unpunctuated]
    for output in ("srt", "vtt", "json"):
        assert "6 cats" in render(result, output)
    assert json.loads(render(result, "json"))["segments"][1]["words"][0]["start"] == 10.0
    assert written_text("what time is it", punctuate=False) == "what time is it"


def test_cli_punctuates_by_default_and_the_switches_turn_it_off(tmp_path, capsys):
    wav = tmp_path / "s.wav"
    synthesize("the weather was fine all day", Voice("espeak-ng", "en-us"), wav)
    outputs = {}
    for flags in ([], ["--no-punctuate"], ["--raw"]):
        assert main(["transcribe", str(wav), *flags]) == 0
        outputs[tuple(flags)] = capsys.readouterr().out.strip()
    assert outputs[()][0].isupper() and outputs[()].endswith((".", "?", "!"))
    assert outputs[("--no-punctuate",)] == outputs[("--no-punctuate",)].lower()
    assert re.sub(r"[,.?!]", "", outputs[()].lower()) == outputs[("--no-punctuate",)]


def test_damaged_punctuation_models_are_refused_naming_the_file(tmp_path):
    (tmp_path / "cut.onnx").write_bytes(BUNDLED.read_bytes()[:4000])
    (tmp_path / "cut.onnx.json").write_text(Path(f"{BUNDLED}.json").read_text())
    with pytest.raises(CheckpointError, match="cut.onnx: not a readable ONNX model"):
        Punctuator(tmp_path / "cut.onnx")
    (tmp_path / "bare.onnx").write_bytes(BUNDLED.read_bytes())
    with pytest.raises(CheckpointError, match="bare.onnx.json"):
        Punctuator(tmp_path / "bare.onnx")


def _tiny_text(folder: Path) -> Path:
    """train/dev rows of three sentences, 80 times over: enough for a tagger to learn them in a few dozen steps."""
    rows = []
    for raw in ["Where are you going? I am going home.", "Tom and Mary went to Paris, and they liked it.",
                "What a day! It rained, it snowed, and then the sun came out."] * 80:
        labelled = labelled_words(raw)
        rows.append({"source": "tiny", "words": [w for w, _, _ in labelled], "cases": [c for _, c, _ in labelled],
                     "marks": [m for _, _, m in labelled]})
    for split in ("train", "dev"):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _train(data: Path, out: Path, *options: str) -> str:
    return subprocess.run([sys.executable, str(ROOT / "recipes" / "punctuation" / "train.py"), "--data", str(data),
                           "--out", str(out), "--batch", "8", "--threads", "1", *options], check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.slow
def test_the_recipe_trains_and_exports_a_tagger_that_punctuates(tmp_path):
    _train(_tiny_text(tmp_path), tmp_path / "exp", "--steps", "60", "--eval-every", "30")
    tagger = Punctuator(tmp_path / "exp" / "punctuation.onnx")
    assert " ".join(tagger.written("where are you going i am going home".split())) == \
        "Where are you going? I am going home."


@pytest.mark.slow
def test_a_stopped_training_resumes_exactly(tmp_path):
    data = _tiny_text(tmp_path)
    _train(data, tmp_path / "whole", "--steps", "20", "--eval-every", "10")
    stopped = _train(data, tmp_path / "parts", "--steps", "20", "--eval-every", "10", "--stop-after", "7")
    assert "stopped at step 7" in stopped and not (tmp_path / "parts" / "punctuation.onnx").exists()
    assert "resumed at step 7" in _train(data, tmp_path / "parts", "--steps", "20", "--eval-every", "10", "--resume")
    whole, parts = (torch.load(tmp_path / run / "last.pt", weights_only=False)["model"] for run in ("whole", "parts"))
    assert whole.keys() == parts.keys() and all(torch.equal(whole[k], parts[k]) for k in whole)
    assert (tmp_path / "parts" / "punctuation.onnx").is_file()
