"""What a game reader yields: one spoken line of dialogue with the game's own text for it."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from asr.errors import ManifestError

SILENCE = 2  # a clip whose 8-bit samples all lie within this of the midpoint (128) is silent


@dataclass(frozen=True)
class Clip:
    """One voice clip of a game and the line of text the game shows or scripts for it.

    Attributes:
        id: stable and unique within the game, prefixed with the game ("sky/50123", "queen/AQ12345").
        speaker: "<game>:<character>" (e.g. "sky:foster"); the character as the game's data identifies the voice.
        text: the line as the game writes it (case and punctuation kept; normalization happens later).
        audio: a complete audio file (WAV or MP3 bytes) at the game's own sample rate.
        suffix: the file name suffix the audio bytes need (".wav", ".mp3").
    """

    id: str
    speaker: str
    text: str
    audio: bytes
    suffix: str


def read_game_file(path: Path) -> bytes:
    """A game data file's bytes; ManifestError naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise ManifestError(f"{path}: cannot read ({err.strerror or err})") from None


def u8_problem(pcm: np.ndarray) -> str | None:
    """Why raw unsigned 8-bit samples are no speech clip ("empty audio", "silent audio"), or None."""
    if not len(pcm):
        return "empty audio"
    return "silent audio" if np.abs(pcm.astype(np.int16) - 128).max() <= SILENCE else None


def u8_wav(pcm: np.ndarray, rate: int) -> bytes:
    """Raw unsigned 8-bit mono samples as the bytes of an 8-bit WAV file (how both 8-bit games store speech)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, (pcm.astype(np.int16) - 128) << 8, rate, format="WAV", subtype="PCM_U8")
    return buffer.getvalue()
