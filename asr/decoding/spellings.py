"""The scored spellings a lexicon decoder builds its trie from: the lexicon's words in order, each spelled in a
model's token ids, with the word's unigram LM score.

Working them out (reading a 150,000-word list, spelling and scoring every word) is about half of a beam decoder's
start-up, and the answer depends only on the LM file, the lexicon file and the vocabulary. So they are kept on disk
in the user's cache, as Whisper and Hugging Face keep their downloads: the first `asr transcribe --decoder beam`
works them out, later starts read them back in milliseconds. An entry that cannot be read or does not match its
key is worked out again; a cache that cannot be written only costs the time it would have saved."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_path

SPELLINGS_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asr" / "spellings"
CACHE_ENTRIES = 8  # entries kept (4.3 MB each for the bundled lexicon); the least recently used go first
_FORMAT = 1  # part of every key: a change of layout makes old entries misses

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spellings:
    """A lexicon's words, their spellings in token ids (word after word in one array, each ending with the word
    separator's id) and their unigram LM scores."""

    words: list[str]
    tokens: np.ndarray  # unsigned ints: every word's token ids and the separator's, one word after another
    ends: np.ndarray  # int64: where each word's spelling ends in `tokens`
    scores: np.ndarray  # float32: the LM's score of each word after the sentence start (0 without an LM)

    def spelled(self) -> Iterator[tuple[list[int], float]]:
        """Each word's spelling and score as a Python list and float (what flashlight's Trie.insert takes)."""
        tokens, ends = self.tokens.tolist(), self.ends.tolist()
        # map and slice run in C: a Python loop over 150,000 words costs more than the trie inserts.
        return zip(map(tokens.__getitem__, map(slice, [0, *ends], ends)), self.scores.tolist())


def spell(words: list[str], token_ids: dict[str, int], separator: int, scores: list[float]) -> Spellings:
    """The Spellings of words (each character a key of token_ids), each followed by separator, with their scores."""
    ids = [i for word in words for i in (*map(token_ids.__getitem__, word), separator)]
    dtype = np.min_scalar_type(max([separator, *token_ids.values()]))
    return Spellings(list(words), np.array(ids, dtype=dtype), np.cumsum([len(w) + 1 for w in words], dtype=np.int64),
                     np.array(scores, dtype=np.float32))


def _entry(key: str) -> Path:
    return SPELLINGS_CACHE / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def _full_key(key: str) -> str:
    return json.dumps([_FORMAT, key])


def load(key: str) -> Spellings | None:
    """The cached Spellings of key (a string naming what they were worked out from), or None."""
    path = _entry(_full_key(key))
    try:
        with np.load(path, allow_pickle=False) as entry:
            if entry["key"].tobytes().decode() != _full_key(key):
                return None  # a hash collision, however unlikely
            words = entry["words"].tobytes().decode().split("\n")
            spellings = Spellings(words, entry["tokens"], entry["ends"], entry["scores"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as err:
        log.info("%s: unreadable cached spellings, working them out again (%s)", path, err)
        return None
    ends = spellings.ends
    if not (spellings.tokens.dtype.kind == "u" and ends.dtype == np.int64 and spellings.scores.dtype == np.float32
            and len(ends) == len(words) == len(spellings.scores) and len(ends) and ends[-1] == len(spellings.tokens)
            and np.all(np.diff(ends, prepend=0) > 1)):
        log.info("%s: inconsistent cached spellings, working them out again", path)
        return None
    with contextlib.suppress(OSError):  # a cache it may only read is still used
        os.utime(path)  # recently used: kept when older entries are removed
    return spellings


def save(key: str, spellings: Spellings) -> None:
    """Cache spellings under key, and remove the least recently used entries beyond CACHE_ENTRIES. Concurrent
    writers of one entry may spoil it (they share its temporary file); load() then treats it as missing."""
    path = _entry(_full_key(key))
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as file:
            np.savez(file, key=np.frombuffer(_full_key(key).encode(), np.uint8),
                     words=np.frombuffer("\n".join(spellings.words).encode(), np.uint8), tokens=spellings.tokens,
                     ends=spellings.ends, scores=spellings.scores)
        entries = sorted(SPELLINGS_CACHE.glob("*.npz"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[CACHE_ENTRIES:]:
            old.unlink(missing_ok=True)
    except OSError as err:
        log.info("%s: cannot cache the lexicon's spellings (%s)", path, err)
