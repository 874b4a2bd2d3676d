import json
import math
import random
import string

import pytest
import torch

from asr.errors import CheckpointError
from asr.lm import (BOS, EOS, FALLBACK_DISCOUNTS, UNK, adjust_counts, build_ngram_lm, char_tokens, count_ngrams,
                    kn_discounts, read_arpa, read_training_text)

# Hand-worked example. Padded sentences:
#   <s> a b </s>      <s> b a </s>      <s> a c d </s>
TINY = [["a", "b"], ["b", "a"], ["a", "c", "d"]]


def test_adjusted_counts_and_discounts_by_hand():
    adjusted = adjust_counts(count_ngrams(TINY, 3))
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
    assert kn_discounts(adjusted[0]) == pytest.approx((1 / 3, 1.5, 3.0))
    # Bigrams t = 8, 1, 0 and trigrams t = 7, 0, 0: no estimate, lmplz's fallback (0.5, 1, 1.5).
    assert kn_discounts(adjusted[1]) == FALLBACK_DISCOUNTS
    assert kn_discounts(adjusted[2]) == FALLBACK_DISCOUNTS


def test_discounts_from_count_of_counts():
    def table(t1, t2, t3, t4):
        counts = [1] * t1 + [2] * t2 + [3] * t3 + [4] * t4 + [7]
        return {(str(i),): c for i, c in enumerate(counts)}

    # t = 10, 4, 2, 1: Y = 10/18 = 5/9; D1 = 1 - 2 Y 4/10 = 5/9; D2 = 2 - 3 Y 2/4 = 7/6; D3+ = 3 - 4 Y 1/2 = 17/9.
    assert kn_discounts(table(10, 4, 2, 1)) == pytest.approx((5 / 9, 7 / 6, 17 / 9))
    # t = 4, 1, 1: Y = 2/3, D2 = 2 - 3 Y = 0, not in (0, 2]; and t3 = 0: lmplz gives up on both, we fall back.
    assert kn_discounts(table(4, 1, 1, 0)) == FALLBACK_DISCOUNTS
    assert kn_discounts(table(4, 2, 0, 0)) == FALLBACK_DISCOUNTS


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


def _corpus(n_sentences: int = 400, seed: int = 0) -> list[list[str]]:
    """Pseudo-random sentences over 40 words with Zipf-like frequencies: plenty of repeated n-grams."""
    rng = random.Random(seed)
    vocab = [a + b for a in "bcdfg" for b in "aeiouyxz"]
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


def test_arpa_output_is_deterministic(tmp_path):
    build_ngram_lm(_corpus(), order=3).write_arpa(tmp_path / "a.arpa")
    build_ngram_lm(reversed(_corpus()), order=3).write_arpa(tmp_path / "b.arpa")
    text = (tmp_path / "a.arpa").read_text()
    assert text == (tmp_path / "b.arpa").read_text()
    assert text.startswith("\n\\data\\\nngram 1=") and text.endswith("\\end\\\n")
    assert "\n-99\t<s>\t" in text


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
    assert read_training_text(text) == [["hello", "world"], ["it's", "five", "o'clock"]]
    manifest = tmp_path / "train.jsonl"
    entries = [{"audio_filepath": "a.wav", "duration": 1.0, "text": "The CAT sat."},
               {"audio_filepath": "b.wav", "duration": 2.0, "text": "2 dogs", "speaker": "x"}]
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries), encoding="utf-8")
    assert read_training_text(manifest) == [["the", "cat", "sat"], ["two", "dogs"]]
    (tmp_path / "empty.txt").write_text("\n ... \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.txt"):
        read_training_text(tmp_path / "empty.txt")


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
