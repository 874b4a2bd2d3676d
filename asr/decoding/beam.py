"""CTC beam search through flashlight-text's decoders: lexicon-free or lexicon-constrained, with optional n-gram
LM fusion (ARPA, through KenLM) and hotword boosting. Imported only when beam search is asked for.

The decoder is built from flashlight's parts directly rather than through torchaudio's ctc_decoder, which reads
the lexicon from a file twice and spells it in Python token by token: with a 200,000-word lexicon that took
seconds of the start-up time."""
from __future__ import annotations

import itertools
import math
import os
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
from flashlight.lib.text.decoder import (LM, CriterionType, LexiconDecoder, LexiconDecoderOptions, LexiconFreeDecoder,
                                         LexiconFreeDecoderOptions, LMState, SmearingMode, Trie, ZeroLM)
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from ..errors import ConfigError
from ..text import Vocabulary, normalize
from .base import decode, emissions
from .config import DecodeConfig
from .lm import UNK, arpa_words, is_kenlm_binary, read_word_list

SEPARATOR = "|"  # flashlight's word separator token; our vocabulary's space character plays that part
SHARED_LEXICONS = 2  # lexicon tries (about 180 MB each for the bundled model) kept for decoders built later


@dataclass(frozen=True)
class LexiconSearch:
    """What a lexicon decoder searches with: its word dictionary, LM (hotword-wrapped when asked) and the weight to
    use it at, and the scored trie of spellings. Read-only while decoding, so decoders whose settings differ only in
    beam sizes, threshold, LM weight or word score share one (the trie is most of a beam decoder's start-up)."""

    word_dict: Dictionary
    lm: Any
    lm_weight: float  # what _hotword_lm asks for when there are hotwords
    trie: Trie
    unk: int


_shared: OrderedDict[tuple, LexiconSearch] = OrderedDict()
_shared_lock = threading.Lock()


def _file_key(path: str | None) -> tuple | None:
    """A file's identity for the cache: where it really is, and its size and modification time."""
    if not path:
        return None
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """KenLM draws a loading progress bar on the process's stderr; the CLI keeps stderr for its own messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def flashlight_tokens(vocab: Vocabulary) -> list[str]:
    """Our token list with the space character renamed to flashlight's separator; indices unchanged."""
    return [SEPARATOR if t == " " else t for t in vocab.tokens]


class HotwordLM(LM):
    """Delegates to KenLM (or to no LM at all) and adds a bonus whenever the decoder completes a hotword."""

    def __init__(self, inner: KenLM | None, bonus_ids: set[int], bonus: float) -> None:
        LM.__init__(self)
        self.inner, self.bonus_ids, self.bonus = inner, bonus_ids, bonus
        self.root = LMState()

    def start(self, start_with_nothing: bool) -> Any:
        return self.inner.start(start_with_nothing) if self.inner else self.root

    def score(self, state: Any, usr_token_idx: int) -> tuple[Any, float]:
        extra = self.bonus if usr_token_idx in self.bonus_ids else 0.0
        if self.inner is None:
            return state, extra  # one state: without an LM every history is alike
        next_state, score = self.inner.score(state, usr_token_idx)
        return next_state, score + extra

    def finish(self, state: Any) -> tuple[Any, float]:
        return self.inner.finish(state) if self.inner else (state, 0.0)


class BeamSearchDecoder:
    """CTC beam search over a DecodeConfig's LM, lexicon and hotwords; same interface as GreedyDecoder."""

    def __init__(self, vocab: Vocabulary, config: DecodeConfig) -> None:
        if " " not in vocab.chars:
            raise ConfigError("beam search needs a vocabulary whose space character separates words")
        self.vocab = vocab
        self.config = config
        self._separator = vocab.encode(" ")[0]
        binary = bool(config.lm) and is_kenlm_binary(config.lm)
        if binary and not config.lexicon:
            raise ConfigError(f"{config.lm}: a binary KenLM model does not list its words; give its lexicon too")
        lm_words = arpa_words(config.lm) if config.lm and not binary else []
        tokens = set(flashlight_tokens(vocab)[1:])
        char_lm = bool(lm_words) and all(w in tokens for w in lm_words)
        if char_lm and config.lexicon:
            raise ConfigError(f"{config.lm}: a character LM decodes without a lexicon; drop the lexicon")
        words = read_word_list(config.lexicon) if config.lexicon else [] if char_lm else lm_words
        hotwords = [w for phrase in config.hotwords for w in normalize(phrase).split()]
        if hotwords and not words:
            raise ConfigError("hotwords need lexicon decoding: give a word LM or a lexicon")
        self.lexicon_words = sorted({w for w in words + hotwords if vocab.covers(w)})
        if words and not self.lexicon_words:
            raise ConfigError(f"{config.lexicon or config.lm}: no words spelled with this model's characters")
        self.lexicon_mode = bool(self.lexicon_words)
        self._lock = threading.Lock()  # a flashlight decoder holds the state of the search under way
        try:
            with _stderr_silenced():
                self._decoder = self._build(hotwords, char_lm)
        except RuntimeError as err:
            raise ConfigError(f"{config.lm or config.lexicon}: cannot build the beam search decoder ({err})") from None

    def _build(self, hotwords: list[str], char_lm: bool) -> Any:
        """flashlight's LexiconDecoder over a trie of the lexicon, or its LexiconFreeDecoder."""
        config = self.config
        blank = self.vocab.blank_id
        beam_size_token = config.beam_size_token or len(self.vocab.tokens)
        if not self.lexicon_mode:
            # A character LM scores our token ids: its dictionary lists the tokens in emission order.
            lm = KenLM(config.lm, Dictionary(flashlight_tokens(self.vocab))) if char_lm else ZeroLM()
            options = LexiconFreeDecoderOptions(config.beam_size, beam_size_token, config.beam_threshold,
                                                config.lm_weight, 0.0, False, CriterionType.CTC)
            self._lm = lm  # flashlight keeps a reference the Python object must outlive
            return LexiconFreeDecoder(options, lm, self._separator, blank, [])
        self.search = self._lexicon_search(hotwords)
        # With hotwords the weight is the search's own (part of its key), else this config's.
        lm_weight = self.search.lm_weight if hotwords else config.lm_weight
        options = LexiconDecoderOptions(config.beam_size, beam_size_token, config.beam_threshold, lm_weight,
                                        config.word_score, -math.inf, 0.0, False, CriterionType.CTC)
        # unk_score -inf: only lexicon words, as an unknown word has no spelling to decode anyway.
        return LexiconDecoder(options, self.search.trie, self.search.lm, self._separator, blank, self.search.unk, [],
                              False)

    def _lexicon_search(self, hotwords: list[str]) -> LexiconSearch:
        """The LexiconSearch of this decoder's LM, lexicon, vocabulary and hotwords: one an earlier decoder built
        (of the last SHARED_LEXICONS), else a new one."""
        config = self.config
        # The hotword bonus is in the LM, so in the trie's scores, and depends on the LM weight (_hotword_lm).
        key = (_file_key(config.lm), _file_key(config.lexicon), tuple(self.vocab.tokens), tuple(hotwords),
               (config.hotword_weight, config.lm_weight) if hotwords else None)
        with _shared_lock:  # held while building: two visitors asking at once build it once
            if key in _shared:
                _shared.move_to_end(key)
                return _shared[key]
            word_dict = Dictionary([*self.lexicon_words, UNK])
            unk = word_dict.get_index(UNK)
            word_dict.set_default_index(unk)
            lm: Any = KenLM(config.lm, word_dict) if config.lm else None
            lm_weight = config.lm_weight
            if hotwords:
                lm, lm_weight = self._hotword_lm(lm, word_dict, hotwords, lm_weight)
            lm = lm or ZeroLM()
            _shared[key] = LexiconSearch(word_dict, lm, lm_weight, self._trie(lm), unk)
            if len(_shared) > SHARED_LEXICONS:
                _shared.popitem(last=False)
            return _shared[key]

    def _trie(self, lm: Any) -> Trie:
        """The lexicon's spellings (each word's tokens, then the separator), each leaf scored with the word's
        unigram LM score and the best score smeared up to every prefix, for early pruning."""
        trie = Trie(len(self.vocab.tokens), self._separator)
        start = lm.start(False)
        char_ids = {c: i for i, c in enumerate(self.vocab.tokens)}
        for index, word in enumerate(self.lexicon_words):
            _, score = lm.score(start, index)
            trie.insert([*map(char_ids.__getitem__, word), self._separator], index, score)
        trie.smear(SmearingMode.MAX)
        return trie

    def _hotword_lm(self, lm: KenLM | None, word_dict: Dictionary, hotwords: list[str], lm_weight: float
                    ) -> tuple[HotwordLM, float]:
        """The LM (or none) wrapped to reward hotwords, and the LM weight the decoder must then use."""
        bonus_ids = {word_dict.get_index(w) for w in hotwords if word_dict.contains(w)}
        weight = lm_weight if lm is not None else 1.0  # only the bonus: weight 1 so it is not multiplied away
        # The decoder multiplies LM scores by the LM weight; dividing here keeps hotword_weight in score units.
        bonus = self.config.hotword_weight / weight if weight > 0 else 0.0
        return HotwordLM(lm, bonus_ids, bonus), weight

    def decode_ids(self, log_probs: Any, lengths: Sequence[int]) -> list[list[int]]:
        values = emissions(log_probs)
        lengths = [int(n) for n in lengths]
        if self.lexicon_mode:
            # Lexicon words end with a separator, but a model rarely emits one after an utterance's last word:
            # a frame that can only be the separator, right after each utterance, lets the last word complete.
            values = np.concatenate([values, np.zeros_like(values[:, :1])], axis=1)
            rows = np.arange(len(values))
            values[rows, lengths] = -1e4
            values[rows, lengths, self._separator] = 0.0
            lengths = [n + 1 for n in lengths]
        values = np.ascontiguousarray(values)  # flashlight reads (frames, vocab) float32 rows from a pointer
        results = []
        for b, length in enumerate(lengths):
            pointer = values.ctypes.data + b * values.strides[0]
            with self._lock:
                hypotheses = self._decoder.decode(pointer, length, values.shape[2])
            path = hypotheses[0].tokens if hypotheses else []
            # One token per frame: merge repeats, then drop blanks and flashlight's -1 padding.
            ids = [i for i, _ in itertools.groupby(path) if i >= 0 and i != self.vocab.blank_id]
            while ids and ids[-1] == self._separator:  # the separator of the appended frame, or trailing silence
                ids.pop()
            results.append(ids)
        return results

    def decode(self, log_probs: Any, lengths: Sequence[int]) -> list[str]:
        return decode(self, log_probs, lengths)
