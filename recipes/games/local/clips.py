"""What a game reader yields: one spoken line of dialogue with the game's own text for it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.errors import ManifestError


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
