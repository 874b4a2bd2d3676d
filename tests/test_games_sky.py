"""The Beneath a Steel Sky reader (recipes/games/local/sky.py) and its file formats (sky_formats.py), on tiny fake
game files built here from the documented formats: no byte of the real game is used. The builders below are the
encoders of what the reader decodes (RNC ProPack method 1 without a match finder, the text Huffman code, sky.dnr,
sky.dsk, sky.cpt and script modules)."""
from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "games"))

from local import sky  # noqa: E402 (recipes/games/local/sky.py)
from local.sky_formats import HEADER_SIZE, RNC_HEADER, _text_codes, crc16, decode_text, dnr_entries, \
    rnc_unpack, section_texts  # noqa: E402

from asr.errors import ManifestError  # noqa: E402

STORED, HEADERLESS = 0x800000, 0x400000  # sky.dnr flags


# ---- builders ----------------------------------------------------------------------------------------------------

class BitWriter:
    """The bit stream as rnc_unpack's reader takes it: LSB first into little-endian 16-bit words, a new word begun
    only when a read needs more bits than are left, and literal bytes placed where the byte stream then stands."""

    def __init__(self) -> None:
        self.out, self.free = bytearray(), []  # free: (byte, bit) of the begun words' bits not written yet

    def bits(self, value: int, count: int) -> None:
        """Write `value` in `count` bits, as one read(count) of the reader."""
        if len(self.free) < count:
            at = len(self.out)
            self.out += b"\0\0"
            self.free += [(at + i // 8, i % 8) for i in range(16)]
        for i in range(count):
            at, bit = self.free.pop(0)
            self.out[at] |= (value >> i & 1) << bit

    def value(self, number: int) -> None:
        """A number in a flat table of 16 4-bit codes (symbol s: code s, bit-reversed): symbol n, n-1 low bits."""
        symbol = number.bit_length()
        self.bits(int(f"{symbol:04b}"[::-1], 2), 4)
        if symbol >= 2:
            self.bits(number - (1 << (symbol - 1)), symbol - 1)


def rnc_pack(blocks: list[list[tuple[bytes, tuple[int, int] | None]]]) -> bytes:
    """An RNC method-1 stream of the given blocks, each a list of runs (literal bytes, then (distance, count) of a
    copy of earlier output, None for a block's last run). Block 1 has three flat tables; later blocks keep them."""
    bits = BitWriter()
    bits.bits(0, 2)  # lock and key flags
    for number, runs in enumerate(blocks):
        for _ in range(3):  # literal run lengths, match offsets, match lengths
            bits.bits(0 if number else 16, 5)
            for _ in range(0 if number else 16):
                bits.bits(4, 4)
        bits.bits(len(runs), 16)
        for run, (literal, match) in enumerate(runs):
            assert (match is None) == (run == len(runs) - 1), "every run but a block's last ends with a copy"
            bits.value(len(literal))
            bits.out += literal
            if match:
                bits.value(match[0] - 1)  # distance
                bits.value(match[1] - 2)  # count
    packed, out = bytes(bits.out), expand(blocks)
    return RNC_HEADER.pack(b"RNC\x01", len(out), len(packed), crc16(out), crc16(packed), 0, len(blocks)) + packed


def expand(blocks: list[list[tuple[bytes, tuple[int, int] | None]]]) -> bytes:
    """What rnc_pack's blocks unpack to, copying byte by byte."""
    out = bytearray()
    for literal, match in (run for runs in blocks for run in runs):
        out += literal
        for _ in range(match[1] if match else 0):
            out.append(out[-match[0]])
    return bytes(out)


def text_bits(message: str) -> str:
    """The message in the game's text Huffman code (MSB first, as "0101..."), ending with its 0 symbol."""
    codes = {symbol: f"{code:0{length}b}" for (length, code), symbol in _text_codes().items()}
    return "".join(codes[symbol] for symbol in message.encode("latin-1") + b"\0")


def text_section(messages: list[str]) -> bytes:
    """A text section: u16 offsets of the length bytes and of the bit data, one u16 length (in 2-bit units) per block
    of 32 messages, one length byte per message (bit 7: x8 units), then the messages' bits."""
    bits, lengths, blocks = "", bytearray(), []
    for number, message in enumerate(messages):
        code = text_bits(message)
        units = -(-len(code) // 2)
        if units > 127:
            units = -(-units // 8) * 8
            lengths.append(0x80 | units // 8)
        else:
            lengths.append(units)
        if number % 32 == 0:
            blocks.append(0)
        blocks[-1] += units
        bits += code.ljust(2 * units, "0")
    bits = bits.ljust(-(-len(bits) // 8) * 8, "0")
    lengths_at = 4 + 2 * len(blocks)
    header = struct.pack(f"<HH{len(blocks)}H", lengths_at, lengths_at + len(messages), *blocks)
    return header + lengths + bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def dsk_file(body: bytes, packed: bool = False) -> bytes:
    """A file of sky.dsk: the 22-byte header (flag word, unpacked size in word 6 and the flag's high byte), then the
    body, RNC-packed when `packed`."""
    total = HEADER_SIZE + len(body)
    flag = 0x80 | (total >> 16) << 8 if packed else 0
    header = struct.pack("<11H", flag, 0, 0, 0, 0, 0, total & 0xFFFF, 0, 0, 0, 0)
    return header + (rnc_pack([[(body, None)]]) if packed else body)


def dnr(*entries: tuple[int, int, int]) -> bytes:
    """sky.dnr of (file number, u24 offset field, u24 size-and-flags field) entries."""
    return len(entries).to_bytes(4, "little") + b"".join(
        struct.pack("<H", number) + offset.to_bytes(3, "little") + flags.to_bytes(3, "little")
        for number, offset, flags in entries)


def compact_table(lists: list[list[tuple[str, int, list[int]] | None]], links: list[tuple[int, int, str]]) -> bytes:
    """sky.cpt: per list its compacts, each None (absent) or (name, type, words); link entries (id, target, name)."""
    words, names = [], []
    for compacts in lists:
        for compact in compacts:
            if compact is None:
                words.append(0)
            else:
                name, kind, data = compact
                words += [len(data), kind, *data]
                names.append(name)
    blob = b"".join(name.encode() + b"\0" for name in names + [name for _, _, name in links])
    return (struct.pack(f"<HH{len(lists)}HII{len(words)}H", 0, len(lists), *map(len, lists), 2 * len(words),
                        len(words), *words) + struct.pack("<I", len(blob)) + blob
            + struct.pack(f"<H{2 * len(links)}H", len(links), *[w for link in links for w in link[:2]]))


def script_module(*programs: list[tuple[int, ...]]) -> bytes:
    """A script module: word 0 one more than the script count, then each script's word offset, then the code."""
    words, starts = [], []
    for program in programs:
        starts.append(1 + len(programs) + len(words))
        words += [word for step in program for word in step]
    return struct.pack(f"<{1 + len(programs) + len(words)}H", 1 + len(programs), *starts, *words)


def speak(compact: int, line: int, animation: int = 0) -> list[tuple[int, ...]]:
    """fnSpeakMe(compact pushed as a number, text number, talking animation)."""
    return [(sky.PUSH_NUMBER, compact), (sky.PUSH_NUMBER, line), (sky.PUSH_NUMBER, animation),
            (sky.CALL, 3, 4 * 35)]


def write_game(folder: Path, files: list[tuple[int, bytes, int]], cpt: bytes | None) -> Path:
    """sky.dsk holding the files (number, bytes, dnr flags) at 16-byte boundaries, sky.dnr listing them (offsets
    x16) and sky.cpt (left out when None)."""
    disk, entries = bytearray(), []
    for number, data, flags in files:
        disk += bytes(-len(disk) % 16)
        entries.append((number, 0x800000 | len(disk) >> 4, flags | len(data)))
        disk += data
    (folder / "sky.dsk").write_bytes(disk)
    (folder / "sky.dnr").write_bytes(dnr(*entries))
    if cpt is not None:
        (folder / "sky.cpt").write_bytes(cpt)
    return folder


JOEY, FOSTER, HOBBINS, ANITA = 1, 2, 1 << 12, 0x2005  # compact ids (list << 12 | item; ANITA a link entry)
LINES = [["I ought to MOVE that trash.", "Who goes there?", "", "Quiet."], ["Joey, come here!"]]
PCM = np.random.default_rng(1).integers(0, 256, (2, 300), dtype=np.uint8)


def fake_game(folder: Path, cpt: bool = True) -> Path:
    """Five speech files: 50000 (joey, unpacked), 50001 (hobbins as sc42_jobsworth, RNC-packed), 50002 (a line
    without text), 50003 (silent, stored), 50600 (section 1's line 0, anita through a link entry)."""
    table = compact_table([[None, ("joey", 1, [5, 6]), ("foster", 1, [0])], [("sc42_jobsworth", 2, [0])]],
                          [(ANITA, JOEY, "anita")])
    module = script_module(speak(JOEY, 0, animation=7) + speak(HOBBINS, 1),  # 7 is foster's: the compact wins
                           speak(FOSTER, 2) + speak(FOSTER, 3) + speak(ANITA, 1 << 12))
    silent = np.array([128, 130, 126, 129] * 20, np.uint8).tobytes()
    files = [(50000, dsk_file(PCM[0].tobytes()), 0), (50001, dsk_file(PCM[1].tobytes(), packed=True), 0),
             (50002, dsk_file(PCM[0].tobytes()), 0), (50003, dsk_file(silent), STORED),
             (50600, dsk_file(PCM[1][::-1].tobytes()), 0), (sky.SCRIPT_FILES[0], module, STORED)]
    files += [(sky.TEXT_FILES[s], dsk_file(text_section(lines), packed=True), HEADERLESS)
              for s, lines in enumerate(LINES)]
    return write_game(folder, files, table if cpt else None)


# ---- tests -------------------------------------------------------------------------------------------------------

def test_dnr_entries_decode_offsets_sizes_and_flags():
    entries = dnr_entries(dnr((7, 0x800000 | 5, 0x3FFFFF | HEADERLESS), (9, 1234, STORED | 100), (11, 0, 0)))
    assert [(e.index, e.number, e.offset, e.size, e.headerless, e.stored) for e in entries] == [
        (0, 7, 80, 0x3FFFFF, True, False), (1, 9, 1234, 100, False, True), (2, 11, 0, 0, False, False)]
    with pytest.raises(ValueError, match="says 3 entries but holds 2"):
        dnr_entries(dnr((7, 0, 0), (9, 0, 0), (11, 0, 0))[:-1])
    with pytest.raises(ValueError):
        dnr_entries(b"\1\0")


def test_rnc_unpack_a_stream_of_one_literal_run():
    data = bytes(np.random.default_rng(0).integers(0, 256, 37, dtype=np.uint8))
    assert rnc_unpack(rnc_pack([[(data, None)]])) == data


def test_rnc_unpack_copies_and_keeps_tables_across_blocks():
    stream = rnc_pack([[(b"abc", (3, 6)), (b"xyz", None)], [(b"!", (1, 4)), (b"", None)]])
    assert rnc_unpack(stream) == b"abcabcabcxyz!!!!!"
    rng = np.random.default_rng(2)  # runs of all sizes: codes and words split at every bit position
    runs = [(bytes(rng.integers(0, 256, rng.integers(0, 40), dtype=np.uint8)), (int(rng.integers(1, 4)),
             int(rng.integers(2, 300)))) for _ in range(60)]
    runs[0] = (b"abc", runs[0][1])
    blocks = [runs[:25] + [(b"x", None)], runs[25:] + [(b"yz", None)]]
    stream = rnc_pack(blocks)
    assert rnc_unpack(stream) == expand(blocks)


def test_rnc_unpack_rejects_damaged_streams():
    stream = bytearray(rnc_pack([[(b"hello world", None)]]))
    bad_crc = stream[:14] + bytes([stream[14] ^ 1]) + stream[15:]  # the packed data's CRC
    with pytest.raises(ValueError, match="packed-data checksum"):
        rnc_unpack(bytes(bad_crc))
    with pytest.raises(ValueError, match="truncated"):
        rnc_unpack(bytes(stream[:-1]))
    with pytest.raises(ValueError, match="signature"):
        rnc_unpack(b"RNC\x02" + bytes(stream[4:]))
    rng = np.random.default_rng(3)
    for size in range(1, 60):  # garbage behind a valid header and packed CRC: ValueError, never IndexError & co.
        garbage = bytes(rng.integers(0, 256, size, dtype=np.uint8))
        with pytest.raises(ValueError):
            rnc_unpack(RNC_HEADER.pack(b"RNC\x01", 20, size, 0, crc16(garbage), 0, 1 + size % 3) + garbage)


def test_section_texts_decode_every_message_of_every_block():
    messages = [f"Line {n}, said {'twice' if n % 2 else 'once'}." for n in range(70)]
    messages[3] = "A long one: " + "Foster? " * 12 + "(BAH!)"  # over 127 2-bit units: its length byte has bit 7
    messages[33] = ""
    section = text_section(messages)
    assert section[4 + 2 * 3 + 3] & 0x80
    assert section_texts(section) == messages
    bits_at = struct.unpack_from("<H", section, 2)[0]
    assert decode_text(section, 8 * bits_at) == messages[0]
    with pytest.raises(ValueError):
        section_texts(section[:3])


def test_read_clips_of_a_fake_game(tmp_path):
    clips = list(sky.read_clips(fake_game(tmp_path)))
    assert [(c.id, c.speaker, c.text, c.suffix) for c in clips] == [
        ("sky/50000", "sky:joey", LINES[0][0], ".wav"), ("sky/50001", "sky:jobsworth", LINES[0][1], ".wav"),
        ("sky/50600", "sky:anita", LINES[1][0], ".wav")]
    assert sky.SKIPPED == {"no text": 1, "silent audio": 1}
    for clip, pcm in zip(clips, [PCM[0], PCM[1], PCM[1][::-1]]):
        samples, rate = soundfile.read(io.BytesIO(clip.audio), dtype="int16")
        assert rate == 11025
        assert soundfile.info(io.BytesIO(clip.audio)).format == "WAV"
        np.testing.assert_array_equal(samples, (pcm.astype(np.int16) - 128) << 8)


def test_an_entry_past_the_end_of_sky_dsk_is_named(tmp_path):
    fake_game(tmp_path)
    listing = (tmp_path / "sky.dnr").read_bytes()
    count = int.from_bytes(listing[:4], "little")
    past = 0x800000 | ((tmp_path / "sky.dsk").stat().st_size >> 4) + 1
    (tmp_path / "sky.dnr").write_bytes((count + 1).to_bytes(4, "little") + dnr((50005, past, 10))[4:] + listing[4:])
    with pytest.raises(ManifestError, match=r"sky\.dsk: entry 0 \(file 50005\).*past the end"):
        list(sky.read_clips(tmp_path))


def test_a_missing_sky_cpt_is_named(tmp_path):
    with pytest.raises(ManifestError, match=r"sky\.cpt: cannot read"):
        list(sky.read_clips(fake_game(tmp_path, cpt=False)))
