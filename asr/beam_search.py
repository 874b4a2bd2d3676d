"""CTC beam search through torchaudio's flashlight decoder: lexicon-free or lexicon-constrained, with optional
n-gram LM fusion (ARPA, through KenLM) and hotword boosting. Imported only when beam search is asked for."""
from __future__ import annotations

import math
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import create_word_dict, load_words
from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState, ctc_decoder

from .decoding import DecodeConfig, decode
from .errors import ConfigError
from .lm import arpa_words
from .text import Vocabulary, normalize

SEPARATOR = "|"  # flashlight's word separator token; our vocabulary's space character plays that part


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


def read_lexicon(path: str | os.PathLike[str]) -> list[str]:
    """The first field of every non-empty line: reads plain word lists and flashlight lexicons alike."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.split()[0] for line in f if line.strip()]


def flashlight_tokens(vocab: Vocabulary) -> list[str]:
    """Our token list with the space character renamed to flashlight's separator; indices unchanged."""
    return [SEPARATOR if t == " " else t for t in vocab.tokens]


class HotwordLM(CTCDecoderLM):
    """Delegates to KenLM (or to no LM at all) and adds a bonus whenever the decoder completes a hotword."""

    def __init__(self, inner: KenLM | None, bonus_ids: set[int], bonus: float) -> None:
        CTCDecoderLM.__init__(self)
        self.inner, self.bonus_ids, self.bonus = inner, bonus_ids, bonus
        self.root = CTCDecoderLMState()

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
        lm_words = arpa_words(config.lm) if config.lm else []
        tokens = set(flashlight_tokens(vocab)[1:])
        char_lm = bool(lm_words) and all(w in tokens for w in lm_words)
        if char_lm and config.lexicon:
            raise ConfigError(f"{config.lm}: a character LM decodes without a lexicon; drop the lexicon")
        words = read_lexicon(config.lexicon) if config.lexicon else [] if char_lm else lm_words
        hotwords = [w for phrase in config.hotwords for w in normalize(phrase).split()]
        if hotwords and not words:
            raise ConfigError("hotwords need lexicon decoding: give a word LM or a lexicon")
        self.lexicon_words = sorted({w for w in words + hotwords if vocab.covers(w)})
        if words and not self.lexicon_words:
            raise ConfigError(f"{config.lexicon or config.lm}: no words spelled with this model's characters")
        self.lexicon_mode = bool(self.lexicon_words)

        lexicon_file = self._write_lexicon(self.lexicon_words) if self.lexicon_mode else None
        # Without lm_dict, torchaudio gives a character LM its tokens in hash order, so token i would be scored
        # as another character; listing them in emission order keeps the indices aligned.
        lm_dict = self._write_lines(flashlight_tokens(vocab), ".tokens") if config.lm and char_lm else None
        try:
            with _stderr_silenced():
                self._decoder = self._build(lexicon_file, lm_dict, hotwords)
        except RuntimeError as err:
            raise ConfigError(f"{config.lm or config.lexicon}: cannot build the beam search decoder ({err})") from None
        finally:
            for path in (lexicon_file, lm_dict):
                if path:
                    os.unlink(path)

    def _build(self, lexicon_file: str | None, lm_dict: str | None, hotwords: list[str]) -> Any:
        config = self.config
        lm: Any = config.lm
        lm_weight = config.lm_weight
        if hotwords:
            lm, lm_weight = self._hotword_lm(hotwords, lexicon_file, lm_weight)
        return ctc_decoder(
            lexicon=lexicon_file,
            tokens=flashlight_tokens(self.vocab),
            lm=lm,
            lm_dict=lm_dict,
            beam_size=config.beam_size,
            beam_size_token=config.beam_size_token,
            beam_threshold=config.beam_threshold,
            lm_weight=lm_weight,
            word_score=config.word_score,
            unk_score=-math.inf,  # only lexicon words: an unknown word has no spelling to decode anyway
            sil_score=0.0,
            blank_token=self.vocab.tokens[self.vocab.blank_id],
            sil_token=SEPARATOR,
        )

    @staticmethod
    def _write_lines(lines: list[str], suffix: str) -> str:
        """A temporary file for flashlight, which reads lexicons and dictionaries only from paths."""
        with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False, encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            return f.name

    def _write_lexicon(self, words: list[str]) -> str:
        """A flashlight lexicon file: each word spelled in tokens and ended by the separator."""
        return self._write_lines([f"{word}\t{' '.join(word)} {SEPARATOR}" for word in words], ".lexicon")

    def _hotword_lm(self, hotwords: list[str], lexicon_file: str | None, lm_weight: float) -> tuple[HotwordLM, float]:
        """The LM (or none) wrapped to reward hotwords, and the LM weight the decoder must then use."""
        word_dict = create_word_dict(load_words(lexicon_file))
        bonus_ids = {word_dict.get_index(w) for w in hotwords if word_dict.contains(w)}
        if self.config.lm:
            inner, weight = KenLM(self.config.lm, word_dict), lm_weight
        else:
            inner, weight = None, 1.0  # only the bonus: weight 1 so it is not multiplied away
        # The decoder multiplies LM scores by the LM weight; dividing here keeps hotword_weight in score units.
        bonus = self.config.hotword_weight / weight if weight > 0 else 0.0
        return HotwordLM(inner, bonus_ids, bonus), weight

    def decode_ids(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        emissions = log_probs.detach().float().cpu()
        lengths = lengths.detach().cpu().long()
        if self.lexicon_mode:
            # Lexicon words end with a separator, but a model rarely emits one after an utterance's last word:
            # a frame that can only be the separator, right after each utterance, lets the last word complete.
            emissions = torch.cat([emissions, emissions.new_zeros(emissions.shape[0], 1, emissions.shape[2])], 1)
            rows = torch.arange(emissions.shape[0])
            emissions[rows, lengths] = -1e4
            emissions[rows, lengths, self._separator] = 0.0
            lengths = lengths + 1
        results = []
        for hypotheses in self._decoder(emissions.contiguous(), lengths.to(torch.int32)):
            ids = [i for i in (hypotheses[0].tokens.tolist() if hypotheses else []) if i != self.vocab.blank_id]
            while ids and ids[-1] == self._separator:  # the separator of the appended frame, or trailing silence
                ids.pop()
            results.append(ids)
        return results

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return decode(self, log_probs, lengths)
