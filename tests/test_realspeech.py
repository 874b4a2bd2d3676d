"""Real-speech dev set: tiny trees in the layout of each Debian package (generated tones for audio, excerpts of the
real XML, theme, description and tutorial.js formats) read by the recipe's readers
(recipes/realspeech/realspeech_sources.py) and by recipes/realspeech/prepare.py. The real packages are never needed."""
from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "realspeech"))

import realspeech_sources as realspeech  # noqa: E402 (recipes/realspeech/realspeech_sources.py)

from asr import AudioError, ManifestError  # noqa: E402
from asr.audio import load_audio  # noqa: E402
from asr.manifest import read_manifest  # noqa: E402

from conftest import assert_fails_naming, run_recipe  # noqa: E402

NOT_CONFIRMED = realspeech.NOT_CONFIRMED


def tone(seconds: float, rate: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def write_audio(path: Path, seconds: float, rate: int = 22050) -> Path:
    """A tone in the format the suffix names (.ogg: Vorbis, .wav: 16-bit PCM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, tone(seconds, rate), rate)
    return path


def ogg_bytes(seconds: float, rate: int = 11025) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, tone(seconds, rate), rate, format="OGG", subtype="VORBIS")
    return buffer.getvalue()


def write_raw(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    (tone(seconds, 8000) * 32767).astype("<i2").tofile(path)


def assert_wav_16k(path: str, seconds: float) -> None:
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
    assert abs(info.duration - seconds) < 0.01 and len(load_audio(path)) == info.frames
    assert not list(Path(path).parent.glob("*.tmp"))


# codec2-examples: usr/share/codec2/raw/*.raw (8 kHz, headerless) and wav/*.wav

def make_codec2(root: Path) -> Path:
    base = root / "usr" / "share" / "codec2"
    write_raw(base / "raw" / "hts.raw", 24.0)
    write_raw(base / "raw" / "hts1.raw", 6.0)  # a cut of hts.raw
    write_raw(base / "raw" / "big_dog.raw", 2.5)  # no known transcript
    write_audio(base / "wav" / "mmt1.wav", 4.0, 8000)
    write_audio(base / "raw" / "speech_orig_16k.wav", 10.8, 16000)
    return base


def test_codec2_entries(tmp_path):
    make_codec2(tmp_path / "codec2")
    listing = realspeech.codec2(tmp_path / "codec2", tmp_path / "out")
    by_id = {e["id"]: e for e in listing.entries}
    assert list(by_id) == [f"codec2/hts-{i}" for i in range(1, 9)] + ["codec2/mmt1", "codec2/speech_orig_16k"]
    assert by_id["codec2/hts-1"]["text"] == "the navy attacked the big task force"
    assert by_id["codec2/hts-7"]["raw_text"] == "The set of china hit the floor with a crash."
    assert by_id["codec2/mmt1"]["text"] == "it's easy to tell the depth of a well"
    assert by_id["codec2/speech_orig_16k"]["text"].startswith("the birch canoe slid on the smooth planks glue the")
    assert [e["speaker"] for e in listing.entries] == ["codec2:hts1"] * 2 + ["codec2:hts2"] * 2 + \
        ["codec2:hts3"] * 2 + ["codec2:hts4"] * 2 + ["codec2:mmt1", "codec2:speech_orig"]
    assert {e["source"] for e in listing.entries} == {"codec2-examples"}
    for i in range(1, 9):
        assert by_id[f"codec2/hts-{i}"]["duration"] == 3.0
        assert_wav_16k(by_id[f"codec2/hts-{i}"]["audio_filepath"], 3.0)
    assert abs(by_id["codec2/mmt1"]["duration"] - 4.0) < 0.01  # read where it lies, not converted
    assert by_id["codec2/mmt1"]["audio_filepath"].endswith("wav/mmt1.wav")
    assert listing.dropped == [("codec2/raw/big_dog.raw", "no transcript established"),
                               ("codec2/raw/hts1.raw", "a cut or copy of an included recording")]


def test_codec2_rejects_a_different_hts_raw(tmp_path):
    base = make_codec2(tmp_path)
    write_raw(base / "raw" / "hts.raw", 20.0)
    with pytest.raises(AudioError, match=r"hts\.raw: expected 24 s, got 20 s"):
        realspeech.codec2(tmp_path, tmp_path / "out")
    (base / "raw" / "hts.raw").write_bytes(b"\x00\x01\x02")
    with pytest.raises(AudioError, match=r"hts\.raw: odd byte count"):
        realspeech.codec2(tmp_path, tmp_path / "out")


# warzone2100-data: usr/share/games/warzone2100/base.wz (a zip) with script/tutorial.js and audio/tutorial/*.ogg

TUTORIAL_JS = """include("script/campaign/libcampaign.js");
function setUpConsoleAndAudioVar()
{
	consoleVar = [
		{"audio": "tut1.ogg", "clear": false, "message": _("In this training session you'll learn how to build an effective base"), "state": 0, "wait": 1},
		{"audio": "tut2.ogg", "clear": false, "message": _("Oil resources are key to your success"), "state": 0, "wait": 3},
		{"audio": "tut6.ogg", "clear": false, "message": undefined, "state": 2, "wait": 2},
		{"audio": "tut7.ogg", "clear": false, "message": _("Left click the flashing build icon"), "state": 2, "wait": 4, "func": "enableBuild"},
	];
}
"""


def make_warzone(root: Path) -> Path:
    base_wz = root / "usr" / "share" / "games" / "warzone2100" / "base.wz"
    base_wz.parent.mkdir(parents=True)
    with zipfile.ZipFile(base_wz, "w") as archive:
        archive.writestr("script/tutorial.js", TUTORIAL_JS)
        for i, name in enumerate(("tut1", "tut2", "tut6", "tut7", "tut14")):
            archive.writestr(f"audio/tutorial/{name}.ogg", ogg_bytes(1.0 + 0.25 * i))
    return base_wz


def test_warzone2100_entries(tmp_path):
    make_warzone(tmp_path / "wz")
    listing = realspeech.warzone2100(tmp_path / "wz", tmp_path / "out")
    assert [(e["id"], e["text"], e["speaker"]) for e in listing.entries] == [
        ("warzone2100/tut2", "oil resources are key to your success", "warzone2100:narrator"),
        ("warzone2100/tut7", "left click the flashing build icon", "warzone2100:narrator")]
    for entry, seconds in zip(listing.entries, (1.25, 1.75)):
        assert entry["audio_filepath"] == str(tmp_path / "out" / "audio" / "warzone2100" / f"{entry['id'][12:]}.wav")
        assert_wav_16k(entry["audio_filepath"], seconds)
        assert abs(entry["duration"] - seconds) < 0.01 and entry["source"] == "warzone2100-data"
    assert listing.dropped == [("warzone2100/tut1", NOT_CONFIRMED),
                               ("warzone2100/tut6", "no on-screen text in script/tutorial.js"),
                               ("warzone2100/tut14", "not a line of script/tutorial.js")]


def _zip(path: Path, members: dict[str, str | bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("damage, error, message", [
    (lambda path: path.write_bytes(b"not a zip"), ManifestError, r"base\.wz: not a zip archive"),
    (lambda path: path.unlink(), ManifestError, r"base\.wz: not found"),
    (lambda path: _zip(path, {"readme.txt": "x"}), ManifestError,
     r"base\.wz: no script/tutorial\.js inside"),
    (lambda path: _zip(path, {"script/tutorial.js": TUTORIAL_JS, "audio/tutorial/tut2.ogg": b"garbage"}), AudioError,
     r"base\.wz:audio/tutorial/tut2\.ogg: not a readable audio file"),
])
def test_warzone2100_errors_name_the_file(tmp_path, damage, error, message):
    damage(make_warzone(tmp_path))
    with pytest.raises(error, match=message):
        realspeech.warzone2100(tmp_path, tmp_path / "out")


# klettres-data: usr/share/klettres/<language>/sounds.xml

KLETTRES_XML = """<!--
   KDE EDU KLettres
-->
<klettres>
  <language code="{code}">
    <menuitem>
      <label>&amp;English</label>
    </menuitem>
    <alphabet>
{alphabet}
    </alphabet>
      <syllables>
{syllables}
      </syllables>
    </language>
</klettres>
"""
KLETTRES = {"en": (("A", "B"), ("CAR", "CH")), "en_GB": (("A",), ("ARM",))}


def make_klettres(root: Path) -> None:
    base = root / "usr" / "share" / "klettres"
    for code, (letters, syllables) in KLETTRES.items():
        lines = {}
        for kind, names in (("alpha", letters), ("syllab", syllables)):
            lines[kind] = "\n".join(f'\t<sound name="{n}" file="{code}/{kind}/{n.lower()}.ogg" />' for n in names)
            for n in names:
                write_audio(base / code / kind / f"{n.lower()}.ogg", 1.5)
        (base / code / "sounds.xml").write_text(KLETTRES_XML.format(code=code, alphabet=lines["alpha"],
                                                                     syllables=lines["syllab"]))
    (base / "fr").mkdir()  # other languages are never read


def test_klettres_entries(tmp_path):
    make_klettres(tmp_path)
    listing = realspeech.klettres(tmp_path, tmp_path / "out")
    assert [(e["id"], e["text"], e["speaker"]) for e in listing.entries] == [
        ("klettres/en/B", "b", "klettres:en"), ("klettres/en/CAR", "car", "klettres:en"),
        ("klettres/en_GB/ARM", "arm", "klettres:en_GB")]
    assert all(abs(e["duration"] - 1.5) < 0.01 and e["source"] == "klettres-data" for e in listing.entries)
    assert listing.dropped == [("klettres/en/A", NOT_CONFIRMED), ("klettres/en/CH", NOT_CONFIRMED),
                               ("klettres/en_GB/A", NOT_CONFIRMED)]


def test_klettres_errors_name_the_file(tmp_path):
    make_klettres(tmp_path)
    xml = tmp_path / "usr" / "share" / "klettres" / "en_GB" / "sounds.xml"
    xml.write_text("<klettres><language>")
    with pytest.raises(ManifestError, match=r"en_GB/sounds\.xml: not well-formed XML"):
        realspeech.klettres(tmp_path, tmp_path / "out")
    (tmp_path / "usr" / "share" / "klettres" / "en" / "alpha" / "b.ogg").unlink()
    with pytest.raises(ManifestError, match=r"en/sounds\.xml: audio file not found: .*b\.ogg"):
        realspeech.klettres(tmp_path, tmp_path / "out")


# ktuberling-data: usr/share/ktuberling/sounds/<language>.soundtheme

def make_ktuberling(root: Path) -> None:
    base = root / "usr" / "share" / "ktuberling" / "sounds"
    names = ("ball", "coat", "egypt_camel", "pizzeria_olive")
    for name in names:
        write_audio(base / "en" / f"{name}.ogg", 0.8, 44100)
    write_audio(base / "en" / "tv_tree.ogg", 0.8, 44100)  # a file the theme does not name: ignored
    (base / "en.soundtheme").write_text('<language code="en">\n\n' + "".join(
        f'    <sound name="{n}" file="en/{n}.ogg" />\n' for n in names) + "\n</language>\n")
    (base / "de.soundtheme").write_text('<language code="de">\n</language>\n')


def test_ktuberling_entries(tmp_path):
    make_ktuberling(tmp_path)
    listing = realspeech.ktuberling(tmp_path, tmp_path / "out")
    assert [(e["id"], e["text"], e["raw_text"]) for e in listing.entries] == [
        ("ktuberling/ball", "ball", "ball"), ("ktuberling/egypt_camel", "camel", "camel"),
        ("ktuberling/pizzeria_olive", "olive", "olive")]
    assert {e["speaker"] for e in listing.entries} == {"ktuberling:en"}
    assert all(abs(e["duration"] - 0.8) < 0.01 for e in listing.entries)
    assert listing.dropped == [("ktuberling/coat", NOT_CONFIRMED)]


# tuxpaint-stamps-default: usr/share/tuxpaint/stamps/**/NAME.txt and NAME_desc.ogg (NAME_desc_<lang>.ogg: others)

TUXPAINT = {"animals/birds/duck": "A duck.", "animals/birds/owl": "An owl.", "animals/birds/hen": "A brown hen.",
            "animals/birds/quetzal": "A quetzal.", "animals/marsupials/wallaby": None}


def make_tuxpaint(root: Path) -> None:
    base = root / "usr" / "share" / "tuxpaint" / "stamps"
    for i, (stem, description) in enumerate(TUXPAINT.items()):
        write_audio(base / f"{stem}_desc.ogg", 0.6 + 0.1 * i, 44100)
        write_audio(base / f"{stem}_desc_fr.ogg", 0.6, 44100)
        write_audio(base / f"{stem}.ogg", 0.6, 44100)  # the animal's own sound
        if description:
            (base / f"{stem}.txt").write_text(f"{description}\nach.utf8=Atudi.\nfr.utf8=Un canard.\n")


def test_tuxpaint_entries(tmp_path):
    make_tuxpaint(tmp_path)
    listing = realspeech.tuxpaint(tmp_path, tmp_path / "out")
    assert [(e["id"], e["text"], e["speaker"]) for e in listing.entries] == [
        ("tuxpaint/animals/birds/duck", "duck", "tuxpaint:en"), ("tuxpaint/animals/birds/owl", "owl", "tuxpaint:en")]
    assert [round(e["duration"], 2) for e in listing.entries] == [0.6, 0.7]
    assert listing.dropped == [("tuxpaint/animals/birds/hen", "description 'A brown hen.' is not 'A hen.'"),
                               ("tuxpaint/animals/birds/quetzal", NOT_CONFIRMED),
                               ("tuxpaint/animals/marsupials/wallaby", "no description wallaby.txt")]


# recipes/realspeech/prepare.py

MAKERS = {"codec2-examples": make_codec2, "warzone2100-data": make_warzone, "klettres-data": make_klettres,
          "ktuberling-data": make_ktuberling, "tuxpaint-stamps-default": make_tuxpaint}


def test_prepare_script_writes_the_dev_set(tmp_path):
    for name, make in MAKERS.items():
        make(tmp_path / "debs" / name)
    result = run_recipe("realspeech", "--debs", tmp_path / "debs", "--out", tmp_path / "rs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "codec2-examples: 10 utterances, 0.6 min, 6 speakers, 2 dropped" in result.stdout
    assert "tuxpaint-stamps-default: 2 utterances, 0.0 min, 1 speakers, 3 dropped" in result.stdout
    entries = read_manifest(tmp_path / "rs" / "dev.jsonl")
    assert len(entries) == 10 + 2 + 3 + 3 + 2 and "wrote" in result.stdout.splitlines()[-1]
    assert {e["source"] for e in entries} == set(MAKERS)
    assert all(e["speaker"].split(":")[0] in ("codec2", "warzone2100", "klettres", "ktuberling", "tuxpaint")
               for e in entries)
    first = (tmp_path / "rs" / "dev.jsonl").read_text().splitlines()[0]
    assert '"audio_filepath": "audio/codec2/hts-1.wav"' in first  # converted audio: relative to the manifest
    only = run_recipe("realspeech", "--root", f"ktuberling-data={tmp_path / 'debs' / 'ktuberling-data'}", "--out", tmp_path / "one",
                   cwd=tmp_path)
    assert only.returncode == 0, only.stderr
    assert len(read_manifest(tmp_path / "one" / "dev.jsonl")) == 3


def test_prepare_script_fails_in_one_line(tmp_path):
    make_codec2(tmp_path / "debs" / "codec2-examples")
    result = run_recipe("realspeech", "--debs", tmp_path / "debs", "--out", tmp_path / "rs", cwd=tmp_path)
    assert_fails_naming(result, "warzone2100-data: package folder not found")
    bad = make_warzone(tmp_path / "wz")
    bad.write_bytes(b"garbage")
    assert_fails_naming(run_recipe("realspeech", "--root", f"warzone2100-data={tmp_path / 'wz'}", cwd=tmp_path), "base.wz")
    assert_fails_naming(run_recipe("realspeech", "--root", "nonsense=/x", cwd=tmp_path), "--root nonsense=/x")
    assert not (tmp_path / "rs" / "dev.jsonl").exists()
