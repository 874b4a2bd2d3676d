"""Transcripts as people write them (asr/written.py): a table of what changes and what must stay, and word times
that survive the change."""
from __future__ import annotations

import pytest

from asr.transcript import Segment, Transcript, Word
from asr.written import written, written_text, written_words

CASES = [
    ("please call stella ask her to bring six spoons", "please call stella ask her to bring 6 spoons"),
    ("twenty five people came", "25 people came"),
    ("it costs two hundred and fifty dollars", "it costs 250 dollars"),
    ("i was born in nineteen eighty four", "i was born in 1984"),
    ("twenty twenty six was a good year", "2026 was a good year"),
    ("the train leaves at three thirty p m", "the train leaves at 3:30 p.m."),
    ("wake me at seven a m", "wake me at 7 a.m."),
    ("count one two three four", "count 1 2 3 4"),
    # Left alone, as written English leaves them:
    ("one of them", "one of them"),
    ("we need two pounds of butter", "we need two pounds of butter"),
    ("a hundred people", "a hundred people"),
    ("the first time", "the first time"),
    ("meet me at eleven thirty", "meet me at 11 30"),  # no a.m. or p.m.: neither a year nor a sure time
    ("the weather was fine all day", "the weather was fine all day"),
    ("", ""),
]


@pytest.mark.parametrize("spoken, expected", CASES)
def test_written_form(spoken: str, expected: str):
    assert written_text(spoken, punctuate=False) == expected


def timed(text: str) -> list[Word]:
    """A word a second, confidences 0.5, 0.6, ..."""
    return [Word(w, float(i), i + 0.8, 0.5 + i / 10) for i, w in enumerate(text.split())]


def test_a_written_token_spans_the_spoken_words_it_replaces():
    words = written_words(timed("born in nineteen eighty four at three thirty p m"))
    assert [(w.word, w.start, w.end) for w in words] == [
        ("born", 0.0, 0.8), ("in", 1.0, 1.8), ("1984", 2.0, 4.8), ("at", 5.0, 5.8), ("3:30", 6.0, 7.8),
        ("p.m.", 8.0, 9.8)]
    assert words[2].confidence == pytest.approx((0.7 + 0.8 + 0.9) / 3, abs=1e-3)


def test_dropped_spoken_words_keep_their_time():
    words = written_words(timed("two hundred and fifty dollars"))
    assert [w.word for w in words] == ["250", "dollars"]
    assert (words[0].start, words[0].end, words[1].start) == (0.0, 3.8, 4.0)  # "and" lies inside 250


def test_a_transcript_is_rewritten_segment_by_segment_with_its_times():
    spoken = Transcript("i have six cats twenty five dogs",
                        [Segment(0.0, 3.8, "i have six cats", timed("i have six cats")),
                         Segment(10.0, 12.8, "twenty five dogs",
                                 [Word(w.word, w.start + 10, w.end + 10, w.confidence) for w in timed("twenty five dogs")])],
                        13.0, "pets.wav")
    result = written(spoken, punctuate=False)
    assert result.text == "i have 6 cats 25 dogs"
    assert [s.text for s in result.segments] == ["i have 6 cats", "25 dogs"]
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 3.8), (10.0, 12.8)]
    assert (result.segments[1].words[0].start, result.segments[1].words[0].end) == (10.0, 11.8)
    assert (result.duration, result.source) == (13.0, "pets.wav") and spoken.text.startswith("i have six")
