"""Beneath a Steel Sky's voice clips, each with the line the game shows while it plays and the character saying it.

The CD version's speech is files 50000-55999 of sky.dsk (sky_formats.py has the file formats): a file header, then
RNC-packed 8-bit unsigned PCM at 11,025 Hz. The game plays speech file 50000 + SPEECH_SECTION_STARTS[s] + n for
line n of text section s, and shows that line, so each clip's text is that line of the section. The English text
used is the game's US English (language 3): the voices were recorded from it ("I ought to MOVE that trash", UK
"junk"), as the bundled recognizer confirms on the lines where the two differ.

Who speaks a line is in the game's scripts (files 60400-60415): a line is spoken by a call of fnSpeakMe and its
three siblings (mcode SPEAK_MCODES) with the speaker, the line and the talking animation pushed before it. The
speaker is, in this order:
- the compact pushed as a number, by its name in sky.cpt;
- a script variable that is only ever given one compact (the player's stand-in, variable 21, is always foster);
- for the two variables that stand for whoever is speaking (CUR_ID, the compact running the script, and
  PARTNER, whom the player talks to), the character whose talking animation the call plays (TALK_ANIMATIONS);
- for CUR_ID without a known animation: the compact whose base, action, get-to or extra script it is, and the
  player (foster) for scripts no other compact owns (the action and conversation scripts the player runs);
- for PARTNER without a known animation: the one partner every other line of the same script resolves to.
The lines the player picks from a menu (fnAskThis) are spoken by the one running the menu's script. Compacts that
are one character in several rooms, scales or bodies are named once (ALIASES).

Clips are skipped, and counted in SKIPPED by reason, when their line has no text, its speaker is not resolved or
resolves to two characters, or the audio is empty or silent. A damaged entry raises ManifestError naming the file
and the entry's number in sky.dnr.
"""
from __future__ import annotations

import io
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

import numpy as np

from asr.errors import ManifestError

from .clips import Clip, read_game_file, u8_problem, u8_wav
from .sky_formats import HEADER_SIZE, Compacts, Entry, compact_table, dnr_entries, scripts, section_texts, \
    unpack_file

SAMPLE_RATE = 11025
SPEECH_FILES = range(50000, 56000)
SPEECH_SECTION_STARTS = (0, 600, 1100, 2430, 3380, 4530, 5080, 5230)  # speech file - 50000 of each section's line 0
TEXT_FILES = range(60600 + 3 * 8, 60600 + 4 * 8)  # the 8 sections of language 3, US English
SCRIPT_FILES = range(60400, 60416)

PLAYER = "foster"
CUR_ID, PARTNER = 12, 120  # script variables: the compact running the script, the one the player talks to
PUSH_VARIABLE, PUSH_NUMBER, POP_VARIABLE, CALL = 0, 2, 6, 11  # script opcodes
SPEAK_MCODES = {35, 36, 37, 38}  # fnSpeakMe, fnSpeakMeDir, fnSpeakWait, fnSpeakWaitDir: (speaker, line, animation)
ASK_MCODE = 70  # fnAskThis: (line, animation) joins the player's menu
OWNER_MCODES = {8, 9}  # fnTheyStartSub, fnAssignBase: (compact, script) - the compact runs the script
OWNER_FIELDS = (27, 29, 31, 33)  # compact words holding its base, action, get-to and extra script

# Talking animations: the number a speech call pushes indexes sky.cpt's talk table (compact 0xBC), whose entries are
# named there after the character: big_f_up, fosta_conv, sc42_fos_talk_l ... are foster's, smljobs_talk, big_j_up,
# sc82_jobs_talk jobsworth's, and so on. (A directional call adds the speaker's direction to the number; the table
# is keyed by the number pushed.)
TALK_ANIMATIONS: dict[str, tuple[int, ...]] = {
    "foster": (7, 9, 11, 13, 15, 49, 53, 82, 97, 112, 130, 132, 144, 147, 165, 167, 169, 175, 181, 189),
    "joey": (59, 134, 186, 187, 188, 193), "jobsworth": (1, 17, 173, 180, 191, 192), "lamb": (26, 150),
    "anita": (25, 71, 72), "foreman": (27, 73, 75, 77, 81), "shades": (28, 29), "monitor": (30, 31, 39),
    "dad": (40, 41, 44, 46, 47, 48), "son": (42, 43), "full_so": (3, 67), "skorl_guard": (68, 69),
    "radman": (84, 85), "witness": (86, 94), "burke": (95, 96), "body": (99,), "anchor": (100, 101, 102),
    "trevor": (103,), "medi": (104,), "gallagher": (114, 125, 161), "holo": (122, 123, 124),
    "danielle": (146, 152, 155, 177), "sc30_henri": (151,), "sc32_vincent": (153,), "sc31_guard": (154, 158, 174),
    "sc32_gardener": (157,), "sc36_barman": (159,), "sc36_colston": (160, 162), "sc36_jukebox": (163,),
    "sc36_babs": (164,), "sc42_judge": (171, 178, 183), "sc42_prosecution": (172,), "sc42_clerk": (179,),
    "sc81_father": (184, 185), "sc76_android_2": (142,),
}
_ANIMATION_SPEAKER = {number: name for name, numbers in TALK_ANIMATIONS.items() for number in numbers}
# One character under several compact names: Hobbins in court and at the end, the security officer at two scales,
# Anita's hologram, Gallagher at the club and at Burke's, and Joey in the android body Ken (its cursor text is "Joey").
ALIASES = {"sc42_jobsworth": "jobsworth", "sc82_jobsworth": "jobsworth", "mini_so": "full_so", "hologram_b": "anita",
           "sc36_gallagher": "gallagher", "gallager_bel": "gallagher", "ken": "joey"}

SKIPPED: Counter[str] = Counter()  # clips read_clips left out, by reason; reset when a read starts


def read_clips(game_dir: Path) -> Iterator[Clip]:
    """Every speech clip of the game in game_dir (sky.dnr, sky.dsk, sky.cpt) with its line and speaker, by file
    number; the clips left out are counted in SKIPPED."""
    SKIPPED.clear()
    game_dir = Path(game_dir)
    entries = {entry.number: entry for entry in dnr_entries(read_game_file(game_dir / "sky.dnr"))}
    with _Disk(game_dir / "sky.dsk") as disk:
        texts = _texts(disk, entries)
        speakers = line_speakers([disk.load(entries[n]) for n in SCRIPT_FILES if n in entries],
                                 _compacts(game_dir / "sky.cpt"))
        for number in sorted(n for n in entries if n in SPEECH_FILES):
            clip = _clip(number, disk.load(entries[number]), texts, speakers)
            if clip is not None:
                yield clip


def line_number(speech_file: int) -> int:
    """The text number (section << 12 | line) of a speech file."""
    position = speech_file - SPEECH_FILES.start
    section = max(s for s, start in enumerate(SPEECH_SECTION_STARTS) if start <= position)
    return section << 12 | position - SPEECH_SECTION_STARTS[section]


def _clip(number: int, data: bytes, texts: dict[int, str], speakers: dict[int, set[str]]) -> Clip | None:
    line = line_number(number)
    text, speaker = texts.get(line, ""), speakers.get(line, set())
    pcm = np.frombuffer(data[HEADER_SIZE:], np.uint8)
    reason = ("no text" if not text.strip() else "speaker not resolved" if not speaker
              else "speaker ambiguous" if len(speaker) > 1 else u8_problem(pcm))
    if reason:
        SKIPPED[reason] += 1
        return None
    return Clip(f"sky/{number}", f"sky:{speaker.pop()}", text, u8_wav(pcm, SAMPLE_RATE), ".wav")


def _texts(disk: _Disk, entries: dict[int, Entry]) -> dict[int, str]:
    """Text number -> line, over the US English sections present."""
    texts = {}
    for section, number in enumerate(TEXT_FILES):
        if number in entries:
            lines = disk.parse(entries[number], section_texts)
            texts.update((section << 12 | n, line) for n, line in enumerate(lines))
    return texts


def line_speakers(modules: list[bytes], compacts: Compacts) -> dict[int, set[str]]:
    """Text number -> the characters that speak it, from the script modules (in file order from 60400)."""
    code = {}
    for module, data in enumerate(modules):
        try:
            code.update((module << 12 | number, program) for number, program in scripts(data))
        except ValueError as err:
            raise ManifestError(f"script module {SCRIPT_FILES[module]}: {err}") from None
    names = {ident: ALIASES.get(name, name) for ident, name in compacts.names.items()}
    owners = _owners(code, compacts, names)
    fixed = _fixed_variables(code, names)
    calls = [(script, program[i - 3:i]) for script, program in code.items() for i, step in enumerate(program)
             if step[:2] == (CALL, 3) and step[2] // 4 in SPEAK_MCODES and i >= 3]
    found = [_speaker(script, args, names, fixed, owners) for script, args in calls]
    partners = defaultdict(set)
    for (script, args), speaker in zip(calls, found):
        if speaker and args[0] == (PUSH_VARIABLE, 4 * PARTNER):
            partners[script].add(speaker)
    speakers: dict[int, set[str]] = defaultdict(set)
    for (script, args), speaker in zip(calls, found):
        if speaker is None and args[0] == (PUSH_VARIABLE, 4 * PARTNER) and len(partners[script]) == 1:
            speaker = next(iter(partners[script]))
        if speaker and args[1][0] == PUSH_NUMBER:
            speakers[args[1][1]].add(speaker)
    for script, program in code.items():
        for i, step in enumerate(program):
            if step == (CALL, 2, 4 * ASK_MCODE) and i >= 2 and program[i - 2][0] == PUSH_NUMBER:
                speakers[program[i - 2][1]].add(owners.get(script, PLAYER))
    return speakers


def _speaker(script: int, args: tuple[tuple[int, ...], ...], names: dict[int, str], fixed: dict[int, str],
             owners: dict[int, str | None]) -> str | None:
    """The speaker of one speech call of script from its three pushed arguments; None if not resolved."""
    target, _, animation = args
    by_animation = _ANIMATION_SPEAKER.get(animation[1]) if animation[0] == PUSH_NUMBER else None
    if target[0] == PUSH_NUMBER and target[1] in names:
        return names[target[1]]
    if target[0] == PUSH_VARIABLE and target[1] // 4 in fixed:
        return fixed[target[1] // 4]
    if by_animation:
        return by_animation
    if target == (PUSH_VARIABLE, 4 * CUR_ID):
        return owners.get(script, PLAYER)
    return None


def _owners(code: dict[int, list[tuple[int, ...]]], compacts: Compacts, names: dict[int, str]
            ) -> dict[int, str | None]:
    """Script -> the one character that runs it (None when several do), for the scripts some compact owns."""
    found: dict[int, set[str]] = defaultdict(set)
    for ident, words in compacts.words.items():
        for field in OWNER_FIELDS:
            if field < len(words) and words[field] in code:
                found[words[field]].add(names[ident])
    for program in code.values():
        for i, step in enumerate(program):
            if step[:2] == (CALL, 2) and step[2] // 4 in OWNER_MCODES and i >= 2:
                (kind, ident), (kind2, script) = program[i - 2][:2], program[i - 1][:2]
                if kind == kind2 == PUSH_NUMBER and ident in names and script in code:
                    found[script].add(names[ident])
    return {script: next(iter(who)) if len(who) == 1 else None for script, who in found.items()}


def _fixed_variables(code: dict[int, list[tuple[int, ...]]], names: dict[int, str]) -> dict[int, str]:
    """Script variables other than CUR_ID and PARTNER that are only ever set, as a number, to one compact."""
    values: dict[int, set[int | None]] = defaultdict(set)
    for program in code.values():
        for i, step in enumerate(program):
            if step[0] == POP_VARIABLE:
                before = program[i - 1] if i else (None,)
                values[step[1] // 4].add(before[1] if before[0] == PUSH_NUMBER else None)
    return {variable: names[next(iter(set_to))] for variable, set_to in values.items()
            if variable not in (CUR_ID, PARTNER) and len(set_to) == 1 and next(iter(set_to)) in names}


def _compacts(path: Path) -> Compacts:
    try:
        return compact_table(read_game_file(path))
    except ValueError as err:
        raise ManifestError(f"{path}: {err}") from None


class _Disk:
    """sky.dsk, read entry by entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file = open(path, "rb")  # noqa: SIM115 - closed by __exit__
        except OSError as err:
            raise ManifestError(f"{path}: cannot read ({err.strerror or err})") from None
        self.size = self.file.seek(0, io.SEEK_END)

    def __enter__(self) -> _Disk:
        return self

    def __exit__(self, *_: object) -> None:
        self.file.close()

    def load(self, entry: Entry) -> bytes:
        """The file of an entry, unpacked."""
        return self.parse(entry, lambda data: data)

    def parse(self, entry: Entry, parser):  # noqa: ANN001, ANN201 - parser: bytes -> anything
        """parser(the entry's file, unpacked); a damaged entry raises ManifestError naming it."""
        where = f"{self.path}: entry {entry.index} (file {entry.number})"
        if entry.offset + entry.size > self.size:
            raise ManifestError(f"{where}: {entry.size} bytes at offset {entry.offset} run past the end of the file "
                                f"({self.size} bytes)")
        self.file.seek(entry.offset)
        try:
            return parser(unpack_file(self.file.read(entry.size), entry))
        except ValueError as err:
            raise ManifestError(f"{where}: {err}") from None
