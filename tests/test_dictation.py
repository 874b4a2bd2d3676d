"""Live dictation with the bundled model: browser-like chunks in, partial text while speaking, settled text after."""
from __future__ import annotations

import numpy as np
import pytest

import asr
from asr.audio import load_audio, resample
from asr.corpora.synthetic import Voice, synthesize
from asr.dictation import Dictation
from asr.errors import AudioError
from asr.evaluate import score

FIRST, SECOND = "the weather was fine all day", "we walked in the garden"


@pytest.fixture(scope="module")
def model():
    return asr.load_model()


@pytest.fixture(scope="module")
def browser_audio(tmp_path_factory) -> np.ndarray:
    """Two sentences with a pause, as Chromium sends them: 48 kHz, stereo, int16."""
    root = tmp_path_factory.mktemp("dictation")
    parts = []
    for i, text in enumerate((FIRST, SECOND)):
        synthesize(text, Voice("espeak-ng", "en-us"), root / f"{i}.wav")
        parts += [np.zeros(8000, np.float32), load_audio(root / f"{i}.wav"), np.zeros(12800, np.float32)]
    audio = resample(np.concatenate(parts), 16000, 48000)
    return np.repeat((audio * 20000).astype(np.int16)[:, None], 2, axis=1)


def chunks(audio: np.ndarray, seed: int) -> list[np.ndarray]:
    """Irregular chunk sizes, 0.2-0.7 s."""
    rng = np.random.default_rng(seed)
    cuts = np.cumsum(rng.integers(9600, 33600, size=len(audio) // 9600))
    return [c for c in np.split(audio, cuts[cuts < len(audio)]) if len(c)]


def test_partial_text_while_speaking_then_settled_text(model, browser_audio):
    dictation = Dictation(model)
    seen = [dictation.push(48000, chunk) for chunk in chunks(browser_audio, 0)]
    halfway = seen[len(seen) // 2]
    assert halfway and score([FIRST], [halfway]).cer < 0.5  # words appear before the speaker is done
    assert dictation.settled, "the pause after the first sentence settles it"
    result = dictation.finish()
    assert score([f"{FIRST} {SECOND}"], [result.text]).cer < 0.25
    assert result.duration == pytest.approx(len(browser_audio) / 48000, abs=0.01)
    words = [w for s in result.segments for w in s.words]
    assert all(a.end <= b.start for a, b in zip(words, words[1:])) and words[-1].end <= result.duration


def test_updates_without_the_partial_text_still_settle_every_segment(model, browser_audio):
    """A loaded server's cheap updates (partial=False): the open segment's text is not re-decoded, but what a
    pause settles is, so the transcript is the same as with every update decoded."""
    full, cheap = Dictation(model), Dictation(model)
    stale = []
    for chunk in chunks(browser_audio, 2):
        full.push(48000, chunk)
        before = (len(cheap.settled), cheap.partial)
        cheap.push(48000, chunk, partial=False)
        if len(cheap.settled) == before[0]:
            stale.append(cheap.partial == before[1])
    assert all(stale) and cheap.partial_at_s == 0.0  # never decoded the open segment
    assert [s.text for s in cheap.settled] == [s.text for s in full.settled] and cheap.settled
    assert cheap.finish().text == full.finish().text


def test_sessions_never_mix(model, browser_audio):
    silence = np.zeros_like(browser_audio)
    a, b = Dictation(model), Dictation(model)
    for speech, quiet in zip(chunks(browser_audio, 1), chunks(silence, 1)):
        a.push(48000, speech)
        b.push(44100, quiet)
    assert a.finish().text and b.finish().text == ""


def test_bad_and_over_long_audio_is_refused(model):
    dictation = Dictation(model, max_duration_s=1.0)
    with pytest.raises(AudioError, match="NaN"):
        dictation.push(16000, np.full(1600, np.nan, np.float32))
    with pytest.raises(AudioError, match="sample rate"):
        dictation.push(0, np.zeros(1600, np.int16))
    dictation.push(16000, np.zeros(16000, np.int16))
    with pytest.raises(AudioError, match="limited to 1 s"):
        dictation.push(16000, np.zeros(1600, np.int16))
