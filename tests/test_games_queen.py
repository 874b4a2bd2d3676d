"""The Flight of the Amazon Queen reader on a tiny queen.1c built here from the format: a dialogue, a cutaway and
Joe's stock lines play the right voice clips with the right text and speaker; damaged files raise ManifestError."""
from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "games"))

from local import queen  # noqa: E402 (recipes/games/local/queen.py)

from asr.errors import ManifestError  # noqa: E402


def be(*values: int) -> bytes:
    return struct.pack(f">{len(values)}h", *values)


def string(text: str, at: int, align: int = 2) -> bytes:
    """A length-prefixed string starting at offset `at`, padded so the next field is aligned."""
    raw = bytes([len(text)]) + text.encode("latin-1")
    end = (at + len(raw) + align - 1) & ~(align - 1) if text else at + 1
    return raw + b"\0" * (end - at - len(raw))


def resource(body: bytes) -> bytes:
    return b"AmBk" + b"\0" * 16 + body  # the 20-byte header the engine skips


def jas() -> bytes:
    """QUEEN.JAS: one room with two objects, object 1 a person (actor SPARKY-F) whose description starts TEST1.DOG."""
    body = be(1, 2, 2, 2)  # rooms, names, objects, descriptions
    body += be(1, 0, 0, 2, 0, 1, 0, -3)  # object 1: name 1, description 2, room 1, a person
    body += be(2, 0, 0, 1, 0, 1, 0, 0)  # object 2: name 2, description 1, room 1
    body += be(0, 2) + be(0)  # room data (rooms + 1), room sound effects
    body += be(0) + be(0) * 5 + be(0) + be(0) * 5  # items, graphics: none (one record read anyway)
    body += be(2, 0) + be(0) * 4 * 2  # grid: room 1 has 2 objects, no areas; object boxes
    body += be(0) + be(0) * 3 + be(0) + be(0) * 4  # walk-offs, object descriptions
    body += be(0) + be(0) * 10 + (be(0) + be(0) * 3) * 3 + be(0) + be(0) * 4  # commands
    body += be(0) + be(0) + be(0) * 2  # entry object, furniture
    body += be(1, 0, 1, 0) + be(1, 1, 1, 0, 0, 11, 1, 0, 0, 0, 10, 1)  # one actor: room 1, bob 1, name 1
    body += be(0) + be(0) * 3 + b"CEM10"  # graphic animations, version
    return resource(body)


def jas_text() -> bytes:
    responses = ["It doesn't seem to open*03"] + [f"Response {n}*14" for n in range(2, 30)] + ["Close"] * 11
    lines = ["It's a hatch*24", "test1.DOG", "Sparky", "hatch", "room", *["verb"] * 12, *responses, "SPARKY-F"]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n"


def dialogue() -> bytes:
    """TEST1.DOG, talk key 7: Joe's string 5, the person's string 5, the greetings."""
    joe_at, person_at = 32 + 96, 32 + 96 + 40
    joe = be(0, 5) + string("Hi there.*14How are you?", joe_at + 4, 4)
    joe += b"\0" * (person_at - joe_at - len(joe))
    person = be(0, 5) + string("Fine, thanks!*00", person_at + 4, 4)
    greeting_at = person_at + len(person)
    greeting = string("Hello again.", greeting_at)
    greeting += string("Hi.", greeting_at + len(greeting))
    cutaway_at = greeting_at + len(greeting)
    header = be(1, 1, 7, 1, 1) + be(0) * 6 + be(person_at, cutaway_at, greeting_at)
    body = header + b"\0" * (32 - len(header)) + b"\0" * 96 + joe + person + greeting + be(0, 0) + b"\0\0"
    return resource(body)


def cutaway() -> bytes:
    """C1A.CUT: Joe says one sentence (record 1), the person object 1 another (record 2)."""
    records = be(0, *[0] * 16) + be(0) + be(1, *[0] * 16) + be(0)
    banks_at = 12 + len(records)
    banks = be(0) + string("", banks_at + 2) + be(0)
    sentences_at = banks_at + len(banks)
    sentences = string("", sentences_at)
    sentences += string("Let's go.", sentences_at + len(sentences))
    sentences += string("Right behind you!*FR", sentences_at + len(sentences))
    header = be(1, 2, 0, 0, sentences_at, banks_at)
    return resource(header + records + banks + sentences)


@pytest.fixture(scope="module")
def mp3() -> bytes:
    buffer = io.BytesIO()
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(2205) / 11025)
    soundfile.write(buffer, tone, 11025, format="MP3")
    return buffer.getvalue()


VOICED = {"070005J1": "Hi there.", "070005J2": "How are you?", "070005P1": "Fine, thanks!", "07XXXXP1": "Hello again.",
          "07XXXXJ1": "Hi.", "JOE00011": "It doesn't seem to open", "JOE00411": "It's a hatch",
          "C1A__011": "Let's go.", "C1A__021": "Right behind you!"}


def build(folder: Path, mp3: bytes, magic: bytes = b"QTBL") -> Path:
    files = {"QUEEN.JAS": jas(), "QUEEN2.JAS": jas_text(), "TEST1.DOG": dialogue(), "C1A.CUT": cutaway()}
    files.update({f"{name}.SB": mp3 for name in VOICED})
    files["C1A__021.SB"] = b"\0\0" + struct.pack("<H", 104) + b"\0" * 106 + mp3  # an SB header before the MP3
    files["JOE00301.SB"] = mp3  # "Close": a menu label
    files["88SSSSSS.SB"] = mp3  # a sound effect: no line plays it
    names = list(files)
    offset = 15 + 21 * len(names)
    table, data = b"", b""
    for name in names:
        table += name.encode().ljust(12, b"\0") + struct.pack(">BII", 1, offset + len(data), len(files[name]))
        data += files[name]
    path = folder / "queen.1c"
    path.write_bytes(magic + b"CEM10\0" + b"\0\0" + bytes([1]) + struct.pack(">H", len(names)) + table + data)
    return path


def test_clips_have_the_segment_text_and_the_speaker(tmp_path, mp3):
    build(tmp_path, mp3)
    clips = {clip.id: clip for clip in queen.read_clips(tmp_path)}
    assert {id_: clip.text for id_, clip in clips.items()} == {f"queen/{name}": text for name, text in VOICED.items()}
    speakers = {id_: clip.speaker for id_, clip in clips.items()}
    assert speakers.pop("queen/070005P1") == speakers.pop("queen/07XXXXP1") == "queen:sparky"  # SPARKY-F, object 1
    assert speakers.pop("queen/C1A__021") == "queen:sparky"
    assert set(speakers.values()) == {"queen:joe"}
    assert all(clip.audio == mp3 and clip.suffix == ".mp3" for clip in clips.values())  # the SB header is stripped
    audio, rate = soundfile.read(io.BytesIO(clips["queen/C1A__021"].audio))
    assert rate == 11025 and len(audio) > 0
    assert queen.SKIPPED == {"menu label": 1, "no text": 1}


def test_a_bad_magic_raises_naming_the_file(tmp_path, mp3):
    path = build(tmp_path, mp3, magic=b"XXXX")
    with pytest.raises(ManifestError, match="no QTBL header") as raised:
        list(queen.read_clips(tmp_path))
    assert str(raised.value).startswith(f"{path}: ")


@pytest.mark.parametrize("keep", [100, 4000])
def test_a_truncated_file_raises_naming_the_file_and_entry(tmp_path, mp3, keep):
    path = build(tmp_path, mp3)
    path.write_bytes(path.read_bytes()[:keep])  # inside the table; inside the data
    with pytest.raises(ManifestError, match=r"queen\.1c: entry \d+") as raised:
        list(queen.read_clips(tmp_path))
    assert "\n" not in str(raised.value)


def test_a_truncated_dialogue_raises_naming_it(tmp_path, mp3):
    path = build(tmp_path, mp3)
    data = bytearray(path.read_bytes())
    at = data.index(b"TEST1.DOG")
    data[at + 17:at + 21] = struct.pack(">I", 60)  # the entry's size: the header and part of the tree only
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"queen\.1c: entry \d+ \(TEST1\.DOG\): cut short"):
        list(queen.read_clips(tmp_path))
