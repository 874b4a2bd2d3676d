"""The file formats of Beneath a Steel Sky (CD version 0.0372, as Debian's beneath-a-steel-sky ships it).

Written from the formats' public descriptions (ScummVM's engines/sky was read for the facts, none of its code is
used). Every function here takes bytes and raises ValueError with the reason when they are damaged; sky.py names the
file and entry in the ManifestError it makes of that.

- sky.dnr: u32 entry count, then per entry u16 file number, u24 offset into sky.dsk (x16 when bit 23 is set), u24
  size (bits 0-21) and flags (bit 22: a packed file's header is not part of it; bit 23: stored, never packed).
- A file in sky.dsk starts with a 22-byte header of eleven u16: word 0 is the flag (bit 7: RNC-packed; bits 8-15:
  bits 16-23 of the unpacked size), word 6 the low 16 bits of the unpacked size (header included).
- RNC ProPack method 1 (`rnc_unpack`): "RNC\\x01", u32 BE unpacked and packed sizes, u16 BE CRC-16 of the unpacked and
  of the packed bytes, a byte of leeway, a byte of block count; then an LSB-first bit stream read in LE 16-bit words,
  per block three Huffman tables (literal run lengths, match offsets, match lengths) and a u16 count of runs, with the
  literal bytes themselves interleaved in the byte stream.
- Text sections (`section_texts`): u16 byte offset of the per-message length bytes, u16 byte offset of the bit data,
  then one u16 per block of 32 messages (its length); lengths count 2-bit units, a length byte with bit 7 set counts
  (its low 7 bits) x 8 units. Each message is Huffman-coded MSB first (TEXT_SYMBOLS) and ends with a 0 symbol.
- sky.cpt (`compact_table`): ScummVM's packaging of the game's compacts (its objects and characters) with their
  names: u16 version 0, u16 list count, u16 length of each list, u32 raw size, u32 word count and the words (per
  entry u16 size, and when non-zero u16 type and `size` words), u32 size and the names (NUL-terminated, one per
  present entry), then u16 count of link entries, pairs (link id, target id) and one more name each.
- Script modules (`scripts`): u16 words; word 0 is one more than the number of scripts, word n the word offset of
  script n; the code is a stack machine whose opcodes have fixed operand counts (SCRIPT_OPERANDS).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

DNR_ENTRY = struct.Struct("<H3s3s")
HEADER_SIZE = 22
RNC_SIGNATURE = b"RNC\x01"
RNC_HEADER = struct.Struct(">4sIIHHBB")

# The text Huffman code of v0.0372: its symbols left to right in the code tree, and each one's code length (one
# base-17 digit per symbol). Consecutive codes in that order are the previous code plus one, shifted to the new length.
TEXT_SYMBOLS = bytes.fromhex(
    "2065616f73746e2e69720045756d416c4964524e53544f686344674c43705521794d5076483f6227662c4742566b4671774b2d574a2a7a"
    "596a2b5185295a8b3c957e8a873a7f5d237858918860323083312f283d865e333998347d385c2290268d3536928f8e938c3780819924"
    "405b9a5f3e968225099c977b9421")
TEXT_CODE_LENGTHS = ("3445555554665556666665776667777776887778877799888998889999aa9aa9bbaaabbabbaccbccbccbbbccccdd"
                     "cccddddddddeedeeeeffeeeffefffgg")

# Operand words of each script opcode (14, switch, has 2 per case and a default after its case count).
SCRIPT_OPERANDS = {0: 1, 1: 0, 2: 1, 3: 0, 4: 0, 5: 1, 6: 1, 7: 0, 8: 0, 9: 1, 10: 0, 11: 2, 12: 0, 13: 0, 15: 1,
                   16: 1, 17: 0, 18: 1, 19: 0, 20: 0}
SWITCH = 14


@dataclass(frozen=True)
class Entry:
    """One file of sky.dsk as sky.dnr lists it; `index` is its position in sky.dnr."""

    index: int
    number: int
    offset: int
    size: int
    headerless: bool
    stored: bool


def dnr_entries(dnr: bytes) -> list[Entry]:
    """The entries of sky.dnr, in its order."""
    if len(dnr) < 4:
        raise ValueError(f"{len(dnr)} bytes, shorter than its entry count")
    count = int.from_bytes(dnr[:4], "little")
    if len(dnr) < 4 + count * DNR_ENTRY.size:
        raise ValueError(f"says {count} entries but holds {(len(dnr) - 4) // DNR_ENTRY.size}")
    entries = []
    for index in range(count):
        number, offset, flags = DNR_ENTRY.unpack_from(dnr, 4 + index * DNR_ENTRY.size)
        offset, flags = int.from_bytes(offset, "little"), int.from_bytes(flags, "little")
        position = (offset & 0x7FFFFF) << 4 if offset & 0x800000 else offset
        entries.append(Entry(index, number, position, flags & 0x3FFFFF, bool(flags & 0x400000),
                             bool(flags & 0x800000)))
    return entries


def unpack_file(data: bytes, entry: Entry) -> bytes:
    """A file of sky.dsk as the game uses it: header and contents, unpacked when RNC-packed."""
    if entry.stored:
        return data
    if len(data) < HEADER_SIZE:
        raise ValueError(f"{len(data)} bytes, shorter than a file header")
    flag, total = struct.unpack_from("<H10xH", data)
    if not flag & 0x80:
        return data
    expected = (flag & 0xFF00) << 8 | total
    body = rnc_unpack(data[HEADER_SIZE:])
    if entry.headerless:
        return body
    if HEADER_SIZE + len(body) != expected:
        raise ValueError(f"unpacks to {HEADER_SIZE + len(body)} bytes, its header says {expected}")
    return data[:HEADER_SIZE] + body


def crc16(data: bytes) -> int:
    """CRC-16/ARC (reflected polynomial 0xA001, initial value 0), the checksum RNC files carry."""
    crc = 0
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _crc_table() -> list[int]:
    table = []
    for value in range(256):
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
        table.append(value)
    return table


_CRC_TABLE = _crc_table()


class _BitReader:
    """RNC's bit stream: LSB first from little-endian 16-bit words, fetched only when bits run out, so that the
    literal bytes interleaved with the words are read from the position after the last fetched word."""

    def __init__(self, data: bytes, position: int, end: int) -> None:
        # the last codes may need bits past the data's end (the game reads on); they come from zero padding
        self.data, self.position, self.end = data[:end] + bytes(8), position, end
        self.bits = self.count = 0

    def _fetch(self) -> None:
        if self.position >= self.end + 4:
            raise ValueError("bit stream runs past the packed data")
        self.bits |= (self.data[self.position] | self.data[self.position + 1] << 8) << self.count
        self.position += 2
        self.count += 16

    def peek(self, count: int) -> int:
        if self.count < count:  # look ahead without fetching: a literal run may follow the code
            word = self.data[self.position] | self.data[self.position + 1] << 8
            return (self.bits | word << self.count) & ((1 << count) - 1)
        return self.bits & ((1 << count) - 1)

    def read(self, count: int) -> int:
        if self.count < count:
            self._fetch()
        value = self.bits & ((1 << count) - 1)
        self.bits >>= count
        self.count -= count
        return value

    def take_bytes(self, count: int) -> bytes:
        if self.position + count > self.end:
            raise ValueError("literal run past the packed data")
        chunk = self.data[self.position:self.position + count]
        self.position += count
        return chunk


def _huffman_table(bits: _BitReader) -> list[tuple[int, int, int]] | None:
    """(code length, bit-reversed code, symbol) of an RNC Huffman table, shortest codes first; None when the block
    keeps the previous table."""
    symbols = bits.read(5)
    if not symbols:
        return None
    if symbols > 16:
        raise ValueError(f"Huffman table of {symbols} symbols (at most 16)")
    lengths = [bits.read(4) for _ in range(symbols)]
    table, code = [], 0
    for length in range(1, 17):
        for symbol, symbol_length in enumerate(lengths):
            if symbol_length == length:
                table.append((length, int(f"{code >> (16 - length):0{length}b}"[::-1], 2), symbol))
                code += 1 << (16 - length)
    if code > 1 << 16:
        raise ValueError("over-full Huffman table")
    return table


def _value(bits: _BitReader, table: list[tuple[int, int, int]]) -> int:
    """A number coded as a Huffman symbol n: n itself below 2, else n-1 more bits below an implied leading 1."""
    window = bits.peek(16)
    for length, code, symbol in table:
        if window & ((1 << length) - 1) == code:
            bits.read(length)
            return symbol if symbol < 2 else (1 << (symbol - 1)) | bits.read(symbol - 1)
    raise ValueError("no Huffman code matches the bit stream")


def rnc_unpack(data: bytes) -> bytes:
    """Unpack an RNC ProPack method-1 stream, checking both CRCs and the unpacked size."""
    if len(data) < RNC_HEADER.size:
        raise ValueError("too short for an RNC header")
    signature, size, packed_size, unpacked_crc, packed_crc, _, blocks = RNC_HEADER.unpack_from(data)
    if signature != RNC_SIGNATURE:
        raise ValueError(f"no RNC method-1 signature (found {signature!r})")
    end = RNC_HEADER.size + packed_size
    if len(data) < end:
        raise ValueError(f"RNC data truncated: {len(data) - RNC_HEADER.size} of {packed_size} packed bytes")
    if crc16(data[RNC_HEADER.size:end]) != packed_crc:
        raise ValueError("RNC packed-data checksum mismatch")
    if not blocks:
        raise ValueError("RNC stream of 0 blocks")
    bits = _BitReader(data, RNC_HEADER.size, end)
    bits.read(2)  # lock and key flags, unused by the game
    out = bytearray()
    literals = offsets = lengths = None
    for _ in range(blocks):
        literals = _huffman_table(bits) or literals
        offsets = _huffman_table(bits) or offsets
        lengths = _huffman_table(bits) or lengths
        if literals is None or offsets is None or lengths is None:
            raise ValueError("RNC block without Huffman tables")
        runs = bits.read(16)
        for run in range(runs):
            literal = _value(bits, literals)
            if literal:
                out += bits.take_bytes(literal)
            if run < runs - 1:  # every run but a block's last ends with a copy of earlier output
                distance, count = _value(bits, offsets) + 1, _value(bits, lengths) + 2
                if distance > len(out):
                    raise ValueError(f"RNC back-reference {distance} bytes back, only {len(out)} written")
                start = len(out) - distance
                if count <= distance:
                    out += out[start:start + count]
                else:
                    out += (out[start:] * (count // distance + 1))[:count]
            if len(out) > size:
                raise ValueError(f"RNC data unpacks past its size of {size} bytes")
    if len(out) != size:
        raise ValueError(f"RNC data unpacks to {len(out)} bytes, its header says {size}")
    if crc16(out) != unpacked_crc:
        raise ValueError("RNC unpacked-data checksum mismatch")
    return bytes(out)


def _text_codes() -> dict[tuple[int, int], int]:
    codes, code, previous = {}, -1, 0
    for symbol, digit in zip(TEXT_SYMBOLS, TEXT_CODE_LENGTHS):
        length = int(digit, 17)
        code = (code + 1) << (length - previous) if length >= previous else (code + 1) >> (previous - length)
        codes[length, code] = symbol
        previous = length
    return codes


_TEXT_CODES = _text_codes()


def decode_text(data: bytes, bit: int) -> str:
    """The Huffman-coded message starting at bit `bit` (MSB first) of `data`, up to its 0 symbol."""
    out, code, length = bytearray(), 0, 0
    while True:
        if bit >> 3 >= len(data):
            raise ValueError("text runs past the end of its section")
        code, length, bit = code << 1 | (data[bit >> 3] >> (7 - (bit & 7))) & 1, length + 1, bit + 1
        symbol = _TEXT_CODES.get((length, code))
        if symbol is not None:
            if not symbol:
                return out.decode("latin-1")
            out.append(symbol)
            code = length = 0
        elif length > 16:
            raise ValueError("no text code matches the bit stream")


def section_texts(data: bytes) -> list[str]:
    """Every message of a text section, by its number within the section."""
    if len(data) < 4:
        raise ValueError("too short for a text section header")
    lengths_at, bits_at = struct.unpack_from("<HH", data)
    count = bits_at - lengths_at
    if lengths_at < 4 or count < 0 or bits_at > len(data) or 4 + 2 * ((count - 1) // 32) > lengths_at:
        raise ValueError("text section header out of range")
    texts, block_start = [], 0
    for number in range(count):
        block = number // 32
        if number % 32 == 0:
            if block:  # the u16 after the header's two is block 0's length, and so on
                block_start += int.from_bytes(data[2 + 2 * block:4 + 2 * block], "little")
            units = block_start
        texts.append(decode_text(data, 8 * bits_at + 2 * units))
        length = data[lengths_at + number]
        units += (length & 0x7F) << 3 if length & 0x80 else length
    return texts


@dataclass(frozen=True)
class Compacts:
    """What the speaker lookup needs of sky.cpt: each present compact's name and, for compacts of type 1 (objects and
    characters), their words."""

    names: dict[int, str]
    words: dict[int, tuple[int, ...]]


def compact_table(cpt: bytes) -> Compacts:
    """Names and object words of sky.cpt."""
    try:
        version, lists = struct.unpack_from("<HH", cpt)
        if version != 0:
            raise ValueError(f"unknown sky.cpt version {version}")
        lengths = struct.unpack_from(f"<{lists}H", cpt, 4)
        position = 4 + 2 * lists + 4
        word_count = int.from_bytes(cpt[position:position + 4], "little")
        words = struct.unpack_from(f"<{word_count}H", cpt, position + 4)
        position += 4 + 2 * word_count
        name_size = int.from_bytes(cpt[position:position + 4], "little")
        names_blob = cpt[position + 4:position + 4 + name_size]
        if len(names_blob) != name_size:
            raise ValueError("names truncated")
        position += 4 + name_size
        names = iter(names_blob.split(b"\0"))
        table, objects, at = {}, {}, 0
        for list_number, length in enumerate(lengths):
            for item in range(length):
                size, at = words[at], at + 1
                if size:
                    ident = list_number << 12 | item
                    table[ident] = next(names).decode("latin-1")
                    if words[at] == 1:
                        objects[ident] = words[at + 1:at + 1 + size]
                    at += 1 + size
        links = int.from_bytes(cpt[position:position + 2], "little")
        for link in struct.iter_unpack("<HH", cpt[position + 2:position + 2 + 4 * links]):
            table[link[0]] = next(names).decode("latin-1")
    except (struct.error, IndexError, StopIteration):
        raise ValueError("compact table truncated") from None
    return Compacts(table, objects)


def scripts(module: bytes) -> Iterator[tuple[int, list[tuple[int, ...]]]]:
    """(script number within the module, its instructions as (opcode, operands...)) for every script of a module,
    each read from its start to the next script's start."""
    words = struct.unpack(f"<{len(module) // 2}H", module[:len(module) // 2 * 2])
    if not words or words[0] > len(words):
        raise ValueError("script table out of range")
    starts = words[1:words[0]]
    bounds = sorted(set(starts)) + [len(words)]
    for number, start in enumerate(starts, 1):
        end = bounds[bounds.index(start) + 1]
        yield number, _instructions(words, start, end)


def _instructions(words: tuple[int, ...], position: int, end: int) -> list[tuple[int, ...]]:
    code = []
    while position < end:
        opcode = words[position]
        if opcode == SWITCH:
            size = 3 + 2 * words[position + 1] if position + 1 < end else 2
        elif opcode in SCRIPT_OPERANDS:
            size = 1 + SCRIPT_OPERANDS[opcode]
        else:
            raise ValueError(f"unknown script opcode {opcode} at word {position}")
        if position + size > end:
            raise ValueError(f"script instruction at word {position} runs past its script")
        code.append(words[position:position + size])
        position += size
    return code
