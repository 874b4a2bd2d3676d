"""N-gram language models for beam search: interpolated modified Kneser-Ney, read and written as ARPA files.

KenLM's builder (lmplz) cannot be installed everywhere, so this builds the same model (Chen & Goodman 1998;
Heafield et al. 2013) with numpy and writes the ARPA file that KenLM loads, and with it flashlight-text and
torchaudio's `ctc_decoder(lm=...)`. Word models go with a lexicon; character models (see char_tokens) decode
lexicon-free.

The builder's memory grows with the number of distinct n-grams, not with the text: words become integer ids, the
text is counted a chunk at a time, and each order's n-grams are one sorted array of int64 keys (see NGramCounts),
estimated and written to the ARPA file as arrays (NGramTables). A small model also converts to an NGramLM, dicts of
word tuples, which scores, reads back and compares.
"""
from __future__ import annotations

import functools
import gzip
import itertools
import logging
import math
import multiprocessing
import os
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TextIO

import numpy as np

from ..atomic import atomic_open
from ..errors import CheckpointError, ConfigError
from ..manifest import read_manifest
from ..text import normalize

logger = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
WORD_SEPARATOR = "|"
# lmplz --discount_fallback's defaults (D1, D2, D3+), for an order whose count-of-counts give no usable estimate.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
_DIGITS = 7  # decimals of the log10 values; the model keeps them rounded, so an ARPA file reads back unchanged
CHUNK_TOKENS = 2_000_000  # tokens counted at a time: about 100 MB of temporary arrays
# An n-gram's key: the index of its first n - 1 words among the sorted (n - 1)-grams, shifted left by _SHIFT bits,
# plus the id of its last word. The index must stay below 2**31 for the key to fit an int64.
_SHIFT = 32
_LAST_WORD = (1 << _SHIFT) - 1
_MAX_INDEX = 1 << (63 - _SHIFT)
_BLOCK = 100_000  # n-grams formatted at a time when writing an ARPA file
_NORMALIZE_BLOCK = 5_000  # lines of text per task of a worker process
_GZIP_LEVEL = 6  # zlib's default: 1 % larger than level 9 on ARPA text, 2.3 times faster

# The first bytes of a binary model written by KenLM's build_binary, which KenLM memory-maps instead of parsing.
KENLM_BINARY_MAGIC = b"mmap lm http://kheafield.com/code"

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
        def section(n: int) -> Iterator[str]:
            grams = sorted(self.probs[n - 1])
            yield _arpa_lines([self.probs[n - 1][gram] for gram in grams], [" ".join(gram) for gram in grams],
                              [self.backoffs.get(gram, math.nan) for gram in grams])

        _write_arpa(path, [len(table) for table in self.probs], section)


def _open_text(path: Path) -> TextIO:
    """A UTF-8 text file to read, gzip-compressed when it ends in .gz (KenLM reads compressed ARPA files too)."""
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_word_list(path: str | os.PathLike[str]) -> list[str]:
    """The first field of every non-empty line: reads plain word lists and flashlight lexicons alike."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.split()[0] for line in f if line.strip()]
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the word list ({err.strerror or err})") from None


def is_kenlm_binary(path: str | os.PathLike[str]) -> bool:
    """Whether a file is a binary KenLM model (build_binary), not an ARPA text file."""
    try:
        with open(path, "rb") as f:
            return f.read(len(KENLM_BINARY_MAGIC)) == KENLM_BINARY_MAGIC
    except OSError:
        return False


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


@dataclass(eq=False)
class NGramCounts:
    """How often each 1- to n-gram of a text occurs, as sorted arrays.

    words: the vocabulary with <s>, </s> and <unk>, sorted; a word's id is its index. The unigrams are the whole
    vocabulary (<s> and an unseen <unk> count 0). keys[n - 1] lists the n-grams: the index of the n-gram's first
    n - 1 words among the (n - 1)-grams, shifted left by 32 bits, plus its last word's id (the empty context has
    index 0, so a unigram's key is its id). Sorted keys are the n-grams in the order of their word tuples, and a key
    fits an int64 whatever the vocabulary and the order, unlike one that packs every word's id.
    counts[n - 1]: the raw counts; suffixes[n - 1]: the index of each n-gram's last n - 1 words among the (n - 1)-grams
    (computed). sentences, tokens: how much text was counted.
    """

    words: list[str]
    keys: list[np.ndarray]
    counts: list[np.ndarray]
    sentences: int
    tokens: int
    suffixes: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.suffixes = _suffixes(self.keys)

    @property
    def order(self) -> int:
        return len(self.keys)

    def ngrams(self, n: int) -> list[Ngram]:
        """The n-grams as word tuples, in key order (for small tables: tests, inspection)."""
        return _ngrams(self.words, self.keys, n)


def _suffixes(keys: list[np.ndarray]) -> list[np.ndarray]:
    """For each order n, the index of each n-gram's last n - 1 words among the (n - 1)-grams (0 for unigrams)."""
    suffixes = [np.zeros(len(keys[0]), np.int64)]
    for n in range(2, len(keys) + 1):
        prefix_suffix = suffixes[-1][keys[n - 1] >> _SHIFT]
        suffixes.append(np.searchsorted(keys[n - 2], (prefix_suffix << _SHIFT) | (keys[n - 1] & _LAST_WORD)))
    return suffixes


def _ngrams(words: list[str], keys: list[np.ndarray], n: int) -> list[Ngram]:
    """All n-grams of a table as word tuples, in key order."""
    return [tuple(text.split(" ")) for text in _texts(words, keys, n, np.arange(len(keys[n - 1])))]


def _texts(words: list[str], keys: list[np.ndarray], n: int, indices: np.ndarray) -> list[str]:
    """The words of the n-grams at these sorted indices, joined by spaces; each shared prefix is built once."""
    if n == 1:
        return [words[i] for i in keys[0][indices].tolist()]
    ngram_keys = keys[n - 1][indices]
    prefixes, which = np.unique(ngram_keys >> _SHIFT, return_inverse=True)
    heads = _texts(words, keys, n - 1, prefixes)
    return [heads[i] + " " + words[w] for i, w in zip(which.tolist(), (ngram_keys & _LAST_WORD).tolist())]


def count_ngrams(sentences: Iterable[Sequence[str]], order: int, chunk_tokens: int = CHUNK_TOKENS,
                 vocabulary: Iterable[str] | None = None) -> NGramCounts:
    """Raw counts of the 1- to order-grams of the sentences padded as <s> w1 .. wn </s> (<s> alone is not counted).

    The sentences (lists of words; empty ones are skipped) are read chunk_tokens tokens at a time, so that memory
    holds the distinct n-grams and one chunk, never the whole text. vocabulary: a closed vocabulary, e.g. words
    chosen by frequency in a larger corpus; its words are unigrams even when the text never uses them (they get
    the share of the uniform distribution that Kneser-Ney interpolation gives), and the text's other words
    count as <unk>. Without it, the vocabulary is every word of the text.
    """
    if order < 1:
        raise ConfigError(f"order must be at least 1, got {order}")
    running = _RunningCounts(order)
    closed = vocabulary is not None
    for word in vocabulary or ():
        _check_words([word])
        running.vocab.setdefault(word, len(running.vocab))
    if closed and len(running.vocab) == 3:
        raise ConfigError("the vocabulary is empty")
    for ids in _id_chunks(sentences, running.vocab, chunk_tokens, closed):
        running.add(ids)
    if not running.sentences:
        raise ConfigError("no text to build a language model from: there are no sentences, or all are empty")
    return running.sorted_by_word()


def _check_words(words: Sequence[str]) -> None:
    if len(" ".join(words).split()) != len(words) or BOS in words or EOS in words:
        raise ConfigError(f"words must be non-empty, without spaces, and not {BOS} or {EOS}: {list(words)[:20]}")


def _id_chunks(sentences: Iterable[Sequence[str]], vocab: dict[str, int], chunk_tokens: int,
               closed: bool = False) -> Iterator[np.ndarray]:
    """The padded sentences as word ids, about chunk_tokens at a time. New words join vocab, or are <unk> if the
    vocabulary is closed."""
    ids: list[int] = []
    unk = vocab[UNK]
    for sentence in sentences:
        if isinstance(sentence, str):
            raise ConfigError(f"a sentence must be a list of words, not a string: {sentence[:50]!r}")
        if not sentence:
            continue
        _check_words(sentence)
        ids.append(vocab[BOS])
        ids.extend([vocab.get(word, unk) for word in sentence] if closed
                   else [vocab.setdefault(word, len(vocab)) for word in sentence])
        ids.append(vocab[EOS])
        if len(ids) >= chunk_tokens:
            yield np.array(ids, np.int64)
            ids = []
    if ids:
        yield np.array(ids, np.int64)


class _RunningCounts:
    """The counts of the text read so far, word ids in order of appearance; each chunk is merged into sorted arrays."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.vocab = {BOS: 0, EOS: 1, UNK: 2}  # word -> id, in order of appearance
        self.unigrams = np.zeros(0, np.int64)
        self.keys = [np.zeros(0, np.int64) for _ in range(order)]  # keys[n - 1]: n-grams; keys[0] stays unused
        self.counts = [np.zeros(0, np.int64) for _ in range(order)]
        self.sentences = 0

    def add(self, ids: np.ndarray) -> None:
        """Count the n-grams of one chunk of padded sentences (ids, each sentence from <s> to </s>)."""
        positions = np.arange(len(ids))
        is_bos = ids == self.vocab[BOS]
        offsets = positions - np.maximum.accumulate(np.where(is_bos, positions, 0))  # position in the sentence
        self.sentences += int(np.count_nonzero(is_bos))
        unigrams = np.bincount(ids[~is_bos], minlength=len(self.vocab))
        unigrams[:len(self.unigrams)] += self.unigrams
        self.unigrams = unigrams
        index, ends = ids, positions  # index[p]: of the n-gram ending at p among the n-grams, for p in ends
        for n in range(2, self.order + 1):
            ends = ends[offsets[ends] >= n - 1]
            new_keys = (index[ends - 1] << _SHIFT) | ids[ends]
            self.keys[n - 1], self.counts[n - 1], moved, found = _merge(self.keys[n - 1], self.counts[n - 1], new_keys)
            if n < self.order:  # the (n+1)-grams name their prefixes by index among the n-grams, which moved
                longer = self.keys[n]
                self.keys[n] = (moved[longer >> _SHIFT] << _SHIFT) | (longer & _LAST_WORD)
            index = np.empty_like(ids)
            index[ends] = found

    def sorted_by_word(self) -> NGramCounts:
        """The counts with word ids renumbered in the order of the words, so that keys sort as word tuples do."""
        words = sorted(self.vocab)
        rank = np.empty(len(words), np.int64)
        rank[np.fromiter((self.vocab[word] for word in words), np.int64, len(words))] = np.arange(len(words))
        unigrams = np.empty_like(self.unigrams)
        unigrams[rank] = self.unigrams
        keys, counts, index = [np.arange(len(words))], [unigrams], rank
        for old_keys, old_counts in zip(self.keys[1:], self.counts[1:]):
            new_keys = (index[old_keys >> _SHIFT] << _SHIFT) | rank[old_keys & _LAST_WORD]
            order = np.argsort(new_keys)
            keys.append(new_keys[order])
            counts.append(old_counts[order])
            index = np.empty_like(order)
            index[order] = np.arange(len(order))
        return NGramCounts(words, keys, counts, self.sentences, int(unigrams.sum()) - self.sentences)


def _merge(keys: np.ndarray, counts: np.ndarray, new_keys: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Add new_keys (with repeats) to a sorted table of keys and counts: the merged table, the new index of each old
    entry, and the index of each new key in it."""
    unique, which, times = np.unique(new_keys, return_inverse=True, return_counts=True)
    merged = np.concatenate([keys, unique])
    merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
    first = np.ones(len(merged), bool)
    first[1:] = merged[1:] != merged[:-1]
    merged = merged[first]
    if len(merged) > _MAX_INDEX:
        raise ConfigError(f"more than {_MAX_INDEX} distinct n-grams of one order: too many to index")
    moved, found = np.searchsorted(merged, keys), np.searchsorted(merged, unique)
    total = np.zeros(len(merged), np.int64)
    total[moved] = counts
    total[found] += times
    return merged, total, moved, found[which]


def adjust_counts(counts: NGramCounts) -> list[np.ndarray]:
    """Kneser-Ney adjusted counts per order, aligned with counts.keys: for n-grams of the highest order and those
    starting with <s> (nothing can precede them), the raw count; for the others, the number of distinct words seen
    right before them. The unigrams <s> and an unseen <unk> count 0, as in lmplz."""
    adjusted = []
    starts_with_bos = np.array([word == BOS for word in counts.words])
    for n in range(1, counts.order):
        table = np.bincount(counts.suffixes[n], minlength=len(counts.keys[n - 1]))  # one per (n+1)-gram ending in it
        table[starts_with_bos] = counts.counts[n - 1][starts_with_bos]
        adjusted.append(table)
        starts_with_bos = starts_with_bos[counts.keys[n] >> _SHIFT]
    adjusted.append(counts.counts[-1])
    return adjusted


def kn_discounts(adjusted: np.ndarray, n: int) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) of the n-grams of order n from the count-of-counts of their
    adjusted counts (Chen & Goodman, eq. 26).

    Small or artificial text can leave a count-of-counts t1, t2 or t3 at zero, or push a discount D_k outside
    (0, k]. lmplz stops there; we warn and use FALLBACK_DISCOUNTS for that order, as lmplz --discount_fallback does:
    moderate discounts that leave every seen n-gram a positive share and give every context some back-off mass.
    """
    t = [int(c) for c in np.bincount(np.minimum(adjusted, 5), minlength=6)]
    if t[1] and t[2] and t[3]:
        y = t[1] / (t[1] + 2 * t[2])
        discounts = (1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3])
        if all(0 < d <= k for k, d in enumerate(discounts, start=1)):
            return discounts
    logger.warning("%d-grams: count-of-counts t1..t4 = %s give no Kneser-Ney discounts (small or artificial text?); "
                   "using %s", n, t[1:5], FALLBACK_DISCOUNTS)
    return FALLBACK_DISCOUNTS


@dataclass(eq=False)
class NGramTables:
    """A back-off n-gram model as arrays: keys[n - 1] as in NGramCounts (of the n-grams listed), and aligned with
    them the log10 probabilities and log10 back-off weights (NaN where an n-gram is no listed n-gram's context).
    min_counts: the minimum count each order was pruned to. Writes its ARPA file without ever holding it whole."""

    words: list[str]
    keys: list[np.ndarray]
    log10_probs: list[np.ndarray]
    log10_backoffs: list[np.ndarray]
    min_counts: tuple[int, ...]

    @property
    def sizes(self) -> list[int]:
        return [len(keys) for keys in self.keys]

    def write_arpa(self, path: str | os.PathLike[str]) -> None:
        """Write the model as an ARPA file, _BLOCK n-grams at a time (see _write_arpa)."""
        def section(n: int) -> Iterator[str]:
            size = self.sizes[n - 1]
            for start in range(0, size, _BLOCK):
                stop = min(start + _BLOCK, size)
                yield _arpa_lines(self.log10_probs[n - 1][start:stop].tolist(),
                                  _texts(self.words, self.keys, n, np.arange(start, stop)),
                                  self.log10_backoffs[n - 1][start:stop].tolist())

        _write_arpa(path, self.sizes, section)

    def to_ngram_lm(self) -> NGramLM:
        """The model as an NGramLM, values rounded as the ARPA file writes them (for small models)."""
        probs: list[dict[Ngram, float]] = []
        backoffs: dict[Ngram, float] = {}
        for n in range(1, len(self.keys) + 1):
            grams = _ngrams(self.words, self.keys, n)
            probs.append({gram: round(p, _DIGITS) for gram, p in zip(grams, self.log10_probs[n - 1].tolist())})
            backoffs.update((gram, round(b, _DIGITS)) for gram, b in zip(grams, self.log10_backoffs[n - 1].tolist())
                            if not math.isnan(b))
        return NGramLM(probs, backoffs)


def build_ngram_lm(sentences: Iterable[Sequence[str]], order: int = 3,
                   min_counts: Sequence[int] | None = None) -> NGramLM:
    """Interpolated modified Kneser-Ney model of sentences (lists of normalized words), as lmplz builds it, as an
    NGramLM: for small models. Large ones: estimate_lm(count_ngrams(...)).write_arpa(...), never as dicts."""
    return estimate_lm(count_ngrams(sentences, order), min_counts).to_ngram_lm()


def estimate_lm(counts: NGramCounts, min_counts: Sequence[int] | None = None,
                max_ngrams: int | None = None) -> NGramTables:
    """Interpolated modified Kneser-Ney model of counted text, as lmplz builds it.

    Each sentence is modeled as <s> w1 .. wn </s>. min_counts[n - 1] is how often an n-gram must occur in the text
    to be listed, e.g. (1, 1, 2) drops the trigrams seen once; unigrams are always listed, and so is any n-gram
    that a listed longer one starts or ends with. max_ngrams: a size target; the minimum counts rise from
    min_counts, the highest order's first, until at most that many n-grams are listed in all (see _fit_min_counts;
    the model's min_counts are the ones chosen). The probabilities of the n-grams kept are those of the full model;
    the mass of the pruned ones goes to the back-off weights, renormalized so that every context's distribution
    still sums to one.
    """
    min_counts = check_min_counts(min_counts, counts.order)
    if max_ngrams is not None and max_ngrams < len(counts.words):
        raise ConfigError(f"max_ngrams must be at least the {len(counts.words)} unigrams (never pruned), "
                         f"got {max_ngrams}")
    adjusted = adjust_counts(counts)
    probs, gammas = _interpolate(counts, adjusted, [kn_discounts(a, n) for n, a in enumerate(adjusted, start=1)])
    if max_ngrams is not None:
        min_counts = _fit_min_counts(counts, min_counts, max_ngrams)
    keys = counts.keys
    if max(min_counts) == 1:
        backoffs = gammas[1:] + [np.full(len(keys[-1]), np.nan)]
    else:
        kept = _kept(counts, min_counts)
        keys, probs = _subset(keys, kept), [p[keep] for p, keep in zip(probs, kept)]
        backoffs = _renormalized_backoffs(keys, probs)
    with np.errstate(divide="ignore"):  # p(<s>) is 0
        log10_probs = [np.log10(p) for p in probs]
    log10_probs[0][counts.words.index(BOS)] = -99.0  # <s> is never predicted; -99 is the ARPA convention for it
    return NGramTables(counts.words, keys, log10_probs, [np.log10(b) for b in backoffs], min_counts)


def check_min_counts(min_counts: Sequence[int] | None, order: int) -> tuple[int, ...]:
    """min_counts as a tuple (all 1: no pruning, if None); ConfigError unless it gives one count >= 1 per order and 1
    for unigrams. Checked before the text is counted, too: counting may take minutes."""
    if min_counts is None:
        return (1,) * order
    if len(min_counts) != order or min_counts[0] != 1 or min(min_counts) < 1:
        raise ConfigError(f"min_counts must give one count >= 1 per order, 1 for unigrams (never pruned); "
                         f"got {tuple(min_counts)} for order {order}")
    return tuple(min_counts)


def _interpolate(counts: NGramCounts, adjusted: list[np.ndarray], discounts: list[tuple[float, float, float]]
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Interpolated probabilities p(w|h) of every counted n-gram, and the interpolation weight gamma(h) of every
    (n-1)-gram as a context (NaN if nothing follows it): p(w|h) = (a(hw) - D(a(hw))) / sum_x a(hx) + gamma(h) p(w|h'),
    gamma(h) = sum_x D(a(hx)) / sum_x a(hx). gammas[0] is that of the empty context.

    Unigrams interpolate with the uniform distribution over the vocabulary without <s>, which gives <unk> its share.
    """
    lower = np.array([1 / (len(counts.words) - 1)])  # the "0-grams": one empty context, the uniform distribution
    probs: list[np.ndarray] = []
    gammas: list[np.ndarray] = []
    for n, (table, (d1, d2, d3)) in enumerate(zip(adjusted, discounts), start=1):
        discount = np.array([0.0, d1, d2, d3])[np.minimum(table, 3)]
        context = counts.keys[n - 1] >> _SHIFT
        totals = np.bincount(context, weights=table, minlength=len(lower))
        with np.errstate(invalid="ignore"):  # 0 / 0 for the contexts nothing follows
            gamma = np.bincount(context, weights=discount, minlength=len(lower)) / totals
        probs.append((table - discount) / totals[context] + gamma[context] * lower[counts.suffixes[n - 1]])
        gammas.append(gamma)
        lower = probs[-1]
    return probs, gammas


def _kept(counts: NGramCounts, min_counts: Sequence[int]) -> list[np.ndarray]:
    """Which n-grams pruning keeps, per order: those seen at least min_counts[n - 1] times, and the prefixes and
    suffixes of kept longer ones (KenLM needs both listed); every unigram."""
    kept = []
    needed = np.zeros(len(counts.keys[-1]), bool)
    for n in range(counts.order, 1, -1):
        keep = (counts.counts[n - 1] >= min_counts[n - 1]) | needed
        kept.append(keep)
        needed = np.zeros(len(counts.keys[n - 2]), bool)
        needed[counts.keys[n - 1][keep] >> _SHIFT] = True
        needed[counts.suffixes[n - 1][keep]] = True
    kept.append(np.ones(len(counts.words), bool))
    return kept[::-1]


def _fit_min_counts(counts: NGramCounts, min_counts: tuple[int, ...], max_ngrams: int) -> tuple[int, ...]:
    """The least minimum counts from min_counts up, lower orders first, that list at most max_ngrams n-grams.

    When raising the highest order's minimum is enough, only it rises. Otherwise the bigrams' minimum rises as
    little as lets the model fit with no longer n-gram, then the trigrams' as little as fits with that, and so on:
    the lower orders, which every longer n-gram backs off to, lose as little as possible.
    """
    fitted = list(min_counts)
    none = [int(table.max(initial=0)) + 1 for table in counts.counts]  # per order, a minimum count that lists none

    def fits(n: int, min_count: int) -> bool:  # order n pruned to min_count, lower ones as fitted, higher ones gone
        kept = _kept(counts, fitted[:n - 1] + [min_count] + none[n:])
        return sum(int(np.count_nonzero(keep)) for keep in kept) <= max_ngrams

    for n in range(2, counts.order + 1):
        fitted[n - 1] = _least(functools.partial(fits, n), fitted[n - 1], max(fitted[n - 1], none[n - 1]))
    return tuple(fitted)


def _least(fits: Callable[[int], bool], low: int, high: int) -> int:
    """The least value in [low, high] that fits (false, then true up to high): probed at low, low + 1, low + 3,
    low + 7, ..., then halved in between, since the minimum counts that fit are usually small."""
    if fits(low):
        return low
    step = 1
    while low + step < high and not fits(low + step):  # fits(low) is false from here on, fits(high) true
        low, step = low + step, 2 * step
    high = min(high, low + step)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def _subset(keys: list[np.ndarray], kept: list[np.ndarray]) -> list[np.ndarray]:
    """The keys of the n-grams kept, their prefixes renumbered among the (n - 1)-grams kept."""
    subset = [keys[0][kept[0]]]
    for n in range(2, len(keys) + 1):
        index = np.cumsum(kept[n - 2]) - 1  # the new index of each kept (n-1)-gram
        ngram_keys = keys[n - 1][kept[n - 1]]
        subset.append((index[ngram_keys >> _SHIFT] << _SHIFT) | (ngram_keys & _LAST_WORD))
    return subset


def _renormalized_backoffs(keys: list[np.ndarray], probs: list[np.ndarray]) -> list[np.ndarray]:
    """Back-off weights that make every context sum to one over the n-grams listed (NaN: no context):
    gamma(h) = (1 - sum of p(w|h) listed) / (1 - sum of p(w|h') for the same w)."""
    suffixes = _suffixes(keys)
    backoffs = []
    for n in range(2, len(keys) + 1):
        context, size = keys[n - 1] >> _SHIFT, len(keys[n - 2])
        left = 1 - np.bincount(context, weights=probs[n - 1], minlength=size)
        left_lower = 1 - np.bincount(context, weights=probs[n - 2][suffixes[n - 1]], minlength=size)
        # Both vanish only when every word is listed after the context: nothing backs off, any weight will do.
        backoff = np.divide(left, left_lower, out=np.ones(size), where=(left > 0) & (left_lower > 0))
        backoff[np.bincount(context, minlength=size) == 0] = np.nan
        backoffs.append(backoff)
    return backoffs + [np.full(len(keys[-1]), np.nan)]


def _arpa_lines(log10_probs: Iterable[float], texts: Iterable[str], log10_backoffs: Iterable[float]) -> str:
    """ARPA n-gram lines: the log10 probability, the words, and the log10 back-off unless it is NaN."""
    return "".join(f"{_format(p)}\t{text}\n" if math.isnan(b) else f"{_format(p)}\t{text}\t{_format(b)}\n"
                   for p, text, b in zip(log10_probs, texts, log10_backoffs))


def _write_arpa(path: str | os.PathLike[str], sizes: list[int], section: Callable[[int], Iterable[str]]) -> None:
    """Write an ARPA file whose order-n lines section(n) gives, through a temporary file and a rename; ConfigError
    naming the file if it cannot be written.

    A .gz file has no timestamp or name in its header and a fixed compression level: one model always gives the
    same bytes. A second thread compresses and writes each piece while the next is formatted (zlib releases the GIL).
    """
    compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31) if str(path).endswith(".gz") else None  # 31: gzip
    try:
        with atomic_open(path, "wb") as f, ThreadPoolExecutor(1) as writer:
            def write(text: str) -> None:
                data = text.encode("utf-8")
                f.write(compressor.compress(data) if compressor else data)

            pending: Future[None] | None = None
            for text in _arpa_pieces(sizes, section):
                if pending:
                    pending.result()  # one piece in flight at a time
                pending = writer.submit(write, text)
            if pending:
                pending.result()
            if compressor:
                f.write(compressor.flush())
    except OSError as err:
        raise ConfigError(f"{path}: cannot write the language model ({err.strerror or err})") from None


def _arpa_pieces(sizes: list[int], section: Callable[[int], Iterable[str]]) -> Iterator[str]:
    """The text of an ARPA file in pieces: the header, then each order's section."""
    yield "".join(["\n\\data\\\n", *(f"ngram {n}={size}\n" for n, size in enumerate(sizes, start=1))])
    for n in range(1, len(sizes) + 1):
        yield f"\n\\{n}-grams:\n"
        yield from section(n)
    yield "\n\\end\\\n"


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


def read_training_text(path: str | os.PathLike[str], processes: int = 0) -> Iterator[list[str]]:
    """Sentences (lists of words) to build an LM from, read as they are used: the `text` of each line of a JSONL
    manifest (*.jsonl), or each line of a text file, normalized with asr.text.normalize (by that many worker
    processes if processes > 0); lines that normalize to nothing are dropped. Raises ConfigError naming the file
    when it is missing, not UTF-8 or holds no text."""
    path = Path(path)
    lines = (entry["text"] for entry in read_manifest(path, check_audio=False)) if path.suffix == ".jsonl" \
        else _text_lines(path)
    empty = True
    for line in _normalized(lines, processes):
        words = line.split()
        if words:
            empty = False
            yield words
    if empty:
        raise ConfigError(f"{path}: no text to build a language model from")


def _text_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file, read one at a time."""
    if not path.is_file():
        raise ConfigError(f"{path}: text file not found")
    try:
        with open(path, encoding="utf-8") as f:
            yield from f
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def _normalized(lines: Iterable[str], processes: int) -> Iterator[str]:
    """The lines normalized, in order; with processes > 0, by worker processes while the caller uses the lines
    (normalizing is the slowest step of building an LM), at most 2 blocks per process in flight."""
    if processes <= 0:
        yield from map(normalize, lines)
        return
    with multiprocessing.Pool(processes) as pool:
        pending: deque[AsyncResult[list[str]]] = deque()
        for block in _blocks(lines, _NORMALIZE_BLOCK):
            pending.append(pool.apply_async(_normalize_block, (block,)))
            if len(pending) > 2 * processes:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _normalize_block(lines: list[str]) -> list[str]:
    return [normalize(line) for line in lines]


def _blocks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of `size` items (the last one shorter)."""
    iterator = iter(items)
    while block := list(itertools.islice(iterator, size)):
        yield block
