import json
import shutil

import numpy as np
import pytest
import soundfile

import asr.corpora.synthetic
from asr.audio import load_audio
from asr.corpora import neural_tts
from asr.corpora.synthetic import FORTUNES_DIR, WORDNET_DIR, Voice, all_voices, build_corpus, engine_status, \
    harvest_sentences, split_voices, synthesize
from asr.manifest import read_manifest
from asr.text import Vocabulary, normalize

SENTENCE = "The quick brown fox jumps over the lazy dog."


def first_voice(engine):
    voices = [v for v in all_voices() if v.engine == engine]
    if not voices:
        pytest.skip(f"{engine} is not installed: {engine_status()[engine]}")
    return voices[0]


def test_espeak_ng_is_installed():
    assert shutil.which("espeak-ng"), "espeak-ng is required to build the synthetic corpus"


@pytest.mark.parametrize("engine", ["kokoro", "piper", "espeak-ng", "flite", "festival"])
def test_synthesize_writes_16k_mono_pcm_of_plausible_length(engine, tmp_path):
    voice = first_voice(engine)
    duration = synthesize(SENTENCE, voice, tmp_path / "a.wav")
    info = soundfile.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert duration == pytest.approx(info.frames / 16000)
    assert 1.5 < duration < 6.0  # nine words
    audio = load_audio(tmp_path / "a.wav")
    frames = audio[: len(audio) // 400 * 400].reshape(-1, 400)
    assert (np.sqrt((frames ** 2).mean(axis=1)) > 0.02).mean() > 0.5  # speech most of the time, not silence


@pytest.mark.parametrize("engine", ["kokoro", "piper"])
def test_neural_rate_and_pitch_change_duration_and_f0(engine, tmp_path):
    import librosa

    voice = first_voice(engine)
    synthesize(SENTENCE, voice, tmp_path / "low.wav", rate=0.8, pitch=0.9)
    synthesize(SENTENCE, voice, tmp_path / "high.wav", rate=1.25, pitch=1.1)
    low, high = load_audio(tmp_path / "low.wav"), load_audio(tmp_path / "high.wav")
    assert len(high) < 0.8 * len(low)
    f0 = [np.nanmedian(librosa.pyin(a, fmin=60, fmax=500, sr=16000)[0]) for a in (low, high)]
    assert f0[1] / f0[0] == pytest.approx(1.1 / 0.9, rel=0.12)


def test_kokoro_voice_mixing_is_deterministic_and_covers_both_genders():
    anchors = np.random.default_rng(0).standard_normal((5, 510, 1, 256)).astype(np.float32)
    for key in ("mix-t0001", "mix-h007"):
        weights = neural_tts.mix_weights(key)
        assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
        assert np.array_equal(neural_tts.mix_style(anchors, key), neural_tts.mix_style(anchors, key))
        assert neural_tts.kokoro_voice_traits(key) == neural_tts.kokoro_voice_traits(key)
    assert not np.allclose(neural_tts.mix_style(anchors, "mix-t0001"), neural_tts.mix_style(anchors, "mix-t0002"))
    assert np.array_equal(neural_tts.mix_style(anchors, "jf_alpha"), anchors[0])  # a packaged style, unchanged
    genders = [neural_tts.kokoro_voice_traits(f"mix-t{i:04d}")[1] for i in range(400)]
    assert 0.4 < genders.count("M") / len(genders) < 0.6


def test_kokoro_synthesis_is_reproducible(tmp_path):
    first_voice("kokoro")
    for name in ("a.wav", "b.wav"):
        synthesize(SENTENCE, Voice("kokoro", "mix-t0003"), tmp_path / name, rate=1.1, pitch=1.02)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_engine_status_names_every_engine():
    status = engine_status()
    assert list(status) == ["kokoro", "piper", "espeak-ng", "flite", "festival"]
    assert all(reason is None or "install" in reason for reason in status.values())


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
    if engine_status()["kokoro"] is None:
        held_kokoro = {v.name for v in held if v.engine == "kokoro"}
        assert held_kokoro and all(name.startswith("mix-h") for name in held_kokoro)
        assert {v.name for v in train if v.engine == "kokoro"} >= set(neural_tts.KOKORO_ANCHORS)
    assert all(v.engine != "piper" for v in held)


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
    """Two builds with the same arguments. Without Piper, whose prosody noise comes from onnxruntime's unseeded
    generator (a Piper utterance's length varies a little between builds, so its manifests cannot be identical)."""
    root = tmp_path_factory.mktemp("synthetic")
    args = dict(hours=0.005, dev_minutes=0.2, test_minutes=0.2, seed=3, jobs=2)
    with pytest.MonkeyPatch.context() as patch:
        voices = [v for v in all_voices() if v.engine != "piper"]
        patch.setattr(asr.corpora.synthetic, "all_voices", lambda: voices)
        return [(root / name, build_corpus(root / name, **args), args) for name in ("a", "b")]


@pytest.mark.slow
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


def without_speed(summary: dict) -> dict:
    """A summary less its synthesis speeds, which are timings (and absent when nothing was synthesized anew)."""
    for split in summary["splits"].values():
        for engine in split["engines"].values():
            assert "speed" not in engine or engine["speed"] > 0
            engine.pop("speed", None)
    return summary


@pytest.mark.slow
def test_build_corpus_is_deterministic_and_reuses_its_output(corpora):
    (a, summary_a, args), (b, summary_b, _) = corpora
    assert without_speed(summary_a) == without_speed(summary_b)
    for split in ("train", "dev", "test"):
        assert (a / f"{split}.jsonl").read_bytes() == (b / f"{split}.jsonl").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in (a / "wavs").rglob("*.wav")}
    with pytest.MonkeyPatch.context() as patch:
        voices = [v for v in all_voices() if v.engine != "piper"]
        patch.setattr(asr.corpora.synthetic, "all_voices", lambda: voices)
        rerun = build_corpus(a, **args)
    assert all("speed" not in engine for split in rerun["splits"].values() for engine in split["engines"].values())
    assert rerun == summary_a
    assert {p: p.stat().st_mtime_ns for p in (a / "wavs").rglob("*.wav")} == stamps


def _espeak_only(monkeypatch):
    """Corpus builds restricted to espeak-ng, which synthesizes fastest."""
    monkeypatch.setattr(asr.corpora.synthetic, "all_voices",
                        lambda: [v for v in asr.corpora.synthetic._espeak_voices() if v.name in ("en-us", "en-gb-scotland")])


def test_failing_utterances_are_reported_and_skipped(tmp_path, monkeypatch, caplog):
    _espeak_only(monkeypatch)
    real = asr.corpora.synthetic.synthesize

    def flaky(text, voice, path, *args, **kwargs):
        if int(path.stem.rsplit("_", 1)[1]) % 3 == 1:
            raise RuntimeError(f"{voice.id}: engine crashed")
        return real(text, voice, path, *args, **kwargs)

    monkeypatch.setattr(asr.corpora.synthetic, "synthesize", flaky)  # worker processes are forked after this
    summary = build_corpus(tmp_path, hours=0.003, dev_minutes=0.1, test_minutes=0.1, jobs=2)
    assert summary["splits"]["train"]["failed"] > 0 and "engine crashed" in caplog.text
    entries = read_manifest(tmp_path / "train.jsonl")
    assert entries and all(int(e["audio_filepath"].rsplit("_", 1)[1][:6]) % 3 != 1 for e in entries)
    assert len(list((tmp_path / "wavs" / "train").iterdir())) == len(entries)
    assert not list(tmp_path.glob("*.journal.jsonl"))


def test_interrupted_build_resumes_from_its_journal(tmp_path, monkeypatch):
    _espeak_only(monkeypatch)
    args = dict(hours=0.004, dev_minutes=0.1, test_minutes=0.1, jobs=2)
    build_corpus(tmp_path, **args)
    finished = (tmp_path / "train.jsonl").read_bytes()
    entries = read_manifest(tmp_path / "train.jsonl")
    # As if the run had been killed mid-way: no manifest yet, a journal of what was done, a line cut short.
    (tmp_path / "train.jsonl").unlink()
    journal = "".join(json.dumps(e) + "\n" for e in entries[:-1]) + json.dumps(entries[-1])[:40]
    (tmp_path / "train.journal.jsonl").write_text(journal)
    stamps = {e["audio_filepath"]: (tmp_path / e["audio_filepath"]).stat().st_mtime_ns for e in entries}
    summary = build_corpus(tmp_path, **args)
    assert (tmp_path / "train.jsonl").read_bytes() == finished
    redone = [path for path, stamp in stamps.items() if (tmp_path / path).stat().st_mtime_ns != stamp]
    assert redone == [entries[-1]["audio_filepath"]]  # only the utterance whose journal line was lost
    assert summary["splits"]["train"]["engines"]["espeak-ng"]["utterances"] == len(entries)
