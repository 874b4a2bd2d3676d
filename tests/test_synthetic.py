import json
import shutil

import pytest
import soundfile

from asr.manifest import read_manifest
from asr.synthetic import FORTUNES_DIR, WORDNET_DIR, Voice, all_voices, build_corpus, harvest_sentences, \
    split_voices, synthesize
from asr.text import Vocabulary, normalize

SENTENCE = "The quick brown fox jumps over the lazy dog."


def first_voice(engine):
    voices = [v for v in all_voices() if v.engine == engine]
    if not voices:
        pytest.skip(f"{engine} is not installed")
    return voices[0]


def test_espeak_ng_is_installed():
    assert shutil.which("espeak-ng"), "espeak-ng is required to build the synthetic corpus"


@pytest.mark.parametrize("engine", ["espeak-ng", "flite", "festival"])
def test_synthesize_writes_16k_mono_pcm_of_plausible_length(engine, tmp_path):
    voice = first_voice(engine)
    duration = synthesize(SENTENCE, voice, tmp_path / "a.wav")
    info = soundfile.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert duration == pytest.approx(info.frames / 16000)
    assert 1.5 < duration < 6.0  # nine words


def test_synthesize_rate_changes_duration(tmp_path):
    voice = first_voice("espeak-ng")
    slow = synthesize(SENTENCE, voice, tmp_path / "slow.wav", rate=0.8, pitch=0.9)
    fast = synthesize(SENTENCE, voice, tmp_path / "fast.wav", rate=1.25, pitch=1.1)
    assert fast < 0.85 * slow


def test_synthesize_raises_on_engine_failure(tmp_path):
    first_voice("espeak-ng")
    with pytest.raises(RuntimeError, match="espeak-ng"):
        synthesize(SENTENCE, Voice("espeak-ng", "xx-no-such-language"), tmp_path / "a.wav")
    with pytest.raises(RuntimeError, match="nothing to say"):
        synthesize("  ", Voice("espeak-ng", "en-us"), tmp_path / "b.wav")
    assert not (tmp_path / "a.wav").exists()


def test_voice_inventory_and_held_out_split():
    voices = all_voices()
    ids = [v.id for v in voices]
    assert len(ids) == len(set(ids)) and "espeak-ng:en-us+klatt" in ids
    assert not any("mb-" in i or "whisper" in i for i in ids)
    train, held = split_voices(voices)
    assert {v.id for v in train}.isdisjoint(v.id for v in held) and len(train) + len(held) == len(voices)
    held_variants = {v.variant for v in held if v.engine == "espeak-ng" and v.name == "en-us"}
    assert {v.gender for v in held if v.variant in held_variants} == {"M", "F"}
    assert 0.1 < len(held_variants) / len({v.variant for v in voices if v.variant}) < 0.25
    assert split_voices(list(reversed(voices))) == (train[::-1], held[::-1])  # depends on nothing but the voice


def test_harvest_sentences_gives_thousands_of_clean_sentences():
    if not FORTUNES_DIR.is_dir() and not WORDNET_DIR.is_dir():
        pytest.skip("neither fortunes nor wordnet-base is installed")
    sentences = harvest_sentences()
    assert len(sentences) > 5000
    vocab = Vocabulary()
    texts = [normalize(s) for s in sentences]
    assert all(t and vocab.covers(t) and 3 <= len(t.split()) <= 25 for t in texts)
    assert len(set(texts)) == len(texts)
    assert all(s.isascii() and not any(c.isdigit() for c in s) for s in sentences)
    assert harvest_sentences() == sentences


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    args = dict(hours=0.005, dev_minutes=0.2, test_minutes=0.2, seed=3, jobs=2)
    return [(root / name, build_corpus(root / name, **args), args) for name in ("a", "b")]


def test_build_corpus_splits_are_disjoint_and_valid(corpora):
    out, summary, _ = corpora[0]
    manifests = {split: read_manifest(out / f"{split}.jsonl") for split in ("train", "dev", "test")}
    voices = json.loads((out / "voices.json").read_text())
    texts = {split: {e["text"] for e in entries} for split, entries in manifests.items()}
    assert texts["train"].isdisjoint(texts["dev"] | texts["test"]) and texts["dev"].isdisjoint(texts["test"])
    speakers = {split: {e["speaker"] for e in entries} for split, entries in manifests.items()}
    assert speakers["train"] <= set(voices["train"])
    assert speakers["dev"] | speakers["test"] <= set(voices["held_out"])
    assert set(voices["train"]).isdisjoint(voices["held_out"])
    lm_text = set((out / "lm_text.txt").read_text().splitlines())
    assert texts["train"] <= lm_text and lm_text.isdisjoint(texts["dev"] | texts["test"]) and len(lm_text) > 10000
    for split, minimum_s in (("train", 18), ("dev", 12), ("test", 12)):
        entries = manifests[split]
        assert sum(e["duration"] for e in entries) >= minimum_s
        assert summary["splits"][split]["utterances"] == len(entries)
        assert sorted(p.name for p in (out / "wavs" / split).iterdir()) == sorted(
            e["audio_filepath"].rsplit("/", 1)[1] for e in entries)
        for entry in entries:
            info = soundfile.info(entry["audio_filepath"])
            assert (info.samplerate, info.channels) == (16000, 1)
            assert entry["duration"] == pytest.approx(info.frames / 16000)
            assert entry["text"] == normalize(entry["raw_text"]) and entry["speaker"].startswith(entry["engine"] + ":")


def test_build_corpus_is_deterministic_and_reuses_its_output(corpora):
    (a, summary_a, args), (b, summary_b, _) = corpora
    assert summary_a == summary_b
    for split in ("train", "dev", "test"):
        assert (a / f"{split}.jsonl").read_bytes() == (b / f"{split}.jsonl").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in (a / "wavs").rglob("*.wav")}
    assert build_corpus(a, **args) == summary_a
    assert {p: p.stat().st_mtime_ns for p in (a / "wavs").rglob("*.wav")} == stamps
