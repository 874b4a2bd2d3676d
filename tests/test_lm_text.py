"""LM text from Debian packages (recipes/lm/lm_text.py and prepare.py): miniature sources written at test time in each
package's real format (a SWORD zText module, dictd .index + .dict/.dict.dz, an R lazy-load database, HTML and
Mallard pages, fortunes and WordNet files, warzone2100's base.wz). The real packages are never needed."""
from __future__ import annotations

import gzip
import importlib.util
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "recipes" / "lm"), str(REPO / "recipes" / "realspeech")]

import lm_text  # noqa: E402 (recipes/lm/lm_text.py)

from asr import ManifestError  # noqa: E402
from asr.corpora import synthetic  # noqa: E402
from asr.decoding.lm import read_training_text  # noqa: E402
from asr.text import normalize  # noqa: E402

from conftest import assert_fails_naming, run_recipe  # noqa: E402


# A SWORD zText module: <t>.bzs (blocks), <t>.bzv (verse slots), <t>.bzz (zlib blocks).

def write_ztext(module: Path, testaments: dict[str, list[list[str]]]) -> None:
    """testament -> books -> verse markup; slot 0 is empty and slot 1 the module heading, as osis2mod writes."""
    module.mkdir(parents=True, exist_ok=True)
    for testament, books in testaments.items():
        bzs, bzv, bzz = bytearray(), bytearray(), bytearray()
        blocks = [["<milestone type=\"x-importer\"/>"], *books]
        bzv += struct.pack("<IIH", 0, 0, 0)
        for number, verses in enumerate(blocks):
            text = b""
            for verse in verses:
                data = verse.encode("utf-8")
                bzv += struct.pack("<IIH", number, len(text), len(data))
                text += data
            bzv += struct.pack("<IIH", number, len(text), 0)  # an empty slot (a missing verse)
            compressed = zlib.compress(text)
            bzs += struct.pack("<III", len(bzz), len(compressed), len(text))
            bzz += compressed
        for ext, data in (("bzs", bzs), ("bzv", bzv), ("bzz", bzz)):
            (module / f"{testament}.{ext}").write_bytes(bytes(data))


GENESIS = [
    '<div sID="gen1" type="book"/><title type="main">The First Book of Moses</title>',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/>',
    '<w lemma="strong:H0430">In</w> <w lemma="strong:H0853">the</w> beginning, <w lemma="x">God</w>'
    '<note placement="foot"><reference type="annotateRef">1:1 </reference>The Hebrew word rendered “God” is '
    '“אֱלֹהִ֑ים” (Elohim).</note> created the heavens and the earth.',
    'The earth was formless and empty. Darkness was on the surface',  # this sentence ends in the next verse
    'of the deep and <q who="God">God’s Spirit</q> was hovering over the surface of the waters.',
    '<div type="x-milestone" subType="x-preverse" sID="pv1"/>God said, “Let there be light,” and there was light.',
]
MATTHEW = ['<speaker>Beloved</speaker><l sID="x1"/>Blessed are the poor in spirit,<lb/>for theirs is the '
           'Kingdom of Heaven.<l eID="x1"/>', 'Jesus wept.']


def bible_root(root: Path) -> Path:
    module = root / "usr" / "share" / "sword" / "modules" / "texts" / "ztext" / "mini"
    write_ztext(module, {"ot": [GENESIS], "nt": [MATTHEW]})
    return module


def test_ztext_verses_reads_the_module_layout(tmp_path):
    module = bible_root(tmp_path)
    verses = list(lm_text.ztext_verses(module))
    assert [(t, block) for t, block, _ in verses][:3] == [("ot", 0), ("ot", 1), ("ot", 1)]
    assert [text for t, _, text in verses if t == "ot"][1:] == GENESIS
    assert [text for t, _, text in verses if t == "nt"][1:] == MATTHEW
    assert lm_text.find_ztext_modules(tmp_path) == [module]


def test_ztext_sentences_strip_markup_and_join_verses():
    assert lm_text.strip_bible_markup(GENESIS[2]) == \
        "In the beginning, God created the heavens and the earth."
    assert lm_text.strip_bible_markup(MATTHEW[0]) == \
        "Blessed are the poor in spirit, for theirs is the Kingdom of Heaven."
    assert lm_text.strip_bible_markup("<WG1234>Grace<FI>to<Fi> you.<RF>a note<Rf>") == "Graceto you."


def test_ztext_sentences(tmp_path):
    sentences = list(lm_text.ztext_sentences(bible_root(tmp_path)))
    assert sentences == [
        "In the beginning, God created the heavens and the earth.",
        "The earth was formless and empty.",
        "Darkness was on the surface of the deep and God's Spirit was hovering over the surface of the waters.",
        'God said, "Let there be light," and there was light.',
        "Blessed are the poor in spirit, for theirs is the Kingdom of Heaven.",
        "Jesus wept."]
    assert all("Hebrew" not in s and "First Book" not in s and "Beloved" not in s for s in sentences)


def test_ztext_errors_name_the_file(tmp_path):
    module = bible_root(tmp_path)
    with pytest.raises(ManifestError, match="no ot.bzs or nt.bzs"):
        list(lm_text.ztext_verses(tmp_path))
    bzv = module / "nt.bzv"
    bzv.write_bytes(bzv.read_bytes()[:-3])
    with pytest.raises(ManifestError, match=r"nt\.bzv: .*not a whole number of 10-byte records"):
        list(lm_text.ztext_verses(module))
    bzz = module / "ot.bzz"
    bzz.write_bytes(b"\x00" * len(bzz.read_bytes()))
    with pytest.raises(ManifestError, match=r"ot\.bzz: block 0 is not zlib data"):
        list(lm_text.ztext_verses(module))
    with pytest.raises(ManifestError, match="no SWORD zText module"):
        lm_text.find_ztext_modules(tmp_path / "nothing")


# dictd: NAME.index (headword, base-64 offset, base-64 length) + NAME.dict or NAME.dict.dz.

def b64(n: int) -> str:
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out = ""
    while True:
        out = digits[n % 64] + out
        n //= 64
        if not n:
            return out


def write_dictd(folder: Path, name: str, entries: list[tuple[list[str], str]], compress: bool = True) -> Path:
    """entries: (headwords, text); written in order, indexed sorted by headword as dictfmt does."""
    folder.mkdir(parents=True, exist_ok=True)
    data, index = b"", []
    for headwords, text in entries:
        raw = text.encode("utf-8")
        index += [f"{word}\t{b64(len(data))}\t{b64(len(raw))}" for word in headwords]
        data += raw
    (folder / f"{name}.index").write_text("\n".join(sorted(index)) + "\n", encoding="utf-8")
    if compress:
        (folder / f"{name}.dict.dz").write_bytes(gzip.compress(data))
    else:
        (folder / f"{name}.dict").write_bytes(data)
    return folder / f"{name}.index"


GCIDE = [
    (["00-database-info"], "This file was converted from the original database.\n"),
    (["Abjure"], 'Abjure \\Ab*jure"\\, v. t. [imp. & p. p. {Abjured}; p. pr. & vb.\n'
                 "   n. {Abjuring}.] [L. abjurare to deny upon oath; ab + jurare\n"
                 "   to swear. See {Jury}.]\n"
                 "   1. To renounce upon oath; to forswear; to disavow; as, to\n"
                 "      abjure allegiance to a prince. --Blackstone.\n"
                 "      [1913 Webster]\n\n"
                 "   2. (Med.) To reject with solemnity; to abandon forever; as, to\n"
                 '      abjure errors. "Magic I here abjure." --Shak.\n'
                 "      [1913 Webster]\n\n"
                 "   Syn: To recant; retract; revoke; recall.\n"
                 "        [1913 Webster]\n\n"),
    (["Haemal", "Hemal"], "H[ae]mal \\H[ae]"
                          "mal\\, a.\n   Relating to the blood or blood vessels of H[ae]mal animals.\n"
                          "   [1913 Webster]\n\n"
                          "         The quality of mercy is not strained;\n"
                          "         It droppeth as the gentle rain from heaven. --Shak.\n"
                          "   [1913 Webster]\n\n"),
]


def test_dictd_entries_reads_index_and_dictzip(tmp_path):
    index = write_dictd(tmp_path, "gcide", GCIDE)
    entries = list(lm_text.dictd_entries(index, tmp_path / "gcide.dict.dz"))
    assert [word for word, _ in entries] == ["Abjure", "Haemal"]  # file order; metadata skipped; shared once
    assert entries[0][1] == GCIDE[1][1]
    plain = write_dictd(tmp_path / "plain", "gcide", GCIDE, compress=False)
    assert list(lm_text.dictd_entries(plain, tmp_path / "plain" / "gcide.dict")) == entries


def test_dictd_gcide_sentences_without_markup(tmp_path):
    index = write_dictd(tmp_path, "gcide", GCIDE)
    sentences = list(lm_text.dictd_sentences(index, tmp_path / "gcide.dict.dz", "gcide"))
    assert sentences == [
        "To renounce upon oath; to forswear; to disavow; as, to abjure allegiance to a prince.",
        "To reject with solemnity; to abandon forever; as, to abjure errors.",
        '"Magic I here abjure."',
        "Relating to the blood or blood vessels of Haemal animals.",
        "The quality of mercy is not strained; It droppeth as the gentle rain from heaven."]


def test_dictd_block_and_inline_headwords(tmp_path):
    jargon = write_dictd(tmp_path, "jargon", [
        (["broken"], "broken\n adj.\n\n    1. Not working according to design (of programs). This is the\n"
                     "    mainstream sense. See also {UN*X}.\n\n"),
        (["-fu"], "-fu\n\n\n    [common; generalized from kung-fu] Combining form denoting expert practice\n"
                  "    of a skill. \u201cThat's going to take some serious code-fu.\u201d\n\n")])
    assert list(lm_text.dictd_sentences(jargon, tmp_path / "jargon.dict.dz", "block")) == [
        "Not working according to design (of programs).", "This is the mainstream sense.",
        "See also {UN*X}.",  # a cross reference holding markup: clean_sentence rejects it
        "Combining form denoting expert practice of a skill.", "\"That's going to take some serious code-fu.\""]
    devil = write_dictd(tmp_path, "devil", [
        (["00databaseinfo"], "The Devil's Dictionary\n"),
        (["rite"], "RITE, n.  A religious or semi-religious ceremony fixed by law, precept\nor custom, with the "
                   "essential oil of sincerity carefully squeezed out\nof it.\n\n")])
    assert list(lm_text.dictd_sentences(devil, tmp_path / "devil.dict.dz", "inline")) == [
        "A religious or semi-religious ceremony fixed by law, precept or custom, with the essential oil of "
        "sincerity carefully squeezed out of it."]
    foldoc = write_dictd(tmp_path, "foldoc", [
        (["tts", "text to speech"], "Text To Speech\nTTS\n\n   <application> (TTS) Automatic conversion of text "
                                    "streams to\n   voice.\n\n   [Details?]\n\n   (1997-05-11)\n\n")])
    assert list(lm_text.dictd_sentences(foldoc, tmp_path / "foldoc.dict.dz", "block")) == [
        "Automatic conversion of text streams to voice."]  # (TTS): a parenthesized label


def test_dictd_errors_name_the_file_and_line(tmp_path):
    index = write_dictd(tmp_path, "devil", [(["rite"], "RITE, n.  A rite.\n")])
    index.write_text("rite\tA\n")
    with pytest.raises(ManifestError, match=r"devil\.index:1: expected headword, offset and length"):
        list(lm_text.dictd_entries(index, tmp_path / "devil.dict.dz"))
    index.write_text("rite\tA\tZZ\n")
    with pytest.raises(ManifestError, match="lies past the end"):
        list(lm_text.dictd_entries(index, tmp_path / "devil.dict.dz"))
    with pytest.raises(ManifestError, match=r"missing\.dict: cannot read"):
        list(lm_text.dictd_entries(index, tmp_path / "missing.dict"))


# An R lazy-load database (data/Rdata.rdx + Rdata.rdb), as janeaustenr's.

R_HEADER = b"X\n" + struct.pack(">iiii", 3, 0x40201, 0x30500, 5) + b"UTF-8"  # XDR, version 3, UTF-8


def r_names(names: list[str]) -> bytes:
    """An attribute pairlist holding names: (tag symbol 'names', character vector), then NULL."""
    return (struct.pack(">iii", 2 | (1 << 10), 1, 9 | (1 << 15)) + struct.pack(">i", 5) + b"names"
            + r_strings(names) + struct.pack(">i", 254))


def r_strings(texts: list[str]) -> bytes:
    out = struct.pack(">ii", 16, len(texts))
    for text in texts:
        data = text.encode("utf-8")
        out += struct.pack(">ii", 9 | (1 << 15), len(data)) + data
    return out


def r_list(items: list[bytes], names: list[str]) -> bytes:
    return struct.pack(">ii", 19 | (1 << 9), len(items)) + b"".join(items) + r_names(names)


def r_ints(values: tuple[int, ...]) -> bytes:
    return struct.pack(">ii", 13, len(values)) + struct.pack(f">{len(values)}i", *values)


def write_rdata(folder: Path, objects: dict[str, list[str]]) -> None:
    """data/Rdata.rdb (each object: 4-byte length + zlib of its serialization) and Rdata.rdx (gzip of
    list(variables = list(name = c(offset, length)), references = list(), compressed = TRUE))."""
    folder.mkdir(parents=True)
    db, spans = b"", []
    for lines in objects.values():
        data = R_HEADER + r_strings(lines)
        blob = struct.pack(">I", len(data)) + zlib.compress(data)
        spans.append(r_ints((len(db), len(blob))))
        db += blob
    (folder / "Rdata.rdb").write_bytes(db)
    index = r_list([r_list(spans, list(objects)), r_list([], []), struct.pack(">iii", 10, 1, 1)],
                   ["variables", "references", "compressed"])
    (folder / "Rdata.rdx").write_bytes(gzip.compress(R_HEADER + index))


def test_rdata_text_sentences(tmp_path):
    data = tmp_path / "janeaustenr" / "data"
    write_rdata(data, {"emma": ["EMMA", "", "By Jane Austen", "", "CHAPTER I", "",
                                "Emma Woodhouse, handsome, clever, and rich, seemed to unite",
                                "some of the _best_ blessings of existence.", "", "\"Poor Miss Taylor!\" said she."],
                       "persuasion": ["Persuasion", "", "She had been forced into prudence in her youth."]})
    assert lm_text.rdata_objects(data)["persuasion"] == ["Persuasion", "",
                                                         "She had been forced into prudence in her youth."]
    assert list(lm_text.rdata_text_sentences(data)) == [
        "Emma Woodhouse, handsome, clever, and rich, seemed to unite some of the best blessings of existence.",
        '"Poor Miss Taylor!"', "said she.", "She had been forced into prudence in her youth."]
    (data / "Rdata.rdb").write_bytes(b"\x00\x00\x00\x10garbage")
    with pytest.raises(ManifestError, match=r"Rdata\.rdb\[emma\]: corrupt compressed R object"):
        lm_text.rdata_objects(data)


# HTML and Mallard documentation.

def test_html_paragraphs_leave_out_code(tmp_path):
    page = tmp_path / "doc.html"
    page.write_text("<html><body><h1>Title.</h1><p>Call the <code>print()</code> function. It writes text to the "
                    "screen.</p><pre>print('hi')</pre><div class=\"para\">Debian uses <em>packages</em> for "
                    "software. <div class=\"note\">Nested blocks end the para.</div></div>"
                    "<p>Fish &amp; chips are tasty.</p></body></html>")
    assert lm_text.html_paragraphs(page) == [
        f"Call the {lm_text.CODE_MARK} function. It writes text to the screen.",
        "Debian uses packages for software. Nested blocks end the para.", "Fish & chips are tasty."]
    assert list(lm_text.html_sentences([page])) == [
        f"Call the {lm_text.CODE_MARK} function.", "It writes text to the screen.",
        "Debian uses packages for software.", "Nested blocks end the para.", "Fish & chips are tasty."]
    mallard = tmp_path / "help" / "net-wireless.page"
    mallard.parent.mkdir()
    mallard.write_text('<page xmlns="http://projectmallard.org/1.0/"><title>Wi-Fi</title><p>Click the '
                       '<gui>Wi-Fi</gui> icon to connect. Press <key>Ctrl</key> to stop.</p></page>')
    assert lm_text.html_files(tmp_path) == [page, mallard]
    assert [lm_text.clean_sentence(s) for s in lm_text.html_sentences([mallard])] == [
        "click the wi fi icon to connect", None]
    with pytest.raises(ManifestError, match="documentation folder not found"):
        lm_text.html_files(tmp_path / "nothing")


# Sentences: what is prose, and what must stay out.

def test_clean_sentence():
    assert lm_text.clean_sentence("It cost $5 in 1990, didn't it?") == \
        "it cost five dollars in nineteen ninety didn't it"
    assert lm_text.clean_sentence("Café society met on the 21st.") == "cafe society met on the twenty first"
    for raw in ("See http://example.org for more.", "Set x = 3 in the file.", "The word is λόγος in Greek.",
                "Call 0-887-30787-6 or 4S700R today.", "Verse 1:1 says so.", "Two words.",
                "In the 1990s it grew.", "An x_y name here.", " ".join(["word"] * 101) + "."):
        assert lm_text.clean_sentence(raw) is None, raw
    long = "; ".join(["the cat sat on the mat"] * 20) + "."
    assert len(lm_text.sentence_pieces(long)) == 20 and lm_text.sentence_pieces("A short one.") == ["A short one."]


def sentences_by_split(candidates: list[str]) -> dict[str, list[str]]:
    by_split: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for raw in candidates:
        by_split[synthetic.split_of(normalize(raw))].append(raw)
    return by_split


CANDIDATES = [f"The {a} {b} walked along the {c} road." for a in ("old", "young", "tall", "small", "kind")
              for b in ("farmer", "sailor", "teacher", "doctor", "baker") for c in ("long", "quiet", "dusty")]


@pytest.fixture
def synthetic_text(tmp_path, monkeypatch) -> dict[str, list[str]]:
    """Fortunes and WordNet files in tmp_path, read by asr.corpora.synthetic; returns the candidates by split."""
    fortunes, wordnet = tmp_path / "fortunes", tmp_path / "wordnet"
    fortunes.mkdir()
    wordnet.mkdir()
    by_split = sentences_by_split(CANDIDATES)
    assert all(len(v) >= 2 for v in by_split.values())
    (fortunes / "people").write_text("\n%\n".join(CANDIDATES[:40]) + "\n%\nTo err is human.\n\t-- Pope\n")
    (fortunes / "people.dat").write_bytes(b"\x00\x01")  # strfile's index: not read
    glosses = "; ".join(f'"{raw[:-1]}"' for raw in CANDIDATES[40:])
    (wordnet / "data.noun").write_text("  1 This software and database is licensed\n"
                                       f"00001740 03 n 01 entity 0 000 | a walker; {glosses}\n")
    monkeypatch.setattr(synthetic, "FORTUNES_DIR", fortunes)
    monkeypatch.setattr(synthetic, "WORDNET_DIR", wordnet)
    return by_split


def test_synthetic_sentences_and_their_held_out_pool(synthetic_text):
    read = list(lm_text.synthetic_sentences())
    assert [origin for origin, _ in read] == ["fortunes/people"] * 41 + ["wordnet/noun"] * 35
    assert read[40] == ("fortunes/people", "To err is human.")
    assert read[41][1] == CANDIDATES[40][:-1]
    pool = lm_text.synthetic_held_out(read)
    assert pool == {normalize(raw) for raw in synthetic_text["dev"] + synthetic_text["test"]}


def test_synthetic_sentences_need_the_text_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "FORTUNES_DIR", tmp_path / "no-fortunes")
    monkeypatch.setattr(synthetic, "WORDNET_DIR", tmp_path / "no-wordnet")
    with pytest.raises(ManifestError, match="no-fortunes: fortunes not found"):
        list(lm_text.synthetic_sentences())


def make_warzone(root: Path) -> Path:
    base_wz = root / "usr" / "share" / "games" / "warzone2100" / "base.wz"
    base_wz.parent.mkdir(parents=True)
    script = ('{"audio": "tut2.ogg", "clear": false, "message": _("Oil resources are key to your success.")},\n'
              '{"audio": "tut5.ogg", "clear": false, "message": _("The oil derrick is currently dormant.")},\n')
    with zipfile.ZipFile(base_wz, "w") as archive:
        archive.writestr("script/tutorial.js", script)
    return root


def test_held_out_phrases_and_pool(tmp_path):
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text('{"audio_filepath": "a.wav", "duration": 1.0, "text": "Zebra"}\n'
                        '{"audio_filepath": "b.wav", "duration": 1.0, "text": "Left click the wheels icon."}\n')
    phrases = lm_text.realspeech_phrases(make_warzone(tmp_path / "wz"), [manifest])
    assert "oil resources are key to your success" in phrases  # a confirmed tutorial line
    assert "the oil derrick is currently dormant" not in phrases  # not in the dev set
    assert "the birch canoe slid on the smooth planks" in phrases and "left click the wheels icon" in phrases
    assert "zebra" not in phrases  # single words stay: a vocabulary needs them
    held = lm_text.HeldOut(frozenset({"a dev sentence here"}), phrases)
    assert "a dev sentence here" in held and "not a dev sentence here" not in held
    assert "he said the birch canoe slid on the smooth planks today" in held
    assert "the birch canoe slid on the smooth plankston" not in held


def test_collect_drops_held_out_and_duplicates(synthetic_text):
    dev = synthetic_text["dev"][0]
    held = lm_text.HeldOut(frozenset({normalize(dev)}), frozenset({"the navy attacked the big task force"}))
    sources = [("bible", ["The sun rose over the hills.", dev, "The sun rose over the hills!",
                          "Then the Navy attacked the big task force at dawn.", "See {Jury}."]),
               ("fortunes", [*synthetic_text["train"][:2], *synthetic_text["test"][:2]])]
    kept, stats = lm_text.collect(sources, held, train_only=("fortunes",))
    assert kept == ["the sun rose over the hills", *map(normalize, synthetic_text["train"][:2])]
    assert [(s.name, s.sentences, s.held_out, s.duplicates, s.rejected) for s in stats] == [
        ("bible", 1, 2, 1, 1), ("fortunes", 2, 2, 0, 0)]
    assert stats[0].words == 6


# The vocabulary.

def test_spelled_and_vocabulary_order():
    assert lm_text.spelled("Café") == "cafe" and lm_text.spelled("don't") == "don't"
    for word in ("u.s.", "4x4", "東京", "", "--"):
        assert lm_text.spelled(word) is None, word
    reference = [("the", 0.05), ("of", 0.03), ("café", 0.0004), ("cafe", 0.0002), ("東京", 0.001), ("u.s.", 0.001),
                 ("zebra", 0.0001), ("apple", 0.0001), ("00", 0.01)]
    counts = {"the": 600, "of": 300, "yahweh": 80, "hapax": 1, "cafe": 19}
    vocabulary = lm_text.build_vocabulary(counts, reference, size=10, text_weight=0.25)
    assert vocabulary == ["the", "of", "yahweh", "cafe", "apple", "zebra"]  # ties alphabetical; hapax too rare
    assert lm_text.build_vocabulary(counts, reference, size=3) == ["the", "of", "yahweh"]
    assert lm_text.build_vocabulary(counts, size=10, min_count=1) == ["the", "of", "yahweh", "cafe", "hapax"]
    with pytest.raises(ValueError, match="text_weight"):
        lm_text.build_vocabulary(counts, reference, text_weight=2)
    oov, total, top = lm_text.oov_rate(["the zebra ate the yak", "a yak"], vocabulary)
    assert (oov, total, top.most_common(1)) == (4, 7, [("yak", 2)])


def test_wordfreq_reference():
    pytest.importorskip("wordfreq")
    reference = lm_text.wordfreq_reference("en", "small")
    assert reference[0][0] == "the" and len(reference) > 20_000
    assert all(a[1] >= b[1] for a, b in zip(reference, reference[1:]))
    vocabulary = lm_text.build_vocabulary({}, reference, size=20_000)
    assert {"tutorial", "updates", "outputs"} <= set(vocabulary)


# recipes/lm/prepare.py

def load_prepare():
    spec = importlib.util.spec_from_file_location("lm_prepare", REPO / "recipes" / "lm" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_debs(debs: Path) -> None:
    bible_root(debs / "sword-text-web")
    write_dictd(debs / "dict-gcide" / "usr" / "share" / "dictd", "gcide", GCIDE)
    write_dictd(debs / "dict-jargon" / "usr" / "share" / "dictd", "jargon", [
        (["hack"], "hack\n n.\n\n    1. Originally, a quick job that produces what is needed, but not well.\n\n")])
    write_dictd(debs / "dict-devil" / "usr" / "share" / "dictd", "devil", [
        (["rite"], "RITE, n.  A religious or semi-religious ceremony fixed by law.\n\n"
                   "The Navy attacked the big task force with great zeal.\n")])
    write_dictd(debs / "dict-foldoc" / "usr" / "share" / "dictd", "foldoc", [
        (["bit"], "bit\n\n   <unit> The smallest unit of information a computer holds.\n\n")], compress=False)
    write_rdata(debs / "r-cran-janeaustenr" / "usr" / "lib" / "R" / "site-library" / "janeaustenr" / "data",
                {"emma": ["EMMA", "", "Emma Woodhouse, handsome, clever, and rich, had lived nearly twenty-one "
                                      "years in the world."]})
    docs = debs / "python3.11-doc" / "usr" / "share" / "doc" / "python3.11" / "html"
    docs.mkdir(parents=True)
    (docs / "tutorial.html").write_text("<p>Python is an easy to learn, powerful programming language. "
                                        "Use <code>pip</code> to install packages.</p>")
    help_c = debs / "gnome-user-docs" / "usr" / "share" / "help" / "C" / "gnome-help"
    help_c.mkdir(parents=True)
    (help_c / "net.page").write_text("<page><p>Click the network icon to connect to a wireless network. "
                                     "Then type the zorblax password.</p></page>")


def test_prepare_writes_lm_text_and_vocabulary(tmp_path, synthetic_text, capsys):
    make_debs(tmp_path / "debs")
    dev = synthetic_text["dev"][0]
    foldoc = tmp_path / "debs" / "dict-foldoc" / "usr" / "share" / "dictd"
    write_dictd(foldoc, "foldoc", [(["bit"], "bit\n\n   <unit> The smallest unit of information a computer "
                                             f"holds. {dev}\n\n")], compress=False)  # a dev sentence elsewhere
    out = tmp_path / "lm"
    load_prepare().main(["--debs", str(tmp_path / "debs"), "--out", str(out), "--realspeech-debs",
                         str(make_warzone(tmp_path / "rs-debs" / "warzone2100-data").parent), "--wordfreq", "none",
                         "--held-out", "gnome-user-docs"])
    printed = capsys.readouterr().out
    lines = (out / "lm_text.txt").read_text().splitlines()
    assert lines[:4] == ["in the beginning god created the heavens and the earth",
                         "the earth was formless and empty",
                         "darkness was on the surface of the deep and god's spirit was hovering over the surface of "
                         "the waters", "god said let there be light and there was light"]
    assert "to renounce upon oath to forswear to disavow as to abjure allegiance to a prince" in lines
    assert "originally a quick job that produces what is needed but not well" in lines
    assert "the smallest unit of information a computer holds" in lines
    assert "emma woodhouse handsome clever and rich had lived nearly twenty one years in the world" in lines
    assert "python is an easy to learn powerful programming language" in lines
    assert "to err is human" in lines
    for raw in synthetic_text["dev"] + synthetic_text["test"]:
        assert normalize(raw) not in lines
    assert {normalize(raw) for raw in synthetic_text["train"]} <= set(lines)
    assert not any("navy attacked" in line for line in lines)
    assert len(lines) == len(set(lines))
    assert list(read_training_text(out / "lm_text.txt")) == [line.split() for line in lines]  # as `asr lm` reads it
    table = {line.split()[0]: line.split()[1:] for line in printed.splitlines()[1:11]}
    assert table["dict-foldoc"] == ["1", "8", "1", "0", "0"]  # the dev sentence dropped
    assert table["dict-devil"][:3] == ["1", "9", "1"]  # the Harvard sentence inside a longer one
    assert table["fortunes"][2] == str(sum(synthetic.split_of(normalize(r)) != "train" for r in CANDIDATES[:40]))
    assert table["all"][0] == str(len(lines))
    vocabulary = (out / "vocab.txt").read_text().splitlines()
    assert vocabulary[0] == "the" and len(vocabulary) == len(set(vocabulary)) and "zorblax" not in vocabulary
    assert "OOV on gnome-user-docs (15 words): vocab.txt (37 words) 66.67 % (10)" in printed and "zorblax 1" in printed


def test_prepare_script_reports_missing_folders_in_one_line(tmp_path):
    assert_fails_naming(run_recipe("lm", "--debs", tmp_path / "nowhere", "--out", tmp_path / "lm", cwd=tmp_path),
                        "nowhere: package folder not found")
    (tmp_path / "debs").mkdir()
    assert_fails_naming(run_recipe("lm", "--debs", tmp_path / "debs", "--realspeech-debs", tmp_path / "rs",
                                           cwd=tmp_path), "warzone2100-data: not found")
    make_warzone(tmp_path / "rs" / "warzone2100-data")
    result = run_recipe("lm", "--debs", tmp_path / "debs", "--realspeech-debs", tmp_path / "rs",
                                "--packages", "dict-devil", "--wordfreq", "none", cwd=tmp_path)
    if not synthetic.FORTUNES_DIR.is_dir() and not synthetic.WORDNET_DIR.is_dir():
        assert_fails_naming(result, "fortunes not found")
    else:
        assert_fails_naming(result, "dict-devil: package folder not found")
    assert not (tmp_path / "data" / "lm" / "lm_text.txt").exists()
