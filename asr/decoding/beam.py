"""CTC beam search through flashlight-text's decoders: lexicon-free or lexicon-constrained, with optional n-gram
LM fusion (ARPA, through KenLM) and hotword boosting. Imported only when beam search is asked for.

The decoder is built from flashlight's parts directly rather than through torchaudio's ctc_decoder, which reads
the lexicon from a file twice and spells it in Python token by token: with a 200,000-word lexicon that took
seconds of the start-up time."""
from __future__ import annotations

import atexit
import ctypes
import itertools
import json
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
from . import spellings
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

    words: list[str]  # the lexicon's, sorted; a word's index in the dictionary, the LM and the trie
    word_dict: Dictionary
    lm: Any
    lm_weight: float  # what _hotword_lm asks for when there are hotwords
    trie: Trie
    unk: int


_shared: OrderedDict[tuple, LexiconSearch] = OrderedDict()
_shared_lock = threading.Lock()


def _keep_at_exit() -> None:
    """Leave the shared searches to the operating system when the interpreter exits: freeing the bundled lexicon's
    trie node by node takes about 0.27 s, a quarter of `asr transcribe --decoder beam` on a short file, for memory
    the ending process gives back anyway. A search dropped earlier (SHARED_LEXICONS) is freed as usual."""
    for search in _shared.values():
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(search))


atexit.register(_keep_at_exit)


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
        hotwords = [w for phrase in config.hotwords for w in normalize(phrase).split()]
        self._lock = threading.Lock()  # a flashlight decoder holds the state of the search under way
        try:
            with _stderr_silenced():
                self._decoder = self._build(hotwords)
        except RuntimeError as err:
            raise ConfigError(f"{config.lm or config.lexicon}: cannot build the beam search decoder ({err})") from None

    def _words(self, hotwords: list[str]) -> tuple[list[str], bool]:
        """The words this decoder may output, from its lexicon or word LM and hotwords (none: lexicon-free), and
        whether its LM is a character LM; raises ConfigError for settings that do not go together."""
        config = self.config
        binary = bool(config.lm) and is_kenlm_binary(config.lm)
        if binary and not config.lexicon:
            raise ConfigError(f"{config.lm}: a binary KenLM model does not list its words; give its lexicon too")
        lm_words = arpa_words(config.lm) if config.lm and not binary else []
        tokens = set(flashlight_tokens(self.vocab)[1:])
        char_lm = bool(lm_words) and all(w in tokens for w in lm_words)
        if char_lm and config.lexicon:
            raise ConfigError(f"{config.lm}: a character LM decodes without a lexicon; drop the lexicon")
        words = read_word_list(config.lexicon) if config.lexicon else [] if char_lm else lm_words
        if hotwords and not words:
            raise ConfigError("hotwords need lexicon decoding: give a word LM or a lexicon")
        lexicon_words = sorted({w for w in words + hotwords if self.vocab.covers(w)})
        if words and not lexicon_words:
            raise ConfigError(f"{config.lexicon or config.lm}: no words spelled with this model's characters")
        return lexicon_words, char_lm

    def _build(self, hotwords: list[str]) -> Any:
        """flashlight's LexiconDecoder over a trie of the lexicon, or its LexiconFreeDecoder."""
        config = self.config
        blank = self.vocab.blank_id
        beam_size_token = config.beam_size_token or len(self.vocab.tokens)
        self.search, char_lm = self._lexicon_search(hotwords)
        self.lexicon_mode = self.search is not None
        self.lexicon_words = self.search.words if self.search else []
        if self.search is None:
            # A character LM scores our token ids: its dictionary lists the tokens in emission order.
            lm = KenLM(config.lm, Dictionary(flashlight_tokens(self.vocab))) if char_lm else ZeroLM()
            options = LexiconFreeDecoderOptions(config.beam_size, beam_size_token, config.beam_threshold,
                                                config.lm_weight, 0.0, False, CriterionType.CTC)
            self._lm = lm  # flashlight keeps a reference the Python object must outlive
            return LexiconFreeDecoder(options, lm, self._separator, blank, [])
        # With hotwords the weight is the search's own (part of its key), else this config's.
        lm_weight = self.search.lm_weight if hotwords else config.lm_weight
        options = LexiconDecoderOptions(config.beam_size, beam_size_token, config.beam_threshold, lm_weight,
                                        config.word_score, -math.inf, 0.0, False, CriterionType.CTC)
        # unk_score -inf: only lexicon words, as an unknown word has no spelling to decode anyway.
        return LexiconDecoder(options, self.search.trie, self.search.lm, self._separator, blank, self.search.unk, [],
                              False)

    def _lexicon_search(self, hotwords: list[str]) -> tuple[LexiconSearch | None, bool]:
        """The LexiconSearch of this decoder's LM, lexicon, vocabulary and hotwords: one an earlier decoder built
        (of the last SHARED_LEXICONS), else a new one, from cached spellings where there are some (spellings.py;
        only without hotwords, so that visitors' hotwords do not fill the disk). For lexicon-free decoding, None
        and whether the LM is a character LM."""
        config = self.config
        files = (_file_key(config.lm), _file_key(config.lexicon), tuple(self.vocab.tokens))
        # The hotword bonus is in the LM, so in the trie's scores, and depends on the LM weight (_hotword_lm).
        key = (*files, tuple(hotwords), (config.hotword_weight, config.lm_weight) if hotwords else None)
        with _shared_lock:  # held while building: two visitors asking at once build it once
            if key in _shared:
                _shared.move_to_end(key)
                return _shared[key], False
            cache_key = json.dumps(files) if not hotwords else None
            spelled = spellings.load(cache_key) if cache_key else None
            words, char_lm = (spelled.words, False) if spelled else self._words(hotwords)
            if not words:
                return None, char_lm
            word_dict = Dictionary([*words, UNK])
            unk = word_dict.get_index(UNK)
            word_dict.set_default_index(unk)
            lm: Any = KenLM(config.lm, word_dict) if config.lm else None
            lm_weight = config.lm_weight
            if hotwords:
                lm, lm_weight = self._hotword_lm(lm, word_dict, hotwords, lm_weight)
            lm = lm or ZeroLM()
            if spelled is None:
                start = lm.start(False)
                scores = [lm.score(start, i)[1] for i in range(len(words))]
                token_ids = {c: i for i, c in enumerate(self.vocab.tokens)}
                spelled = spellings.spell(words, token_ids, self._separator, scores)
                if cache_key:
                    spellings.save(cache_key, spelled)
            _shared[key] = LexiconSearch(words, word_dict, lm, lm_weight, self._trie(spelled), unk)
            if len(_shared) > SHARED_LEXICONS:
                _shared.popitem(last=False)
            return _shared[key], False

    def _trie(self, spelled: spellings.Spellings) -> Trie:
        """The trie of the lexicon's spellings (each word's tokens, then the separator), each leaf scored with the
        word's unigram LM score and the best score smeared up to every prefix, for early pruning."""
        trie = Trie(len(self.vocab.tokens), self._separator)
        for index, (ids, score) in enumerate(spelled.spelled()):
            trie.insert(ids, index, score)
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
