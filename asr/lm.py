"""N-gram language models for beam search: interpolated modified Kneser-Ney, read and written as ARPA files.

KenLM's builder (lmplz) cannot be installed everywhere, so this builds the same model in pure Python (Chen & Goodman
1998; Heafield et al. 2013) and writes the ARPA file that KenLM loads, and with it flashlight-text and torchaudio's
`ctc_decoder(lm=...)`. Word models go with a lexicon; character models (see char_tokens) decode lexicon-free.
"""
from __future__ import annotations

import gzip
import logging
import math
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from .errors import CheckpointError
from .manifest import read_manifest
from .text import normalize

logger = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
WORD_SEPARATOR = "|"
# lmplz --discount_fallback's defaults (D1, D2, D3+), for an order whose count-of-counts give no usable estimate.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
_DIGITS = 7  # decimals of the log10 values; the model keeps them rounded, so an ARPA file reads back unchanged

Ngram = tuple[str, ...]


class NGramLM:
    """A back-off n-gram model as an ARPA file holds it.

    probs[n - 1] maps each listed n-gram to log10 p(last word | the words before it); backoffs maps each n-gram that
    is the context of a longer listed one to its log10 back-off weight.
    """

    def __init__(self, probs: list[dict[Ngram, float]], backoffs: dict[Ngram, float]) -> None:
        self.probs = probs
        self.backoffs = backoffs

    @property
    def order(self) -> int:
        return len(self.probs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NGramLM) and (self.probs, self.backoffs) == (other.probs, other.backoffs)

    def __repr__(self) -> str:
        return f"NGramLM(order={self.order}, ngrams={[len(table) for table in self.probs]})"

    def words(self) -> list[str]:
        """The vocabulary, <s>, </s> and <unk> included, sorted."""
        return sorted(gram[0] for gram in self.probs[0])

    def log10_prob(self, word: str, context: Sequence[str] = ()) -> float:
        """log10 p(word | context), backing off as an ARPA reader does; words outside the vocabulary are <unk>.

        context: the words before `word`, oldest first (a sentence starts with "<s>"); only the last order-1 count.
        """
        known = self.probs[0]
        word = word if (word,) in known else UNK
        history = tuple(w if (w,) in known else UNK for w in context)[max(0, len(context) - self.order + 1):]
        log_backoff = 0.0
        for start in range(len(history)):
            prob = self.probs[len(history) - start].get(history[start:] + (word,))
            if prob is not None:
                return log_backoff + prob
            log_backoff += self.backoffs.get(history[start:], 0.0)
        return log_backoff + known[(word,)]

    def write_arpa(self, path: str | os.PathLike[str]) -> None:
        """Write the model as an ARPA file, n-grams sorted so that one model always gives the same bytes."""
        path = Path(path)
        lines = ["", "\\data\\", *(f"ngram {n}={len(table)}" for n, table in enumerate(self.probs, start=1))]
        for n, table in enumerate(self.probs, start=1):
            lines += ["", f"\\{n}-grams:"]
            for gram in sorted(table):
                backoff = self.backoffs.get(gram)
                fields = [_format(table[gram]), " ".join(gram)] + ([] if backoff is None else [_format(backoff)])
                lines.append("\t".join(fields))
        lines += ["", "\\end\\", ""]
        data = "\n".join(lines).encode("utf-8")
        if path.suffix == ".gz":  # no timestamp or name in the header: one model always gives the same bytes
            data = gzip.compress(data, mtime=0)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _open_text(path: Path) -> TextIO:
    """A UTF-8 text file to read, gzip-compressed when it ends in .gz (KenLM reads compressed ARPA files too)."""
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def arpa_words(path: str | os.PathLike[str]) -> list[str]:
    """The vocabulary of an ARPA file without <s>, </s> and <unk>, read from its unigrams alone (fast)."""
    path = Path(path)
    words: list[str] = []
    in_unigrams = False
    try:
        with _open_text(path) as f:
            for line in f:
                line = line.strip()
                if line == "\\1-grams:":
                    in_unigrams = True
                elif in_unigrams and (not line or line.startswith("\\")):
                    break
                elif in_unigrams:
                    fields = line.split()
                    if len(fields) >= 2 and fields[1] not in (BOS, EOS, UNK):
                        words.append(fields[1])
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise CheckpointError(f"{path}: not a readable ARPA file ({err})") from None
    if not in_unigrams:
        raise CheckpointError(f"{path}: not an ARPA language model (no \\1-grams: section)")
    return words


def _format(value: float) -> str:
    return f"{value:.{_DIGITS}f}".rstrip("0").rstrip(".")


def read_arpa(path: str | os.PathLike[str]) -> NGramLM:
    """Read an ARPA file (ours or lmplz's). Raises CheckpointError naming the file and line when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: language model not found")
    counts: list[int] = []
    probs: list[dict[Ngram, float]] = []
    backoffs: dict[Ngram, float] = {}
    section = ""  # "" before \data\, then "data", then "n-grams", then "end"
    try:
        with _open_text(path) as f:
            for line_no, line in enumerate(f, start=1):
                fields = line.split()
                where = f"{path}:{line_no}"
                if not fields or section == "end" or (section == "" and line.strip() != "\\data\\"):
                    continue  # blank lines, and free text before \data\ or after \end\
                if fields[0] == "\\data\\":
                    section = "data"
                elif fields[0] == "\\end\\":
                    section = "end"
                elif section == "data" and fields[0] == "ngram":
                    order, _, count = fields[-1].partition("=")
                    if len(fields) != 2 or not count.isdigit() or order != str(len(counts) + 1):
                        raise CheckpointError(f"{where}: expected 'ngram {len(counts) + 1}=<count>', "
                                              f"got {line.strip()!r}")
                    counts.append(int(count))
                elif line.strip() == f"\\{len(probs) + 1}-grams:" and len(probs) < len(counts):
                    section = "n-grams"
                    probs.append({})
                elif section == "n-grams":
                    n = len(probs)
                    if len(fields) not in (n + 1, n + 2):
                        raise CheckpointError(f"{where}: expected a log10 probability, {n} word(s) and an optional "
                                              f"back-off, got {line.strip()!r}")
                    gram = tuple(fields[1:n + 1])
                    probs[-1][gram] = _parse_float(fields[0], where)
                    if len(fields) == n + 2:
                        backoffs[gram] = _parse_float(fields[-1], where)
                else:
                    raise CheckpointError(f"{where}: unexpected line {line.strip()!r}")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not an ARPA file (not UTF-8 text)") from None
    except (OSError, EOFError) as err:  # a corrupt .gz
        raise CheckpointError(f"{path}: not a readable ARPA file ({err})") from None
    if section != "end":
        raise CheckpointError(f"{path}: not an ARPA file (no \\data\\ section)" if not section
                              else f"{path}: truncated ARPA file (no \\end\\)")
    found = [len(table) for table in probs]
    if not counts or found != counts:
        raise CheckpointError(f"{path}: the header announces {counts} n-grams per order, the file lists {found}")
    for token in (BOS, EOS):
        if (token,) not in probs[0]:
            raise CheckpointError(f"{path}: no {token} unigram")
    probs[0].setdefault((UNK,), -100.0)  # what KenLM substitutes for a missing <unk>
    return NGramLM(probs, backoffs)


def _parse_float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CheckpointError(f"{where}: {text!r} is not a number") from None


def build_ngram_lm(sentences: Iterable[Sequence[str]], order: int = 3,
                   min_counts: Sequence[int] | None = None) -> NGramLM:
    """Interpolated modified Kneser-Ney model of sentences (lists of normalized words), as lmplz builds it.

    Each sentence is modeled as <s> w1 .. wn </s>; empty ones are skipped. min_counts[n - 1] is how often an n-gram
    must occur in the text to be listed, e.g. (1, 1, 2) drops the trigrams seen once; unigrams are always listed,
    and so is any n-gram that a listed longer one starts or ends with. The probabilities of the n-grams kept are
    those of the full model; the mass of the pruned ones goes to the back-off weights, renormalized so that every
    context's distribution still sums to one.
    """
    if min_counts is not None and (len(min_counts) != order or min_counts[0] != 1 or min(min_counts) < 1):
        raise ValueError(f"min_counts must give one count >= 1 per order, 1 for unigrams (never pruned); "
                         f"got {tuple(min_counts)} for order {order}")
    counts = count_ngrams(sentences, order)
    adjusted = adjust_counts(counts)
    probs, gammas = _interpolate(adjusted, [kn_discounts(table) for table in adjusted])
    if min_counts is None or max(min_counts) == 1:
        backoffs = {context: gamma for context, gamma in gammas.items() if context}
    else:
        probs = _prune(probs, counts, min_counts)
        backoffs = _renormalized_backoffs(probs)
    log_probs = [{gram: round(math.log10(p), _DIGITS) for gram, p in table.items()} for table in probs]
    log_probs[0][(BOS,)] = -99.0  # <s> is never predicted; -99 is the ARPA convention for it
    return NGramLM(log_probs, {context: round(math.log10(b), _DIGITS) for context, b in backoffs.items()})


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter[Ngram]]:
    """Raw counts of the 1- to order-grams of the sentences padded as <s> w1 .. wn </s> (<s> alone is not counted)."""
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    counts: list[Counter[Ngram]] = [Counter() for _ in range(order)]
    for sentence in sentences:
        if isinstance(sentence, str):
            raise ValueError(f"a sentence must be a list of words, not a string: {sentence[:50]!r}")
        if not sentence:
            continue
        if len(" ".join(sentence).split()) != len(sentence) or BOS in sentence or EOS in sentence:
            raise ValueError(f"words must be non-empty, without spaces, and not {BOS} or {EOS}: {list(sentence)[:20]}")
        padded = (BOS, *sentence, EOS)
        counts[0].update(zip(padded[1:]))
        for n in range(2, order + 1):
            counts[n - 1].update(zip(*(padded[i:] for i in range(n))))
    if not counts[0]:
        raise ValueError("no text to build a language model from: there are no sentences, or all are empty")
    return counts


def adjust_counts(counts: list[Counter[Ngram]]) -> list[dict[Ngram, int]]:
    """Kneser-Ney adjusted counts per order: for n-grams of the highest order and those starting with <s> (nothing
    can precede them), the raw count; for the others, the number of distinct words seen right before them.

    The unigrams include <s> and <unk> with count 0, as in lmplz.
    """
    adjusted: list[dict[Ngram, int]] = []
    for n in range(1, len(counts)):
        table = Counter(gram[1:] for gram in counts[n])
        table.update({gram: count for gram, count in counts[n - 1].items() if gram[0] == BOS})
        adjusted.append(dict(table))
    adjusted.append(dict(counts[-1]))
    adjusted[0].setdefault((UNK,), 0)
    adjusted[0][(BOS,)] = 0
    return adjusted


def kn_discounts(adjusted: dict[Ngram, int]) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) of one order from its count-of-counts (Chen & Goodman, eq. 26).

    Small or artificial text can leave a count-of-counts t1, t2 or t3 at zero, or push a discount D_k outside
    (0, k]. lmplz stops there; we warn and use FALLBACK_DISCOUNTS for that order, as lmplz --discount_fallback does:
    moderate discounts that leave every seen n-gram a positive share and give every context some back-off mass.
    """
    t = Counter(adjusted.values())
    if t[1] and t[2] and t[3]:
        y = t[1] / (t[1] + 2 * t[2])
        discounts = (1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3])
        if all(0 < d <= k for k, d in enumerate(discounts, start=1)):
            return discounts
    logger.warning("%d-grams: count-of-counts t1..t4 = %s give no Kneser-Ney discounts (small or artificial text?); "
                   "using %s", len(next(iter(adjusted), ())), [t[k] for k in range(1, 5)], FALLBACK_DISCOUNTS)
    return FALLBACK_DISCOUNTS


def _interpolate(adjusted: list[dict[Ngram, int]], discounts: list[tuple[float, float, float]]
                 ) -> tuple[list[dict[Ngram, float]], dict[Ngram, float]]:
    """Interpolated probabilities p(w|h) of every counted n-gram, and the interpolation weight gamma(h) of every
    context: p(w|h) = (a(hw) - D(a(hw))) / sum_x a(hx) + gamma(h) p(w|h'), gamma(h) = sum_x D(a(hx)) / sum_x a(hx).

    Unigrams interpolate with the uniform distribution over the vocabulary without <s>, which gives <unk> its share.
    """
    uniform = 1 / (len(adjusted[0]) - 1)
    probs: list[dict[Ngram, float]] = []
    gammas: dict[Ngram, float] = {}
    for table, (d1, d2, d3) in zip(adjusted, discounts):
        discount = (0.0, d1, d2, d3)
        totals: dict[Ngram, int] = {}
        masses: dict[Ngram, float] = {}
        for gram, count in table.items():
            context = gram[:-1]
            totals[context] = totals.get(context, 0) + count
            masses[context] = masses.get(context, 0.0) + discount[min(count, 3)]
        gamma = {context: masses[context] / total for context, total in totals.items()}
        lower = probs[-1] if probs else None
        prob: dict[Ngram, float] = {}
        for gram, count in table.items():
            context = gram[:-1]
            backed_off = uniform if lower is None else lower[gram[1:]]
            prob[gram] = (count - discount[min(count, 3)]) / totals[context] + gamma[context] * backed_off
        probs.append(prob)
        gammas.update(gamma)
    return probs, gammas


def _prune(probs: list[dict[Ngram, float]], counts: list[Counter[Ngram]], min_counts: Sequence[int]
           ) -> list[dict[Ngram, float]]:
    """Keep the n-grams seen at least min_counts times, and the prefixes and suffixes of kept ones (KenLM needs
    both listed)."""
    kept = [probs[0]]
    needed: set[Ngram] = set()
    for n in range(len(probs), 1, -1):
        table = {gram: p for gram, p in probs[n - 1].items() if counts[n - 1][gram] >= min_counts[n - 1]
                 or gram in needed}
        needed = {gram[:-1] for gram in table} | {gram[1:] for gram in table}
        kept.insert(1, table)
    return kept


def _renormalized_backoffs(probs: list[dict[Ngram, float]]) -> dict[Ngram, float]:
    """Back-off weights that make every context sum to one over the n-grams listed:
    gamma(h) = (1 - sum of p(w|h) listed) / (1 - sum of p(w|h') for the same w)."""
    backoffs: dict[Ngram, float] = {}
    for n in range(2, len(probs) + 1):
        listed: dict[Ngram, float] = {}
        lower: dict[Ngram, float] = {}
        for gram, p in probs[n - 1].items():
            context = gram[:-1]
            listed[context] = listed.get(context, 0.0) + p
            lower[context] = lower.get(context, 0.0) + probs[n - 2][gram[1:]]
        for context in listed:
            left, left_lower = 1 - listed[context], 1 - lower[context]
            # Both vanish only when every word is listed after the context: nothing backs off, any weight will do.
            backoffs[context] = left / left_lower if left > 0 and left_lower > 0 else 1.0
    return backoffs


def char_tokens(sentence: str, separator: str = WORD_SEPARATOR) -> list[str]:
    """The tokens of a character-level LM for lexicon-free decoding: letters as words, separator between words.

    "to be" -> ["t", "o", "|", "b", "e"], with no separator at either end. The LM must see what the decoder will ask
    it about. flashlight's LexiconFreeDecoder (torchaudio's ctc_decoder without a lexicon) starts a hypothesis in
    the LM's <s> state, scores every new non-blank token the acoustic model emits, separator included, and </s>
    at the end; the separators it puts around a hypothesis itself are not scored. Our acoustic model learns
    normalized text, which never starts or ends with a space, so the decoder scores "<s> t o | b e </s>".
    (wav2letter's recipes end every word with "|" because their acoustic targets do.) separator must be the
    decoder's sil_token, and torchaudio needs lm_dict: a file of the tokens in emission order.
    """
    tokens: list[str] = []
    for i, word in enumerate(sentence.split()):
        if i:
            tokens.append(separator)
        tokens.extend(word)
    return tokens


def read_training_text(path: str | os.PathLike[str]) -> list[list[str]]:
    """Sentences (lists of words) to build an LM from: the `text` of each line of a JSONL manifest (*.jsonl), or
    each line of a text file, normalized with asr.text.normalize; lines that normalize to nothing are dropped."""
    path = Path(path)
    if path.suffix == ".jsonl":
        lines = [entry["text"] for entry in read_manifest(path, check_audio=False)]
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not UTF-8 text") from None
    sentences = [words for words in (normalize(line).split() for line in lines) if words]
    if not sentences:
        raise ValueError(f"{path}: no text to build a language model from")
    return sentences
