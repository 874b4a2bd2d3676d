import gzip
import json
import math
import random
import string
from collections import Counter

import numpy as np
import pytest
import torch

import asr.decoding.lm
from asr.cli import main
from asr.decoding.lm import (BOS, EOS, FALLBACK_DISCOUNTS, UNK, adjust_counts, arpa_words, build_ngram_lm, char_tokens,
                    count_ngrams, estimate_lm, is_kenlm_binary, kn_discounts, read_arpa, read_training_text,
                    read_word_list)
from asr.errors import CheckpointError, ConfigError

# Hand-worked example. Padded sentences:
#   <s> a b </s>      <s> b a </s>      <s> a c d </s>
TINY = [["a", "b"], ["b", "a"], ["a", "c", "d"]]


def _as_dicts(counts, tables):
    """Per-order arrays aligned with counts.keys, as {n-gram: value} dicts."""
    return [dict(zip(counts.ngrams(n), table.tolist())) for n, table in enumerate(tables, start=1)]


def test_adjusted_counts_and_discounts_by_hand():
    counts = count_ngrams(TINY, 3)
    assert counts.words == ["</s>", "<s>", "<unk>", "a", "b", "c", "d"]  # sorted: a word's id is its index
    assert (counts.sentences, counts.tokens) == (3, 7)
    arrays = adjust_counts(counts)
    adjusted = _as_dicts(counts, arrays)
    # Unigrams: distinct words seen before each: a {<s>, b}, b {<s>, a}, c {a}, d {c}, </s> {b, a, d}.
    assert adjusted[0] == {("a",): 2, ("b",): 2, ("c",): 1, ("d",): 1, (EOS,): 3, (UNK,): 0, (BOS,): 0}
    # Bigrams: "<s> a" (seen twice) and "<s> b" keep raw counts; every other bigram has one left neighbour.
    assert adjusted[1] == {("<s>", "a"): 2, ("<s>", "b"): 1, ("a", "b"): 1, ("b", EOS): 1, ("b", "a"): 1,
                           ("a", EOS): 1, ("a", "c"): 1, ("c", "d"): 1, ("d", EOS): 1}
    # Trigrams: raw counts, each seen once.
    assert adjusted[2] == {gram: 1 for gram in [("<s>", "a", "b"), ("a", "b", EOS), ("<s>", "b", "a"),
                                                ("b", "a", EOS), ("<s>", "a", "c"), ("a", "c", "d"),
                                                ("c", "d", EOS)]}
    # Unigram count-of-counts t1..t4 = 2, 2, 1, 0: Y = 2 / (2 + 2*2) = 1/3,
    # D1 = 1 - 2 Y 2/2 = 1/3, D2 = 2 - 3 Y 1/2 = 3/2, D3+ = 3 - 4 Y 0/1 = 3.
    assert kn_discounts(arrays[0], 1) == pytest.approx((1 / 3, 1.5, 3.0))
    # Bigrams t = 8, 1, 0 and trigrams t = 7, 0, 0: no estimate, lmplz's fallback (0.5, 1, 1.5).
    assert kn_discounts(arrays[1], 2) == FALLBACK_DISCOUNTS
    assert kn_discounts(arrays[2], 3) == FALLBACK_DISCOUNTS


def test_discounts_from_count_of_counts():
    def table(t1, t2, t3, t4):
        return np.array([1] * t1 + [2] * t2 + [3] * t3 + [4] * t4 + [7, 0])

    # t = 10, 4, 2, 1: Y = 10/18 = 5/9; D1 = 1 - 2 Y 4/10 = 5/9; D2 = 2 - 3 Y 2/4 = 7/6; D3+ = 3 - 4 Y 1/2 = 17/9.
    assert kn_discounts(table(10, 4, 2, 1), 2) == pytest.approx((5 / 9, 7 / 6, 17 / 9))
    # t = 4, 1, 1: Y = 2/3, D2 = 2 - 3 Y = 0, not in (0, 2]; and t3 = 0: lmplz gives up on both, we fall back.
    assert kn_discounts(table(4, 1, 1, 0), 2) == FALLBACK_DISCOUNTS
    assert kn_discounts(table(4, 2, 0, 0), 2) == FALLBACK_DISCOUNTS


def test_probabilities_by_hand():
    lm = build_ngram_lm(TINY, order=3)

    def p(word, *context):
        return 10 ** lm.log10_prob(word, context)

    # Unigrams: sum a = 9; gamma() = (D2 + D2 + D1 + D1 + D3+) / 9 = (20/3) / 9 = 20/27; the vocabulary without <s>
    # has 6 words (a b c d </s> <unk>), so each gets gamma()/6 = 10/81 from the uniform distribution.
    assert p("a") == pytest.approx((2 - 1.5) / 9 + 10 / 81, abs=1e-6)  # 29/162
    assert p("c") == pytest.approx((1 - 1 / 3) / 9 + 10 / 81, abs=1e-6)  # 16/81
    assert p(EOS) == pytest.approx(10 / 81, abs=1e-6)  # adjusted count 3, D3+ = 3: only the uniform share
    assert p(UNK) == pytest.approx(10 / 81, abs=1e-6)
    assert p("never-seen") == pytest.approx(10 / 81, abs=1e-6)  # out of vocabulary: <unk>
    assert lm.log10_prob(BOS) == -99
    # Bigrams (D = 0.5, 1, 1.5). Context <s>: a(<s> a) = 2, a(<s> b) = 1; gamma(<s>) = (1 + 0.5)/3 = 1/2.
    assert p("a", BOS) == pytest.approx((2 - 1) / 3 + 0.5 * 29 / 162, abs=1e-6)  # 137/324
    assert p("c", BOS) == pytest.approx(0.5 * 16 / 81, abs=1e-6)  # unseen after <s>
    # Context a: a b, a </s>, a c, each 1; gamma(a) = 1.5/3 = 1/2.
    assert p("b", "a") == pytest.approx(0.5 / 3 + 0.5 * 29 / 162, abs=1e-6)  # 83/324
    assert p(EOS, "a") == pytest.approx(0.5 / 3 + 0.5 * 10 / 81, abs=1e-6)  # 37/162
    assert p("c", "a") == pytest.approx(0.5 / 3 + 0.5 * 16 / 81, abs=1e-6)  # 43/162
    assert p("a", "b") == pytest.approx(0.5 / 2 + 0.5 * 29 / 162, abs=1e-6)  # 55/162
    assert p("d", "c") == pytest.approx(0.5 / 1 + 0.5 * 16 / 81, abs=1e-6)  # 97/162
    # Trigrams (D1 = 0.5). Context "<s> a": <s> a b, <s> a c; gamma = 1/2.
    assert p("b", BOS, "a") == pytest.approx(0.5 / 2 + 0.5 * 83 / 324, abs=1e-6)  # 245/648
    assert p("c", BOS, "a") == pytest.approx(0.5 / 2 + 0.5 * 43 / 162, abs=1e-6)  # 31/81
    assert p(EOS, BOS, "a") == pytest.approx(0.5 * 37 / 162, abs=1e-6)  # unseen: back off to p(</s>|a)
    assert p(UNK, BOS, "a") == pytest.approx(0.5 * 0.5 * 10 / 81, abs=1e-6)
    assert p(EOS, "a", "b") == pytest.approx(0.5 / 1 + 0.5 * (0.5 / 2 + 0.5 * 10 / 81), abs=1e-6)  # 425/648
    # Only the last order-1 words of a longer context count.
    assert p(EOS, "d", "c", "a", "b") == pytest.approx(425 / 648, abs=1e-6)
    # The ARPA back-off weights are the interpolation weights gamma(h) = 1/2.
    assert lm.backoffs[(BOS,)] == lm.backoffs[("a",)] == lm.backoffs[(BOS, "a")] == pytest.approx(math.log10(0.5))
    assert (EOS,) not in lm.backoffs and ("a", "b", EOS) not in lm.backoffs


def test_pruned_probabilities_by_hand():
    # (1, 2, 2): only "<s> a" (seen twice) stays among bigrams and trigrams. Its probability is the full model's,
    # 137/324; gamma(<s>) = (1 - 137/324) / (1 - p(a) = 1 - 29/162) = 187/266.
    lm = build_ngram_lm(TINY, order=3, min_counts=(1, 2, 2))
    assert [len(table) for table in lm.probs] == [7, 1, 0]
    assert 10 ** lm.log10_prob("a", [BOS]) == pytest.approx(137 / 324, abs=1e-6)
    assert 10 ** lm.log10_prob("b", [BOS]) == pytest.approx(187 / 266 * 29 / 162, abs=1e-6)
    assert 10 ** lm.log10_prob("b", ["a"]) == pytest.approx(29 / 162, abs=1e-6)
    # (1, 1, 2): no trigram stays; bigram contexts keep gamma = 1/2, so p(b | <s> a) = p(b | a) = 83/324.
    lm = build_ngram_lm(TINY, order=3, min_counts=(1, 1, 2))
    assert 10 ** lm.log10_prob("b", [BOS, "a"]) == pytest.approx(83 / 324, abs=1e-6)


def _corpus(n_sentences: int = 400, seed: int = 0, vocab_size: int = 40) -> list[list[str]]:
    """Pseudo-random sentences over vocab_size words (up to 1080) with Zipf-like frequencies: plenty of repeated
    n-grams."""
    rng = random.Random(seed)
    vocab = [a + b + c for c in ["", *string.ascii_lowercase] for a in "bcdfg" for b in "aeiouyxz"][:vocab_size]
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    return [rng.choices(vocab, weights, k=rng.randint(1, 9)) for _ in range(n_sentences)]


def _assert_normalized(lm):
    vocab = [w for w in lm.words() if w != BOS]
    contexts = [()] + [gram for table in lm.probs[:-1] for gram in table if gram[-1] != EOS]
    for context in contexts:
        total = sum(10 ** lm.log10_prob(word, context) for word in vocab)
        assert total == pytest.approx(1, abs=1e-6), context


@pytest.mark.parametrize(("order", "min_counts"), [(3, None), (3, (1, 1, 2)), (3, (1, 2, 3)), (4, (1, 1, 2, 2)),
                                                   (1, None)])
def test_distributions_sum_to_one_after_arpa_round_trip(tmp_path, order, min_counts):
    lm = build_ngram_lm(_corpus(), order=order, min_counts=min_counts)
    lm.write_arpa(tmp_path / "lm.arpa")
    again = read_arpa(tmp_path / "lm.arpa")
    assert again == lm  # values are kept at the precision written
    _assert_normalized(again)
    # Every listed n-gram's prefix and suffix is listed too (KenLM relies on it).
    for n in range(1, again.order):
        assert all(gram[:-1] in again.probs[n - 1] and gram[1:] in again.probs[n - 1] for gram in again.probs[n])
    if min_counts:
        assert len(again.probs[-1]) < len(build_ngram_lm(_corpus(), order=order).probs[-1])


def test_closed_vocabulary_lists_unseen_words_and_maps_others_to_unk(tmp_path):
    counts = count_ngrams(TINY, 3, vocabulary=["a", "b", "c", "e", "f"])  # d is out, e and f never occur
    assert counts.words == ["</s>", "<s>", "<unk>", "a", "b", "c", "e", "f"]
    assert ("c", UNK) in counts.ngrams(2) and ("a", "c", UNK) in counts.ngrams(3)  # d counted as <unk>
    model = estimate_lm(counts)
    model.write_arpa(tmp_path / "lm.arpa")
    lm = read_arpa(tmp_path / "lm.arpa")
    _assert_normalized(lm)
    # An unseen listed word gets only its share of the uniform distribution (gamma() / 7 words without <s>):
    # enough for beam search to reach it, less than any word the text has.
    assert lm.log10_prob("e") == lm.log10_prob("f") < min(lm.log10_prob(w) for w in "abc")
    assert arpa_words(tmp_path / "lm.arpa") == ["a", "b", "c", "e", "f"]
    with pytest.raises(ValueError, match="words must be non-empty, without spaces"):
        count_ngrams(TINY, 3, vocabulary=["a b"])
    with pytest.raises(ValueError, match="the vocabulary is empty"):
        count_ngrams(TINY, 3, vocabulary=[])


def test_arpa_output_is_deterministic(tmp_path, monkeypatch):
    build_ngram_lm(_corpus(), order=3).write_arpa(tmp_path / "a.arpa")
    build_ngram_lm(reversed(_corpus()), order=3).write_arpa(tmp_path / "b.arpa")
    text = (tmp_path / "a.arpa").read_text()
    assert text == (tmp_path / "b.arpa").read_text()
    assert text.startswith("\n\\data\\\nngram 1=") and text.endswith("\\end\\\n")
    assert "\n-99\t<s>\t" in text
    # The arrays write the same text as the dicts, in blocks of any size; compressed, the same bytes every time.
    model = estimate_lm(count_ngrams(_corpus(), 3))
    monkeypatch.setattr(asr.decoding.lm, "_BLOCK", 7)
    for name in ["c.arpa.gz", "d.arpa.gz"]:
        model.write_arpa(tmp_path / name)
    packed = (tmp_path / "c.arpa.gz").read_bytes()
    assert packed == (tmp_path / "d.arpa.gz").read_bytes() and gzip.decompress(packed).decode() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.arpa", "b.arpa", "c.arpa.gz", "d.arpa.gz"]


def _reference_lm(sentences, order, min_counts=None):
    """The dict-based builder that the array one replaced, condensed: (log10 probabilities, log10 back-offs)."""
    counts = [Counter() for _ in range(order)]
    for sentence in sentences:
        padded = (BOS, *sentence, EOS)
        counts[0].update(zip(padded[1:]))
        for n in range(2, order + 1):
            counts[n - 1].update(zip(*(padded[i:] for i in range(n))))
    adjusted = [dict(Counter(gram[1:] for gram in counts[n])) for n in range(1, order)] + [dict(counts[-1])]
    for n in range(1, order):
        adjusted[n - 1].update({gram: c for gram, c in counts[n - 1].items() if gram[0] == BOS})
    adjusted[0].setdefault((UNK,), 0)
    adjusted[0][(BOS,)] = 0
    probs, gammas, lower = [], {}, None
    for n, table in enumerate(adjusted, start=1):
        t = Counter(table.values())
        y = t[1] / (t[1] + 2 * t[2]) if t[1] else 0
        d = (0, 1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3]) if t[1] and t[2] and t[3] \
            else (0, 0, 0, 0)
        d = d if all(0 < d[k] <= k for k in (1, 2, 3)) else (0, *FALLBACK_DISCOUNTS)
        totals, masses = Counter(), Counter()
        for gram, c in table.items():
            totals[gram[:-1]] += c
            masses[gram[:-1]] += d[min(c, 3)]
        gammas.update({h: masses[h] / totals[h] for h in totals if h})
        lower = {gram: (c - d[min(c, 3)]) / totals[gram[:-1]] + masses[gram[:-1]] / totals[gram[:-1]]
                 * (lower[gram[1:]] if lower else 1 / (len(adjusted[0]) - 1)) for gram, c in table.items()}
        probs.append(lower)
    if min_counts and max(min_counts) > 1:
        needed = set()
        for n in range(order, 1, -1):
            probs[n - 1] = {g: p for g, p in probs[n - 1].items()
                            if counts[n - 1][g] >= min_counts[n - 1] or g in needed}
            needed = {g[:-1] for g in probs[n - 1]} | {g[1:] for g in probs[n - 1]}
        listed, below = Counter(), Counter()
        for n in range(2, order + 1):
            for gram, p in probs[n - 1].items():
                listed[gram[:-1]] += p
                below[gram[:-1]] += probs[n - 2][gram[1:]]
        gammas = {h: (1 - listed[h]) / (1 - below[h]) if listed[h] < 1 and below[h] < 1 else 1.0 for h in listed}
    log10_probs = [{g: math.log10(p) for g, p in table.items()} for table in probs]
    log10_probs[0][(BOS,)] = -99.0
    return log10_probs, {h: math.log10(g) for h, g in gammas.items()}


def _assert_same_model(lm, reference):
    probs, backoffs = reference
    assert [set(table) for table in lm.probs] == [set(table) for table in probs]
    assert set(lm.backoffs) == set(backoffs)
    for ours, theirs in [*zip(lm.probs, probs), (lm.backoffs, backoffs)]:
        assert ours == pytest.approx(theirs, abs=1e-6)


@pytest.mark.parametrize(("order", "min_counts", "seed", "vocab_size"), [
    (1, None, 1, 40), (2, None, 2, 40), (3, None, 3, 200), (3, (1, 2, 2), 4, 40), (4, (1, 1, 2, 3), 5, 100),
    (5, None, 6, 40), (5, (1, 2, 2, 2, 2), 7, 60),
])
def test_agrees_with_the_dict_implementation(order, min_counts, seed, vocab_size):
    corpus = _corpus(300, seed, vocab_size)
    _assert_same_model(build_ngram_lm(corpus, order, min_counts), _reference_lm(corpus, order, min_counts))


def test_orders_too_wide_for_keys_that_pack_every_word():
    # Packing 8 ids of 9 bits would take 72; a key holds its prefix's index and one word id instead.
    corpus = _corpus(400, seed=8, vocab_size=1000)
    lm = build_ngram_lm(corpus, order=8)
    assert len(lm.words()) > 2 ** 8 and len(lm.probs[-1]) > 100
    _assert_same_model(lm, _reference_lm(corpus, 8))


def test_too_many_ngrams_to_index_is_an_error(monkeypatch):
    monkeypatch.setattr(asr.decoding.lm, "_MAX_INDEX", 50)
    with pytest.raises(ValueError, match="more than 50 distinct n-grams of one order"):
        count_ngrams(_corpus(), 3)


def test_counting_in_chunks_equals_counting_at_once():
    corpus = _corpus(seed=9)
    at_once = count_ngrams(corpus, 4)
    for chunk_tokens in (1, 7, 100):
        chunked = count_ngrams(iter(corpus), 4, chunk_tokens=chunk_tokens)
        assert (chunked.words, chunked.sentences, chunked.tokens) == (at_once.words, at_once.sentences,
                                                                      at_once.tokens)
        for tables in ["keys", "counts", "suffixes"]:
            for ours, theirs in zip(getattr(chunked, tables), getattr(at_once, tables)):
                np.testing.assert_array_equal(ours, theirs)
    trigrams = Counter(gram for s in corpus for gram in zip(*([BOS, *s, EOS][i:] for i in range(3))))
    assert _as_dicts(at_once, at_once.counts)[2] == trigrams
    assert at_once.ngrams(3) == sorted(trigrams)  # keys sort as the word tuples do


@pytest.mark.parametrize(("max_ngrams", "floor", "expected"), [
    (1800, None, (1, 1, 2)), (900, None, (1, 1, 3)), (600, None, (1, 2, 3)), (100, None, (1, 9, 17)),
    (43, None, (1, 97, 23)), (1200, (1, 2, 2), (1, 2, 2)), (600, (1, 1, 4), (1, 2, 4)),
])
def test_pruning_to_a_size_target(max_ngrams, floor, expected):
    counts = count_ngrams(_corpus(), 3)  # 43 unigrams, 621 bigrams, 1444 trigrams
    model = estimate_lm(counts, min_counts=floor, max_ngrams=max_ngrams)
    assert model.min_counts == expected
    assert sum(model.sizes) <= max_ngrams < sum(len(keys) for keys in counts.keys)
    # The least minimum counts, lower orders first: each raised one would not fit with one less (and every longer
    # n-gram dropped).
    for n in (2, 3):
        if expected[n - 1] > (floor or (1, 1, 1))[n - 1]:
            lower = (*expected[:n - 1], expected[n - 1] - 1, *[10 ** 9] * (3 - n))
            assert sum(estimate_lm(counts, min_counts=lower).sizes) > max_ngrams
    lm = model.to_ngram_lm()
    assert lm == estimate_lm(counts, min_counts=expected).to_ngram_lm()
    for n in range(1, lm.order):
        assert all(gram[:-1] in lm.probs[n - 1] and gram[1:] in lm.probs[n - 1] for gram in lm.probs[n])
    _assert_normalized(lm)


def test_size_target_below_the_vocabulary_is_an_error():
    with pytest.raises(ValueError, match="max_ngrams must be at least the 43 unigrams"):
        estimate_lm(count_ngrams(_corpus(), 3), max_ngrams=42)


def _kenlm(path, tokens):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    dictionary = Dictionary(tokens)
    return KenLM(str(path), dictionary), dictionary


def _kenlm_scores(kenlm, dictionary, tokens):
    state, scores = kenlm.start(False), []  # False: start after <s>
    for token in tokens:
        state, score = kenlm.score(state, dictionary.get_index(token))
        scores.append(score)
    return scores + [kenlm.finish(state)[1]]


def _our_scores(lm, tokens):
    history = [BOS, *tokens]
    return [lm.log10_prob(word, history[:i + 1]) for i, word in enumerate([*tokens, EOS])]


@pytest.mark.parametrize("min_counts", [None, (1, 2, 2)])
def test_kenlm_agrees_in_log10(tmp_path, min_counts):
    corpus = _corpus()
    lm = build_ngram_lm(corpus, order=3, min_counts=min_counts)
    lm.write_arpa(tmp_path / "lm.arpa")
    kenlm, dictionary = _kenlm(tmp_path / "lm.arpa", lm.words() + ["oov"])
    sequences = [corpus[0], corpus[1], corpus[7][::-1], ["ba", "oov", "ba", "ba"], ["oov"], list(reversed(corpus[3]))]
    for tokens in sequences:
        # flashlight's KenLM returns KenLM's own unit, log10 (natural logs would be 2.3 times larger).
        assert _kenlm_scores(kenlm, dictionary, tokens) == pytest.approx(_our_scores(lm, tokens), abs=1e-4)


def test_char_tokens():
    assert char_tokens("to be") == ["t", "o", "|", "b", "e"]
    assert char_tokens("  don't  ") == ["d", "o", "n", "'", "t"]
    assert char_tokens("a b", separator="<sep>") == ["a", "<sep>", "b"]
    assert char_tokens("") == []


SENTENCES = ["the cat sat on the mat", "the dog ate the bone", "a cat and a dog", "the sun is hot",
             "she sat on the sofa", "the man and the cat ran"]


def test_character_lm_loads_in_kenlm_and_prefers_real_spelling(tmp_path):
    lm = build_ngram_lm([char_tokens(s) for s in SENTENCES * 3], order=5)
    lm.write_arpa(tmp_path / "chars.arpa")
    tokens = ["-", "|", "'", *string.ascii_lowercase]
    kenlm, dictionary = _kenlm(tmp_path / "chars.arpa", tokens)
    good, bad = char_tokens("the cat sat"), char_tokens("hte cta sta")
    good_scores = _kenlm_scores(kenlm, dictionary, good)
    assert good_scores == pytest.approx(_our_scores(lm, good), abs=1e-4)
    assert sum(good_scores) > sum(_kenlm_scores(kenlm, dictionary, bad)) + 5
    # A separator at either end is not what the decoder will score: the LM has never seen one there.
    assert lm.log10_prob("|", [BOS]) < lm.log10_prob("t", [BOS]) - 1


def test_lexicon_free_decoder_uses_character_lm(tmp_path):
    from torchaudio.models.decoder import ctc_decoder

    build_ngram_lm([char_tokens(s) for s in SENTENCES * 3], order=5).write_arpa(tmp_path / "chars.arpa")
    tokens = ["-", "|", "'", *string.ascii_lowercase]
    # Without lm_dict, torchaudio hands KenLM a dictionary in hash order, so token i is scored as some other
    # character; a file listing the tokens in emission order keeps the indices aligned.
    (tmp_path / "tokens.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    # One frame per character, blanks between; acoustically the vowel of "the" is a coin toss between e and a.
    emissions = torch.full((1, 14, len(tokens)), 1e-3)
    for t, char in enumerate("the|cat"):
        emissions[0, 2 * t, [tokens.index(c) for c in ("ea" if char == "e" else char)]] = 0.9 / (1 + (char == "e"))
        emissions[0, 2 * t + 1, 0] = 0.9
    decoder = ctc_decoder(lexicon=None, tokens=tokens, lm=str(tmp_path / "chars.arpa"),
                          lm_dict=str(tmp_path / "tokens.txt"), lm_weight=1.0, beam_size=20, nbest=2)
    best, second = decoder(emissions.log())[0]
    # The decoder frames each hypothesis with separators itself (unscored, like <s> and </s>).
    assert "".join(decoder.idxs_to_tokens(best.tokens)) == "|the|cat|"
    assert "".join(decoder.idxs_to_tokens(second.tokens)) == "|tha|cat|"
    assert best.score > second.score + 1


def test_read_training_text(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("Hello, World!\n\n  ...  \nIt's 5 o'clock.\n", encoding="utf-8")
    assert list(read_training_text(text)) == [["hello", "world"], ["it's", "five", "o'clock"]]
    # Worker processes normalize blocks of lines; the sentences come in the file's order all the same.
    text.write_text("".join(f"line {i}, number {i}!\n\n" for i in range(12_000)), encoding="utf-8")
    assert list(read_training_text(text, processes=2)) == list(read_training_text(text))
    manifest = tmp_path / "train.jsonl"
    entries = [{"audio_filepath": "a.wav", "duration": 1.0, "text": "The CAT sat."},
               {"audio_filepath": "b.wav", "duration": 2.0, "text": "2 dogs", "speaker": "x"}]
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries), encoding="utf-8")
    assert list(read_training_text(manifest)) == [["the", "cat", "sat"], ["two", "dogs"]]
    (tmp_path / "empty.txt").write_text("\n ... \n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    for name, message in [("empty.txt", "no text"), ("latin1.txt", "not UTF-8"),
                          ("missing.txt", "text file not found")]:
        with pytest.raises(ValueError, match=f"{name}: {message}"):
            list(read_training_text(tmp_path / name))


@pytest.mark.parametrize(("sentences", "kwargs", "message"), [
    ([], {}, "no text"),
    ([[], []], {}, "no text"),
    ([["a"]], {"order": 0}, "order must be at least 1"),
    (["a b"], {}, "list of words, not a string"),
    ([["a", "b c"]], {}, "without spaces"),
    ([["a", ""]], {}, "non-empty"),
    ([[BOS, "a"]], {}, "not <s>"),
    ([["a"]], {"order": 3, "min_counts": (1, 2)}, "one count"),
    ([["a"]], {"order": 2, "min_counts": (2, 2)}, "never pruned"),
])
def test_bad_input_raises(sentences, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_ngram_lm(sentences, **kwargs)


def test_tiny_text_builds_with_fallback_discounts():
    lm = build_ngram_lm([["hello"]], order=4)
    assert lm.words() == ["</s>", "<s>", "<unk>", "hello"]
    assert sum(10 ** lm.log10_prob(w, [BOS]) for w in ["hello", EOS, UNK]) == pytest.approx(1, abs=1e-6)


VALID = ("\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-99\t<s>\t-0.5\n-0.5\t</s>\n-0.3\t<unk>\n\n"
         "\\2-grams:\n-0.2\t<s> </s>\n\n\\end\\\n")


@pytest.mark.parametrize(("content", "message"), [
    ("just some text\n", "no \\\\data\\\\ section"),
    (VALID.replace("\\end\\\n", ""), "truncated"),
    (VALID.replace("-0.3\t<unk>", "-0.3x\t<unk>"), "'-0.3x' is not a number"),
    (VALID.replace("ngram 1=3", "ngram 1=4"), "announces \\[4, 1\\] n-grams per order, the file lists \\[3, 1\\]"),
    (VALID.replace("ngram 1=3", "ngram 2=3"), "expected 'ngram 1=<count>'"),
    (VALID.replace("-0.5\t</s>", "-0.5\t</s> x y"), "expected a log10 probability"),
    (VALID.replace("-0.5\t</s>", "-0.5\tx"), "no </s> unigram"),
    (VALID.replace("\\1-grams:", "\\2-grams:"), "unexpected line"),
])
def test_malformed_arpa_raises(tmp_path, content, message):
    path = tmp_path / "bad.arpa"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"bad.arpa.*{message}"):
        read_arpa(path)


def test_unreadable_arpa_raises(tmp_path):
    with pytest.raises(CheckpointError, match="missing.arpa: language model not found"):
        read_arpa(tmp_path / "missing.arpa")
    (tmp_path / "binary.arpa").write_bytes(b"\\data\\\n\xff\xfe\x00")
    with pytest.raises(CheckpointError, match="binary.arpa: not an ARPA file"):
        read_arpa(tmp_path / "binary.arpa")
    (tmp_path / "valid.arpa").write_text(VALID, encoding="utf-8")
    lm = read_arpa(tmp_path / "valid.arpa")
    assert lm.log10_prob(EOS, [BOS]) == -0.2
    assert lm.log10_prob("anything", [BOS]) == pytest.approx(-0.5 - 0.3)  # back-off(<s>) + p(<unk>)


def test_cli_builds_a_model_to_a_size_target(tmp_path, capsys):
    text, out = tmp_path / "text.txt", tmp_path / "lm.arpa.gz"
    text.write_text("".join(" ".join(sentence) + "\n" for sentence in _corpus()), encoding="utf-8")
    assert main(["lm", str(text), "--out", str(out), "--max-ngrams", "600", "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out} (0.0 MB) from 400 sentences, {sum(map(len, _corpus()))} words: ")
    assert printed.endswith(": 1-grams 43, 2-grams 334, 3-grams 110; min counts 1,2,3\n")
    assert read_arpa(out) == build_ngram_lm(_corpus(), 3, (1, 2, 3))


def test_cli_builds_a_model_of_a_closed_vocabulary(tmp_path, capsys):
    text, vocab, out = tmp_path / "text.txt", tmp_path / "vocab.txt", tmp_path / "lm.arpa"
    text.write_text("the cat sat\nthe dog sat down\n", encoding="utf-8")
    vocab.write_text("the\ncat\nsat\nmat\n", encoding="utf-8")
    assert main(["lm", str(text), "--out", str(out), "--vocab", str(vocab), "--jobs", "0"]) == 0
    assert arpa_words(out) == ["cat", "mat", "sat", "the"]  # mat listed though unseen; dog and down are <unk>
    assert ("the", UNK, "sat") in read_arpa(out).probs[2]
    assert not is_kenlm_binary(out)


def test_the_library_names_the_file_it_cannot_read_or_write(tmp_path):
    with pytest.raises(ConfigError, match="missing.txt: cannot read the word list"):
        read_word_list(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="cannot write the language model"):
        build_ngram_lm([["a", "b"]], order=2).write_arpa(tmp_path)  # a folder
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["missing.txt"], "missing.txt: text file not found"),
    (["text.txt", "--vocab", "missing.txt"], "missing.txt: cannot read the word list (No such file"),
    (["text.txt", "--vocab", "text.txt", "--chars"], "--vocab lists words: a character LM (--chars)"),
    (["text.txt", "--order", "0"], "order must be at least 1"),
    (["text.txt", "--min-counts", "1,x"], "--min-counts: expected counts separated by commas"),
    (["text.txt", "--min-counts", "1,2"], "min_counts must give one count >= 1 per order"),
    (["text.txt", "--max-ngrams", "4"], "max_ngrams must be at least the 5 unigrams"),
    (["text.txt", "--out", "missing/lm.arpa"], "missing/lm.arpa: the folder to write the language model in does"),
    (["text.txt", "--out", "text.txt/lm.arpa"], "text.txt/lm.arpa: the folder to write the language model in"),
    (["text.txt", "--out", "."], ".: cannot write the language model ("),
])
def test_cli_reports_bad_input_in_one_line(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text("a b\n", encoding="utf-8")
    assert main(["lm", "--out", "lm.arpa", "--jobs", "0", *args]) == 1  # a second --out replaces the first
    error = capsys.readouterr().err.splitlines()  # warnings first, on such a tiny text, then the error
    assert error[-1].startswith("asr lm: error: ") and message in error[-1]
    assert not any("Traceback" in line for line in error)
    assert [path.name for path in tmp_path.iterdir()] == ["text.txt"]  # no model, no temporary file left
