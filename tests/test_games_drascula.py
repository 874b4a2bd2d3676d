"""The Drascula reader on a tiny drascula.dat and *.ALS clips built here from the format: each clip gets the string
of its table with its character, the engine's unplayed ends are cut, non-dialogue clips are not read, and a damaged
data file raises ManifestError naming it."""
from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "games"))

from local import drascula  # noqa: E402 (recipes/games/local/drascula.py)

from asr.errors import ManifestError  # noqa: E402

# table -> its English strings from index 1 (dat() writes a string 0 first, "NEVER SAID", which the engine skips)
TEXTS = {"text": ["I'M JOHN", "", "IT'S A DOOR"], "textd": [f"LINE {n}" for n in range(1, 84)],
         "texti": ["YES, MASTER"], "textvb": ["ME, SCARED?"]}
PCM = (128 + 60 * np.sin(np.arange(3000) / 3)).astype(np.uint8)


def text_block(strings: list[str]) -> bytes:
    """One language's block of a text table: 2 pad bytes, then each string length-prefixed, NUL-ended, 4-aligned."""
    block = b"\0\0"
    for text in strings:
        raw = text.encode("cp437") + b"\0"
        length = 2 + len(raw)
        length += -length % 4
        block += struct.pack(">H", length) + raw.ljust(length - 2, b"\0")
    return block


def dat(texts: dict[str, list[str]], magic: bytes = b"DRASCULA") -> bytes:
    out = magic + bytes([6])
    for size in drascula.RECORD_SIZES:  # two records of each game-logic table
        out += struct.pack(">H", 2) + b"\x07" * (2 * size)
    out += struct.pack(">H", 2)  # English, and a second language the reader must skip
    for name in drascula.TEXT_TABLES:
        strings = ["NEVER SAID", *texts.get(name, [])]
        out += struct.pack(">H", len(strings))
        for language in (strings, [s.lower() for s in strings]):
            block = text_block(language)
            out += struct.pack(">H", len(block)) + block
    return out


def build(folder: Path, data: bytes | None = None) -> Path:
    (folder / "drascula.dat").write_bytes(dat(TEXTS) if data is None else data)
    for name in ("1", "2", "3", "4", "I1", "VB1", "D5", "D60", "D83", "S3", "F1"):
        (folder / f"{name}.ALS").write_bytes(bytes(32) + PCM.tobytes() + bytes(32))
    (folder / "D6.ALS").write_bytes(bytes([128]) * 500)  # silent
    (folder / "14.ALD").write_bytes(b"\xff" * 10)  # room data, not a clip
    return folder


def test_clips_have_their_tables_line_and_character(tmp_path):
    clips = {clip.id: clip for clip in drascula.read_clips(build(tmp_path))}
    assert {id_: (clip.speaker, clip.text) for id_, clip in clips.items()} == {
        "drascula/1": ("drascula:john", "I'M JOHN"), "drascula/3": ("drascula:john", "IT'S A DOOR"),
        "drascula/I1": ("drascula:igor", "YES, MASTER"), "drascula/VB1": ("drascula:von_braun", "ME, SCARED?"),
        "drascula/D5": ("drascula:drascula", "LINE 5"), "drascula/D60": ("drascula:john", "LINE 60")}
    # string 2 is empty, 4 is past the end of _text, D6 is silent; D83, S3 and F1 are not dialogue
    assert drascula.SKIPPED == {"no text": 2, "silent audio": 1}
    samples, rate = soundfile.read(io.BytesIO(clips["drascula/1"].audio), dtype="int16")
    assert rate == 11025 and soundfile.info(io.BytesIO(clips["drascula/1"].audio)).subtype == "PCM_U8"
    np.testing.assert_array_equal(samples, (PCM.astype(np.int16) - 128) << 8)  # the 32 unplayed bytes cut each end


def test_the_game_fonts_space_byte_reads_as_a_space(tmp_path):
    data = dat({"text": ["IT'S\xbaA DOOR"]})  # 0xA7 in code page 437 is 'º'
    (tmp_path / "drascula.dat").write_bytes(data)
    assert drascula.read_texts(tmp_path / "drascula.dat")["text"][1] == "IT'S A DOOR"


def test_a_bad_magic_raises_naming_the_file(tmp_path):
    build(tmp_path, dat(TEXTS, magic=b"NOTDRASC"))
    with pytest.raises(ManifestError, match="not a Drascula data file") as raised:
        list(drascula.read_clips(tmp_path))
    assert str(raised.value).startswith(f"{tmp_path / 'drascula.dat'}: ")


@pytest.mark.parametrize("keep", [30, 400, -7])
def test_a_truncated_data_file_raises_naming_it(tmp_path, keep):
    data = dat(TEXTS)
    build(tmp_path, data[:keep])  # in the game-logic tables; in the text tables; inside the last string
    with pytest.raises(ManifestError, match=r"drascula\.dat: (truncated|text table _\w+)") as raised:
        list(drascula.read_clips(tmp_path))
    assert "\n" not in str(raised.value)


def test_a_damaged_string_is_named(tmp_path):
    data = bytearray(dat(TEXTS))
    at = data.index(b"NEVER SAID")  # _text's string 0 in English: its length field just before
    data[at - 2:at] = struct.pack(">H", 1)
    build(tmp_path, bytes(data))
    with pytest.raises(ManifestError, match=r"text table _text, string 0 is damaged"):
        list(drascula.read_clips(tmp_path))
