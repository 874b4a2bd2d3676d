import pytest

from asr.text import BLANK, Vocabulary, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("It\u2019s 5 o'clock -- isn't it?", "it's five o'clock isn't it"),
        ("In 1984 we paid $3.50 for 2,000 eggs.", "in nineteen eighty four we paid three point five dollars for two thousand eggs"),
        ("the 21st century", "the twenty first century"),
        ("Caf\u00e9 & Bar: 100%", "cafe and bar one hundred percent"),
        ("'quoted'   words\n\ttabs", "quoted words tabs"),
        ("...", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_is_idempotent():
    text = normalize("Dr. Smith's 3 cats (aged 12) said: \"Meow!\"")
    assert normalize(text) == text


def test_vocabulary_round_trip():
    vocab = Vocabulary()
    text = normalize("Don't panic: it's only 42!")
    ids = vocab.encode(text)
    assert 0 not in ids  # index 0 is the CTC blank
    assert vocab.decode(ids) == text
    assert vocab.tokens[0] == BLANK and len(vocab) == 29


def test_vocabulary_rejects_unknown_characters():
    vocab = Vocabulary()
    assert not vocab.covers("na\u00efve")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("caf\u00e9")


def test_vocabulary_can_be_extended():
    vocab = Vocabulary([*Vocabulary().chars, "-"])
    assert vocab.decode(vocab.encode("x-ray")) == "x-ray"
    with pytest.raises(ValueError):
        Vocabulary([" ", "a", "a"])


def test_latin_letters_without_decomposition_are_spelled_out():
    assert normalize("Straße, Æsir, Œuvre, Øresund, Łódź, Þór") == "strasse aesir oeuvre oresund lodz thor"
