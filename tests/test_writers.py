"""Output writers: exact txt/json/srt/vtt text, cue cutting, file naming and atomic writes."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from asr import writers
from asr.transcript import Segment, Transcript, Word
from asr.writers import (FORMATS, OUTPUT_FORMATS, CueLimits, format_timestamp, render, subtitle_cues, to_json,
                         to_srt, to_txt, to_vtt, write_transcript)


def spoken(text: str, start: float, word_s: float = 0.3, gap_s: float = 0.1, pauses: dict[int, float] | None = None
           ) -> list[Word]:
    """Words of `text` one after another; pauses maps a word index to the silence before that word."""
    words, t = [], start
    for i, token in enumerate(text.split()):
        t += (pauses or {}).get(i, gap_s if i else 0.0)
        words.append(Word(token, round(t, 3), round(t + word_s, 3), 0.9))
        t += word_s
    return words


def segment_of(words: list[Word]) -> Segment:
    return Segment(words[0].start, words[-1].end, " ".join(w.word for w in words), words)


def transcript_of(*segments: Segment, source: str = "talk.wav", duration: float = 0.0) -> Transcript:
    return Transcript(" ".join(s.text for s in segments), list(segments), duration, source)


EMPTY = Transcript("", [], 3.0, "silence.wav")
TWO = transcript_of(Segment(1.5, 2.25, "hello there"), Segment(3725.0045, 3727.5, "general kenobi"), duration=3728.0)


def test_format_timestamp():
    assert format_timestamp(0.0) == "00:00:00.000"
    assert format_timestamp(3725.0045, ",") == "01:02:05,005"  # half up as written; round(3725.0045, 3) gives .004
    assert format_timestamp(3725.0045) == "01:02:05.005"
    assert format_timestamp(59.9996) == "00:01:00.000"  # the rounding carries into minutes
    assert format_timestamp(0.0004) == "00:00:00.000"
    assert format_timestamp(360000.25) == "100:00:00.250"


def test_output_formats_constant():
    assert FORMATS == ("txt", "json", "srt", "vtt")
    assert OUTPUT_FORMATS == ("txt", "json", "srt", "vtt", "all")


def test_txt_one_line_per_segment():
    transcript = transcript_of(Segment(0, 1, " hello  there "), Segment(1, 2, ""), Segment(2, 3, "two\nlines"))
    assert to_txt(transcript) == "hello there\ntwo lines\n"


def test_srt_exact_with_hours():
    assert to_srt(TWO) == ("1\n00:00:01,500 --> 00:00:02,250\nhello there\n\n"
                           "2\n01:02:05,005 --> 01:02:07,500\ngeneral kenobi\n\n")


def test_vtt_exact_with_hours_and_escaping():
    transcript = transcript_of(Segment(1.5, 2.25, "hello there"),
                               Segment(3725.0045, 3727.5, "fish & <chips>"))
    assert to_vtt(transcript) == ("WEBVTT\n\n"
                                  "00:00:01.500 --> 00:00:02.250\nhello there\n\n"
                                  "01:02:05.005 --> 01:02:07.500\nfish &amp; &lt;chips&gt;\n\n")


def test_json_rounds_times_and_confidence():
    words = [Word("hello", 0.12345, 0.5004999, 0.98765), Word("world", 0.6, 3725.0045, 0.5)]
    transcript = Transcript("hello world", [Segment(0.1, 3725.0045, "hello world", words)], 3726.33333, "a.wav")
    assert json.loads(to_json(transcript)) == {
        "text": "hello world",
        "segments": [{"start": 0.1, "end": 3725.005, "text": "hello world", "words": [
            {"word": "hello", "start": 0.123, "end": 0.5, "confidence": 0.988},
            {"word": "world", "start": 0.6, "end": 3725.005, "confidence": 0.5},
        ]}],
        "duration": 3726.333,
        "source": "a.wav",
    }


def test_json_round_trip(tmp_path: Path):
    transcript = transcript_of(segment_of(spoken("naïve café", 0.5)), Segment(2.0, 2.5, "no words"),
                               duration=3.25)
    [path] = write_transcript(transcript, tmp_path, "json")
    data = json.loads(path.read_text(encoding="utf-8"))
    segments = [Segment(s["start"], s["end"], s["text"], [Word(**w) for w in s["words"]]) for s in data["segments"]]
    assert Transcript(data["text"], segments, data["duration"], data["source"]) == transcript


def test_cues_cut_by_line_length():
    text = "one two three four five six seven eight nine ten eleven twelve thirteen"
    transcript = transcript_of(segment_of(spoken(text, 0.0, word_s=0.2, gap_s=0.05)))
    cues = subtitle_cues(transcript, CueLimits(max_line_chars=14, max_lines=2))
    assert [c.text for c in cues] == ["one two three\nfour five six", "seven eight\nnine ten",
                                      "eleven twelve\nthirteen"]
    assert cues[0].start == 0.0 and cues[0].end == 1.45  # first word's start to last word's end
    assert cues[1].start == 1.5


def test_cues_cut_by_duration():
    text = "a b c d e f g h i j"  # short words but slow: 1 s each
    transcript = transcript_of(segment_of(spoken(text, 10.0, word_s=0.9, gap_s=0.1)))
    cues = subtitle_cues(transcript, CueLimits(max_duration_s=3.0))
    assert [c.text for c in cues] == ["a b c", "d e f", "g h i", "j"]
    assert all(c.end - c.start <= 3.0 for c in cues)
    assert (cues[0].start, cues[0].end, cues[-1].start, cues[-1].end) == (10.0, 12.9, 19.0, 19.9)


def test_cues_prefer_a_pause_to_the_last_word_that_fits():
    text = "we went home then we ate dinner and slept"
    words = spoken(text, 0.0, word_s=0.2, gap_s=0.05, pauses={3: 0.8})  # a pause before "then"
    cues = subtitle_cues(transcript_of(segment_of(words)), CueLimits(max_line_chars=25, max_lines=1))
    assert [c.text for c in cues] == ["we went home", "then we ate dinner and", "slept"]
    assert cues[1].start - cues[0].end == pytest.approx(0.8)  # the silence shows no text


def test_a_pause_early_in_a_cue_does_not_leave_a_stub():
    words = spoken("so we went home then we ate", 0.0, word_s=0.2, gap_s=0.05, pauses={1: 0.8})
    cues = subtitle_cues(transcript_of(segment_of(words)), CueLimits(max_line_chars=20, max_lines=1))
    assert [c.text for c in cues] == ["so we went home then", "we ate"]


def test_two_lines_are_balanced():
    text = "the quick brown fox jumps over the lazy dog"
    cues = subtitle_cues(transcript_of(segment_of(spoken(text, 0.0))), CueLimits(max_line_chars=42))
    assert [c.text for c in cues] == ["the quick brown fox\njumps over the lazy dog"]


def test_a_word_longer_than_a_line_gets_a_cue_of_its_own():
    words = spoken("a pneumonoultramicroscopicsilicovolcanoconiosis b", 0.0, word_s=1.0)
    cues = subtitle_cues(transcript_of(segment_of(words)), CueLimits(max_line_chars=10, max_lines=1))
    assert [c.text for c in cues] == ["a", "pneumonoultramicroscopicsilicovolcanoconiosis", "b"]


def test_segments_without_words_are_one_cue_each_with_wrapped_lines():
    transcript = transcript_of(Segment(0.0, 20.0, "the quick brown fox jumps over the lazy dog " * 3),
                               Segment(21.0, 22.0, "yes"))
    cues = subtitle_cues(transcript)
    assert [(c.start, c.end) for c in cues] == [(0.0, 20.0), (21.0, 22.0)]
    assert cues[0].text.split("\n") == ["the quick brown fox jumps over", "the lazy dog the quick brown fox",
                                        "jumps over the lazy dog the quick", "brown fox jumps over the lazy dog"]
    assert cues[1].text == "yes"


def test_overlapping_input_gives_ordered_cues_that_do_not_overlap():
    transcript = transcript_of(Segment(5.0, 7.0, "second"), Segment(-0.5, 6.0, "first"), Segment(6.5, 6.8, "third"))
    cues = subtitle_cues(transcript)
    assert [(c.start, c.end, c.text) for c in cues] == [(0.0, 6.0, "first"), (6.0, 7.0, "second"),
                                                        (7.0, 7.0, "third")]


def test_random_long_segments_keep_every_word_within_the_limits():
    rng = random.Random(0)
    vocabulary = ["a", "of", "the", "speech", "recognition", "extraordinarily", "café", "x" * 50]
    limits = CueLimits()
    for _ in range(50):
        segments, t = [], 0.0
        for _ in range(rng.randint(1, 4)):
            words = []
            while not words or words[-1].end - words[0].start < rng.uniform(1, 30):
                t += rng.choice([0.0, 0.05, 0.1, 0.4, 1.5])
                duration = rng.uniform(0.1, 1.5)
                words.append(Word(rng.choice(vocabulary), t, t + duration, 1.0))
                t += duration
            segments.append(segment_of(words))
            t += 0.5
        cues = subtitle_cues(transcript_of(*segments), limits)
        assert " ".join(c.text.replace("\n", " ") for c in cues) == " ".join(s.text for s in segments)
        for previous, cue in zip(cues, cues[1:]):
            assert previous.end <= cue.start
        for cue in cues:
            lines = cue.text.split("\n")
            single_word = len(cue.text.split()) == 1
            assert cue.text.strip() and cue.start <= cue.end
            assert single_word or (len(lines) <= limits.max_lines and cue.end - cue.start <= limits.max_duration_s)
            assert all(len(line) <= limits.max_line_chars or " " not in line for line in lines)


def test_empty_transcript_gives_valid_files_without_cues(tmp_path: Path):
    paths = write_transcript(EMPTY, tmp_path)
    assert [p.name for p in paths] == ["silence.txt", "silence.json", "silence.srt", "silence.vtt"]
    assert (tmp_path / "silence.txt").read_text() == ""
    assert (tmp_path / "silence.srt").read_text() == ""
    assert (tmp_path / "silence.vtt").read_text() == "WEBVTT\n\n"
    assert json.loads((tmp_path / "silence.json").read_text()) == {
        "text": "", "segments": [], "duration": 3.0, "source": "silence.wav"}


def test_blank_segments_and_words_give_no_empty_cues():
    transcript = transcript_of(Segment(0.0, 1.0, "  "), Segment(1.0, 2.0, "", [Word(" ", 1.0, 1.5, 0.5)]))
    assert subtitle_cues(transcript) == []
    assert to_srt(transcript) == ""


def test_text_without_segments_is_one_cue_over_the_audio():
    transcript = Transcript("hello world", [], 2.5, "")
    assert to_txt(transcript) == "hello world\n"
    assert to_srt(transcript) == "1\n00:00:00,000 --> 00:00:02,500\nhello world\n\n"


def test_unicode_is_written_as_utf8(tmp_path: Path):
    text = "naïve café — 日本語 😀"
    transcript = transcript_of(segment_of(spoken(text, 0.0)), source="ünï.wav")
    paths = write_transcript(transcript, tmp_path)
    assert [p.name for p in paths] == ["ünï.txt", "ünï.json", "ünï.srt", "ünï.vtt"]
    for path in paths:
        assert text.encode("utf-8") in path.read_bytes()  # JSON too: not \u-escaped


def test_file_names_follow_the_source_stem(tmp_path: Path):
    transcript = transcript_of(Segment(0, 1, "hi"), source="/data/in/talk.final.wav")
    assert write_transcript(transcript, tmp_path / "out", "srt") == [tmp_path / "out" / "talk.final.srt"]
    stdin = Transcript("hi", [Segment(0, 1, "hi")], 1.0, "-")
    assert write_transcript(stdin, tmp_path, ["vtt", "txt"]) == [tmp_path / "stdin.txt", tmp_path / "stdin.vtt"]
    array = Transcript("hi", [Segment(0, 1, "hi")], 1.0, "")
    assert [p.name for p in write_transcript(array, tmp_path, "all")] == [
        "transcript.txt", "transcript.json", "transcript.srt", "transcript.vtt"]
    assert (tmp_path / "stdin.vtt").read_text() == render(stdin, "vtt")


def test_unknown_format_is_refused_before_writing(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown output format.*pdf"):
        write_transcript(TWO, tmp_path, ["srt", "pdf"])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown output format"):
        render(TWO, "all")


def test_same_stem_in_one_run_gets_a_suffix(tmp_path: Path):
    taken: set[str] = set()
    sources = ["a/talk.wav", "b/talk.wav", "Talk.mp3", "talk-2.flac"]
    names = [write_transcript(transcript_of(Segment(0, 1, s), source=s), tmp_path, "txt", taken=taken)[0].name
             for s in sources]
    assert names == ["talk.txt", "talk-2.txt", "Talk-3.txt", "talk-2-2.txt"]
    assert [(tmp_path / n).read_text() for n in names] == [f"{s}\n" for s in sources]


def test_a_new_run_replaces_its_earlier_files(tmp_path: Path):
    write_transcript(transcript_of(Segment(0, 1, "old")), tmp_path, "txt", taken=set())
    write_transcript(transcript_of(Segment(0, 1, "new")), tmp_path, "txt", taken=set())
    assert [p.name for p in tmp_path.iterdir()] == ["talk.txt"]
    assert (tmp_path / "talk.txt").read_text() == "new\n"


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_transcript(transcript_of(Segment(0, 1, "old")), tmp_path, "txt")

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(writers.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_transcript(transcript_of(Segment(0, 1, "new")), tmp_path, "txt")
    assert [p.name for p in tmp_path.iterdir()] == ["talk.txt"]  # no temporary file left behind
    assert (tmp_path / "talk.txt").read_text() == "old\n"
