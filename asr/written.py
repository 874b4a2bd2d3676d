"""Transcripts as people write them: numbers as digits ("twenty five" -> 25), years ("nineteen eighty four" ->
1984) and clock times ("three thirty p m" -> 3:30 p.m.), then capitals and punctuation (asr/punctuation.py), the
words' times kept.

The decoder writes what it heard, in words. text2num's alpha2digit (a well-kept library of inverse text
normalization) turns number words into digits; two rules of ours join what it leaves apart: a pair of two-digit
numbers that reads as a year, and an hour with minutes before "a m" or "p m". What it leaves alone, as written
English does: "one" and "two" on their own ("one of them"), ordinals ("the first time"), and "a hundred" (kept in
words rather than "a 100"). Each written token takes the time span of the spoken words it replaces.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import replace

from .punctuation import bundled_punctuator
from .transcript import Transcript, Word

_TWO_DIGITS = re.compile(r"[1-9][0-9]")
_HOUR = re.compile(r"(?:[1-9]|1[0-2])")
_MINUTES = re.compile(r"[0-5][0-9]")
_MERIDIEM = {("a", "m"): "a.m.", ("p", "m"): "p.m."}
_SCALES = {"hundred", "thousand", "million", "billion"}


def written_text(text: str, punctuate: bool = True, complete: bool = True) -> str:
    """A decoded text in its written form (the same tokens as `written` gives); complete=False: the words of
    someone still speaking (no full stop forced at the end)."""
    tokens = _written_tokens(text.split())
    if punctuate and tokens:
        tokens = bundled_punctuator().written(tokens, complete)
    return " ".join(tokens)


def written(transcript: Transcript, punctuate: bool = True) -> Transcript:
    """The transcript with every segment's words in their written form; each written word spans the spoken words
    it stands for (first start to last end, their mean confidence). punctuate: capitals and marks too, the
    transcript's words tagged as one text (a sentence may run over a pause)."""
    segments = [replace(s, words=written_words(s.words)) for s in transcript.segments]
    if punctuate:
        forms = iter(bundled_punctuator().written([w.word for s in segments for w in s.words]))
        segments = [replace(s, words=[replace(w, word=next(forms)) for w in s.words]) for s in segments]
    segments = [replace(s, text=" ".join(w.word for w in s.words)) for s in segments]
    return replace(transcript, segments=segments, text=" ".join(s.text for s in segments if s.text))


def written_words(words: list[Word]) -> list[Word]:
    """Timed spoken words -> timed written words."""
    spoken = [w.word for w in words]
    tokens = _written_tokens(spoken)
    out: list[Word] = []
    matcher = difflib.SequenceMatcher(a=spoken, b=tokens, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            out += words[a0:a1]
            continue
        if b0 == b1:  # spoken words with no written token ("and" inside "two hundred and fifty"): their time
            if out:   # goes to the token before them
                out[-1] = replace(out[-1], end=words[a1 - 1].end)
            continue
        # The written tokens share the spoken words' span, in order, each over its share of the words.
        source = words[a0:a1] or [out[-1] if out else words[min(a0, len(words) - 1)]]
        for k in range(b0, b1):
            lo = (k - b0) * len(source) // (b1 - b0)
            hi = max(lo + 1, (k - b0 + 1) * len(source) // (b1 - b0))
            part = source[lo:hi]
            out.append(Word(tokens[k], part[0].start, part[-1].end,
                            round(sum(w.confidence for w in part) / len(part), 3)))
    return out


def _written_tokens(spoken: list[str]) -> list[str]:
    from text_to_num import alpha2digit

    if not spoken:
        return []
    tokens = alpha2digit(" ".join(spoken), "en").split()
    tokens = _keep_a_hundred(spoken, tokens)
    return _clock_times(_years(tokens))


def _keep_a_hundred(spoken: list[str], tokens: list[str]) -> list[str]:
    """"a hundred people" stays in words: alpha2digit writes "a 100 people"."""
    matcher = difflib.SequenceMatcher(a=spoken, b=tokens, autojunk=False)
    out: list[str] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag != "equal" and a0 > 0 and spoken[a0 - 1] == "a" and spoken[a0] in _SCALES:
            out += spoken[a0:a1]
        else:
            out += tokens[b0:b1]
    return out


def _years(tokens: list[str]) -> list[str]:
    """"19 84" (nineteen eighty four) -> "1984": two two-digit numbers, the first 13 to 20, read as a year.
    ("eleven thirty" and "twelve fifteen" stay two numbers: more often times than years.)"""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        pair = tokens[i : i + 2]
        if (len(pair) == 2 and all(_TWO_DIGITS.fullmatch(t) for t in pair) and 13 <= int(pair[0]) <= 20):
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def _clock_times(tokens: list[str]) -> list[str]:
    """"3 30 p m" -> "3:30 p.m.", "7 a m" -> "7 a.m."."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if _HOUR.fullmatch(tokens[i]):
            minutes = tokens[i + 1] if i + 1 < len(tokens) and _MINUTES.fullmatch(tokens[i + 1]) else None
            j = i + (2 if minutes else 1)
            meridiem = _MERIDIEM.get(tuple(tokens[j : j + 2]))
            if meridiem:
                out += [f"{tokens[i]}:{minutes}" if minutes else tokens[i], meridiem]
                i = j + 2
                continue
        out.append(tokens[i])
        i += 1
    return out

