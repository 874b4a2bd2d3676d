import numpy as np
import torch

from asr.data import BucketBatchSampler, collate


def test_batches_bounded_by_padded_seconds_and_cover_everything():
    rng = np.random.default_rng(0)
    durations = rng.uniform(1.0, 15.0, size=300).tolist()
    sampler = BucketBatchSampler(durations, max_batch_seconds=60.0, seed=1)
    seen = sorted(i for batch in sampler.batches for i in batch)
    assert seen == list(range(300))
    for batch in sampler.batches:
        longest = max(durations[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest <= 60.0


def test_sortagrad_first_epoch_then_deterministic_shuffles():
    durations = [float(d) for d in range(1, 101)]
    sampler = BucketBatchSampler(durations, max_batch_seconds=100.0, seed=3)
    sampler.set_epoch(0)
    first = list(sampler)
    assert [max(durations[i] for i in b) for b in first] == sorted(max(durations[i] for i in b) for b in first)
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(map(tuple, second)) == sorted(map(tuple, first))
    again = BucketBatchSampler(durations, max_batch_seconds=100.0, seed=3)
    again.set_epoch(1)
    assert list(again) == second  # any epoch can be replayed exactly
    again.set_epoch(1, start_batch=2)
    assert list(again) == second[2:] and len(again) == len(second) - 2


def test_collate_pads_audio_and_targets():
    items = [(np.ones(5, np.float32), "ab", [3, 4], 7), (np.ones(3, np.float32), "c", [5], 2)]
    batch = collate(items)
    assert batch.waveforms.shape == (2, 5) and batch.waveforms[1, 3:].eq(0).all()
    assert batch.lengths.tolist() == [5, 3] and batch.target_lengths.tolist() == [2, 1]
    assert torch.equal(batch.targets, torch.tensor([[3, 4], [5, 0]]))
    assert batch.texts == ["ab", "c"] and batch.indices == [7, 2]
