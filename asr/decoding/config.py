"""How per-frame log-probabilities become text: the settings every decoder is built from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

METHODS = ("greedy", "beam")  # the decoders build_decoder makes; `--decoder` offers them



@dataclass
class DecodeConfig:
    """How per-frame log-probabilities become text."""

    method: str = "greedy"  # one of METHODS
    beam_size: int = 50  # hypotheses kept per frame
    beam_size_token: int | None = None  # tokens tried per hypothesis and frame (None: all)
    beam_threshold: float = 25.0  # drop hypotheses this far (log-prob) below the best one
    # An ARPA n-gram model: a word LM (decoding is then constrained to a lexicon, by default the LM's words) or a
    # character LM written by asr.decoding.lm with `|` between words (lexicon-free decoding, so unseen words stay possible).
    # Or a word LM in KenLM's binary format (loads in a fraction of the time), which needs a lexicon.
    lm: str | None = None
    # Words the decoder may output, one per line (a word list, or a flashlight lexicon whose first column is the
    # word). With a word LM and no lexicon, the LM's vocabulary. Without either, decoding is lexicon-free.
    lexicon: str | None = None
    lm_weight: float = 1.0  # weight of the LM's natural-log probability in the hypothesis score
    word_score: float = 0.0  # added per word: positive values favour more, shorter words
    # Words (or phrases) to favour, such as names the LM does not know: added to the lexicon, and each of their
    # words gets hotword_weight (natural-log units) whenever the decoder completes it. Needs lexicon decoding.
    hotwords: list[str] = field(default_factory=list)
    hotword_weight: float = 5.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"decoding method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be at least 1, got {self.beam_size}")
        for name in ("lm", "lexicon"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{path}: {name} file not found")
