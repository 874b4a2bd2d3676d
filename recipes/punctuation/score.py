"""Score a punctuation model (asr.punctuation.Punctuator): per-mark precision, recall and F1 and case accuracy,
on held-out text and on real recognizer output.

    python recipes/punctuation/score.py --model exp/punctuation/punctuation.onnx --text data/punctuation/test.jsonl \
        --asr data/ljspeech/dev.jsonl data/ljspeech/test.jsonl

--text: prepare.py's rows; each source's sentences are tagged as one running text, as a transcript is.
--asr: manifests whose entries keep their raw text ("raw_text", cased and punctuated): the bundled recognizer
transcribes each clip (greedy, numbers as digits), the model punctuates its words, and the words the recognizer
got right (aligned to the reference by difflib) are scored against the reference's tags.
"""
from __future__ import annotations

import argparse
import difflib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from asr.manifest import entry_audio, read_manifest
from asr.punctuation import CASES, MARKS, Punctuator, labelled_words
from asr.written import written_text


def report(name: str, predicted: list[tuple[int, int]], truth: list[tuple[int, int]]) -> list[str]:
    """Lines: words, case accuracy and F1 of Capital and UPPER, then P/R/F1 and count of each mark."""
    p, t = np.array(predicted).reshape(-1, 2), np.array(truth).reshape(-1, 2)
    lines = [f"{name}: {len(t):,} words, case accuracy {np.mean(p[:, 0] == t[:, 0]):.2%}"]
    for kind, column, labels in (("case", 0, CASES), ("mark", 1, MARKS)):
        for index in range(1, len(labels)):
            hit = int(np.sum((p[:, column] == index) & (t[:, column] == index)))
            precision = hit / max(int(np.sum(p[:, column] == index)), 1)
            recall = hit / max(int(np.sum(t[:, column] == index)), 1)
            f1 = 2 * precision * recall / max(precision + recall, 1e-9)
            label = repr(labels[index]) if kind == "mark" else labels[index]
            lines.append(f"  {kind} {label:8s} P {precision:6.1%}  R {recall:6.1%}  F1 {f1:6.1%}  "
                         f"({int(np.sum(t[:, column] == index)):,} in the reference)")
    return lines


def text_scores(punctuator: Punctuator, path: Path) -> list[str]:
    streams: dict[str, tuple[list[str], list[tuple[int, int]]]] = defaultdict(lambda: ([], []))
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            words, tags = streams[row["source"]]
            words += row["words"]
            tags += zip(row["cases"], row["marks"])
    lines, all_p, all_t = [], [], []
    for source, (words, tags) in streams.items():
        predicted = punctuator.tags(words)
        lines += report(f"text, {source}", predicted, tags)
        all_p += predicted
        all_t += tags
    return report(f"text, all of {path}", all_p, all_t) + lines


def asr_scores(punctuator: Punctuator, manifests: list[str]) -> list[str]:
    import asr

    transcriber = asr.load_model()
    entries = [e for m in manifests for e in read_manifest(m) if e.get("raw_text")]
    hypotheses = transcriber.transcribe_files([entry_audio(e) for e in entries])
    predicted, truth, aligned, reference_words = [], [], 0, 0
    for entry, hypothesis in zip(entries, hypotheses):
        reference = labelled_words(entry["raw_text"]) or []
        spoken = written_text(hypothesis, punctuate=False).split()
        tags = punctuator.text_tags(spoken)  # as asr transcribe writes it
        matcher = difflib.SequenceMatcher(a=[w for w, _, _ in reference], b=spoken, autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                _, case, mark = reference[block.a + k]
                truth.append((case, mark))
                predicted.append(tags[block.b + k])
        aligned += sum(b.size for b in matcher.get_matching_blocks())
        reference_words += len(reference)
    return [f"recognizer output: {len(entries)} clips of {', '.join(manifests)}; {aligned:,} of {reference_words:,} "
            f"reference words recognized and aligned"] + report("recognizer output, aligned words", predicted, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="punctuation.onnx (its .json beside it)")
    parser.add_argument("--text", help="prepare.py's rows to score on (e.g. test.jsonl)")
    parser.add_argument("--asr", nargs="*", default=[], help="manifests with raw_text to transcribe and score on")
    args = parser.parse_args()
    punctuator = Punctuator(args.model, threads=2)
    lines = (text_scores(punctuator, Path(args.text)) if args.text else []) + \
        (asr_scores(punctuator, args.asr) if args.asr else [])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
