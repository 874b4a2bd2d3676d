"""Offline synthetic speech corpus: real English sentences spoken by neural voices and the Debian TTS engines.

Sentences come from the fortunes collections and WordNet usage examples; voices from Kokoro (mixes of its style
vectors, and on request its English voice packs and their blends) and Piper (asr.corpora.neural_tts, the optional
`tts` extra), espeak-ng (every English accent crossed with every usable voice variant), flite and festival.
Splits are disjoint in sentences, and dev/test voices never occur in training, so dev/test measure generalization
to unseen voices and sentences. Building is parallel, resumable (each finished utterance is journaled) and skips,
with a warning, the utterances an engine fails on.
"""
from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import os
import random
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import numpy as np
from tqdm import tqdm

from ..audio import SAMPLE_RATE, load_audio, save_wav
from ..errors import AudioError, ManifestError
from ..manifest import read_manifest, write_manifest
from ..text import Vocabulary, normalize
from . import neural_tts
from .layouts import stable_unit

logger = logging.getLogger(__name__)

FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
FESTIVAL_VOICES_DIR = Path("/usr/share/festival/voices")

# Pictures, and a collection that is mostly Latin. (Offensive ones live in an off/ directory, never read.)
_SKIPPED_FORTUNES = frozenset({"art", "ascii-art", "translate-me"})
# Measured once on en-us (no listening): the pYIN pitch tracker finds no voiced frames at all in whisper,
# whisperf, croak and grandpa (0.4-0.95 for every other variant); Demonic and announcer are novelty effects
# (formants shifted 20-30% with roughness; a 154 ms echo); fast, caleb and klatt6 give output byte-identical
# to the default voice or to klatt, so holding one out while training on its twin would leak.
_UNUSABLE_ESPEAK_VARIANTS = frozenset({"whisper", "whisperf", "croak", "grandpa", "Demonic", "announcer", "fast",
                                       "caleb", "klatt6"})
_FLITE_LIMITED_DOMAIN = frozenset({"awb_time"})  # speaks only the time of day
_FESTIVAL_LANGUAGE_DIRS = ("english", "us", "british")

# Held out of training: a stratified ~18% of espeak-ng variants (in every accent), one whole accent, one
# voice each of flite and festival whose speaker no other voice shares, and Kokoro's held-out mixes.
HELD_OUT_VARIANT_FRACTION = 0.18
HELD_OUT_ACCENT = "en-gb-scotland"
HELD_OUT_VOICES = frozenset({"flite:awb", "festival:ked_diphone"})
# Kokoro voices: the five packaged styles and these many random mixes for training, others for dev/test.
KOKORO_TRAIN_MIXES = 600
KOKORO_HELD_OUT_MIXES = 60
KOKORO_HELD_OUT_PREFIX = "mix-h"
# kokoro-en: whole packs (US and UK, both genders) that only dev/test speak, alone or blended among themselves.
KOKORO_EN_HELD_OUT_PACKS = frozenset({"af_nova", "af_sarah", "am_michael", "bf_isabella", "bm_fable"})

RATE_RANGE = (0.8, 1.25)
PITCH_RANGE = (0.85, 1.18)  # an engine's own range: Engine.pitch_range
DEV_FRACTION = 0.05
TEST_FRACTION = 0.05
MIN_WORDS, MAX_WORDS = 3, 25
SPLITS = ("train", "dev", "test")
LM_TEXT = "lm_text.txt"
MAX_FAILURES_IN_A_ROW = 50  # an engine that fails this often is broken, not unlucky: stop the build

# No digits or symbols, which TTS and normalize() may read apart; no leading dash (a stray "-- Author.").
_SPEAKABLE = re.compile(r"[A-Za-z'\"(][A-Za-z .,;:!?'\"()-]*")
_ACRONYM = re.compile(r"[A-Z]{2,}")  # spelled out by TTS ("IBM"), or read as a word ("OK" -> "okay")
_ABBREVIATION = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Rev|Gen|Col|Capt|Lt|Sgt|Mt|Ft|Inc|Ltd|Corp|vs|etc|cf|ca|ie|eg)\."
    r"|\b(?:[A-Za-z]\.){2,}|\b[a-z]\."  # "U.S.", "e.g.", and "n." as in dictionary entries
)
_SENTENCE_END = re.compile(r"[.!?][\"')]*$")
_ATTRIBUTION = re.compile(r"\s*--\s*\S")


@dataclass(frozen=True, order=True)
class Voice:
    """One synthesizer voice: an engine, its voice name, and for espeak-ng an optional variant."""

    engine: str  # a name in ENGINES
    name: str  # Kokoro style or mix, kokoro-en pack or blend, Piper voice, espeak-ng language code, flite voice,
    # or festival voice directory
    variant: str = ""  # espeak-ng voice variant file (the part after '+')
    gender: str = field(default="", compare=False)  # 'M'/'F' where the engine says
    voice_file: str = field(default="", compare=False)  # kokoro-en: the voice packs' .npz

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}" + (f"+{self.variant}" if self.variant else "")


def _none_held_out(voices: list[Voice]) -> set[Voice]:
    return set()


def _listed_held_out(voices: list[Voice]) -> set[Voice]:
    return {voice for voice in voices if voice.id in HELD_OUT_VOICES}


@dataclass(frozen=True)
class Engine:
    """One TTS engine: everything the corpus needs of it. Adding an engine is one more entry in ENGINES."""

    voices: Callable[[Any], list[Voice]]  # (kokoro-en's packs path) -> its usable English voices, [] if not installed
    missing: Callable[[Any], str | None]  # (the same) -> None when usable, else why not and how to install it
    speak: Callable[..., np.ndarray]  # (text, voice, rate, pitch, sample_rate, **options) -> mono audio in [-1, 1]
    share: float  # its share of a pool's utterances, spread evenly over its voices (so espeak-ng's hundreds of
    # voices do not drown the rest); an engine that is not installed leaves its share to the others
    held_out: Callable[[list[Voice]], set[Voice]] = _none_held_out  # of its voices in a pool, those only dev/test speak
    pitch_range: tuple[float, float] = PITCH_RANGE  # the per-utterance pitch draw
    options: Callable[[random.Random], dict[str, float]] | None = None  # more per-utterance draws, passed to speak
    default: bool = True  # in a corpus unless asked otherwise


def _neural(voice: Voice, text: str, speak: Callable[[], np.ndarray]) -> np.ndarray:
    """Run a neural engine's speak(); its failures (missing package, phonemizer errors) become RuntimeError."""
    reason = neural_tts.available(voice.engine)
    if reason:
        raise RuntimeError(f"{voice.id}: {reason}")
    try:
        return speak()
    except (ValueError, RuntimeError, OSError) as err:
        raise RuntimeError(f"{voice.id}: failed on {text!r}: {err}") from err


# --- Kokoro (style mixes), Kokoro's English packs and Piper: asr.corpora.neural_tts, the `tts` extra ---

def _kokoro_voices(packs_npz: Any = None) -> list[Voice]:
    if neural_tts.available(neural_tts.KOKORO):
        return []
    names = [*neural_tts.KOKORO_ANCHORS, *(f"mix-t{i:04d}" for i in range(KOKORO_TRAIN_MIXES)),
             *(f"{KOKORO_HELD_OUT_PREFIX}{i:03d}" for i in range(KOKORO_HELD_OUT_MIXES))]
    return [Voice("kokoro", name, "", neural_tts.kokoro_voice_traits(name)[1]) for name in names]


def _kokoro_speak(text: str, voice: Voice, rate: float, pitch: float, sample_rate: int) -> np.ndarray:
    return _neural(voice, text, lambda: neural_tts.kokoro_speak(text, voice.name, rate, pitch, sample_rate))


def _kokoro_en_missing(packs_npz: Any) -> str | None:
    reason = neural_tts.available(neural_tts.KOKORO_EN)
    if reason is None and (packs_npz is None or not Path(packs_npz).is_file()):
        reason = (f"no voice packs at {packs_npz}" if packs_npz else "no voice packs given")
        reason += "; make them with recipes/synthetic/kokoro_voices.py"
    return reason


def _kokoro_en_voices(packs_npz: Any) -> list[Voice]:
    """The packs and one blend per pair of packs, training and held-out packs never blended together."""
    if _kokoro_en_missing(packs_npz):
        return []
    packs_npz = str(Path(packs_npz).resolve())
    neural_tts.kokoro_en_packs(packs_npz)  # a damaged file stops the build here, not in every worker
    train = [name for name in neural_tts.KOKORO_EN_PACKS if name not in KOKORO_EN_HELD_OUT_PACKS]
    held = sorted(KOKORO_EN_HELD_OUT_PACKS)
    names = [*neural_tts.KOKORO_EN_PACKS, *neural_tts.kokoro_en_blends(train), *neural_tts.kokoro_en_blends(held)]
    return [Voice("kokoro-en", name, "", neural_tts.kokoro_en_traits(name)[1], packs_npz) for name in names]


def _kokoro_en_speak(text: str, voice: Voice, rate: float, pitch: float, sample_rate: int) -> np.ndarray:
    return _neural(voice, text, lambda: neural_tts.kokoro_en_speak(text, voice.name, voice.voice_file, rate, pitch,
                                                                    sample_rate))


def _kokoro_en_held_out(voices: list[Voice]) -> set[Voice]:
    return {voice for voice in voices
            if any(pack in KOKORO_EN_HELD_OUT_PACKS for pack, _ in neural_tts.kokoro_en_blend(voice.name))}


def _piper_voices(packs_npz: Any = None) -> list[Voice]:
    return [] if neural_tts.available(neural_tts.PIPER) else [Voice("piper", neural_tts.PIPER_VOICE, "", "M")]


def _piper_speak(text: str, voice: Voice, rate: float, pitch: float, sample_rate: int, noise_scale: float = 0.667,
                 noise_w: float = 0.8) -> np.ndarray:
    return _neural(voice, text, lambda: neural_tts.piper_speak(text, rate, pitch, noise_scale, noise_w, sample_rate))


def _piper_options(rng: random.Random) -> dict[str, float]:
    """Piper's prosody randomness, drawn per utterance."""
    return {"noise_scale": round(rng.uniform(*neural_tts.PIPER_NOISE_SCALE_RANGE), 3),
            "noise_w": round(rng.uniform(*neural_tts.PIPER_NOISE_W_RANGE), 3)}


# --- The Debian engines: command lines, the text through a file and never a shell ---

def _command_missing(command: str, packages: str) -> Callable[[Any], str | None]:
    return lambda packs_npz=None: None if shutil.which(command) else f"{command} not found; apt install {packages}"


def _command_speaker(command_line: Callable[[Voice, Path, Path, float, float], list[str]]
                     ) -> Callable[..., np.ndarray]:
    """A speak function that runs command_line(voice, text_file, wav, rate, pitch) and reads the WAV it writes."""

    def speak(text: str, voice: Voice, rate: float, pitch: float, sample_rate: int) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="asr-tts-") as tmp:
            text_file, raw = Path(tmp) / "text.txt", Path(tmp) / "raw.wav"
            text_file.write_text(text + "\n", encoding="utf-8")
            command = command_line(voice, text_file, raw, rate, pitch)
            try:
                proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
            except FileNotFoundError:
                raise RuntimeError(f"{voice.id}: {command[0]} is not installed") from None
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{voice.id}: {command[0]} timed out on {text!r}") from None
            # festival reports errors (e.g. an unknown voice) on stderr but still exits 0, writing no file.
            if proc.returncode != 0 or not raw.is_file():
                detail = proc.stderr.strip()[-300:] or f"exit status {proc.returncode}"
                raise RuntimeError(f"{voice.id}: {command[0]} failed on {text!r}: {detail}")
            try:
                return load_audio(raw, target_rate=sample_rate)
            except AudioError as err:
                raise RuntimeError(f"{voice.id}: unreadable output for {text!r}: {err}") from err

    return speak


def _espeak_table(selector: str) -> list[tuple[str, str, str]]:
    """Rows of `espeak-ng --voices=<selector>` as (language, gender, file)."""
    out = subprocess.run(["espeak-ng", f"--voices={selector}"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[1:]:
        # The file column may hold a space ("!v/Mr serious"); the columns around it are split by 2+ spaces.
        match = re.match(r"\s*\d+\s+(\S+)\s+(\S+)\s+\S+\s+(.+?)(?:\s{2,}.*)?$", line)
        if match:
            language, age_gender, path = match.groups()
            rows.append((language, age_gender.rpartition("/")[2], path))
    return rows


def _espeak_voices(packs_npz: Any = None) -> list[Voice]:
    if shutil.which("espeak-ng") is None:
        return []
    # mb/ voices need MBROLA databases (not installed); !v/ rows are variants that also claim a language.
    accents = {lang: gender for lang, gender, path in _espeak_table("en") if not path.startswith(("mb/", "!v/"))}
    variants = {path.removeprefix("!v/"): gender for _, gender, path in _espeak_table("variant")}
    voices = [Voice("espeak-ng", accent, "", gender) for accent, gender in accents.items()]
    for accent, (variant, gender) in itertools.product(accents, variants.items()):
        if variant not in _UNUSABLE_ESPEAK_VARIANTS:
            voices.append(Voice("espeak-ng", accent, variant, gender))
    return voices


def _espeak_command(voice: Voice, text_file: Path, wav: Path, rate: float, pitch: float) -> list[str]:
    # Default speed is 175 words/minute; -p 50 is the voice's base pitch and ~80 steps make an octave.
    name = f"{voice.name}+{voice.variant}" if voice.variant else voice.name
    pitch_step = min(99, max(0, round(50 + 80 * math.log2(pitch))))
    return ["espeak-ng", "-v", name, "-s", str(round(175 * rate)), "-p", str(pitch_step),
            "-w", str(wav), "-f", str(text_file)]


def _espeak_held_out(voices: list[Voice]) -> set[Voice]:
    """Every voice of HELD_OUT_ACCENT, and in every accent the variants of a fixed, gender-stratified
    HELD_OUT_VARIANT_FRACTION."""
    variants_by_gender: dict[str, set[str]] = defaultdict(set)
    for voice in voices:
        if voice.variant:
            variants_by_gender[voice.gender].add(voice.variant)
    held_variants: set[str] = set()
    for names in variants_by_gender.values():
        ranked = sorted(names, key=lambda name: stable_unit(f"variant:{name}"))
        held_variants.update(ranked[:round(len(ranked) * HELD_OUT_VARIANT_FRACTION)])
    return {voice for voice in voices if voice.name == HELD_OUT_ACCENT or voice.variant in held_variants}


def _flite_voices(packs_npz: Any = None) -> list[Voice]:
    if shutil.which("flite") is None:
        return []
    out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=True).stdout
    names = out.partition(":")[2].split()
    return [Voice("flite", name) for name in names if name not in _FLITE_LIMITED_DOMAIN]


def _flite_command(voice: Voice, text_file: Path, wav: Path, rate: float, pitch: float) -> list[str]:
    return ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / rate:.4f}",
            "--setf", f"f0_shift={pitch:.4f}", "-f", str(text_file), "-o", str(wav)]


def _festival_voices(packs_npz: Any = None) -> list[Voice]:
    if shutil.which("text2wave") is None:
        return []
    return [
        Voice("festival", voice_dir.name)
        for language in _FESTIVAL_LANGUAGE_DIRS
        for voice_dir in sorted((FESTIVAL_VOICES_DIR / language).glob("*"))
        if (voice_dir / "festvox" / f"{voice_dir.name}.scm").is_file()
    ]


def _festival_command(voice: Voice, text_file: Path, wav: Path, rate: float, pitch: float) -> list[str]:
    if voice.name.endswith("_hts"):
        # HTS voices ignore Duration_Stretch and the intonation targets; the engine's -r flag sets speed.
        settings = [f'(set! hts_engine_params (cons (list "-r" {rate:.4f}) hts_engine_params))']
    else:
        settings = [
            f"(Parameter.set 'Duration_Stretch (/ (Parameter.get 'Duration_Stretch) {rate:.4f}))",
            "(set! int_lr_params (append (list"
            f" (list 'target_f0_mean (* {pitch:.4f} (cadr (assoc 'target_f0_mean int_lr_params))))"
            f" (list 'target_f0_std (* {pitch:.4f} (cadr (assoc 'target_f0_std int_lr_params)))))"
            " int_lr_params))",
        ]
    evals = [arg for expr in [f"(voice_{voice.name})", *settings] for arg in ("-eval", expr)]
    return ["text2wave", *evals, "-o", str(wav), str(text_file)]


# For neural engines "pitch" scales pitch and formants together (see asr.corpora.neural_tts): Kokoro voices have
# their own size already and only vary a little per utterance; Piper's one voice varies more. The neural voices
# sound most like people, so they have the largest shares.
ENGINES: dict[str, Engine] = {
    "kokoro": Engine(_kokoro_voices, lambda packs_npz=None: neural_tts.available(neural_tts.KOKORO), _kokoro_speak,
                     share=0.45, held_out=lambda voices: {v for v in voices
                                                          if v.name.startswith(KOKORO_HELD_OUT_PREFIX)},
                     pitch_range=(0.96, 1.04)),
    # Needs its voice packs (recipes/synthetic/kokoro_voices.py), so only on request.
    "kokoro-en": Engine(_kokoro_en_voices, _kokoro_en_missing, _kokoro_en_speak, share=0.45,
                        held_out=_kokoro_en_held_out, pitch_range=(0.96, 1.04), default=False),
    # Its one voice is only trained on: it is the corpus's one natural male speaker.
    "piper": Engine(_piper_voices, lambda packs_npz=None: neural_tts.available(neural_tts.PIPER), _piper_speak,
                    share=0.15, pitch_range=neural_tts.PIPER_SIZE_RANGE, options=_piper_options),
    "espeak-ng": Engine(_espeak_voices, _command_missing("espeak-ng", "espeak-ng"), _command_speaker(_espeak_command),
                        share=0.2, held_out=_espeak_held_out),
    "flite": Engine(_flite_voices, _command_missing("flite", "flite"), _command_speaker(_flite_command), share=0.12,
                    held_out=_listed_held_out),
    "festival": Engine(_festival_voices,
                       _command_missing("text2wave", "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"),
                       _command_speaker(_festival_command), share=0.08, held_out=_listed_held_out),
}
DEFAULT_ENGINES = tuple(name for name, engine in ENGINES.items() if engine.default)


def all_voices(engines: Iterable[str] = DEFAULT_ENGINES,
               kokoro_en_voices: str | os.PathLike[str] | None = None) -> list[Voice]:
    """Every usable English voice of the chosen engines that are installed, sorted by id.

    kokoro_en_voices is the .npz of recipes/synthetic/kokoro_voices.py, needed by the kokoro-en engine."""
    return sorted(voice for engine in _checked(engines) for voice in ENGINES[engine].voices(kokoro_en_voices))


def engine_status(engines: Iterable[str] = DEFAULT_ENGINES,
                  kokoro_en_voices: str | os.PathLike[str] | None = None) -> dict[str, str | None]:
    """Each chosen engine -> None when installed, else why it is skipped (and how to install it)."""
    return {engine: ENGINES[engine].missing(kokoro_en_voices) for engine in _checked(engines)}


def _checked(engines: Iterable[str]) -> list[str]:
    engines = list(engines)
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise ValueError(f"unknown TTS engines {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    return engines


def synthesize(text: str, voice: Voice, path: str | os.PathLike[str], rate: float = 1.0, pitch: float = 1.0,
               sample_rate: int = SAMPLE_RATE, **options: float) -> float:
    """Speak text with voice into a mono 16-bit PCM WAV at sample_rate; returns its duration in seconds.

    rate > 1 speaks faster, pitch > 1 higher (for Kokoro and Piper: pitch and formants, see asr.corpora.neural_tts).
    flite's rms and festival's HTS voice ignore pitch; options are the engine's own (Piper's prosody randomness,
    noise_scale and noise_w). The file appears whole or not at all. Raises RuntimeError when the engine fails or
    produces silence, ValueError for an engine ENGINES does not name.
    """
    if not text.strip():
        raise RuntimeError(f"{voice.id}: nothing to say")
    if voice.engine not in ENGINES:
        raise ValueError(f"unknown TTS engine {voice.engine!r}")
    audio = ENGINES[voice.engine].speak(text, voice, rate, pitch, sample_rate, **options)
    if audio.size < sample_rate // 10 or np.abs(audio).max() < 1e-3:
        raise RuntimeError(f"{voice.id}: produced no audible speech for {text!r}")
    peak = float(np.abs(audio).max())
    if peak > 1.0:  # resampled neural output can overshoot slightly; PCM_16 would clip it
        audio = audio / peak
    save_wav(path, audio, sample_rate)
    return audio.size / sample_rate


class Sentence(NamedTuple):
    """A harvested sentence: where it came from, what the synthesizer reads, and the transcript."""

    source: str  # 'fortunes/<collection>' or 'wordnet/<part of speech>'
    raw: str  # as written, punctuation kept for the synthesizer's prosody
    text: str  # normalize(raw): the transcript


def harvest_sentences() -> list[str]:
    """English sentences from the fortunes collections and WordNet usage examples, deduplicated on normalized
    text, in a fixed order. Only sentences of 3-25 words that every engine reads exactly as normalize() writes
    them are kept: no digits, symbols, acronyms or abbreviations."""
    return [sentence.raw for sentence in _harvest()]


@functools.lru_cache(maxsize=1)
def _harvest() -> tuple[Sentence, ...]:
    """The harvest behind harvest_sentences(), cached: build_corpus and tests ask more than once."""
    vocab = Vocabulary()
    seen: set[str] = set()
    kept: list[Sentence] = []
    for source, raw in itertools.chain(fortune_sentences(), wordnet_examples()):
        raw = " ".join(raw.split())
        if raw.count('"') % 2:
            raw = raw.replace('"', "")
        if not _is_speakable(raw):
            continue
        text = normalize(raw)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS and vocab.covers(text) and text not in seen:
            seen.add(text)
            kept.append(Sentence(source, raw, text))
    logger.info("harvested %d sentences (%s)", len(kept),
                ", ".join(f"{k}: {v}" for k, v in _count_by_origin(kept).items()))
    return tuple(kept)


def _count_by_origin(sentences: Iterable[Sentence]) -> dict[str, int]:
    return dict(sorted(Counter(s.source.partition("/")[0] for s in sentences).items()))


def _is_speakable(sentence: str) -> bool:
    return (_SPEAKABLE.fullmatch(sentence) is not None and not _ACRONYM.search(sentence)
            and not _ABBREVIATION.search(sentence))


def fortune_sentences() -> Iterator[tuple[str, str]]:
    if not FORTUNES_DIR.is_dir():
        return
    for path in sorted(FORTUNES_DIR.iterdir()):
        # .dat are strfile indexes, .u8 symlinks to the same text.
        if not path.is_file() or path.is_symlink() or path.suffix in (".dat", ".u8") \
                or path.name in _SKIPPED_FORTUNES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%$", text, flags=re.MULTILINE):
            lines = entry.splitlines()
            # The attribution ("-- Mark Twain") and anything after it is not prose.
            prose = itertools.takewhile(lambda line: not _ATTRIBUTION.match(line), lines)
            for sentence in split_sentences(" ".join(prose)):
                yield f"fortunes/{path.name}", sentence


def split_sentences(text: str) -> list[str]:
    """Split prose at . ! ? (with closing quotes), but not after abbreviations or initials ("Dr.", "J.")."""
    sentences, current = [], []
    for token in text.split():
        current.append(token)
        if _SENTENCE_END.search(token) and not _ABBREVIATION.search(token) \
                and not re.fullmatch(r"[\"'(]*[A-Z]\.", token):
            sentences.append(" ".join(current))
            current = []
    return sentences  # a trailing piece without end punctuation is not a sentence


def wordnet_examples() -> Iterator[tuple[str, str]]:
    for pos in ("noun", "verb", "adj", "adv"):
        path = WORDNET_DIR / f"data.{pos}"
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):  # the license header
                    continue
                gloss = line.partition(" | ")[2]
                for example in re.findall(r'"([^"]+)"', gloss):
                    yield f"wordnet/{pos}", example


def split_of(text: str) -> str:
    """The split ('train', 'dev' or 'test') of a normalized sentence, fixed by a hash of its text."""
    unit = stable_unit(text)
    return "test" if unit < TEST_FRACTION else "dev" if unit < TEST_FRACTION + DEV_FRACTION else "train"


def split_voices(voices: list[Voice]) -> tuple[list[Voice], list[Voice]]:
    """(train, held-out) voices. Independent of any seed, so every corpus is tested on the same unseen voices.

    Held out: what each engine's Engine.held_out picks among its voices (HELD_OUT_VOICES, every espeak-ng voice of
    HELD_OUT_ACCENT and a stratified share of its variants, Kokoro's held-out mixes, every kokoro-en voice made of
    a pack of KOKORO_EN_HELD_OUT_PACKS); Piper's one voice is only trained on.
    """
    held: set[Voice] = set()
    for name, engine in ENGINES.items():
        held |= engine.held_out([voice for voice in voices if voice.engine == name])
    return [v for v in voices if v not in held], [v for v in voices if v in held]


@dataclass(frozen=True)
class _Job:
    path: Path
    sentence: Sentence
    voice: Voice
    rate: float
    pitch: float
    options: tuple[tuple[str, float], ...] = ()  # the engine's own draws (Engine.options), as (name, value)

    def entry(self, duration: float) -> dict[str, Any]:
        entry = {"audio_filepath": str(self.path), "duration": duration, "text": self.sentence.text,
                 "speaker": self.voice.id, "engine": self.voice.engine, "raw_text": self.sentence.raw,
                 "source": self.sentence.source, "rate": self.rate, "pitch": self.pitch}
        entry.update(self.options)
        return entry


def _log_uniform(rng: random.Random, low_high: tuple[float, float]) -> float:
    return round(math.exp(rng.uniform(math.log(low_high[0]), math.log(low_high[1]))), 3)


def _jobs(split: str, sentences: list[Sentence], pool: list[Voice], seed: int, wav_dir: Path) -> Iterator[_Job]:
    """The split's utterances in order: shuffled sentences (cycled if the target needs more), each with a random
    voice, rate and pitch. Depends only on its arguments, never on how many utterances are finally used."""
    rng = random.Random(f"{seed}:{split}")
    order = list(sentences)
    rng.shuffle(order)
    per_engine = Counter(voice.engine for voice in pool)
    weights = [ENGINES[voice.engine].share / per_engine[voice.engine] for voice in pool]
    for index in itertools.count():
        voice = rng.choices(pool, weights)[0]
        engine = ENGINES[voice.engine]
        rate = _log_uniform(rng, RATE_RANGE)
        pitch = _log_uniform(rng, engine.pitch_range)
        options = tuple(engine.options(rng).items()) if engine.options else ()
        yield _Job(wav_dir / f"{split}_{index:06d}.wav", order[index % len(order)], voice, rate, pitch, options)


def _run_job(job: _Job) -> tuple[float, float] | str:
    """Worker: (duration, CPU seconds spent), or the error message (one bad sentence must not end a long build).

    CPU time counts this process and the engine subprocesses it waited for."""
    start = _cpu_seconds()
    try:
        duration = synthesize(job.sentence.raw, job.voice, job.path, job.rate, job.pitch, **dict(job.options))
    except RuntimeError as err:
        return str(err)
    return duration, _cpu_seconds() - start


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _previous_entries(manifest: Path, journal: Path) -> dict[str, dict[str, Any]]:
    """Absolute audio path -> entry of an earlier run (its manifest, or the journal of an interrupted one), to
    skip re-synthesizing identical utterances. A journal line cut short by a crash is ignored."""
    try:
        entries = read_manifest(manifest, check_audio=False)
    except ManifestError:
        entries = []
    previous = {e["audio_filepath"]: e for e in entries}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "audio_filepath" in entry:
                previous[entry["audio_filepath"]] = entry
    return previous


def _reusable(job: _Job, previous: dict[str, dict[str, Any]]) -> float | None:
    """The duration of job's wav if an earlier run made exactly this utterance, else None."""
    old = previous.get(str(job.path))
    if old is not None and job.path.is_file() and old == job.entry(old["duration"]):
        return old["duration"]
    return None


@dataclass
class _SplitResult:
    entries: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    cpu_s: Counter = field(default_factory=Counter)  # engine -> CPU seconds of fresh synthesis
    fresh_s: Counter = field(default_factory=Counter)  # engine -> audio seconds synthesized fresh


def _synthesize_split(split: str, jobs: Iterator[_Job], target_s: float, executor: ProcessPoolExecutor,
                      previous: dict[str, dict[str, Any]], journal: Path) -> _SplitResult:
    """Take utterances in order until target_s seconds; each success is appended to the journal at once.

    Work goes out in batches expected to just fill the remaining time; which utterances are kept depends only
    on their order, so parallelism never changes the result. Extras past the target are deleted later.
    """
    result = _SplitResult()
    total, mean_s, failed_in_a_row = 0.0, 3.0, 0
    with tqdm(total=round(target_s), unit="s", desc=split, disable=None) as bar, \
            open(journal, "a", encoding="utf-8") as log:
        while total < target_s:
            batch, expected = [], total
            while expected < target_s:
                job = next(jobs)
                known = _reusable(job, previous)
                batch.append((job, known))
                expected += mean_s if known is None else known
            fresh = executor.map(_run_job, [job for job, known in batch if known is None])
            # Every result is collected, even past the target, so no worker writes a wav after the cleanup.
            for job, known in batch:
                outcome = next(fresh) if known is None else (known, None)
                if total >= target_s:
                    continue
                if isinstance(outcome, str):
                    logger.warning("skipped %s: %s", job.path.name, outcome)
                    result.failed += 1
                    failed_in_a_row += 1
                    continue
                duration, cpu_s = outcome
                failed_in_a_row = 0
                entry = job.entry(duration)
                result.entries.append(entry)
                if cpu_s is not None:
                    log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    log.flush()
                    result.cpu_s[job.voice.engine] += cpu_s
                    result.fresh_s[job.voice.engine] += duration
                total += duration
                bar.update(min(round(total), bar.total) - bar.n)
            if failed_in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise RuntimeError(f"{split}: {failed_in_a_row} utterances in a row failed to synthesize; see above")
            mean_s = total / max(len(result.entries), 1)
    return result


def _split_summary(result: _SplitResult) -> dict[str, Any]:
    """Utterances, hours and voices of a split, in all and per engine, with fresh synthesis speed per engine."""
    def stats(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"utterances": len(entries), "hours": round(sum(e["duration"] for e in entries) / 3600, 3),
                "voices": len({e["speaker"] for e in entries})}

    by_engine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in result.entries:
        by_engine[entry["engine"]].append(entry)
    engines = {engine: stats(entries) for engine, entries in sorted(by_engine.items())}
    for engine, seconds in result.fresh_s.items():
        if result.cpu_s[engine] > 0:  # audio seconds per CPU second, counted on freshly synthesized utterances
            engines[engine]["speed"] = round(seconds / result.cpu_s[engine], 2)
    return stats(result.entries) | {"engines": engines, "failed": result.failed}


def build_corpus(out_dir: str | os.PathLike[str], hours: float = 2.0, dev_minutes: float = 10,
                 test_minutes: float = 10, seed: int = 0, jobs: int | None = None,
                 engines: Iterable[str] = DEFAULT_ENGINES,
                 kokoro_en_voices: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Synthesize train/dev/test into out_dir: wavs/<split>/*.wav, <split>.jsonl manifests, voices.json, and
    LM_TEXT, the normalized sentences of the training pool (one per line) to build a language model from.
    The voices are those of the chosen engines (see all_voices).

    Sentences are split by a hash of their normalized text and dev/test use only held-out voices (split_voices),
    so no sentence or voice is shared between training and evaluation. The same arguments give the same
    manifests; utterances already on disk from an identical earlier run are reused. Returns a summary.
    """
    targets = {"train": hours * 3600, "dev": dev_minutes * 60, "test": test_minutes * 60}
    if any(seconds <= 0 for seconds in targets.values()):
        raise ValueError(f"every split needs a positive duration, got {targets}")
    out_dir = Path(out_dir).resolve()  # manifests read back with absolute paths match job paths
    engines = _checked(engines)
    voices = all_voices(engines, kokoro_en_voices)
    train_voices, held_voices = split_voices(voices)
    pools = {"train": train_voices, "dev": held_voices, "test": held_voices}
    if not train_voices or not held_voices:
        raise RuntimeError(f"need training and held-out voices, found {len(train_voices)} and {len(held_voices)}:"
                           " install espeak-ng (and optionally flite, festival, and the tts extra)")
    harvested = _harvest()
    by_split: dict[str, list[Sentence]] = {split: [] for split in SPLITS}
    for sentence in harvested:
        by_split[split_of(sentence.text)].append(sentence)
    if not all(by_split.values()):
        raise RuntimeError(f"too few sentences to fill every split: {({k: len(v) for k, v in by_split.items()})}")

    out_dir.mkdir(parents=True, exist_ok=True)
    # Language-model text: every sentence of the training pool, spoken or not, and none of dev or test.
    (out_dir / LM_TEXT).write_text("".join(s.text + "\n" for s in by_split["train"]), encoding="utf-8")
    (out_dir / "voices.json").write_text(json.dumps(
        {"train": [v.id for v in train_voices], "held_out": [v.id for v in held_voices]}, indent=1) + "\n")
    summary: dict[str, Any] = {
        "sentences": _count_by_origin(harvested) | {f"{split}_pool": len(by_split[split]) for split in SPLITS},
        "voices": {"train": len(train_voices), "held_out": len(held_voices)},
        "engines": engine_status(engines, kokoro_en_voices),
        "splits": {},
    }
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count()) as executor:
        # The small evaluation splits first: a long build that is interrupted can already be evaluated on.
        for split in ("dev", "test", "train"):
            wav_dir = out_dir / "wavs" / split
            manifest = out_dir / f"{split}.jsonl"
            journal = out_dir / f"{split}.journal.jsonl"
            stream = _jobs(split, by_split[split], pools[split], seed, wav_dir)
            wav_dir.mkdir(parents=True, exist_ok=True)
            result = _synthesize_split(split, stream, targets[split], executor,
                                       _previous_entries(manifest, journal), journal)
            write_manifest(manifest, result.entries)
            journal.unlink()
            keep = {Path(e["audio_filepath"]).name for e in result.entries}
            for stale in wav_dir.iterdir():
                if stale.name not in keep:
                    stale.unlink()
            summary["splits"][split] = _split_summary(result)
    summary["splits"] = {split: summary["splits"][split] for split in SPLITS}
    return summary
