import torch

from asr.decoding import GreedyDecoder
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
