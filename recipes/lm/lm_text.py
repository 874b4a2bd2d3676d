"""Everyday-English text for word language models, read offline from Debian packages, and a vocabulary for it: the
lm recipe's readers (recipes/lm/prepare.py puts this folder and recipes/realspeech on the import path).

Each reader turns one kind of source into raw sentences (punctuation kept); `clean_sentence` turns a raw sentence
into a normalized one (asr.text.normalize) or rejects it as not prose; `collect` deduplicates the sources' sentences
and drops every one that a dev or test set holds (`HeldOut`). The sources:

- a SWORD zText Bible module (`sword-text-web`: the World English Bible): `ztext_verses`, `ztext_sentences`;
- dictd dictionaries (`dict-gcide`, `dict-jargon`, `dict-devil`, `dict-foldoc`): `dictd_entries`, `dictd_sentences`;
- the fortunes collections and WordNet's usage examples, harvested as the synthetic corpus harvests them
  (asr.corpora.synthetic): `synthetic_sentences`;
- an R data package's character vectors (`r-cran-janeaustenr`: Jane Austen's six novels): `rdata_text_sentences`;
- HTML documentation, its paragraphs: `html_sentences` (`python3.11-doc`; and the held-out texts that measure the
  vocabulary, never LM text: `gnome-user-docs`' Mallard pages and `debian-handbook`, HELD_OUT_PACKAGES).

PACKAGES maps each package to its reader, `lm_sentences` puts them together; only the packages PACKAGES names are
ever read.

`build_vocabulary` ranks words by frequency across a reference list (wordfreq, `wordfreq_reference`) and the LM text,
spelled in the model's alphabet. Layout problems raise ManifestError naming the file.
"""
from __future__ import annotations

import gzip
import html
import itertools
import os
import re
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from asr.atomic import atomic_open
from asr.corpora import synthetic
from asr.corpora.layouts import unspellable
from asr.errors import ManifestError
from asr.manifest import read_manifest
from asr.text import Vocabulary, normalize

import realspeech_sources as realspeech  # recipes/realspeech: its transcripts are kept out of the LM text

PathLike = str | os.PathLike[str]

MIN_WORDS, MAX_WORDS = 3, 100  # of a normalized LM sentence
_VOCAB = Vocabulary()

# Characters of code, markup, URLs and e-mail addresses: a sentence holding one is not prose.
CODE_MARK = "\x1a"  # stands for code left out of a paragraph (html_paragraphs)
_NOT_PROSE = re.compile(r"[\\_=<>|#{}~^*@\[\]\ufffd\x1a]|://|www\.|\.(?:com|org|net|html?)\b")
# A number normalize() reads aloud correctly ("1,024", "3.5", "1990", "21st", "$5", "10%"); others ("4S700R",
# "0-887-30787-6", "1:1", "1990s") are not prose.
_SPOKEN_NUMBER = re.compile(r"\$?\d+(?:,\d{3})*(?:\.\d+)?(?:st|nd|rd|th|%)?")
_TOKEN_EDGES = "\"'()[].,;:!?\u201c\u201d\u2018\u2019"
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def clean_sentence(raw: str) -> str | None:
    """The normalized text of a raw sentence, or None when it is not prose the default vocabulary can spell:
    code or markup characters, URLs, numbers that are not read as numbers, letters normalize() would delete
    (Greek, Hebrew, ...), fewer than MIN_WORDS or more than MAX_WORDS words."""
    if _NOT_PROSE.search(raw):
        return None
    for token in raw.split():
        token = token.strip(_TOKEN_EDGES)
        if any(c.isdigit() for c in token) and not _SPOKEN_NUMBER.fullmatch(token):
            return None
    text = normalize(raw)
    if unspellable(raw, text) or not _VOCAB.covers(text) or not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        return None
    return text


def sentence_pieces(raw: str) -> list[str]:
    """A raw sentence, or, when it runs over MAX_WORDS words, its clauses cut at semicolons and colons."""
    if len(raw.split()) <= MAX_WORDS:
        return [raw]
    return [piece.strip() for piece in re.split(r"[;:]\s", raw) if piece.strip()]


def split_sentences(text: str) -> list[str]:
    """Sentences of running prose, split as the synthetic corpus splits them (asr.corpora.synthetic), curly quotes
    straightened first; a trailing piece without end punctuation is not a sentence."""
    return synthetic.split_sentences(text.translate(_QUOTES))


# SWORD zText modules (sword-text-web).

ZTEXT_TESTAMENTS = ("ot", "nt")
_BLOCK = struct.Struct("<III")  # .bzs: offset in .bzz, compressed size, uncompressed size
_VERSE = struct.Struct("<IIH")  # .bzv: block number, offset in the uncompressed block, size


def ztext_verses(module_dir: PathLike) -> Iterator[tuple[str, int, str]]:
    """(testament, block, verse markup) of every non-empty verse slot of a SWORD zText module, in module order.

    A zText module (SWORD's zVerse driver, e.g. usr/share/sword/modules/texts/ztext/engWEB2015eb/) keeps each
    testament, `ot` and `nt`, in three files:

    - `<t>.bzs`, the block index: one 12-byte record per block, three little-endian uint32: the block's offset in
      `<t>.bzz`, its compressed size and its uncompressed size;
    - `<t>.bzv`, the verse index: one 10-byte record per slot of the versification, in canonical order (module
      heading, book and chapter headings, then the verses): uint32 block number, uint32 offset of the entry in the
      uncompressed block, uint16 size in bytes (0 for an empty slot);
    - `<t>.bzz`, the text: the blocks one after the other, each a zlib stream (CompressType=ZIP; BlockType=BOOK
      makes one block per book).

    Entries are UTF-8 (Encoding=UTF-8 in the module's .conf) and carry the module's markup (OSIS, GBF or ThML):
    see strip_bible_markup. A testament whose files are absent is skipped (New Testament-only modules); an
    enciphered module (CipherKey) fails to decompress and raises ManifestError, as does any inconsistent index.
    """
    module_dir = Path(module_dir)
    found = [t for t in ZTEXT_TESTAMENTS if (module_dir / f"{t}.bzs").is_file()]
    if not found:
        raise ManifestError(f"{module_dir}: not a SWORD zText module (no ot.bzs or nt.bzs)")
    for testament in found:
        files = {ext: module_dir / f"{testament}.{ext}" for ext in ("bzs", "bzv", "bzz")}
        try:
            data = {ext: path.read_bytes() for ext, path in files.items()}
        except OSError as err:
            raise ManifestError(f"{err.filename}: cannot read ({err.strerror})") from None
        for ext, record in (("bzs", _BLOCK), ("bzv", _VERSE)):
            if len(data[ext]) % record.size:
                raise ManifestError(f"{files[ext]}: {len(data[ext])} bytes, not a whole number of "
                                    f"{record.size}-byte records")
        blocks = [_ztext_block(data["bzz"], files["bzz"], number, *record)
                  for number, record in enumerate(_BLOCK.iter_unpack(data["bzs"]))]
        for slot, (block, offset, size) in enumerate(_VERSE.iter_unpack(data["bzv"])):
            if not size:
                continue
            if block >= len(blocks) or offset + size > len(blocks[block]):
                raise ManifestError(f"{files['bzv']}: entry {slot} points outside the text (block {block}, "
                                    f"bytes {offset}-{offset + size})")
            text = blocks[block][offset:offset + size].decode("utf-8", errors="replace")
            yield testament, block, text


def _ztext_block(bzz: bytes, path: Path, number: int, offset: int, size: int, expected: int) -> bytes:
    if offset + size > len(bzz):
        raise ManifestError(f"{path}: block {number} (bytes {offset}-{offset + size}) lies past the end of the file")
    if not size:
        return b""
    try:
        block = zlib.decompress(bzz[offset:offset + size])
    except zlib.error as err:
        raise ManifestError(f"{path}: block {number} is not zlib data ({err}); an enciphered module?") from None
    if len(block) != expected:
        raise ManifestError(f"{path}: block {number} is {len(block)} bytes, its index says {expected}")
    return block


# Elements whose content is not the verse's text: footnotes and their variant readings, headings, speaker labels
# (OSIS), GBF's footnotes <RF>..<Rf> and headings <TS>..<Ts>, ThML's notes and <scripRef>.
_BIBLE_DROPPED = re.compile(
    r"<(note|title|speaker|rdg|scripRef)\b[^>]*?(?<!/)>.*?</\1\s*>|<RF>.*?<Rf>|<TS>.*?<Ts>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def strip_bible_markup(text: str) -> str:
    """A verse's text without markup: OSIS/ThML elements whose content is not the text (notes, titles, speaker
    labels, cross references) removed whole, every other tag (<w lemma=..>, <q>, <l/>, GBF's <WG1234>, <FI>, ...)
    replaced by nothing or a space, and HTML entities unescaped."""
    text = _BIBLE_DROPPED.sub(" ", text)
    text = re.sub(r"<(?:lb|l|lg|p|div|chapter|br)\b[^>]*>", " ", text)  # line, stanza, paragraph boundaries
    return " ".join(html.unescape(_TAG.sub("", text)).split())


def ztext_sentences(module_dir: PathLike) -> Iterator[str]:
    """Raw sentences of a zText Bible module: each book's verses (markup stripped) as one running text, split into
    sentences, so sentences that run over several verses stay whole."""
    for _, verses in itertools.groupby(ztext_verses(module_dir), key=lambda verse: verse[:2]):
        yield from split_sentences(" ".join(strip_bible_markup(text) for _, _, text in verses))


def find_ztext_modules(root: PathLike) -> list[Path]:
    """The zText module folders of an extracted package tree (usr/share/sword/modules/texts/ztext/<module>/)."""
    base = Path(root) / "usr" / "share" / "sword" / "modules" / "texts" / "ztext"
    modules = sorted(p.parent for p in base.glob("*/*.bzs"))
    if not modules:
        raise ManifestError(f"{base}: no SWORD zText module (*/ot.bzs or */nt.bzs) found")
    return sorted(set(modules))


# dictd dictionaries (dict-gcide, dict-jargon, dict-devil, dict-foldoc).

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64_number(text: str, where: str) -> int:
    value = 0
    for char in text:
        if char not in _B64:
            raise ManifestError(f"{where}: {text!r} is not a dictd base-64 number")
        value = value * 64 + _B64[char]
    return value


def dictd_entries(index_path: PathLike, dict_path: PathLike) -> Iterator[tuple[str, str]]:
    """(headword, entry text) of a dictd dictionary, in the order of the text, each entry once.

    The `.index` file has one line per headword: headword, offset and length (in bytes, in the uncompressed
    `.dict`), separated by tabs; offset and length are base-64 numbers, digits A-Z a-z 0-9 + / for 0-63, most
    significant first. The `.dict` file is the entries' text, plain or (`.dict.dz`, dictzip) gzip-compressed.
    Headwords that share an entry (synonyms) give it once; the dictionary's own metadata entries (headwords
    starting with `00-database` or `00database`) are skipped.
    """
    index_path, dict_path = Path(index_path), Path(dict_path)
    try:
        raw = dict_path.read_bytes()
        lines = index_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise ManifestError(f"{err.filename}: cannot read ({err.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ManifestError(f"{dict_path}: corrupt gzip/dictzip data ({err})") from None
    spans: dict[tuple[int, int], str] = {}
    for line_no, line in enumerate(lines, start=1):
        fields = line.split("\t")
        where = f"{index_path}:{line_no}"
        if len(fields) < 3:
            raise ManifestError(f"{where}: expected headword, offset and length separated by tabs, got {line!r}")
        headword = fields[0]
        if headword.startswith(("00-database", "00database")):
            continue
        offset, length = _b64_number(fields[1], where), _b64_number(fields[2], where)
        if offset + length > len(raw):
            raise ManifestError(f"{where}: entry {headword!r} lies past the end of {dict_path}")
        spans.setdefault((offset, length), headword)
    for (offset, length), headword in sorted(spans.items()):
        yield headword, raw[offset:offset + length].decode("utf-8", errors="replace")


# GCIDE writes letters outside ASCII as [codes]; the common ones, read as their English spelling.
_GCIDE_NAMED = {"ae": "ae", "AE": "AE", "oe": "oe", "OE": "OE", "imac": "i", "aum": "a", "eth": "th", "thorn": "th",
                "asl": "a", "add": "a", "udd": "u", "ng": "ng", "yogh": "y", "th": "th", "=ae": "ae", "oo^": "oo",
                "=oo": "oo"}
_GCIDE_ACCENTED = re.compile(r"\[[`'\"^~=.,*-]?([A-Za-z])[`'\"^~=.]?\]")
_GCIDE_CODE = re.compile(r"\[([A-Za-z=^]+)\]")
_PRONUNCIATION = re.compile(r"\\[^\\\n]*\\")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
# "--Shak.", "--Sir T. Browne.", "--Rom. xvi. 1.": an attribution runs from "--Name" to the line's end or a quote.
_ATTRIBUTION = re.compile(r"--(?=[A-Z])[^\"\n]*")
_DOMAIN_LABEL = re.compile(r"\((?:[A-Z][a-z]*\.?\s?){1,3}\)|<[^<>\n]*>")  # (Med.), (Zool. & Bot.), <hardware>
_FOLDOC_DATE = re.compile(r"\(\d{4}-\d{2}-\d{2}\)")
_SENSE = re.compile(r"^(?:\d+\.|\([a-z0-9]\)|[a-z]\))\s+")
_POS = re.compile(r"^(?:(?:n|v|vt|vi|v\.t|v\.i|adj|adv|a|interj|prep|conj|pron|pl|obs|abbrev|imp|p\.p)\.[,\s]*)+")
_CROSS_REF = re.compile(r"\{([^{}*\"\\]*)\}")
_DEVIL_HEAD = re.compile(r"^[^a-z\n]+,\s+(?:[a-z]+\.\s*)+")
DICTD_STYLES = ("gcide", "block", "inline")


def dictd_sentences(index_path: PathLike, dict_path: PathLike, style: str) -> Iterator[str]:
    """Raw prose sentences of a dictd dictionary: definitions, notes, usage examples and quotations.

    style says where an entry's headword ends: "gcide" (GCIDE: headword lines start in column 0, the text is
    indented), "block" (the Jargon File, FOLDOC: the headword lines up to the first blank line), "inline" (the
    Devil's Dictionary: "HEADWORD, n.  Text..."). Removed: pronunciations (\\Ab*jure"\\), everything in brackets
    (etymologies, [1913 Webster], [Obs.], [Usenet]), attributions (--Shak.), domain labels ((Med.), <hardware>),
    FOLDOC's dates, sense numbers and part-of-speech labels, GCIDE's synonym lists (Syn:) and the braces of cross
    references ({Jury} -> Jury); GCIDE's letter codes become letters (H[ae]mal -> Haemal).
    """
    if style not in DICTD_STYLES:
        raise ValueError(f"style must be one of {DICTD_STYLES}, got {style!r}")
    for _, text in dictd_entries(index_path, dict_path):
        yield from _entry_sentences(text, style)


def _entry_sentences(text: str, style: str) -> Iterator[str]:
    if style == "gcide":
        text = _PRONUNCIATION.sub(" ", text)
        text = _GCIDE_ACCENTED.sub(r"\1", text)
        text = _GCIDE_CODE.sub(lambda m: _GCIDE_NAMED.get(m.group(1), m.group(0)), text)
    previous = None
    while previous != text:  # nested brackets, innermost first
        previous, text = text, _BRACKETS.sub(" ", text)
    lines = text.splitlines()
    if style == "gcide":
        lines = [line if line.startswith((" ", "\t")) else "" for line in lines]
    elif style == "block":
        lines = lines[lines.index(""):] if "" in lines else []
    else:
        text = _DEVIL_HEAD.sub("", "\n".join(lines).lstrip())
        lines = text.splitlines()
    for paragraph in "\n".join(lines).split("\n\n"):
        paragraph = " ".join(paragraph.split())
        if not paragraph or paragraph.startswith(("Syn:", "See also", "Compare")):
            continue
        paragraph = _ATTRIBUTION.sub(" ", paragraph)
        paragraph = _FOLDOC_DATE.sub(" ", _DOMAIN_LABEL.sub(" ", paragraph))
        paragraph = _CROSS_REF.sub(r"\1", paragraph).removeprefix("Note:")
        paragraph = _POS.sub("", _SENSE.sub("", paragraph.strip())).strip()
        for sentence in split_sentences(paragraph):
            yield _POS.sub("", _SENSE.sub("", sentence))


# HTML documentation (python3.11-doc, debian-handbook) and Mallard XML (gnome-user-docs, the held-out text).

class _Paragraphs(HTMLParser):
    """Collects the text of paragraphs, <p> elements and DocBook/Publican's <div class="para">; code inside them
    (<code>, <kbd>, Mallard's <cmd>, ...) becomes CODE_MARK, which clean_sentence rejects, so the sentences around
    it are kept and the one holding it is not."""

    _CODE = frozenset({"code", "pre", "kbd", "tt", "var", "samp", "script", "style", "cmd", "input", "output",
                       "sys", "file", "key", "keyseq", "math"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._tag: str | None = None  # the open paragraph's element, and how deep inside same-named elements
        self._nested = 0
        self._code = 0  # open code elements inside the paragraph
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p" or (tag == "div" and ("class", "para") in attrs and self._tag is None):
            self._flush()
            self._tag = tag
        elif tag == self._tag:
            self._nested += 1
        elif tag in self._CODE and self._tag:
            if not self._code:
                self._parts.append(f" {CODE_MARK} ")
            self._code += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag:
            if self._nested:
                self._nested -= 1
            else:
                self._flush()
        elif tag in self._CODE and self._code:
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if self._tag and not self._code:
            self._parts.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        text = " ".join("".join(self._parts).split())
        if self._tag and text:
            self.paragraphs.append(text)
        self._parts, self._tag, self._nested, self._code = [], None, 0, 0


def html_paragraphs(path: PathLike) -> list[str]:
    """The text of the <p> elements of an HTML, XHTML or Mallard (.page) file, code in them as CODE_MARK."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise ManifestError(f"{path}: cannot read ({err.strerror})") from None
    parser = _Paragraphs()
    parser.feed(text)
    parser.close()
    return parser.paragraphs


def html_files(folder: PathLike, suffixes: Sequence[str] = (".html", ".htm", ".page")) -> list[Path]:
    """The documentation files under folder, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: documentation folder not found")
    return sorted(p for p in folder.rglob("*") if p.suffix in suffixes and p.is_file())


def html_sentences(paths: Iterable[PathLike]) -> Iterator[str]:
    """Raw sentences of the <p> paragraphs of documentation files, in the order given."""
    for path in paths:
        for paragraph in html_paragraphs(path):
            yield from split_sentences(paragraph)


# R data packages (r-cran-janeaustenr): character vectors in an R lazy-load database.

class _RVector(list):
    """An R vector or list read by _RReader; attrs holds its attributes (names, class, ...)."""

    attrs: dict[str, object]


_R_SPECIAL = {254, 253, 252, 251, 250, 242, 241}  # NULL, the global/base/empty environments, unbound, missing
_R_PAIRS = {2, 3, 5, 6, 17, 239, 240}  # pairlists, closures, promises, calls, dots, attributed pairlists/calls


class _RReader:
    """R's serialization format, XDR ("X\\n", version 2 or 3), as far as data sets need: vectors, lists, pairlists,
    symbols, environments and references. Other types (byte code, external pointers, ...) raise ManifestError."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where, self.refs = data, 0, where, []

    def read(self) -> object:
        if self.data[:2] != b"X\n":
            raise ManifestError(f"{self.where}: not R data in XDR serialization (starts {self.data[:2]!r})")
        self.pos = 2
        version = self._int()
        self.pos += 8  # the writer's and the minimal reader's R versions
        if version == 3:
            encoding_length = self._int()
            self._take(encoding_length)  # the native encoding's name
        elif version != 2:
            raise ManifestError(f"{self.where}: R serialization version {version} is not supported")
        return self._item()

    def _take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ManifestError(f"{self.where}: truncated R data")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def _int(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def _length(self) -> int:
        n = self._int()
        return n if n != -1 else (self._int() << 32) + self._int()

    def _item(self) -> object:
        flags = self._int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind in _R_SPECIAL:
            return None
        if kind == 255:  # a reference to an earlier symbol or environment
            index = flags >> 8 or self._int()
            return self.refs[index - 1]
        if kind == 1:  # symbol
            name = self._item()
            self.refs.append(name)
            return name
        if kind == 4:  # environment: locked flag, enclosure, frame, hash table, attributes
            self.refs.append(None)
            self._int()
            for _ in range(4):
                self._item()
            return None
        if kind in _R_PAIRS:
            pairs = _RVector()
            attrs = self._attributes() if has_attr else {}
            tag = self._item() if has_tag else None
            pairs.append((tag, self._item()))
            rest = self._item()
            pairs.extend(rest if isinstance(rest, list) else [])
            pairs.attrs = attrs
            return pairs
        if kind == 9:  # CHARSXP: a string, or NA
            n = self._int()
            return None if n == -1 else self._take(n).decode("utf-8", errors="replace")
        if kind == 238:  # ALTREP: class info, state, attributes; the state stands for the vector
            self._item()
            state = self._item()
            self._item()
            return state
        sizes = {10: ">i", 13: ">i", 14: ">d", 15: ">d", 24: "B"}
        vector = _RVector()
        if kind in sizes:
            n = self._length() * (2 if kind == 15 else 1)
            fmt = sizes[kind]
            width = struct.calcsize(fmt)
            vector.extend(struct.unpack(f">{n}{fmt[-1]}" if width > 1 else f"{n}B", self._take(n * width)))
        elif kind in (16, 19, 20):  # character vector, list, expression
            vector.extend(self._item() for _ in range(self._length()))
        else:
            raise ManifestError(f"{self.where}: R object of type {kind} is not supported")
        vector.attrs = self._attributes() if has_attr else {}
        return vector

    def _attributes(self) -> dict[str, object]:
        pairs = self._item()
        return {str(tag): value for tag, value in pairs} if isinstance(pairs, list) else {}


def _r_decompress(blob: bytes, where: str) -> bytes:
    """An object of an R lazy-load database: 4 bytes big-endian uncompressed length, then zlib data, or a type
    byte ('Z' xz, '2' bzip2, '0' stored) and the data."""
    import bz2
    import lzma

    body = blob[4:]
    try:
        if body[:1] == b"Z":
            return lzma.decompress(body[1:])
        if body[:1] == b"2":
            return bz2.decompress(body[1:])
        if body[:1] == b"0":
            return body[1:]
        return zlib.decompress(body)
    except (zlib.error, lzma.LZMAError, OSError, ValueError) as err:
        raise ManifestError(f"{where}: corrupt compressed R object ({err})") from None


def rdata_objects(data_dir: PathLike) -> dict[str, object]:
    """The data sets of an installed R package's data/ folder (its lazy-load database Rdata.rdx + Rdata.rdb):
    name -> value, a character vector read as a list of str (None for NA)."""
    data_dir = Path(data_dir)
    rdx, rdb = data_dir / "Rdata.rdx", data_dir / "Rdata.rdb"
    try:
        index_blob, db = rdx.read_bytes(), rdb.read_bytes()
    except OSError as err:
        raise ManifestError(f"{err.filename}: cannot read ({err.strerror})") from None
    try:
        index = _RReader(gzip.decompress(index_blob) if index_blob[:2] == b"\x1f\x8b"
                         else _r_decompress(index_blob, str(rdx)), str(rdx)).read()
    except (OSError, EOFError) as err:
        raise ManifestError(f"{rdx}: not an R lazy-load index ({err})") from None
    attrs = getattr(index, "attrs", {})
    names = attrs.get("names") if isinstance(attrs, dict) else None
    if not isinstance(index, list) or not names or "variables" not in names:
        raise ManifestError(f"{rdx}: not an R lazy-load index (no 'variables')")
    variables = index[names.index("variables")]
    objects = {}
    for name, (offset, length) in zip(variables.attrs.get("names", []), variables):
        where = f"{rdb}[{name}]"
        objects[name] = _RReader(_r_decompress(db[int(offset):int(offset) + int(length)], where), where).read()
    return objects


def rdata_text_sentences(data_dir: PathLike, names: Sequence[str] | None = None) -> Iterator[str]:
    """Raw sentences of the character vectors (one printed line each, "" between paragraphs) of an R data
    package, e.g. janeaustenr's six novels: paragraphs joined, _italics_ marks dropped, chapter headings left out
    (they end without a full stop)."""
    objects = rdata_objects(data_dir)
    for name in names or sorted(objects):
        lines = objects.get(name)
        if not isinstance(lines, list) or not all(isinstance(line, str) or line is None for line in lines):
            continue
        for is_text, group in itertools.groupby(lines, key=lambda line: bool(line and line.strip())):
            if is_text:
                yield from split_sentences(" ".join(group).replace("_", ""))


# Fortunes and WordNet: the synthetic corpus's text.

def synthetic_sentences() -> Iterator[tuple[str, str]]:
    """(origin, raw sentence) of the fortunes collections and WordNet's usage examples, read where the synthetic
    corpus reads them (asr.corpora.synthetic.FORTUNES_DIR, WORDNET_DIR) and as it reads them, every sentence, not only
    the speakable ones it synthesizes. Raises ManifestError when neither is installed."""
    if not synthetic.FORTUNES_DIR.is_dir() and not synthetic.WORDNET_DIR.is_dir():
        raise ManifestError(f"{synthetic.FORTUNES_DIR}: fortunes not found, nor {synthetic.WORDNET_DIR} "
                            "(apt-get install fortunes fortunes-min wordnet-base, as scripts/setup.sh does)")
    for origin, raw in itertools.chain(synthetic.fortune_sentences(), synthetic.wordnet_examples()):
        yield origin, " ".join(raw.split())


# What must never enter LM text: the dev and test sentences.

@dataclass(frozen=True)
class HeldOut:
    """Normalized sentences of dev and test sets. `pool`: dropped where a source's sentence equals one (the
    synthetic corpus's dev/test pools); `phrases`: dropped where a source's sentence contains one (real-speech
    transcripts of several words)."""

    pool: frozenset[str]
    phrases: frozenset[str] = frozenset()
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.phrases:
            alternatives = "|".join(re.escape(p) for p in sorted(self.phrases, key=len, reverse=True))
            object.__setattr__(self, "_pattern", re.compile(rf"(?<![a-z'])(?:{alternatives})(?![a-z'])"))

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and (
            text in self.pool or (self._pattern is not None and self._pattern.search(text) is not None))


def synthetic_held_out(sentences: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The normalized fortunes/WordNet sentences that asr.corpora.synthetic.split_of puts in dev or test: a superset of
    the synthetic corpus's dev/test pools (those are the speakable ones among them)."""
    held = set()
    for _, raw in sentences:
        text = normalize(raw)
        if text and synthetic.split_of(text) != "train":
            held.add(text)
    return frozenset(held)


def realspeech_phrases(warzone_root: PathLike | None = None, manifests: Iterable[PathLike] = ()) -> frozenset[str]:
    """Normalized transcripts of several words of the real-speech dev set: the Harvard sentences of
    recipes/realspeech/realspeech_sources.py (each alone and as codec2's recordings join them), the warzone2100
    tutorial lines it keeps (read from the extracted warzone2100-data tree, when given) and the multi-word `text` of
    any manifest given."""
    texts = [realspeech.HARVARD[key] for key in realspeech.HARVARD]
    texts += [" ".join(realspeech.HARVARD[key] for key in keys) for _, keys in realspeech.CODEC2_WHOLE.values()]
    if warzone_root is not None:
        texts += realspeech.confirmed_tutorial_lines(realspeech.warzone_base(warzone_root)).values()
    for manifest in manifests:
        texts += [entry["text"] for entry in read_manifest(manifest, check_audio=False)]
    return frozenset(text for text in map(normalize, texts) if len(text.split()) > 1)


# Putting the sources together.

@dataclass
class SourceStats:
    """What one source gave: sentences and words kept, and sentences dropped (held-out, duplicates, not prose)."""

    name: str
    sentences: int = 0
    words: int = 0
    held_out: int = 0
    duplicates: int = 0
    rejected: int = 0


def collect(sources: Iterable[tuple[str, Iterable[str]]], held_out: HeldOut, seen: set[str] | None = None,
            train_only: Sequence[str] = ()) -> tuple[list[str], list[SourceStats]]:
    """Normalized, deduplicated LM sentences of (name, raw sentences) sources, in the order given, and per-source
    statistics. A sentence is dropped when clean_sentence rejects it, when held_out holds it, when an earlier one
    had the same text, and, for the sources named in train_only (the synthetic corpus's), when
    asr.corpora.synthetic.split_of does not put it in 'train'. seen: texts already taken (updated in place)."""
    seen = set() if seen is None else seen
    kept: list[str] = []
    stats: list[SourceStats] = []
    for name, raws in sources:
        stat = SourceStats(name)
        for raw in (piece for whole in raws for piece in sentence_pieces(whole)):
            text = clean_sentence(raw)
            if text is None:
                stat.rejected += 1
            elif text in held_out or (name in train_only and synthetic.split_of(text) != "train"):
                stat.held_out += 1
            elif text in seen:
                stat.duplicates += 1
            else:
                seen.add(text)
                kept.append(text)
                stat.sentences += 1
                stat.words += text.count(" ") + 1
        stats.append(stat)
    return kept, stats


def word_counts(sentences: Iterable[str]) -> Counter[str]:
    """How often each word occurs in normalized sentences."""
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(sentence.split())
    return counts


# The vocabulary.

def spelled(word: str) -> str | None:
    """A word as the model spells it (normalize, a-z and apostrophe), or None when it is not one such word: it
    holds digits, becomes several words or none, or has letters normalize() would delete."""
    if any(c.isdigit() for c in word):
        return None
    text = normalize(word)
    if not text or " " in text or not _VOCAB.covers(text) or unspellable(word, text):
        return None
    return text


def wordfreq_reference(language: str = "en", wordlist: str = "large") -> list[tuple[str, float]]:
    """(word, frequency) of the wordfreq package's list (CC-BY-SA-4.0; 'large' holds about 321,000 English
    words), most frequent first. wordfreq is imported here only: nothing else needs it."""
    import wordfreq

    return [(word, wordfreq.word_frequency(word, language, wordlist))
            for word in wordfreq.iter_wordlist(language, wordlist)]


def build_vocabulary(counts: Mapping[str, int], reference: Iterable[tuple[str, float]] = (), size: int = 150_000,
                     text_weight: float = 0.25, min_count: int = 2) -> list[str]:
    """The `size` most frequent words across a reference frequency list and LM-text counts, most frequent first
    (ties alphabetical), each spelled as the model spells it (`spelled`; spellings that meet, café and cafe,
    add up).

    A word's score is (1 - text_weight) * its reference frequency + text_weight * count / total words of the text.
    Words of the text need min_count occurrences (typos and one-off names stay out) unless the reference lists them.
    """
    if not 0 <= text_weight <= 1:
        raise ValueError(f"text_weight must be in [0, 1], got {text_weight}")
    score: dict[str, float] = {}
    for word, freq in reference:
        text = spelled(word)
        if text is not None and freq > 0:
            score[text] = score.get(text, 0.0) + (1 - text_weight) * freq
    total = sum(counts.values())
    for word, count in counts.items():
        text = spelled(word)
        if text is not None and total and (count >= min_count or text in score):
            score[text] = score.get(text, 0.0) + text_weight * count / total
    return sorted(score, key=lambda w: (-score[w], w))[:size]


def oov_rate(sentences: Iterable[str], vocabulary: Iterable[str]) -> tuple[int, int, Counter[str]]:
    """(out-of-vocabulary tokens, all tokens, OOV word counts) of normalized sentences."""
    known = set(vocabulary)
    counts = word_counts(sentences)
    oov = Counter({word: count for word, count in counts.items() if word not in known})
    return sum(oov.values()), sum(counts.values()), oov


def write_lines(path: PathLike, lines: Iterable[str]) -> None:
    """Write one item per line, UTF-8, atomically (a temp file, then a rename)."""
    with atomic_open(path) as f:
        for line in lines:
            f.write(line + "\n")


# The Debian packages, each read from its extracted tree (`dpkg-deb -x NAME_*.deb ROOT`).

def _dictd(name: str, style: str) -> Callable[[Path], Iterator[str]]:
    def read(root: Path) -> Iterator[str]:
        base = root / "usr" / "share" / "dictd" / name
        data = base.with_name(f"{name}.dict.dz")
        if not data.is_file():
            data = base.with_name(f"{name}.dict")
        return dictd_sentences(base.with_name(f"{name}.index"), data, style)
    return read


def _bible(root: Path) -> Iterator[str]:
    for module in find_ztext_modules(root):
        yield from ztext_sentences(module)


def _docs(*folder: str) -> Callable[[Path], Iterator[str]]:
    return lambda root: html_sentences(html_files(root.joinpath(*folder)))


# Package -> its raw sentences, in the order the LM text takes them.
PACKAGES: dict[str, Callable[[Path], Iterator[str]]] = {
    "sword-text-web": _bible,
    "dict-gcide": _dictd("gcide", "gcide"),
    "dict-jargon": _dictd("jargon", "block"),
    "dict-devil": _dictd("devil", "inline"),
    "dict-foldoc": _dictd("foldoc", "block"),
    "r-cran-janeaustenr": lambda root: rdata_text_sentences(
        root / "usr" / "lib" / "R" / "site-library" / "janeaustenr" / "data"),
    "python3.11-doc": _docs("usr", "share", "doc", "python3.11", "html"),
}
# Modern prose that is never LM text: held out to measure the vocabulary's out-of-vocabulary rate.
HELD_OUT_PACKAGES: dict[str, Callable[[Path], Iterator[str]]] = {
    "gnome-user-docs": _docs("usr", "share", "help", "C"),
    "debian-handbook": _docs("usr", "share", "doc", "debian-handbook", "html", "en-US"),
}
# The synthetic corpus's text, read from the system (asr.corpora.synthetic), taken after the packages.
SYNTHETIC_SOURCES = ("fortunes", "wordnet")


def lm_sentences(roots: Mapping[str, PathLike], held_out: HeldOut,
                 synthetic_text: Sequence[tuple[str, str]] = ()) -> tuple[list[str], list[SourceStats]]:
    """The LM text: normalized, deduplicated sentences of the packages (name -> extracted tree, names of
    PACKAGES, read in PACKAGES' order), then of the synthetic corpus's (origin, raw) sentences (fortunes, WordNet;
    only those split_of puts in 'train'), none that held_out holds; and what each source gave."""
    unknown = sorted(set(roots) - set(PACKAGES))
    if unknown:
        raise ValueError(f"unknown packages {unknown}; known: {sorted(PACKAGES)}")
    sources: list[tuple[str, Iterable[str]]] = []
    for name in PACKAGES:
        if name in roots:
            root = Path(roots[name])
            if not root.is_dir():
                raise ManifestError(f"{root}: package folder not found (apt-get download {name} && "
                                    f"dpkg-deb -x {name}_*.deb {root})")
            sources.append((name, PACKAGES[name](root)))
    for origin in SYNTHETIC_SOURCES:
        sources.append((origin, _from_origin(synthetic_text, origin)))
    return collect(sources, held_out, train_only=SYNTHETIC_SOURCES)


def _from_origin(sentences: Sequence[tuple[str, str]], origin: str) -> Iterator[str]:
    """The raw sentences whose origin ('fortunes/art', 'wordnet/noun') starts with origin."""
    return (raw for source, raw in sentences if source.partition("/")[0] == origin)
