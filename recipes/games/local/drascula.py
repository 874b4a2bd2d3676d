"""Drascula: The Vampire Strikes Back's English voice clips, each with the line the game shows for it and who says it.

The English game (Debian's `drascula`, usr/share/scummvm/drascula/en) keeps each spoken line in its own headerless
file NAME.ALS: unsigned 8-bit mono PCM at 11,025 Hz, of which the engine plays all but the first and the last 32
bytes (ScummVM's sound.cpp, playFile). The texts are in drascula.dat, ScummVM's data file for the engine: the magic
"DRASCULA", a version byte (6), the game-logic tables (each a big-endian u16 record count, then records of a fixed
size), a u16 language count, then 15 text tables. A text table is a u16 string count, then for each language
(English first) a u16 block length and the block: 2 pad bytes, then each string as a u16 length (counting itself),
its bytes (code page 437) ended by a NUL, and zero padding to a multiple of 4. String 0 of a table is never said.

A clip's name gives its text table and its speaker, and its number the string (ScummVM's talk.cpp: talk(n) plays
"n.als" while it shows _text[n], talk_igor(n) plays "In.als" with _texti[n], and so on for each character):
- "N": John Hacker, the player (_text);
- "DN": Count Drascula (_textd), except that strings 56-67 are John's (talk_hacker, a close-up of him), 68-78 the
  blind man's (talk_blind) and 82 the bartender's;
- "BN" the drunk (_textb), "BJN" B.J. (_textbj), "EN" Desiderio the skeleton (_texte), "IN" Igor (_texti), "LN" the
  werewolf (_textl), "PN" the pianist (_textp), "TN" the bartender (_textt), "VBN" Von Braun (_textvb).
Sound effects ("SN") and clips no character says (the trunk's "bla, bla, bla", D83; "FN") are not read. Clips whose
string is empty or past the end of its table, and empty or silent clips, are skipped and counted in SKIPPED by
reason. A damaged drascula.dat raises ManifestError naming it.
"""
from __future__ import annotations

import re
import struct
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from asr.errors import ManifestError

from .clips import Clip, read_game_file, u8_problem, u8_wav

DATA_FILE = "drascula.dat"
MAGIC, VERSION = b"DRASCULA", 6
SAMPLE_RATE = 11025
UNPLAYED = 32  # bytes at each end of a clip that the engine does not play
# The bytes of one record of each game-logic table before the texts: charMap, itemLocations, pol, verbBarX,
# x1d_menu, frameX, candle, pianistX, drunkX, roomPreUpdates, roomUpdates, roomActions, talkSequences.
RECORD_SIZES = (4, 4, 4, 2, 4, 2, 4, 2, 2, 20, 20, 10, 8)
TEXT_TABLES = ("text", "textd", "textb", "textbj", "texte", "texti", "textl", "textp", "textt", "textvb", "textsys",
               "texthis", "textverbs", "textmisc", "textd1")
ALIGNMENT = 4
SPACE = 0xA7  # drawn as a space by the game's font
# A clip name's prefix -> (its text table, who says it).
PREFIXES = {"": ("text", "john"), "D": ("textd", "drascula"), "B": ("textb", "drunk"), "BJ": ("textbj", "bj"),
            "E": ("texte", "desiderio"), "I": ("texti", "igor"), "L": ("textl", "werewolf"), "P": ("textp", "pianist"),
            "T": ("textt", "bartender"), "VB": ("textvb", "von_braun")}
# Strings of Drascula's table that others say.
TEXTD_SPEAKERS = {**dict.fromkeys(range(56, 68), "john"), **dict.fromkeys(range(68, 79), "blind_man"), 82: "bartender"}
NOT_SAID = {"D83"}  # played by talk_trunk, which shows no text
CLIP_NAME = re.compile(r"([A-Z]*)(\d+)\.ALS", re.IGNORECASE)

SKIPPED: Counter[str] = Counter()  # clips read_clips left out, by reason; reset when a read starts


def read_clips(game_dir: Path) -> Iterator[Clip]:
    """Every dialogue clip of the English game in game_dir (drascula.dat and the *.ALS files) with its line and
    speaker, by file name; the clips left out are counted in SKIPPED."""
    SKIPPED.clear()
    game_dir = Path(game_dir)
    tables = read_texts(game_dir / DATA_FILE)
    for path in sorted(game_dir.iterdir()):
        match = CLIP_NAME.fullmatch(path.name)
        if match is None:
            continue
        prefix, number = match.group(1).upper(), int(match.group(2))
        name = f"{prefix}{number}"
        if prefix not in PREFIXES or name in NOT_SAID:
            continue
        table, speaker = PREFIXES[prefix]
        if prefix == "D":
            speaker = TEXTD_SPEAKERS.get(number, speaker)
        strings = tables[table]
        text = strings[number] if 0 < number < len(strings) else ""
        pcm = np.frombuffer(read_game_file(path), np.uint8)[UNPLAYED:-UNPLAYED]
        reason = "no text" if not text.strip() else u8_problem(pcm)
        if reason:
            SKIPPED[reason] += 1
            continue
        yield Clip(f"drascula/{name}", f"drascula:{speaker}", text, u8_wav(pcm, SAMPLE_RATE), ".wav")


def read_texts(path: Path) -> dict[str, list[str]]:
    """The English strings of each text table of drascula.dat, by table name (without the engine's leading '_')."""
    data = read_game_file(path)
    reader = _Reader(data, path)
    if reader.take(len(MAGIC)) != MAGIC:
        raise ManifestError(f"{path}: not a Drascula data file (no {MAGIC.decode()} magic)")
    version = reader.take(1)[0]
    if version != VERSION:
        raise ManifestError(f"{path}: data file version {version}, this reader knows version {VERSION}")
    for size in RECORD_SIZES:
        reader.take(reader.u16() * size)
    languages = reader.u16()
    if languages < 1:
        raise ManifestError(f"{path}: no language in the data file")
    tables = {}
    for name in TEXT_TABLES:
        count = reader.u16()
        blocks = [reader.take(reader.u16()) for _ in range(languages)]
        tables[name] = _strings(blocks[0], count, path, name)
    return tables


def _strings(block: bytes, count: int, path: Path, table: str) -> list[str]:
    """A table's `count` strings in one language's block (string 0 is blank: the engine never shows it)."""
    strings, at = [""], ALIGNMENT - 2  # the block's first 2 bytes are padding
    for index in range(count):
        if at + 2 > len(block):
            raise ManifestError(f"{path}: text table _{table} ends inside string {index}")
        length = struct.unpack_from(">H", block, at)[0]
        raw = block[at + 2:at + length]
        if length < 3 or at + length > len(block) or 0 not in raw:
            raise ManifestError(f"{path}: text table _{table}, string {index} is damaged")
        if index:
            strings.append(raw[:raw.index(0)].replace(bytes([SPACE]), b" ").decode("cp437"))
        at += length
    return strings


class _Reader:
    """Big-endian fields read in order from a file's bytes; ManifestError naming the file where they run out."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ManifestError(f"{self.path}: truncated at byte {len(self.data)} (a field needs {size} bytes at "
                                f"byte {self.at})")
        self.at += size
        return self.data[self.at - size:self.at]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]
