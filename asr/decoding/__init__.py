"""Decoding: per-frame CTC log-probabilities in, token ids and text out.

Two strategies behind one interface (`Decoder.decode_ids`, `decode`): greedy best-path decoding (greedy.py) and beam
search with lexicon, n-gram LM and hotwords (beam.py, through flashlight-text, imported only when asked for). A
DecodeConfig (config.py) says which; `Decoders` builds one per config on demand and keeps the last few, so each call
can bring its own settings. lm.py estimates the n-gram LMs beam search reads; spellings.py caches the lexicon
spellings its tries are built from. Word timings are asr/alignment.py's.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict

from ..text import Vocabulary
from .base import Decoder, decode, ids_to_text
from .config import DecodeConfig
from .greedy import GreedyDecoder

__all__ = ["DecodeConfig", "Decoder", "Decoders", "GreedyDecoder", "build_decoder", "decode", "ids_to_text"]


def build_decoder(vocab: Vocabulary, config: DecodeConfig | None = None) -> Decoder:
    """The decoder a DecodeConfig asks for (greedy when config is None)."""
    if config is None or config.method == "greedy":
        return GreedyDecoder(vocab)
    from .beam import BeamSearchDecoder

    return BeamSearchDecoder(vocab, config)


class Decoders:
    """The decoder of each DecodeConfig, built on first use and kept for the `capacity` most recently used configs:
    beam search over a large lexicon takes half a second to a second to build and holds its trie (about 180 MB for
    the bundled model's 150,000 words), so per-call settings (hotwords typed by demo visitors) must not rebuild or pile up.
    Safe to share between threads."""

    def __init__(self, vocab: Vocabulary, capacity: int = 4) -> None:
        self.vocab = vocab
        self.capacity = capacity
        self._built: OrderedDict[str, Decoder] = OrderedDict()
        self._building: dict[str, threading.Lock] = {}  # one per config being built
        self._lock = threading.Lock()  # guards the two dicts, never held while building

    def get(self, config: DecodeConfig) -> Decoder:
        """The config's decoder, built if it is not kept. A build holds up only the callers of the same config:
        a greedy request never waits for a beam decoder under construction."""
        key = json.dumps(asdict(config), sort_keys=True)
        with self._lock:
            if key in self._built:
                self._built.move_to_end(key)
                return self._built[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            try:
                with self._lock:
                    decoder = self._built.get(key)  # built by the caller this one waited for
                if decoder is None:
                    decoder = build_decoder(self.vocab, config)
                    with self._lock:
                        self._built[key] = decoder
                        if len(self._built) > self.capacity:
                            self._built.popitem(last=False)
            finally:
                with self._lock:
                    self._building.pop(key, None)
        return decoder

    def __len__(self) -> int:
        return len(self._built)
