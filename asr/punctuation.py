"""Punctuation and capitals for a decoded word stream ("please call stella ask her" -> "Please call Stella. Ask
her"), as NeMo's punctuation-and-capitalization models and Vosk's recasepunc do for CTC output.

A small tagger (recipes/punctuation: word embeddings, a BiLSTM, two heads) gives each word a case (lower, Capital,
UPPER) and the mark written after it (none , . ? !). Its training text comes from raw sentences through
`labelled_words`, the same function that defines the tags, and it runs here in onnxruntime without PyTorch.
"""
from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .onnx_network import onnx_session
from .text import normalize

CASES = ("lower", "capital", "upper")
MARKS = ("", ",", ".", "?", "!")
PAD, UNK, NUM = "<pad>", "<unk>", "<num>"  # token ids 0, 1, 2 of every tagger vocabulary
# What a raw sentence's other marks count as: a pause inside the sentence, or its end.
_MARK_OF = {",": ",", ";": ",", ":": ",", "\u2014": ",", ".": ".", "\u2026": ".", "?": "?", "!": "!"}
_EDGES = "\"'()[]{}\u201c\u201d\u2018\u2019\u00ab\u00bb*_"
_NUMBER = re.compile(r"\$?\d+(?:[,.:]\d+)*(?:st|nd|rd|th|s|%)?")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019.-][^\W\d_]+)*")  # letters, maybe joined by ' - or . ("U.S")
_DASHES = re.compile(r"(\u2014|--|\u2026)")  # a dash or an ellipsis between words is a token of its own
WINDOW, CONTEXT = 64, 16  # words the tagger sees at once, and the context kept on each side of a window's middle


def word_token(word: str) -> str:
    """What the tagger reads for a word: the word, or <num> for a written number ("25", "1984", "3:30")."""
    return NUM if any(c.isdigit() for c in word) else word


def labelled_words(raw: str) -> list[tuple[str, int, int]] | None:
    """A raw sentence (cased and punctuated) -> its words as a recognizer writes them (normalized, numbers as
    one <num>-read token) with the index of each word's case (CASES) and of the mark after it (MARKS); None when a
    token is neither a word nor a number (code, URLs, a stray symbol in the middle of a word)."""
    out: list[tuple[str, int, int]] = []
    for token in _DASHES.sub(r" \1 ", raw).split():
        core = token.strip(_EDGES + ",;:!?\u2014\u2026-").rstrip(".")
        tail = token[len(token.rstrip(_EDGES + ".,;:!?\u2014\u2026")):]
        marks = [_MARK_OF[c] for c in tail if c in _MARK_OF]
        mark = MARKS.index(max(marks, key=MARKS.index)) if marks else 0  # "?!" -> "!", '."' -> "."
        if not core:  # a dash or an ellipsis alone: its mark goes to the word before
            if out and mark:
                out[-1] = (out[-1][0], out[-1][1], max(out[-1][2], mark))
            continue
        if any(c.isdigit() for c in core):
            if not _NUMBER.fullmatch(core):
                return None
            words = [core]
        else:
            if not _WORD.fullmatch(core):
                return None
            words = normalize(core).split()
        letters = [c for c in core if c.isalpha()]
        case = (2 if len(letters) > 1 and all(c.isupper() for c in letters) else 1) if core[0].isupper() else 0
        out += [(word, case if i == 0 else 0, 0) for i, word in enumerate(words)]
        out[-1] = (out[-1][0], out[-1][1], mark)
    return out or None


def written_form(word: str, case: int, mark: int) -> str:
    """A word with its case and the mark after it."""
    if case == 1:
        word = word[:1].upper() + word[1:]
    elif case == 2:
        word = word.upper()
    return word + MARKS[mark]


class Punctuator:
    """The tagger exported by recipes/punctuation: `path` (ONNX: token ids (batch, words) int64 -> case and mark
    logits) and `path`.json (its vocabulary)."""

    def __init__(self, path: str | os.PathLike[str], threads: int = 1) -> None:
        path = Path(path)
        try:
            info = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
            vocab = info["vocab"]
            if vocab[:3] != [PAD, UNK, NUM] or info["cases"] != list(CASES) or info["marks"] != list(MARKS):
                raise ValueError("vocabulary or tags differ from this version's")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path}.json: not a punctuation model's description ({err})") from None
        self.ids = {word: i for i, word in enumerate(vocab)}
        self.session = onnx_session(path, threads)

    def tags(self, words: Sequence[str]) -> list[tuple[int, int]]:
        """(case, mark) of each word, the text tagged in overlapping windows (each word's tags from the window
        where it has the most context)."""
        ids = np.array([self.ids.get(word_token(w), 1) for w in words], dtype=np.int64)
        tags: list[tuple[int, int]] = []
        step = WINDOW - 2 * CONTEXT
        for start in range(0, len(ids), step):
            lo = max(0, start - CONTEXT)
            window = ids[lo : start + step + CONTEXT]
            cases, marks = self.session.run(["case_logits", "mark_logits"], {"tokens": window[None]})
            keep = slice(start - lo, start - lo + min(step, len(ids) - start))
            tags += zip(cases[0, keep].argmax(-1).tolist(), marks[0, keep].argmax(-1).tolist())
        return tags

    def text_tags(self, words: Sequence[str], complete: bool = True) -> list[tuple[int, int]]:
        """tags of a whole text: its first word capitalized and, when it is complete (not the words of someone
        still speaking), its last ending a sentence."""
        tags = self.tags(words)
        if tags:
            tags[0] = (max(tags[0][0], 1), tags[0][1])
        if tags and complete:
            tags[-1] = (tags[-1][0], max(tags[-1][1], 2))
        return tags

    def written(self, words: Sequence[str], complete: bool = True) -> list[str]:
        """The words with capitals and marks (text_tags)."""
        return [written_form(w, case, mark) for w, (case, mark) in zip(words, self.text_tags(words, complete))]


BUNDLED = Path(__file__).parent / "pretrained" / "punctuation.onnx"
_bundled: Punctuator | None = None
_lock = threading.Lock()


def bundled_punctuator() -> Punctuator:
    """The punctuation model shipped with the package, loaded on first use."""
    global _bundled
    with _lock:
        if _bundled is None:
            _bundled = Punctuator(BUNDLED)
        return _bundled
