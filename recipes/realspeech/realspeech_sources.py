"""Real human speech found in Debian packages -> manifest entries of a dev set (never a training set): the
realspeech recipe's readers (recipes/realspeech/prepare.py; recipes/lm keeps these transcripts out of its LM text).

Each function takes the root of an extracted package tree (`dpkg-deb -x PKG.deb ROOT`) and an output folder, and
returns a Listing (asr.corpora.layouts) of the package's English spoken recordings whose transcript is established, each
entry with `source` (the package) and a `speaker` that starts with the voice family (`codec2:hts1`,
`warzone2100:narrator`, ...). Audio that asr.audio.load_audio cannot read where it lies (codec2's headerless 8 kHz
raw files, Ogg files inside warzone2100's base.wz zip) is written to OUT/audio/ as 16 kHz mono 16-bit WAV.

A transcript is taken only where the package names it (file, XML, script or description) and an independent
check confirmed that the recording says exactly that: pocketsphinx (Debian's en-us model) decoding each clip freely
and as a forced choice among the package's texts, plus the bundled model's CTC scores (recipes/realspeech/README.md
says how, per source). The names of the confirmed clips are the tables below; everything else is dropped with its
reason in Listing.dropped, never guessed. The tables were checked on the package versions in that README.
"""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, load_audio, save_wav
from asr.corpora.layouts import Listing, PathLike, Utterance, locate_corpus, make_listing
from asr.errors import AudioError, ManifestError

# IEEE Recommended Practice for Speech Quality Measurements (1969), appendix: the 1965 revised lists of
# phonetically balanced sentences ("Harvard sentences"), keyed by (list, sentence); only those codec2 speaks.
HARVARD = {
    (1, 1): "The birch canoe slid on the smooth planks.",
    (1, 2): "Glue the sheet to the dark blue background.",
    (1, 3): "It's easy to tell the depth of a well.",
    (1, 4): "These days a chicken leg is a rare dish.",
    (1, 6): "The juice of lemons makes fine punch.",
    (1, 9): "Four hours of steady work faced us.",
    (2, 4): "Kick the ball straight and follow through.",
    (6, 6): "The wagon moved on well oiled wheels.",
    (6, 7): "March the soldiers past the next hill.",
    (7, 8): "The set of china hit the floor with a crash.",
    (9, 1): "The Navy attacked the big task force.",
    (9, 4): "The hat brim was wide and too droopy.",
}
CODEC2_RATE = 8000  # codec2's .raw files: headerless 16-bit little-endian mono at 8 kHz
HTS_SLOT_S = 3.0  # raw/hts.raw: eight sentences, each alone in its own 3-second slot
# Speaker of each slot of raw/hts.raw and its sentence. codec2 ships slots 1-2 as raw/hts1.raw and 3-4 as
# raw/hts2.raw; each pair is one voice by pitch (male, female, male, female); hts3 and hts4 are our names.
CODEC2_HTS = (("hts1", (9, 1)), ("hts1", (9, 4)), ("hts2", (1, 4)), ("hts2", (1, 6)),
              ("hts3", (6, 6)), ("hts3", (6, 7)), ("hts4", (7, 8)), ("hts4", (2, 4)))
CODEC2_WHOLE = {  # recordings read as they are: speaker and sentences in order
    "wav/mmt1.wav": ("mmt1", ((1, 3),)),
    "raw/speech_orig_16k.wav": ("speech_orig", ((1, 1), (1, 2), (1, 3), (1, 9))),
}
CODEC2_COPIES = {"raw/hts1.raw", "raw/hts2.raw", "raw/hts1a.raw", "raw/hts2a.raw", "wav/hts1a.wav",
                 "wav/hts2a.wav", "raw/mmt1.raw", "wav/all.wav"}  # cuts or copies of the recordings above

# warzone2100 tutorial lines whose on-screen text in script/tutorial.js is what the narrator says, word for word.
# The other lines' text is a paraphrase (e.g. tut37 says "flashing CLOSE icon", the text "CLOSE icon").
WARZONE_CONFIRMED = frozenset(f"tut{n}.ogg" for n in (2, 3, 7, 10, 11, 13, 15, 18, 20, 21, 24, 31, 32, 33, 34, 44,
                                                      48, 81))
# KLettres: English voices only; letters are spoken by name in en/, by sound (not confirmed) in en_GB/.
KLETTRES_CONFIRMED = {
    "en": frozenset("B C F H I J K L M N O Q R S T U V W X Y Z CAR DOG FIX GAS GEM HOT JET KEY ME MY NO SAW SAY "
                    "SIT SKY".split()),
    "en_GB": frozenset("ARM BALL CAR DOG FIX GAS GEM HOT HUT JET ME MY NO PET SAW SKY WELL".split()),
}
# KTuberling's English sound theme: sound names whose word (after a playground prefix such as egypt_) was confirmed.
KTUBERLING_CONFIRMED = frozenset(
    "ball bow earring egypt_arch egypt_birds egypt_boy egypt_bridge egypt_camel egypt_cart egypt_column egypt_donkey "
    "egypt_girl egypt_grass egypt_man egypt_oasis egypt_pyramid egypt_road egypt_well egypt_woman eyebrow flower hair "
    "hat moon_alien moon_astronaut moon_hotel moon_monster moon_planet moon_radar moon_rocket moon_satellite "
    "moon_sign moon_star moon_ufo moustache mouth nose pizzeria_anchovy pizzeria_bacon pizzeria_cheese "
    "pizzeria_cucumber pizzeria_mushroom pizzeria_olive pizzeria_oregano pizzeria_pepper "
    "pizzeria_pepperoni pizzeria_pineapple pizzeria_salami pizzeria_tomato shoe shorts skirt spectacles stick "
    "sunglasses tv_bicycle tv_car tv_train umbrella".split())
# Tux Paint stamps whose English spoken description (NAME_desc.ogg) says the bare name that NAME.txt describes as
# "A NAME." (the recordings carry no article).
TUXPAINT_CONFIRMED = frozenset(
    "frog blackbird crow cuckoo duck gander lark owl penguin pigeon seagull turkey bee fly grasshopper hornet gorilla "
    "dolphin orca otter whale badger bear bison bull cow goat ram yak camel dromedary lion tiger deer doe dog "
    "elephant donkey horse zebra ferret giraffe hippopotamus beaver mouse rabbit rat wombat".split())
NOT_CONFIRMED = "transcript not confirmed by the recognizer check"
# A line of tutorial.js: {"audio": "tut2.ogg", "clear": false, "message": _("Oil ..."), ...}, or message: undefined.
_TUTORIAL_LINE = re.compile(
    r'"audio":\s*"(?P<file>[^"]+)".*?"message":\s*(?:_\("(?P<text>(?:[^"\\]|\\.)*)"\)|undefined)')


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> float:
    """Write samples as 16 kHz mono 16-bit WAV, atomically (a temp file, then a rename); returns the seconds."""
    audio = load_audio(samples, sample_rate=sample_rate)  # validated, mixed to mono, resampled
    save_wav(path, audio, SAMPLE_RATE)
    return len(audio) / SAMPLE_RATE


def _finish(package: str, utterances: list[Utterance], dropped: list[tuple[str, str]]) -> Listing:
    """Normalize and measure (asr.corpora.layouts) and tag every entry with its package."""
    listing = make_listing(utterances, jobs=1)
    return Listing([entry | {"source": package} for entry in listing.entries], dropped + listing.dropped)


def _xml(path: Path) -> ElementTree.Element:
    try:
        return ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise ManifestError(f"{path}: file not found") from None
    except ElementTree.ParseError as err:
        raise ManifestError(f"{path}: not well-formed XML ({err})") from None


def _existing(path: Path, where: str) -> Path:
    if not path.is_file():
        raise ManifestError(f"{where}: audio file not found: {path}")
    return path


# codec2-examples: usr/share/codec2/{raw,wav}/.

def read_raw(path: Path) -> np.ndarray:
    """A headerless 16-bit little-endian file's samples."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AudioError(f"{path}: cannot read ({err.strerror or err})") from None
    if len(data) % 2:
        raise AudioError(f"{path}: odd byte count, not 16-bit raw audio")
    return np.frombuffer(data, "<i2")


def codec2(root: PathLike, out: PathLike) -> Listing:
    """Harvard sentences of codec2-examples: the eight 3-second slots of raw/hts.raw, converted, and the whole
    recordings of CODEC2_WHOLE. Every other recording in raw/ and wav/ is dropped."""
    base = locate_corpus(root, "raw/hts.raw", ("usr/share/codec2",))
    hts = read_raw(base / "raw" / "hts.raw")
    slot = round(HTS_SLOT_S * CODEC2_RATE)
    if len(hts) != slot * len(CODEC2_HTS):
        raise AudioError(f"{base / 'raw' / 'hts.raw'}: expected {len(CODEC2_HTS) * HTS_SLOT_S:g} s, "
                         f"got {len(hts) / CODEC2_RATE:g} s")
    utterances = []
    for i, (speaker, sentence) in enumerate(CODEC2_HTS):
        path = Path(out) / "audio" / "codec2" / f"hts-{i + 1}.wav"
        seconds = write_wav(path, hts[i * slot:(i + 1) * slot], CODEC2_RATE)
        utterances.append(Utterance(f"codec2/hts-{i + 1}", path, HARVARD[sentence], f"codec2:{speaker}", seconds))
    for name, (speaker, sentences) in CODEC2_WHOLE.items():
        text = " ".join(HARVARD[sentence] for sentence in sentences)
        path = _existing(base / name, str(base))
        utterances.append(Utterance(f"codec2/{Path(name).stem}", path, text, f"codec2:{speaker}"))
    return _finish("codec2-examples", utterances, _codec2_dropped(base))


def _codec2_dropped(base: Path) -> list[tuple[str, str]]:
    used = {"raw/hts.raw", *CODEC2_WHOLE}
    names = sorted(p.relative_to(base).as_posix() for folder in ("raw", "wav") for p in (base / folder).glob("*.*"))
    return [(f"codec2/{name}", "a cut or copy of an included recording" if name in CODEC2_COPIES
             else "no transcript established") for name in names if name not in used]


# warzone2100-data: usr/share/games/warzone2100/base.wz, a zip holding script/tutorial.js and audio/tutorial/.

def warzone_base(root: PathLike) -> Path:
    """The base.wz of an extracted warzone2100-data tree (or of the folder holding it)."""
    return locate_corpus(root, "base.wz", ("usr/share/games/warzone2100",)) / "base.wz"


def tutorial_lines(base_wz: Path, with_audio: bool = True) -> tuple[dict[str, str | None], dict[str, bytes]]:
    """(tutorial line's audio file -> its on-screen text, unescaped, or None; audio file -> Ogg bytes, read only
    with_audio) from base.wz."""
    try:
        with zipfile.ZipFile(base_wz) as archive:
            script = archive.read("script/tutorial.js").decode("utf-8")
            audio = {Path(name).name: archive.read(name) for name in archive.namelist()
                     if with_audio and name.startswith("audio/tutorial/") and name.endswith(".ogg")}
    except FileNotFoundError:
        raise ManifestError(f"{base_wz}: file not found") from None
    except zipfile.BadZipFile:
        raise ManifestError(f"{base_wz}: not a zip archive") from None
    except KeyError:
        raise ManifestError(f"{base_wz}: no script/tutorial.js inside") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{base_wz}: script/tutorial.js is not UTF-8 text") from None
    lines = {m["file"]: None if m["text"] is None else m["text"].replace('\\"', '"')
             for m in _TUTORIAL_LINE.finditer(script)}
    return lines, audio


def confirmed_tutorial_lines(base_wz: Path) -> dict[str, str]:
    """Audio file -> text of the tutorial lines whose on-screen text is what the narrator says."""
    lines, _ = tutorial_lines(base_wz, with_audio=False)
    return {name: text for name, text in lines.items() if text is not None and name in WARZONE_CONFIRMED}


def warzone2100(root: PathLike, out: PathLike) -> Listing:
    """The tutorial narrator's lines whose on-screen text is what he says (WARZONE_CONFIRMED), converted to WAV."""
    base_wz = warzone_base(root)
    lines, audio = tutorial_lines(base_wz)
    utterances, dropped = [], []
    for name in sorted(audio, key=lambda n: (len(n), n)):
        utt_id = f"warzone2100/{Path(name).stem}"
        reason = _warzone_reason(name, lines)
        if reason:
            dropped.append((utt_id, reason))
            continue
        path = Path(out) / "audio" / "warzone2100" / f"{Path(name).stem}.wav"
        seconds = write_wav(path, *_decode(audio[name], f"{base_wz}:audio/tutorial/{name}"))
        utterances.append(Utterance(utt_id, path, lines[name], "warzone2100:narrator", seconds))
    return _finish("warzone2100-data", utterances, dropped)


def _warzone_reason(name: str, lines: dict[str, str | None]) -> str | None:
    if name not in lines:
        return "not a line of script/tutorial.js"
    if lines[name] is None:
        return "no on-screen text in script/tutorial.js"
    return None if name in WARZONE_CONFIRMED else NOT_CONFIRMED


def _decode(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """Samples and sample rate of an audio file held in memory."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError) as err:  # soundfile.LibsndfileError is a RuntimeError
        raise AudioError(f"{name}: not a readable audio file ({err})") from None
    return samples, rate


# klettres-data: usr/share/klettres/<language>/sounds.xml naming <sound name="B" file="en/alpha/B.ogg"/>.

def klettres(root: PathLike, out: PathLike) -> Listing:
    """The English letters and words of KLettres' two English voices (en, en_GB) that KLETTRES_CONFIRMED lists."""
    base = locate_corpus(root, "en/sounds.xml", ("usr/share/klettres",))
    utterances, dropped = [], []
    for language, confirmed in KLETTRES_CONFIRMED.items():
        listing = base / language / "sounds.xml"
        for sound in _xml(listing).iter("sound"):
            name, utt_id = sound.get("name", ""), f"klettres/{language}/{sound.get('name')}"
            if name not in confirmed:
                dropped.append((utt_id, NOT_CONFIRMED))
                continue
            path = _existing(base / sound.get("file", ""), str(listing))
            utterances.append(Utterance(utt_id, path, name, f"klettres:{language}"))
    return _finish("klettres-data", utterances, dropped)


# ktuberling-data: usr/share/ktuberling/sounds/en.soundtheme naming <sound name="egypt_camel" file="en/....ogg"/>.

def ktuberling(root: PathLike, out: PathLike) -> Listing:
    """The words of KTuberling's English sound theme that KTUBERLING_CONFIRMED lists (other languages skipped)."""
    base = locate_corpus(root, "en.soundtheme", ("usr/share/ktuberling/sounds",))
    theme = base / "en.soundtheme"
    utterances, dropped = [], []
    for sound in _xml(theme).iter("sound"):
        name = sound.get("name", "")
        if name not in KTUBERLING_CONFIRMED:
            dropped.append((f"ktuberling/{name}", NOT_CONFIRMED))
            continue
        path = _existing(base / sound.get("file", ""), str(theme))
        utterances.append(Utterance(f"ktuberling/{name}", path, name.rpartition("_")[2], "ktuberling:en"))
    return _finish("ktuberling-data", utterances, dropped)


# tuxpaint-stamps-default: usr/share/tuxpaint/stamps/**/NAME_desc.ogg (English) beside NAME.txt ("A duck.").

def tuxpaint(root: PathLike, out: PathLike) -> Listing:
    """The stamps' English spoken names (NAME_desc.ogg) whose NAME.txt describes them as "A NAME." and that
    TUXPAINT_CONFIRMED lists; the recordings say the bare name."""
    base = locate_corpus(root, "animals", ("usr/share/tuxpaint/stamps",))
    utterances, dropped = [], []
    for audio in sorted(base.rglob("*_desc.ogg")):
        name = audio.name.removesuffix("_desc.ogg")
        utt_id = f"tuxpaint/{audio.relative_to(base).parent.as_posix()}/{name}"
        reason = _tuxpaint_reason(name, audio.with_name(f"{name}.txt"))
        if reason:
            dropped.append((utt_id, reason))
        else:
            utterances.append(Utterance(utt_id, audio, name, "tuxpaint:en"))
    return _finish("tuxpaint-stamps-default", utterances, dropped)


def _tuxpaint_reason(name: str, description: Path) -> str | None:
    if not description.is_file():
        return f"no description {description.name}"
    try:
        first = description.read_text(encoding="utf-8").partition("\n")[0].strip()
    except UnicodeDecodeError:
        raise ManifestError(f"{description}: not UTF-8 text") from None
    if re.sub(r"^(?:an?) |\.$", "", first.lower()) != name:
        return f"description {first!r} is not 'A {name}.'"
    return None if name in TUXPAINT_CONFIRMED else NOT_CONFIRMED


SOURCES: dict[str, Callable[[PathLike, PathLike], Listing]] = {
    "codec2-examples": codec2,
    "warzone2100-data": warzone2100,
    "klettres-data": klettres,
    "ktuberling-data": ktuberling,
    "tuxpaint-stamps-default": tuxpaint,
}
