"""Scoring breakdowns: WER/CER per voice family and per source, in the library and in `asr evaluate`."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asr.corpora.synthetic import Voice, synthesize
from asr.evaluate import score


def test_score_breaks_down_by_voice_family_and_source():
    entries = [{"speaker": "kokoro:mix-h001", "source": "fortunes/zippy"},
               {"speaker": "kokoro:mix-h002", "source": "wordnet/noun"},
               {"speaker": "espeak-ng:en-us+klatt", "source": "wordnet/verb"}]
    references = ["one two three four", "five six", "seven eight nine ten"]
    hypotheses = ["one two tree four", "five six", "seven eight"]
    report = score(references, hypotheses, entries=entries)
    families = report.by("family")
    assert list(families) == ["espeak-ng", "kokoro"]
    assert families["kokoro"].wer == pytest.approx(1 / 6) and families["kokoro"].words == 6
    assert families["espeak-ng"].wer == pytest.approx(2 / 4)
    assert families["espeak-ng"].cer == pytest.approx(len(" nine ten") / len("seven eight nine ten"))
    sources = report.by("source")
    assert {name: part.words for name, part in sources.items()} == {"fortunes": 4, "wordnet": 6}
    # The groups partition the corpus: their errors add up to the whole.
    assert sum(p.wer * p.words for p in families.values()) == pytest.approx(report.wer * report.words)


def test_score_without_labels_has_no_breakdown():
    report = score(["a b"], ["a c"])
    assert report.by("family") == {} and report.by("source") == {}
    unlabelled = score(["a b", "c d"], ["a b", "c"], entries=[{"speaker": "piper:joe"}, {}])
    assert set(unlabelled.by("family")) == {"piper", "(none)"}


@pytest.mark.slow
def test_cli_evaluate_prints_the_breakdown(tmp_path):
    lines = []
    for i, (voice, text) in enumerate([(Voice("espeak-ng", "en-us"), "the cat sat on the mat"),
                                       (Voice("flite", "slt"), "a dog ran in the park")]):
        synthesize(text, voice, tmp_path / f"{i}.wav")
        lines.append({"audio_filepath": f"{i}.wav", "duration": 1.0, "text": text, "speaker": voice.id,
                      "source": f"test/{i}"})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = subprocess.run([sys.executable, "-m", "asr.cli", "evaluate", "--manifest", str(tmp_path / "m.jsonl"),
                          "--worst", "0"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "by voice family:" in text and "by source:" in text
    family_lines = [line.split() for line in text.splitlines() if line.startswith("  ")]
    assert [line[0] for line in family_lines] == ["espeak-ng", "flite", "test"]
    report = [json.loads(line) for line in (tmp_path / "m.report.jsonl").read_text().splitlines()]
    assert [r["family"] for r in report] == ["espeak-ng", "flite"] and {r["source"] for r in report} == {"test"}
