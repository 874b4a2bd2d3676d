import numpy as np
import pytest
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


def mix_sampler(seed: int = 4, **kwargs) -> tuple[BucketBatchSampler, list[float]]:
    """Three corpora: A (100 x 2 s), B (20 x 5 s), C (50 x 1 s), shares 0.5 / 0.3 / 0.2 of 400 s per epoch."""
    durations = [2.0] * 100 + [5.0] * 20 + [1.0] * 50
    mix = [(range(0, 100), 5.0), (range(100, 120), 3.0), (range(120, 170), 2.0)]  # relative shares
    return BucketBatchSampler(durations, 30.0, seed=seed, mix=mix, epoch_seconds=400.0, **kwargs), durations


def test_a_mix_gives_each_corpus_its_share_of_every_epoch():
    sampler, durations = mix_sampler()
    n = len(durations)
    for epoch in range(3):
        chosen = sampler.epoch_utterances(epoch)
        seconds = {name: sum(durations[i % n] for i in chosen if lo <= i % n < hi)
                   for name, (lo, hi) in {"A": (0, 100), "B": (100, 120), "C": (120, 170)}.items()}
        assert seconds["A"] == pytest.approx(200.0, abs=2.0)  # a draw of half its 200 s
        assert seconds["B"] == pytest.approx(120.0, abs=5.0)  # its 100 s once, then 20 s drawn again
        assert seconds["C"] == pytest.approx(80.0, abs=1.0)  # its 50 s once, then 30 s drawn
        assert len(set(chosen)) == len(chosen)  # a second copy has its own index (its own augmentation)
        assert all(i < 2 * n for i in chosen) and any(i >= n for i in chosen)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(i for batch in batches for i in batch) == sorted(chosen)
        assert all(len(b) == 1 or len(b) * max(durations[i % n] for i in b) <= 30.0 for b in batches)
    assert sampler.epoch_utterances(0) != sampler.epoch_utterances(1)  # a new draw every epoch


def test_a_mix_replays_exactly_and_counts_its_steps():
    sampler, _ = mix_sampler()
    again, _ = mix_sampler()
    other_seed, _ = mix_sampler(seed=5)
    for epoch in (0, 1, 2):
        for s in (sampler, again, other_seed):
            s.set_epoch(epoch)
        assert list(sampler) == list(again)
    assert list(other_seed) != list(sampler)
    again.set_epoch(2, start_batch=3)
    assert list(again) == list(sampler)[3:]
    assert sampler.total_batches(3) == sum(len(sampler.batches_of(e)) for e in range(3))
    halves = [mix_sampler(num_replicas=2, rank=rank)[0] for rank in (0, 1)]
    for half in halves:
        half.set_epoch(1)
    assert halves[0].total_batches(3) == sum(len(sampler.batches_of(e)) // 2 for e in range(3))
    assert not set(map(tuple, halves[0])) & set(map(tuple, halves[1]))


def test_without_a_mix_the_schedule_is_epochs_times_batches():
    sampler = BucketBatchSampler([1.0] * 50, max_batch_seconds=10.0, num_replicas=3)
    assert sampler.total_batches(4) == 4 * sampler.num_batches == 4 * (len(sampler.batches) // 3)
