"""Scoring: WER and CER with jiwer on normalized text, per-utterance reports, worst utterances, and breakdowns
by voice family (the `speaker` prefix before ':') and by source, so every result shows where its errors are."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import jiwer

from .atomic import atomic_open
from .decoding import DecodeConfig, build_decoder, decode
from .errors import ConfigError
from .manifest import entry_audio
from .network import BATCH_SECONDS
from .text import normalize

if TYPE_CHECKING:
    from .transcribe import Transcriber


@dataclass
class UtteranceScore:
    audio_filepath: str
    reference: str
    hypothesis: str
    word_errors: int
    words: int
    char_errors: int
    chars: int
    family: str = ""  # voice family: the manifest's `speaker` up to ':' ("kokoro", "espeak-ng", "codec2", ...)
    source: str = ""  # the manifest's `source` up to '/' ("fortunes", "codec2-examples", ...)

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.words, 1)


@dataclass
class Report:
    """Corpus-level error rates (errors summed over utterances, divided by total reference length)."""

    wer: float
    cer: float
    words: int
    chars: int
    utterances: list[UtteranceScore]

    @classmethod
    def of(cls, utterances: list[UtteranceScore]) -> "Report":
        """Corpus-level rates of these utterances."""
        words = sum(u.words for u in utterances)
        chars = sum(u.chars for u in utterances)
        return cls(wer=sum(u.word_errors for u in utterances) / max(words, 1),
                   cer=sum(u.char_errors for u in utterances) / max(chars, 1),
                   words=words, chars=chars, utterances=utterances)

    def by(self, key: str) -> dict[str, "Report"]:
        """One Report per value of an utterance field ("family" or "source"), sorted; {} when no utterance has one."""
        groups: dict[str, list[UtteranceScore]] = {}
        for u in self.utterances:
            groups.setdefault(getattr(u, key), []).append(u)
        if set(groups) <= {""}:
            return {}
        return {name or "(none)": Report.of(group) for name, group in sorted(groups.items())}

    def worst(self, n: int = 10) -> list[UtteranceScore]:
        return sorted(self.utterances, key=lambda u: (u.word_errors, u.wer), reverse=True)[:n]

    def write(self, path: str | os.PathLike[str]) -> None:
        """One JSON line per utterance: reference, hypothesis and error counts."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for u in self.utterances:
                f.write(json.dumps(asdict(u) | {"wer": round(u.wer, 4)}, ensure_ascii=False) + "\n")


def _errors(reference: str, hypothesis: str, chars: bool) -> tuple[int, int]:
    """(edit errors, reference length) in words or characters; jiwer refuses empty references."""
    ref_len = len(reference) if chars else len(reference.split())
    if ref_len == 0:
        return (len(hypothesis) if chars else len(hypothesis.split())), 0
    out = (jiwer.process_characters if chars else jiwer.process_words)(reference, hypothesis)
    return out.substitutions + out.deletions + out.insertions, ref_len


def score(references: list[str], hypotheses: list[str], audio_paths: list[str] | None = None,
          entries: list[dict[str, Any]] | None = None) -> Report:
    """Normalize both sides with the training normalizer and compute WER/CER plus per-utterance errors.

    With the manifest `entries` the hypotheses belong to, each utterance also records its voice family and source.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    paths = audio_paths or [""] * len(references)
    labels = [_labels(entry) for entry in entries] if entries else [("", "")] * len(references)
    utterances = []
    for path, ref, hyp, (family, source) in zip(paths, references, hypotheses, labels):
        ref, hyp = normalize(ref), normalize(hyp)
        word_errors, words = _errors(ref, hyp, chars=False)
        char_errors, chars = _errors(ref, hyp, chars=True)
        utterances.append(UtteranceScore(path, ref, hyp, word_errors, words, char_errors, chars, family, source))
    return Report.of(utterances)


def _labels(entry: dict[str, Any]) -> tuple[str, str]:
    """(voice family, source) of a manifest entry: the parts of `speaker` and `source` before ':' and '/'."""
    return str(entry.get("speaker", "")).partition(":")[0], str(entry.get("source", "")).partition("/")[0]


def evaluate_manifest(transcriber: "Transcriber", entries: list[dict[str, Any]],
                      batch_seconds: float = BATCH_SECONDS) -> Report:
    """Transcribe every manifest entry and score the hypotheses against the manifest's text."""
    sources = [entry_audio(e) for e in entries]
    hypotheses = transcriber.transcribe_files(sources, batch_seconds)
    return score([e["text"] for e in entries], hypotheses, [str(s) for s in sources], entries)


def grid_search(transcriber: "Transcriber", entries: list[dict[str, Any]], config: DecodeConfig,
                lm_weights: Sequence[float], word_scores: Sequence[float], batch_seconds: float = BATCH_SECONDS
                ) -> Iterator[tuple[DecodeConfig, Report]]:
    """Score every (lm_weight, word_score) pair of a beam search config on a manifest, typically dev.

    The network runs once; each setting only re-decodes its stored log-probabilities.
    """
    sources = [entry_audio(e) for e in entries]
    paths, references = [str(s) for s in sources], [e["text"] for e in entries]
    outputs = transcriber.log_probs_of_files(sources, batch_seconds)
    for lm_weight in lm_weights:
        for word_score in word_scores:
            setting = replace(config, method="beam", lm_weight=lm_weight, word_score=word_score)
            decoder = build_decoder(transcriber.vocab, setting)
            hypotheses = [decode(decoder, log_probs[None], [len(log_probs)])[0]
                          for log_probs in outputs]
            yield setting, score(references, hypotheses, paths, entries)


@dataclass(frozen=True)
class Tuning:
    """What asr tune-lm found: every (lm_weight, word_score) setting's WER and CER on a manifest, and the best one
    (the lowest WER, the first of equals in the grid's order), as JSON that asr package --tuned reads."""

    manifest: str
    utterances: int
    lm: str
    beam_size: int
    grid: list[dict[str, float]]  # lm_weight, word_score, wer, cer

    @property
    def best(self) -> dict[str, float]:
        return min(self.grid, key=lambda row: row["wer"])

    def write(self, path: str | os.PathLike[str]) -> None:
        """Whole or not at all."""
        with atomic_open(path, "w") as f:
            json.dump({**asdict(self), "best": self.best}, f, indent=1)


def read_tuned(path: str | os.PathLike[str]) -> dict[str, float]:
    """The best lm_weight and word_score of a Tuning's file; ConfigError naming it if it is not one."""
    try:
        best = json.loads(Path(path).read_text(encoding="utf-8"))["best"]
        return {key: float(best[key]) for key in ("lm_weight", "word_score")}
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (asr tune-lm --json writes it)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not the results of asr tune-lm --json ({err!r})") from None
