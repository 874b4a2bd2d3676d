"""asr.audio.stream_audio and asr.segmenter: files read block by block equal load_audio; speech is cut inside its
pauses, long speech into overlapping pieces of bounded length whose owned regions tile the timeline, and a file
of any length is segmented in memory that does not grow with it."""
from __future__ import annotations

import shutil
import subprocess
import tracemalloc

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from asr import AudioError
from asr.audio import load_audio, stream_audio
from asr.corpora.synthetic import Voice, synthesize
from asr.segmenter import AudioSegment, SegmenterConfig, SpeechSegmenter, segment_audio

SR = 16000
SENTENCES = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine", "knowledge is power"]
PAD = SegmenterConfig().pad_s


@pytest.fixture(scope="module")
def sentences(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Three espeak-ng sentences at 16 kHz, trimmed to their first and last loud 10 ms frame."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (scripts/setup.sh installs it)")
    root, out = tmp_path_factory.mktemp("sentences"), []
    for i, text in enumerate(SENTENCES):
        synthesize(text, Voice("espeak-ng", "en-us"), root / f"{i}.wav")
        audio = load_audio(root / f"{i}.wav")
        loud = np.flatnonzero(frame_db(audio) > -60)
        out.append(audio[loud[0] * 160 : (loud[-1] + 1) * 160])
    return out


def frame_db(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    return 10 * np.log10(frames.var(axis=1, dtype=np.float64) + 1e-10)


def noise(seconds: float, db: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(round(seconds * SR), dtype=np.float32) * 10 ** (db / 20)


def with_pauses(speech: list[np.ndarray], pauses: list[float], gains: list[float], noise_db: float = -60.0):
    """pauses[0] silence, speech[0], pauses[1], ..., pauses[-1] over quiet noise, each piece (noise included)
    scaled by its gain; returns the signal and each utterance's (start, end) in seconds."""
    parts, spans, position = [], [], 0
    for k, pause in enumerate(pauses):
        gain = gains[min(k, len(gains) - 1)]
        parts.append(noise(pause, noise_db, seed=k) * gain)
        position += len(parts[-1])
        if k < len(speech):
            parts.append((speech[k] + noise(len(speech[k]) / SR, noise_db, seed=10 + k)) * gain)
            spans.append((position / SR, (position + len(speech[k])) / SR))
            position += len(speech[k])
    return np.concatenate(parts).astype(np.float32), spans


def modulated(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise with a 4 Hz syllable-like envelope that dips 26 dB but never pauses: speech to an energy detector."""
    t = np.arange(round(seconds * SR)) / SR
    envelope = 0.15 * (0.05 + 0.95 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)))
    return (envelope * noise(seconds, 0.0, seed)).astype(np.float32)


def push_all(audio: np.ndarray, chunk: int, config: SegmenterConfig | None = None) -> list[AudioSegment]:
    segmenter, segments = SpeechSegmenter(config), []
    for i in range(0, len(audio), chunk):
        segments += segmenter.push(audio[i : i + chunk])
    return segments + segmenter.flush()


def assert_tiles(segments: list[AudioSegment], duration: float) -> None:
    """Owned regions cover [0, duration] without gap or overlap, each inside the stream."""
    assert segments
    assert segments[0].own_start == 0.0
    assert segments[-1].own_end == duration
    for before, after in zip(segments, segments[1:]):
        assert before.own_end == after.own_start
    for s in segments:
        assert s.own_start < s.own_end
        assert 0 <= s.offset and s.end <= duration


def assert_maps_back(segments: list[AudioSegment], signal: np.ndarray) -> None:
    for s in segments:
        assert s.audio.dtype == np.float32 and s.audio.ndim == 1
        np.testing.assert_array_equal(s.audio, signal[s.offset : s.offset + len(s.audio)])


# -- streaming reader ---------------------------------------------------------------------------------------------

def two_tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    left, right = 0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1234 * t + 1)
    return np.stack([left, right], axis=1)[:, :channels].squeeze()


@pytest.mark.parametrize(
    ("rate", "channels", "ext", "subtype"),
    [(44100, 2, "wav", "PCM_16"), (16000, 1, "flac", "PCM_16"), (48000, 2, "ogg", "VORBIS"), (48000, 1, "ogg", "OPUS"),
     (44100, 2, "mp3", None), (22050, 1, "mp3", None)],  # mono MPEG-2 MP3 once came out garbled at block edges
)
def test_stream_matches_load_audio(tmp_path, rate, channels, ext, subtype):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, two_tone(rate, 3.3, channels), rate, subtype=subtype)
    blocks = list(stream_audio(path, block_s=0.5))
    whole = load_audio(path)
    assert len(blocks) >= 6 and max(len(b) for b in blocks) <= 0.5 * SR + 600  # really read in pieces
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    streamed = np.concatenate(blocks)
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)  # no clicks or gaps at the block edges


def test_stream_of_array_and_of_ffmpeg_only_format(tmp_path):
    pcm = (two_tone(44100, 2.0, 2) * 32767).astype(np.int16).T  # (channels, samples) int16, as load_audio takes
    np.testing.assert_allclose(np.concatenate(list(stream_audio(pcm, 44100))), load_audio(pcm, 44100), atol=1e-6)
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    sf.write(tmp_path / "tone.wav", two_tone(44100, 2.0, 2), 44100)
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(tmp_path / "tone.wav"),
                    str(tmp_path / "tone.m4a")], check=True)
    streamed = np.concatenate(list(stream_audio(tmp_path / "tone.m4a")))
    np.testing.assert_allclose(streamed, load_audio(tmp_path / "tone.m4a"), atol=1e-6)


def test_stream_errors_match_load_audio(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all " * 50)
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1)), SR)
    for bad in ["missing.wav", ".", "empty.wav", "junk.wav", "zero.wav"]:
        with pytest.raises(AudioError) as loaded:
            load_audio(tmp_path / bad)
        with pytest.raises(AudioError) as streamed:
            stream_audio(tmp_path / bad)  # at the call, before any block is asked for
        assert str(streamed.value) == str(loaded.value)
    for array, rate, reason in [(np.zeros(100), None, "sample_rate"), (np.zeros(0), SR, "zero samples")]:
        with pytest.raises(AudioError, match=reason):
            stream_audio(array, rate)


def test_stream_reports_non_finite_samples_when_reached(tmp_path):
    audio = np.zeros(3 * SR, np.float32)
    audio[2 * SR + 5] = np.nan
    sf.write(tmp_path / "nan.wav", audio, SR, subtype="FLOAT")
    blocks = stream_audio(tmp_path / "nan.wav")
    assert len(next(blocks)) == SR and len(next(blocks)) == SR
    with pytest.raises(AudioError, match="NaN or infinite"):
        next(blocks)


# -- segmenting ---------------------------------------------------------------------------------------------------

def assert_cut_in_pauses(segments: list[AudioSegment], spans: list[tuple[float, float]], duration: float) -> None:
    """One segment per utterance: all of it plus its context, cut within 0.1 s of that, owned up to the pause."""
    assert len(segments) == len(spans)
    for k, (s, (start, end)) in enumerate(zip(segments, spans)):
        assert max(start - PAD - 0.1, 0.0) <= s.start <= max(start - 0.05, 0.0)
        assert min(end + 0.05, duration) <= s.end <= end + PAD + 0.1
        if k + 1 < len(spans):
            assert end < s.own_end < spans[k + 1][0]  # ownership changes hands inside the pause


@pytest.mark.parametrize("gain_db", [0.0, -30.0])
def test_cuts_inside_pauses(sentences, gain_db):
    signal, spans = with_pauses(sentences, [0.6, 0.8, 0.5, 0.7], [10 ** (gain_db / 20)])
    segments = list(segment_audio(signal, SR))
    assert_cut_in_pauses(segments, spans, len(signal) / SR)
    assert_tiles(segments, len(signal) / SR)
    assert_maps_back(segments, signal)


def test_follows_a_level_drop(sentences):
    # The first speaker is close to the microphone; then the recording drops by 30 dB, its noise with it.
    quiet = 10 ** (-30 / 20)
    signal, spans = with_pauses(sentences, [0.4, 0.6, 0.6, 0.4], [1.0, quiet, quiet], noise_db=-50.0)
    segments = push_all(signal, 1600)
    assert_cut_in_pauses(segments, spans, len(signal) / SR)
    assert_maps_back(segments, signal)


def test_speech_from_the_first_to_the_last_sample(sentences):
    signal, spans = with_pauses(sentences[:2], [0.0, 0.5, 0.0], [1.0])
    segments = list(segment_audio(signal, SR))
    assert_cut_in_pauses(segments, spans, len(signal) / SR)
    assert segments[0].offset == 0 and segments[-1].end == len(signal) / SR  # context stops at the file's ends
    assert_tiles(segments, len(signal) / SR)


def test_chunk_size_does_not_change_segments(sentences):
    signal, _ = with_pauses(sentences, [0.3, 0.5, 0.4, 0.3], [1.0])
    layouts = [[(s.offset, len(s.audio), s.own_start, s.own_end) for s in push_all(signal, chunk)]
               for chunk in (160, 317, 16000, len(signal))]
    assert len(layouts[0]) == 3 and all(layout == layouts[0] for layout in layouts)


def test_endpoint_comes_a_pause_after_the_speech(sentences):
    # Live dictation: push 20 ms chunks, each utterance must come back once min_pause_s of quiet has passed.
    signal, spans = with_pauses(sentences[:2], [0.5, 1.0, 1.5], [1.0])
    segmenter, returned_at = SpeechSegmenter(), []
    for i in range(0, len(signal), 320):
        returned_at += [(i + 320) / SR] * len(segmenter.push(signal[i : i + 320]))
    assert len(returned_at) == 2
    for at, (_, end) in zip(returned_at, spans):
        assert end + SegmenterConfig().min_pause_s <= at <= end + SegmenterConfig().min_pause_s + 0.15
    assert not segmenter.in_speech and segmenter.flush() == []


@pytest.mark.parametrize("kind", ["digital silence", "white noise", "rumble", "hum and hiss"])
def test_background_alone_is_not_speech(kind):
    t = np.arange(20 * SR) / SR
    background = {
        "digital silence": np.zeros(len(t)),
        "white noise": noise(20, -45),
        "rumble": scipy.signal.lfilter([0.01], [1, -0.99], noise(20, -20)),  # low-passed, like traffic
        "hum and hiss": 0.05 * np.sin(2 * np.pi * 50 * t) + noise(20, -55),
    }[kind].astype(np.float32)
    assert push_all(background, 4000) == []
    assert list(segment_audio(background, SR)) == []


def test_clicks_are_not_speech_and_the_timeline_stays_tiled(sentences):
    signal, spans = with_pauses(sentences[:1], [1.0, 2.0], [1.0])
    signal[SR // 2 : SR // 2 + 160] = 0.8  # 10 ms knocks before and after the sentence
    signal[-SR : -SR + 320] = -0.8
    segments = list(segment_audio(signal, SR))
    assert len(segments) == 1
    assert segments[0].start == pytest.approx(spans[0][0] - PAD, abs=0.1)
    assert_tiles(segments, len(signal) / SR)


def test_very_short_inputs(sentences):
    short = np.concatenate([np.zeros(800), sentences[2][: SR // 4], np.zeros(800)]).astype(np.float32)
    segments = list(segment_audio(short, SR))
    assert len(segments) == 1
    assert_tiles(segments, len(short) / SR)
    assert_maps_back(segments, short)
    assert list(segment_audio(np.full(5, 0.5, np.float32), SR)) == []
    assert SpeechSegmenter().push(np.zeros(0, np.float32)) == []


def check_forced_cuts(segments: list[AudioSegment], signal: np.ndarray, config: SegmenterConfig) -> None:
    """Pieces no longer than max_segment_s, overlapping by overlap_s each side, owned up to the overlap's middle."""
    assert len(segments) >= 3
    assert all(len(s.audio) <= config.max_segment_s * SR for s in segments)
    for before, after in zip(segments, segments[1:]):
        assert before.end - after.start == pytest.approx(2 * config.overlap_s)
        assert before.own_end == pytest.approx((before.end + after.start) / 2)
    assert_tiles(segments, len(signal) / SR)
    assert_maps_back(segments, signal)


def test_speech_without_pauses_is_cut_into_overlapping_pieces():
    signal = modulated(150)
    signal[27 * SR : round(27.2 * SR)] *= 1e-3  # a catch of breath shorter than a pause, in the first search span
    config = SegmenterConfig()
    segments = list(segment_audio(signal, SR))
    check_forced_cuts(segments, signal, config)
    assert 27.0 <= segments[0].own_end <= 27.2  # cut at the quietest moment
    assert 150 / (config.max_segment_s - 2 * config.overlap_s) <= len(segments) <= 150 / 20 + 1


def test_real_speech_without_pauses_is_cut_into_overlapping_pieces(sentences):
    signal = np.concatenate(sentences * 5)  # ~28 s of speech with no pause as long as min_pause_s
    config = SegmenterConfig(max_segment_s=8.0, overlap_s=1.0)
    segments = push_all(signal, 4000, config)
    check_forced_cuts(segments, signal, config)
    loudness = frame_db(signal)
    for s in segments[:-1]:  # each cut at a quiet moment of speech, not in the middle of a vowel
        assert loudness[round(s.own_end * 100)] < np.percentile(loudness, 20)


def test_config_is_checked():
    with pytest.raises(ValueError, match="max_segment_s"):
        SegmenterConfig(max_segment_s=3.0, overlap_s=1.0)
    with pytest.raises(ValueError, match="negative"):
        SegmenterConfig(pad_s=-0.1)


def test_memory_stays_bounded_on_a_30_minute_file(tmp_path):
    # One minute of dictation: eight 2 s utterances with pauses, then 40 s without a pause; thirty times over.
    minute = np.concatenate([np.concatenate([modulated(2.0, seed), noise(0.6, -60, seed)]) for seed in range(8)]
                            + [modulated(40.0 - 0.8, 9), noise(0.6, -60, 9)])
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", SR, 1, "PCM_16") as file:
        for _ in range(30):
            file.write(minute)
    samples = 30 * len(minute)
    tracemalloc.start()
    try:
        layout = [(s.offset, len(s.audio), s.own_start, s.own_end) for s in segment_audio(path)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    decoded, segment = samples * 4, 30 * SR * 4  # float32 bytes of the whole file and of one longest segment
    print(f"peak traced memory {peak / 2**20:.1f} MiB for {decoded / 2**20:.0f} MiB of decoded audio")
    assert peak < min(3 * segment, decoded / 20)  # the open segment, the one cut from it, blocks: not the file
    assert len(layout) == 30 * (8 + 2)  # the 40 s stretch each minute is cut once
    assert max(length for _, length, _, _ in layout) <= 30 * SR
    assert layout[0][2] == 0.0 and layout[-1][3] == samples / SR
    assert all(a[3] == b[2] for a, b in zip(layout, layout[1:]))
