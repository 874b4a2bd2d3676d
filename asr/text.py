"""Character vocabulary and the one text normalizer shared by training targets and WER scoring."""
from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field

from num2words import num2words

BLANK = "<blank>"
DEFAULT_CHARS: tuple[str, ...] = (" ", "'", *string.ascii_lowercase)

_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals ", "$": " dollars "}
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
# Latin letters that Unicode does not decompose into a base letter plus accent, spelled the usual English way.
_LIGATURES = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l",
                            "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i"})
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_CURRENCY = re.compile(r"\$(\d+(?:,\d{3})*(?:\.\d+)?)")


def _number_words(match: re.Match[str]) -> str:
    token = match.group(0).replace(",", "")
    value = float(token) if "." in token else int(token)
    # Four-digit integers in this range are almost always years ("1984" -> "nineteen eighty four").
    as_year = isinstance(value, int) and 1100 <= value <= 2099 and "," not in match.group(0)
    return " " + num2words(value, to="year" if as_year else "cardinal") + " "


def normalize(text: str) -> str:
    """Lowercase, spell out numbers and drop punctuation, so training targets and WER see the same words.

    Keeps only a-z, space and word-internal apostrophes ("don't", "o'clock").
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).translate(_LIGATURES)
    text = _CURRENCY.sub(r" \1 dollars ", text)
    text = _ORDINAL.sub(lambda m: " " + num2words(int(m.group(1)), to="ordinal") + " ", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = _NUMBER.sub(_number_words, text)
    # Strip accents (café -> cafe; Straße -> strasse above) before dropping everything outside the alphabet.
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z' ]+", " ", text)
    words = (word.strip("'") for word in text.split())
    return " ".join(word for word in words if word)


@dataclass
class Vocabulary:
    """CTC output symbols: index 0 is the blank, then one symbol per character."""

    chars: list[str] = field(default_factory=lambda: list(DEFAULT_CHARS))

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError(f"vocabulary characters must be unique single characters: {self.chars!r}")
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}
        self._chars = "".join(self.chars)

    @property
    def tokens(self) -> list[str]:
        return [BLANK, *self.chars]

    def __len__(self) -> int:
        return len(self.chars) + 1

    @property
    def blank_id(self) -> int:
        return 0

    def covers(self, text: str) -> bool:
        """Whether every character of (already normalized) text is in the vocabulary."""
        return not text.strip(self._chars)  # strip() drops every character it is given: nothing may be left

    def encode(self, text: str) -> list[int]:
        """Map normalized text to token ids; raises ValueError on a character outside the vocabulary."""
        try:
            return [self._index[c] for c in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: list[int]) -> str:
        """Map token ids (no blanks expected) back to text."""
        return "".join(self.chars[i - 1] for i in ids if i != self.blank_id)
