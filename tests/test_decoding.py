import numpy as np
import pytest
import torch

import asr
from asr.alignment import word_timings
from asr.decoding import DecodeConfig, Decoders, GreedyDecoder, build_decoder
from asr.decoding.lm import KENLM_BINARY_MAGIC, build_ngram_lm, char_tokens, is_kenlm_binary
from asr.errors import CheckpointError, ConfigError
from asr.text import Vocabulary


def posteriors(frames: list[str], vocab: Vocabulary) -> torch.Tensor:
    """Log-probs that put 0.9 on the given symbol per frame ('_' is the blank)."""
    log_probs = torch.full((len(frames), len(vocab)), 0.1 / (len(vocab) - 1)).log()
    for t, symbol in enumerate(frames):
        log_probs[t, 0 if symbol == "_" else vocab.encode(symbol)[0]] = torch.tensor(0.9).log()
    return log_probs


def test_greedy_merges_repeats_and_drops_blanks():
    vocab = Vocabulary()
    decoder = GreedyDecoder(vocab)
    # "hello": the double l needs a blank between the two l's; repeated frames of one letter merge.
    frames = list("hh_e_ll_l_oo") + ["_", " ", "_"] + list("ww_o_r_ld__")
    batch = posteriors(frames, vocab)[None]
    assert decoder.decode(batch, torch.tensor([len(frames)])) == ["hello world"]


def test_greedy_batch_respects_lengths():
    vocab = Vocabulary()
    decoder = GreedyDecoder(vocab)
    a = posteriors(list("c_a_t"), vocab)
    b = posteriors(list("d_o_g___"), vocab)
    batch = torch.stack([torch.cat([a, b[:3]]), b])  # a padded with frames that would decode as "dog"
    assert decoder.decode(batch, torch.tensor([5, 8])) == ["cat", "dog"]


def test_greedy_strips_and_collapses_spaces():
    vocab = Vocabulary()
    frames = [" ", "_", "a", " ", "_", " ", "b", " "]
    assert GreedyDecoder(vocab).decode(posteriors(frames, vocab)[None], torch.tensor([8])) == ["a b"]
    assert GreedyDecoder(vocab).decode(posteriors(["_"] * 4, vocab)[None], torch.tensor([4])) == [""]


def soft_posteriors(frames: list[dict[str, float]], vocab: Vocabulary) -> torch.Tensor:
    """Log-probs from per-frame {symbol: probability} ('_' is the blank); the rest is spread evenly."""
    rows = []
    for frame in frames:
        rest = (1.0 - sum(frame.values())) / (len(vocab) - len(frame))
        row = torch.full((len(vocab),), rest)
        for symbol, p in frame.items():
            row[0 if symbol == "_" else vocab.encode(symbol)[0]] = p
        rows.append(row)
    return torch.stack(rows).log()


def spell(text: str) -> list[dict[str, float]]:
    """Confident frames for text, a blank after every character."""
    return [f for c in text for f in ({c: 0.9}, {"_": 0.9})]


def write_lines(path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def beam(vocab: Vocabulary, **options) -> object:
    return build_decoder(vocab, DecodeConfig(method="beam", **options))


def one(decoder, log_probs: torch.Tensor) -> str:
    return decoder.decode(log_probs[None], torch.tensor([log_probs.shape[0]]))[0]


def test_lexicon_free_beam_search_without_lm_agrees_with_greedy():
    vocab = Vocabulary()
    log_probs = posteriors(list("hh_e_ll_l_oo") + ["_", " ", "_"] + list("ww_o_r_ld__"), vocab)
    assert one(beam(vocab), log_probs) == one(GreedyDecoder(vocab), log_probs) == "hello world"


def test_lexicon_constrains_the_words(tmp_path):
    vocab = Vocabulary()
    # The "o" of "world" is weaker than the blank on its frame: greedy drops it, a lexicon restores it.
    frames = spell("hello ") + [{"w": 0.9}, {"o": 0.35, "_": 0.45}] + spell("rld")
    log_probs = soft_posteriors(frames, vocab)
    assert one(GreedyDecoder(vocab), log_probs) == "hello wrld"
    lexicon = write_lines(tmp_path / "words.txt", ["hello", "world", "word"])
    decoder = beam(vocab, lexicon=lexicon)
    assert one(decoder, log_probs) == "hello world"
    assert decoder.lexicon_words == ["hello", "word", "world"]


def test_hotwords_tip_a_close_call(tmp_path):
    vocab = Vocabulary()
    # "jon" is a little more likely than "john" acoustically; boosting "John" makes it win.
    frames = spell("call ") + [{"j": 0.9}, {"o": 0.9}, {"h": 0.3, "_": 0.6}] + spell("n")
    log_probs = soft_posteriors(frames, vocab)
    lexicon = write_lines(tmp_path / "words.txt", ["call", "jon"])
    assert one(beam(vocab, lexicon=lexicon), log_probs) == "call jon"
    assert one(beam(vocab, lexicon=lexicon, hotwords=["John"], hotword_weight=3.0), log_probs) == "call john"


def test_beam_search_configuration_errors(tmp_path):
    vocab = Vocabulary()
    with pytest.raises(ConfigError, match="lm file not found"):
        DecodeConfig(method="beam", lm=str(tmp_path / "missing.arpa"))
    with pytest.raises(ConfigError, match="greedy"):
        DecodeConfig(method="viterbi")
    with pytest.raises(ConfigError, match="hotwords need lexicon"):
        beam(vocab, hotwords=["john"])
    with pytest.raises(CheckpointError, match="not an ARPA"):
        beam(vocab, lm=write_lines(tmp_path / "bad.arpa", ["just some text"]))
    (tmp_path / "lm.bin").write_bytes(KENLM_BINARY_MAGIC + b" format version 5\n\0")
    with pytest.raises(ConfigError, match="lm.bin: a binary KenLM model does not list its words; give its lexicon"):
        beam(vocab, lm=str(tmp_path / "lm.bin"))


def test_word_timings_follow_the_alignment():
    vocab = Vocabulary()
    # 0.03 s frames: "hi" on frames 2-4, silence, "yo" on frames 10-12 (the o held for two frames).
    frames = list("__h_i") + ["_", " ", "_", "_", "_"] + list("y_oo") + ["_"] * 3
    log_probs = posteriors(frames, vocab)
    ids = GreedyDecoder(vocab).decode_ids(log_probs[None], torch.tensor([len(frames)]))[0]
    words = word_timings(log_probs, ids, vocab, frame_s=0.03, offset_s=10.0)
    assert [w.word for w in words] == ["hi", "yo"]
    assert [(w.start, w.end) for w in words] == [(10.06, 10.15), (10.3, 10.42)]
    assert all(abs(w.confidence - 0.9) < 1e-3 for w in words)
    assert word_timings(log_probs, [], vocab, 0.03) == []


def test_word_lm_settles_what_the_acoustics_leave_open(tmp_path):
    vocab = Vocabulary()
    lm = tmp_path / "lm.arpa.gz"
    build_ngram_lm([s.split() for s in ["i see the sea", "by the sea", "the sea is blue", "we see it"]],
                   order=3).write_arpa(lm)
    # "the se?" with the last vowel a near coin toss that leans to "see"; the LM knows "the sea".
    frames = spell("the se") + [{"e": 0.5, "a": 0.4}, {"_": 0.9}]
    log_probs = soft_posteriors(frames, vocab)
    assert one(GreedyDecoder(vocab), log_probs) == "the see"
    assert one(beam(vocab, lm=str(lm), lm_weight=0.0), log_probs) == "the see"
    assert one(beam(vocab, lm=str(lm), lm_weight=1.0), log_probs) == "the sea"
    # A character LM (lexicon-free decoding) learns the same from spelling alone.
    chars = tmp_path / "chars.arpa"
    build_ngram_lm([char_tokens(s) for s in ["i see the sea", "by the sea", "the sea is blue"]], order=5).write_arpa(chars)
    assert one(beam(vocab, lm=str(chars), lm_weight=1.0), log_probs) == "the sea"
    with pytest.raises(ConfigError, match="character LM"):
        beam(vocab, lm=str(chars), lexicon=write_lines(tmp_path / "words.txt", ["the", "sea"]))


def test_binary_word_lm_with_its_lexicon():
    """The bundled LM is in KenLM's binary format: everyday English knows "the sea" better than "the see"."""
    recommended = asr.load_model().recommended_decoding
    assert is_kenlm_binary(recommended.lm) and recommended.lexicon
    log_probs = soft_posteriors(spell("the se") + [{"e": 0.5, "a": 0.4}, {"_": 0.9}], Vocabulary())
    decoder = beam(Vocabulary(), lm=recommended.lm, lexicon=recommended.lexicon, lm_weight=1.0)
    assert one(decoder, log_probs) == "the sea"
    assert len(decoder.lexicon_words) >= 100_000


def test_decoders_are_built_once_per_setting_and_only_the_last_few_are_kept(tmp_path):
    vocab = Vocabulary()
    lexicon = write_lines(tmp_path / "words.txt", ["call", "jon"])
    decoders = Decoders(vocab, capacity=2)
    settings = [DecodeConfig(), DecodeConfig("beam", lexicon=lexicon), DecodeConfig("beam", lexicon=lexicon,
                                                                                    hotwords=["john"])]
    first = decoders.get(settings[1])
    assert decoders.get(DecodeConfig("beam", lexicon=lexicon)) is first  # an equal setting reuses its decoder
    decoders.get(settings[0])
    decoders.get(settings[2])  # a third setting evicts the least recently used one
    assert len(decoders) == 2 and decoders.get(settings[1]) is not first


def test_each_call_decodes_with_its_own_settings(tmp_path):
    """One loaded model serves greedy and beam callers alike; a call's settings do not stick."""
    vocab = Vocabulary()
    frames = spell("call ") + [{"j": 0.9}, {"o": 0.9}, {"h": 0.3, "_": 0.6}] + spell("n")
    log_probs = soft_posteriors(frames, vocab)
    lexicon = write_lines(tmp_path / "words.txt", ["call", "jon"])
    decoders = Decoders(vocab)
    boosted = DecodeConfig("beam", lexicon=lexicon, hotwords=["John"], hotword_weight=3.0)
    assert one(decoders.get(boosted), log_probs) == "call john"
    assert one(decoders.get(DecodeConfig("beam", lexicon=lexicon)), log_probs) == "call jon"


def test_decoders_of_one_lexicon_share_its_trie_and_a_greedy_caller_never_waits_for_a_beam_build(tmp_path,
                                                                                                  monkeypatch):
    import threading

    import asr.decoding as decoding
    from asr.decoding import beam as beam_module

    vocab = Vocabulary()
    lexicon = write_lines(tmp_path / "words.txt", ["call", "jon", "john"])
    first, second = beam(vocab, lexicon=lexicon, beam_size=10), beam(vocab, lexicon=lexicon, beam_size=20,
                                                                      word_score=1.0)
    assert second.search is first.search  # beam sizes and word score are the decoder's, the trie is shared
    hot = beam(vocab, lexicon=lexicon, hotwords=["John"], hotword_weight=3.0)
    assert hot.search is not first.search  # the hotword bonus is in the trie's scores
    (tmp_path / "words.txt").write_text("call\njon\njohn\njean\n")
    assert beam(vocab, lexicon=lexicon).search is not first.search  # a changed file is read again
    assert len(beam_module._shared) <= beam_module.SHARED_LEXICONS

    release, started = threading.Event(), threading.Event()
    real = decoding.build_decoder

    def slow_build(vocab, config):  # noqa: ANN001, ANN202
        if config is not None and config.method == "beam":
            started.set()
            release.wait(10)
        return real(vocab, config)

    monkeypatch.setattr(decoding, "build_decoder", slow_build)
    decoders = Decoders(vocab)
    builder = threading.Thread(target=decoders.get, args=(DecodeConfig("beam", lexicon=lexicon),))
    builder.start()
    assert started.wait(10)
    assert isinstance(decoders.get(DecodeConfig()), GreedyDecoder)  # while the beam decoder is still building
    release.set()
    builder.join(10)
    assert len(decoders) == 2 and decoders._building == {}


def test_a_lexicons_spellings_are_cached_on_disk_and_read_back_by_a_later_start(tmp_path, monkeypatch):
    """A beam decoder built in a later process (here: with the in-memory tries forgotten) takes the lexicon's
    spellings and LM scores from the cache instead of reading and scoring the word list, and decodes the same."""
    from asr.decoding import beam as beam_module
    from asr.decoding import spellings

    monkeypatch.setattr(spellings, "SPELLINGS_CACHE", tmp_path / "cache")
    vocab = Vocabulary()
    lm = tmp_path / "lm.arpa.gz"
    build_ngram_lm([s.split() for s in ["i see the sea", "by the sea", "the sea is blue", "we see it"]],
                   order=3).write_arpa(lm)
    lexicon = write_lines(tmp_path / "words.txt", ["by", "i", "is", "it", "sea", "see", "the", "we", "blue"])
    log_probs = soft_posteriors(spell("the se") + [{"e": 0.5, "a": 0.4}, {"_": 0.9}], vocab)
    first = beam(vocab, lm=str(lm), lexicon=lexicon)
    assert one(first, log_probs) == "the sea"
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def never(path):  # noqa: ANN001, ANN202
        raise AssertionError(f"{path} read again")

    monkeypatch.setattr(beam_module, "read_word_list", never)
    monkeypatch.setattr(beam_module, "_shared", beam_module.OrderedDict())
    again = beam(vocab, lm=str(lm), lexicon=lexicon)
    assert again.search is not first.search and again.lexicon_words == first.lexicon_words
    assert one(again, log_probs) == "the sea"
    # A changed lexicon is another entry: read, not taken from the cache.
    write_lines(tmp_path / "words.txt", ["by", "i", "is", "it", "sea", "see", "the", "we", "blue", "red"])
    with pytest.raises(AssertionError, match="read again"):
        beam(vocab, lm=str(lm), lexicon=lexicon)


def test_a_spoilt_or_unwritable_spellings_cache_costs_only_time(tmp_path, monkeypatch):
    from asr.decoding import beam as beam_module
    from asr.decoding import spellings

    vocab = Vocabulary()
    frames = spell("call ") + [{"j": 0.9}, {"o": 0.9}, {"h": 0.3, "_": 0.6}] + spell("n")
    log_probs = soft_posteriors(frames, vocab)
    lexicon = write_lines(tmp_path / "words.txt", ["call", "jon", "john"])
    monkeypatch.setattr(spellings, "SPELLINGS_CACHE", tmp_path / "cache")
    assert one(beam(vocab, lexicon=lexicon), log_probs) == "call jon"
    [entry] = (tmp_path / "cache").glob("*.npz")
    whole = entry.read_bytes()
    entry.write_bytes(whole[:100])  # cut short, as by a full disk
    monkeypatch.setattr(beam_module, "_shared", beam_module.OrderedDict())
    assert one(beam(vocab, lexicon=lexicon), log_probs) == "call jon"
    with np.load(entry) as again:  # worked out again and written anew
        assert again["words"].tobytes() == b"call\njohn\njon" and entry.stat().st_size == len(whole)

    (tmp_path / "file").write_text("")
    monkeypatch.setattr(spellings, "SPELLINGS_CACHE", tmp_path / "file" / "cache")  # cannot be made
    monkeypatch.setattr(beam_module, "_shared", beam_module.OrderedDict())
    assert one(beam(vocab, lexicon=lexicon), log_probs) == "call jon"


def test_the_spellings_cache_keeps_the_latest_entries_and_none_for_hotwords(tmp_path, monkeypatch):
    from asr.decoding import beam as beam_module
    from asr.decoding import spellings

    monkeypatch.setattr(spellings, "SPELLINGS_CACHE", tmp_path / "cache")
    monkeypatch.setattr(spellings, "CACHE_ENTRIES", 2)
    vocab = Vocabulary()
    lexicons = [write_lines(tmp_path / f"words{n}.txt", ["call", "jon", "x" * (n + 1)]) for n in range(3)]
    for lexicon in lexicons:
        beam(vocab, lexicon=lexicon)
    entries = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npz")}
    assert len(entries) == 2
    reads = []
    real = beam_module.read_word_list
    monkeypatch.setattr(beam_module, "read_word_list", lambda path: reads.append(path) or real(path))
    monkeypatch.setattr(beam_module, "_shared", beam_module.OrderedDict())
    beam(vocab, lexicon=lexicons[2])
    assert reads == []  # the newest entry is kept
    beam(vocab, lexicon=lexicons[0])
    assert reads == [lexicons[0]]  # the oldest was removed
    monkeypatch.setattr(spellings, "CACHE_ENTRIES", 8)
    entries = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npz")}
    beam(vocab, lexicon=lexicons[1], hotwords=["John"])
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npz")} == entries


def test_shared_searches_are_left_to_the_operating_system_at_exit(tmp_path, monkeypatch):
    """Freeing a large trie at interpreter exit only costs time: the exit hook keeps the shared searches alive."""
    import gc
    import weakref

    from asr.decoding import beam as beam_module

    monkeypatch.setattr(beam_module, "_shared", beam_module.OrderedDict())
    decoder = beam(Vocabulary(), lexicon=write_lines(tmp_path / "words.txt", ["call", "jon"]))
    search = weakref.ref(decoder.search)
    beam_module._keep_at_exit()
    beam_module._shared.clear()
    del decoder
    gc.collect()
    assert search() is not None


def test_a_cached_entry_that_does_not_add_up_is_not_used(tmp_path, monkeypatch):
    from asr.decoding import spellings

    monkeypatch.setattr(spellings, "SPELLINGS_CACHE", tmp_path)
    good = spellings.spell(["ab", "c"], {"a": 2, "b": 3, "c": 4}, 1, [-1.0, -2.0])
    assert good.tokens.tolist() == [2, 3, 1, 4, 1] and good.ends.tolist() == [3, 5]
    spellings.save("key", good)
    assert [(ids, score) for ids, score in spellings.load("key").spelled()] == [([2, 3, 1], -1.0), ([4, 1], -2.0)]
    assert spellings.load("another key") is None

    def refused(path):  # noqa: ANN001, ANN202
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as read_only:  # a cache it may read but not touch (another user's, say)
        read_only.setattr(spellings.os, "utime", refused)
        assert spellings.load("key") is not None
    for bad in (spellings.Spellings(["ab", "c"], good.tokens, np.array([3, 6]), good.scores),  # past the end
                spellings.Spellings(["ab", "c"], good.tokens.astype(np.float32), good.ends, good.scores),
                spellings.Spellings(["ab"], good.tokens, good.ends, good.scores)):
        spellings.save("key", bad)
        assert spellings.load("key") is None
