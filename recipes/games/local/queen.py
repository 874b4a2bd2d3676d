"""Flight of the Amazon Queen's voice clips, each with the line the game shows while it plays and who says it.

queen.1c (the freeware CD release, MP3-compressed by ScummVM's tools) is one file: the magic "QTBL", a 6-byte version
string ("CEM10", English CD), 2 bytes, the compression (1 = MP3), a big-endian u16 entry count, then 21-byte entries
(12-byte NUL-padded name, bundle, u32 offset, u32 size). Offsets are from the start of queen.1c itself; the data
follows the table. Speech is the *.SB entries: in this release each is MP3 (16 kbit/s, 11,025 Hz) from its first
byte (the 110- or 122-byte SB header of the uncompressed release, SB_HEADER_SIZE in ScummVM's sound.cpp, was
dropped by the compressor; it is stripped here if one is ever found). A few *.SB entries are sound effects
("88SSSSSS") or recordings no line refers to; they have no text and are skipped.

The game says a line by splitting it at its '*' commands ("*24" an animation, "*WT" a pause, "*FL" a turn,
"*XY00(237,112)" a walk, "*GD"/"*GM" a grab) into segments and playing voice file PREFIX + hex(segment number + 1)
for each segment, while showing that segment's text (Talk::speak / speakSegment in ScummVM's talk.cpp). A grab
command ends a segment without playing one, but still counts it. So each clip's text is one segment of one line,
and the prefix says where the line is and who says it:
- JOEnnnn (logic.cpp makeJoeSpeak): Joe says his stock response n (1-40) or, for n > 40, object description n - 40;
  both are QUEEN2.JAS lines (descriptions first, then object names, room names, 12 verbs, 40 responses). The
  responses that are menu and prompt labels ("Close", "Yes", "Do you want to RESTART (Y/N)?") are not dialogue.
- KKHHHHJ / KKHHHHP (talk.cpp): dialogue file (*.DOG) with talk key KK (decimal, space -> '0'), string id HHHH (hex)
  of Joe's (J) or the other person's (P) string table; KKSSSSJ is Joe's opening line, KKXXXXP and KKXXXXJ the
  greetings when they have talked before. A dialogue is with one person: the person object the game starts it
  for (a command whose game-state test says "NAME.DOG", an object whose description is the file, or a cutaway
  whose talk file it is), that object's actor in QUEEN.JAS's actor table (same room, same person number).
- CUTNAMEnn (cutaway.cpp findCdCut): cutaway CUTNAME.CUT (padded with '_' to 5 characters), object record nn
  (decimal, 2 digits), whose sentence is said by Joe (object 0 or -1) or by the person object's actor. Records that
  only display text or narrate it (objects -2 to -4) have no speaker and are skipped.
An actor is a character under several names (SPARKY-F, X5_SPARKY, PRINCESS1, AZURA-H ...: ALIASES and the -H/-E/-F
head/costume suffixes); where a person object is several actors by game state, the dialogue's own file name picks
the one it names (DEATH1.DOG is Death, not Henry, in the same spot).

Text is the segment as shown, with the game's markup removed ('^_' is the trademark sign, '@@' brackets a sung
line). Clips are skipped, and counted in SKIPPED by reason, when no line refers to them, two lines claim the same
clip, the text is a menu label or a sound ("<gulp>", "&#($!!"), the speaker is not resolved or is two characters,
or the audio is empty or not MP3. A damaged file or entry raises ManifestError naming queen.1c and the entry.
"""
from __future__ import annotations

import re
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from asr.errors import ManifestError

from .clips import Clip, read_game_file

DATA_FILE = "queen.1c"
MAGIC = b"QTBL"
HEADER = struct.Struct(">4s6s2sBH")  # magic, version, 2 bytes, compression, entry count
ENTRY = struct.Struct(">12sBII")  # name, bundle, offset, size
COMPRESSION_MP3 = 1
RESOURCE_HEADER = 20  # the bytes the engine skips at the start of QUEEN.JAS, *.DOG and *.CUT
SB_HEADER_SIZES = {104: 110, 110: 122}  # SB file version -> header size (uncompressed release)
JOE_RESPONSES = 40  # JOE_RESPONSE_MAX
MENU_RESPONSES = {22, 23, *range(30, 41)}  # prompts and journal panel labels, not dialogue
PERSON_IMAGES = (-3, -4)  # an object that is a person (facing left, right)
OBJECT_JOE, OBJECT_ROOMFADE = 0, -1  # cutaway records said by Joe
TEXT_OBJECTS = (-2, -3, -4)  # cutaway records that narrate or display text
PLAYER = "joe"

# One character under several actor names (the head close-ups -H, -E and costume -F are stripped by rule).
ALIASES = {"ANDSON": "ANDERSON", "PRINCESS1": "AZURA", "PRINCESS2": "AZURA", "APE1": "APE", "APE2": "APE",
           "LOLA_STAND": "LOLA", "LOLA_SHOWER": "LOLA"}

SKIPPED: Counter[str] = Counter()  # clips read_clips left out, by reason; reset when a read starts


@dataclass(frozen=True)
class Entry:
    index: int
    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class Line:
    """One segment of a line the game says: the text shown and who says it (None: not resolved, "" narration)."""
    text: str
    speakers: frozenset[str]
    menu: bool = False


def read_clips(game_dir: Path) -> Iterator[Clip]:
    """Every voice clip in game_dir/queen.1c with its line and speaker, in table order; the clips left out are
    counted in SKIPPED."""
    SKIPPED.clear()
    path = Path(game_dir) / DATA_FILE
    data = read_game_file(path)
    entries = table(path, data)
    resources = _Resources(path, data, entries)
    lines = resources.lines()
    for entry in entries.values():
        if not entry.name.endswith(".SB"):
            continue
        clip = _clip(entry, resources.raw(entry), lines.get(entry.name[:-3], []))
        if clip is not None:
            yield clip


def table(path: Path, data: bytes) -> dict[str, Entry]:
    """queen.1c's entries by name; a bad header or an entry outside the file raises ManifestError."""
    if data[:4] != MAGIC:
        raise ManifestError(f"{path}: not a Flight of the Amazon Queen data file (no {MAGIC.decode()} header)")
    if len(data) < HEADER.size:
        raise ManifestError(f"{path}: the header is cut short at byte {len(data)}")
    _, version, _, compression, count = HEADER.unpack_from(data)
    if compression != COMPRESSION_MP3:
        raise ManifestError(f"{path}: compression {compression} is not MP3 ({COMPRESSION_MP3})")
    entries = {}
    for index in range(count):
        at = HEADER.size + index * ENTRY.size
        if at + ENTRY.size > len(data):
            raise ManifestError(f"{path}: entry {index} of {count}: the table is cut short at byte {len(data)}")
        raw_name, _, offset, size = ENTRY.unpack_from(data, at)
        name = raw_name.split(b"\0")[0].decode("latin-1").upper()
        if offset + size > len(data):
            raise ManifestError(f"{path}: entry {index} ({name}): {size} bytes at offset {offset} run past the end "
                                f"of the file ({len(data)} bytes)")
        entries[name] = Entry(index, name, offset, size)
    return entries


def segments(sentence: str) -> list[tuple[int, str, str]]:
    """(segment number, text, command that ends it) of each segment the game plays a voice file for."""
    found, start, number, i = [], 0, 0, 0
    while i < len(sentence):
        if sentence[i] != "*":
            i += 1
            continue
        text, command = sentence[start:i], sentence[i + 1:i + 3]
        i += 3 + (11 if command == "XY" else 0)
        if command not in ("GD", "GM"):  # a grab plays nothing but still counts
            found.append((number, text, command))
        number, start = number + 1, i
    if start < len(sentence):
        found.append((number, sentence[start:], ""))
    return found


def clean(text: str) -> str:
    """The spoken words of a segment: the game's markup removed, spaces collapsed."""
    text = text.replace("^_", "").replace("@", "")
    return " ".join(text.split())


def character(actor: str) -> str:
    """The character an actor name stands for, lower case."""
    name = re.sub(r"^X\d+_", "", actor.upper())
    name = ALIASES.get(name, name)
    name = re.sub(r"-[HEF]$", "", name)
    return ALIASES.get(name, name).lower()


def _clip(entry: Entry, raw: bytes, lines: list[Line]) -> Clip | None:
    texts = {line.text for line in lines}
    speakers = {s for line in lines for s in line.speakers}
    text = next(iter(texts)) if len(texts) == 1 else ""
    audio = _mp3(raw)
    reason = ("no text" if not lines else "text ambiguous" if len(texts) > 1
              else "menu label" if any(line.menu for line in lines) else "no text" if not text
              else "not speech" if re.search(r"[<>&#$%]", text) or not re.search(r"[A-Za-z]", text)
              else "speaker not resolved" if not speakers else "speaker ambiguous" if len(speakers) > 1
              else "empty audio" if not raw else "not MP3" if audio is None else None)
    if reason:
        SKIPPED[reason] += 1
        return None
    return Clip(f"queen/{entry.name[:-3]}", f"queen:{speakers.pop()}", text, audio, ".mp3")


def _mp3(raw: bytes) -> bytes | None:
    """The MP3 bytes of an SB entry (an SB header, if any, stripped); None if they are not MP3."""
    if len(raw) >= 4 and not _is_mp3(raw):
        header = SB_HEADER_SIZES.get(struct.unpack_from("<H", raw, 2)[0])
        raw = raw[header:] if header else b""
    return raw if _is_mp3(raw) else None


def _is_mp3(data: bytes) -> bool:
    return data[:3] == b"ID3" or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


class _Reader:
    """Big-endian fields of one resource; running off its end raises ManifestError naming it."""

    def __init__(self, where: str, data: bytes, at: int = 0) -> None:
        self.where, self.data, self.at = where, data, at

    def fail(self, message: str) -> ManifestError:
        return ManifestError(f"{self.where}: {message}")

    def ints(self, count: int, at: int | None = None, signed: bool = True) -> tuple[int, ...]:
        at = self.at if at is None else at
        if at < 0 or at + 2 * count > len(self.data):
            raise self.fail(f"cut short: {2 * count} bytes wanted at byte {at} of {len(self.data)}")
        values = struct.unpack_from(f">{count}{'h' if signed else 'H'}", self.data, at)
        self.at = at + 2 * count
        return values

    def int(self, at: int | None = None, signed: bool = True) -> int:
        return self.ints(1, at, signed)[0]

    def skip(self, count: int, size: int) -> None:
        self.ints(count * size // 2)

    def string(self, at: int, align: int = 2) -> tuple[str, int]:
        """A length-prefixed string at `at` and the offset after it, padded to `align` (Talk::getString)."""
        if at >= len(self.data):
            raise self.fail(f"cut short: a string wanted at byte {at} of {len(self.data)}")
        length = self.data[at]
        if length == 0:
            return "", at + 1
        if at + 1 + length > len(self.data):
            raise self.fail(f"cut short: a {length}-byte string at byte {at} of {len(self.data)}")
        text = self.data[at + 1:at + 1 + length].decode("latin-1")
        return text, (at + 1 + length + align - 1) & ~(align - 1)


class _Resources:
    """The text resources of queen.1c and the voice file names their lines play."""

    def __init__(self, path: Path, data: bytes, entries: dict[str, Entry]) -> None:
        self.path, self.data, self.entries = path, data, entries

    def raw(self, entry: Entry) -> bytes:
        return self.data[entry.offset:entry.offset + entry.size]

    def reader(self, name: str, skip: int = RESOURCE_HEADER) -> _Reader:
        entry = self.entries.get(name)
        if entry is None:
            raise ManifestError(f"{self.path}: no {name} entry")
        where = f"{self.path}: entry {entry.index} ({name})"
        if entry.size < skip:
            raise ManifestError(f"{where}: cut short: {entry.size} bytes")
        return _Reader(where, self.raw(entry)[skip:])

    def lines(self) -> dict[str, list[Line]]:
        """Voice file name (without .SB) -> the line segments that play it."""
        self._jas()
        found: dict[str, list[Line]] = defaultdict(list)

        def say(prefix: str, sentence: str, speakers: frozenset[str], menu: bool = False) -> None:
            for number, text, _ in segments(sentence):
                name = f"{prefix}{number + 1:x}".replace(" ", "0").upper()
                found[name].append(Line(clean(text), speakers, menu))

        joe = frozenset({PLAYER})
        for n, text in enumerate(self.responses, 1):
            say(f"JOE{n:04d}", text, joe, n in MENU_RESPONSES)
        for n, text in enumerate(self.descriptions, 1):
            say(f"JOE{n + JOE_RESPONSES:04d}", text, joe)
        dialogue_people = self._dialogue_people()
        for name in self.entries:
            if name.endswith(".DOG"):
                self._dialogue(name, dialogue_people.get(name, set()), say)
        for name in self.entries:
            if name.endswith(".CUT"):
                self._cutaway(name, say)
        return found

    def _jas(self) -> None:
        """QUEEN.JAS's objects, rooms, commands and actors, and QUEEN2.JAS's lines (Logic::readQueenJas)."""
        jas = self.reader("QUEEN.JAS")
        rooms, names, objects, descriptions = jas.ints(4, signed=False)
        self.objects = [(0,) * 8] + [jas.ints(8) for _ in range(objects)]
        self.room_first = [0] + list(jas.ints(rooms + 1, signed=False))  # object before each room's first
        jas.skip(rooms, 2)  # room sound effects

        def records(size: int) -> list[tuple[int, ...]]:
            count = jas.int(signed=False)
            found = [jas.ints(size) for _ in range(max(count, 1))]  # the engine reads one record even for none
            return found if count else []

        records(5), records(5)  # items, graphics
        for _ in range(rooms):  # grid: objects and areas of each room, then each object's box
            _, areas = jas.ints(2)
            jas.skip(areas, 16)
        jas.skip(objects, 8)
        records(3), records(4)  # walk-offs, object descriptions
        self.commands = records(10)
        records(3), records(3), records(3)  # command areas, objects, inventory
        self.command_states = records(4)
        jas.int()  # entry object
        records(2)  # furniture
        actors, animations, actor_names, _ = jas.ints(4, signed=False)
        self.actors = [jas.ints(12) for _ in range(actors)]
        text = self.reader("QUEEN2.JAS", 0).data.decode("latin-1")
        strings = [line.rstrip("\r") for line in text.split("\n")]
        first_response = descriptions + names + rooms + 12
        first_actor = first_response + JOE_RESPONSES + animations
        if len(strings) < first_actor + actor_names:
            raise ManifestError(f"{self.path}: QUEEN2.JAS has {len(strings)} lines, QUEEN.JAS needs "
                                f"{first_actor + actor_names}")
        self.descriptions = strings[:descriptions]
        self.responses = strings[first_response:first_response + JOE_RESPONSES]
        self.actor_names = strings[first_actor:first_actor + actor_names]

    def _actors(self, obj: int) -> set[str]:
        """The actor names a person object can be (Logic::findActor: its room, its person number there)."""
        if not 0 < obj < len(self.objects) or self.objects[obj][7] not in PERSON_IMAGES:
            return set()
        room = self.objects[obj][5]
        if room >= len(self.room_first):
            return set()
        number = sum(1 for i in range(self.room_first[room] + 1, obj + 1) if self.objects[i][7] in PERSON_IMAGES)
        return {self.actor_names[a[2] - 1] for a in self.actors
                if a[0] == room and a[1] == number and 0 < a[2] <= len(self.actor_names)}

    def _dialogue_people(self) -> dict[str, set[str]]:
        """Dialogue file -> the actor names of the person objects it is started for."""
        people: dict[str, set[str]] = defaultdict(set)

        def dialogue(description: int) -> str | None:
            if 0 < description <= len(self.descriptions):
                text = self.descriptions[description - 1].upper()
                return text if text.endswith(".DOG") else None
            return None

        for command, _, _, speak in self.command_states:  # a command whose game-state test starts the dialogue
            name = dialogue(speak)
            if name and 0 < command <= len(self.commands):
                first, second = self.commands[command - 1][1:3]
                people[name] |= self._actors(second if second > 0 else first)
        for obj, fields in enumerate(self.objects):
            name = dialogue(fields[3])
            if name:
                people[name] |= self._actors(obj)
        for cut in self.entries:
            if cut.endswith(".CUT"):
                name, person = self._cutaway_talk(cut)
                if name:
                    people[name] |= self._actors(person)
        return people

    def _dialogue(self, name: str, actors: set[str], say) -> None:  # noqa: ANN001 - say: the lines() callback
        """The lines of one dialogue file (Talk::load, initialTalk, findDialogueString)."""
        dog = self.reader(name)
        levels, _, key, joe_count, person_count = dog.ints(5)
        dog.ints(6)  # game state tests
        person_strings, _, greeting = dog.ints(3, signed=False)
        joe_strings = 32 + abs(levels) * 96
        person = frozenset(self._speaker(actors, name[:-4]))
        joe = frozenset({PLAYER})

        def strings(at: int, count: int, side: str, speaker: frozenset[str]) -> None:
            for _ in range(count):
                ident = dog.int(at + 2)
                text, at = dog.string(at + 4, 4)
                if ident >= 0:
                    say(f"{key:2d}{ident:4x}{side}", text, speaker)

        strings(joe_strings, joe_count, "J", joe)
        strings(person_strings, person_count, "P", person)
        if not dog.int(joe_strings + 2):
            say(f"{key:2d}SSSSJ", dog.string(joe_strings + 4)[0], joe)
        text, at = dog.string(greeting)
        say(f"{key:2d}XXXXP", text, person)
        say(f"{key:2d}XXXXJ", dog.string(at)[0], joe)

    def _speaker(self, actors: set[str], own: str) -> set[str]:
        """The characters of a person's actors; several narrowed to the one the resource is named after."""
        found = {character(a) for a in actors}
        if len(found) > 1:
            stem = re.sub(r"\d+$", "", own.upper())
            named = {character(a) for a in actors if stem and a.upper().startswith(stem)}
            found = named or found
        return found

    def _cutaway_talk(self, name: str) -> tuple[str | None, int]:
        """The dialogue file a cutaway ends with and the person object it is with (Cutaway::loadStrings)."""
        cut = self.reader(name)
        at = cut.int(10, signed=False)
        count = cut.int(at, signed=False)
        at += 2
        for _ in range(count):
            _, at = cut.string(at)
        talk, at = cut.string(at)
        return (talk.upper(), cut.int(at)) if talk.upper().endswith(".DOG") else (None, 0)

    def _cutaway(self, name: str, say) -> None:  # noqa: ANN001 - say: the lines() callback
        """The spoken sentences of one cutaway (Cutaway::load, run, getObjectType, handlePersonRecord)."""
        cut = self.reader(name)
        base = name[:-4]
        _, count, _, _, sentence_at, _ = cut.ints(6)
        _, sentence_at = cut.string(sentence_at)  # the entry string
        cut.at = 12
        for index in range(1, abs(count) + 1):
            record = cut.ints(17)
            obj, animations, execute, from_object = record[0], record[4], record[5], record[12]
            people = cut.int()
            if not 0 <= people <= 6:
                raise cut.fail(f"object record {index}: {people} people (at most 6)")
            cut.skip(people, 2)
            sentence, sentence_at = cut.string(sentence_at)
            if obj == OBJECT_ROOMFADE:
                obj = OBJECT_JOE
            kind = "animation"
            if not animations and (obj == OBJECT_JOE or 0 < obj < len(self.objects)
                                   and self.objects[obj][7] in PERSON_IMAGES):
                kind = "person"
            if from_object > 0:
                kind = "none"
            if obj in TEXT_OBJECTS:
                kind = "text"
            if kind == "animation" and not execute:
                kind = "none"
            if kind == "animation":
                while cut.int() != -2:
                    cut.skip(9, 2)
            prefix = f"{base:_<5}"[:5] + f"{index:02d}"[:2]  # findCdCut writes the number at 5
            if kind == "person" and sentence and sentence != "*" and not sentence.startswith("#"):
                speakers = {PLAYER} if obj == OBJECT_JOE else self._speaker(self._actors(obj), "")
                say(prefix, sentence, frozenset(speakers))
            elif kind == "text" and obj != -4 and sentence:  # narrated text: one voice file, no speaker
                say(prefix, sentence.replace("*", " "), frozenset())
