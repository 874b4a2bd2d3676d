import pytest
import torch

from asr.model import BiLSTMCTC, ModelConfig, reverse_padded


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(10.0).reshape(2, 5, 1)
    out = reverse_padded(x, torch.tensor([5, 3]))
    assert out[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    assert torch.equal(reverse_padded(out, torch.tensor([5, 3])), x)


@pytest.mark.parametrize("subsampling", ["stack", "conv"])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_shapes_and_output_lengths(subsampling, factor):
    model = BiLSTMCTC(ModelConfig(subsampling=subsampling, subsampling_factor=factor, hidden_size=32, num_layers=2))
    log_probs, lengths = model(torch.randn(2, 101, 80), torch.tensor([101, 40]))
    expected = -(-101 // factor)
    assert log_probs.shape == (2, expected, 29)
    assert lengths.tolist() == [expected, -(-40 // factor)]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, expected), atol=1e-5)


@pytest.mark.parametrize("subsampling", ["stack", "conv"])
def test_padding_does_not_leak_into_either_direction(subsampling):
    """An utterance gets the same outputs alone as inside a longer zero-padded batch."""
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelConfig(subsampling=subsampling, hidden_size=48, num_layers=3)).eval()
    lengths = torch.tensor([120, 61, 30])
    feats = torch.randn(3, 120, 80) * (torch.arange(120)[None, :, None] < lengths[:, None, None])
    batched, out_lengths = model(feats, lengths)
    for i in range(3):
        alone, alone_lengths = model(feats[i : i + 1, : lengths[i]], lengths[i : i + 1])
        n = int(alone_lengths[0])
        assert n == out_lengths[i]
        torch.testing.assert_close(batched[i, :n], alone[0], atol=1e-5, rtol=1e-5)


def test_invalid_configs():
    with pytest.raises(ValueError, match="subsampling"):
        BiLSTMCTC(ModelConfig(subsampling="pool"))
    with pytest.raises(ValueError, match="factor"):
        BiLSTMCTC(ModelConfig(subsampling_factor=0))
