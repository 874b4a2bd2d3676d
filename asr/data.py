"""Training data: utterances from manifests, length-bucketed batches bounded by audio seconds, collation."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .audio import SAMPLE_RATE, load_audio
from .augment import WaveformAugment
from .batching import length_buckets, pad
from .errors import AudioError, ManifestError
from .features import LogMel
from .manifest import entry_audio
from .text import Vocabulary, normalize


@dataclass
class Batch:
    waveforms: torch.Tensor  # (batch, samples), zero-padded
    lengths: torch.Tensor  # (batch,) samples
    targets: torch.Tensor  # (batch, max_target), zero-padded token ids
    target_lengths: torch.Tensor  # (batch,)
    texts: list[str]
    indices: list[int]
    # Log-mel features and their frame counts when the loader computes them (train.features_in_loader).
    features: torch.Tensor | None = None
    frames: torch.Tensor | None = None
    # Utterances whose audio could not be used (unreadable or silent): in the batch as a moment of silence with
    # no target, so that every process still takes its step, and left out of the loss. Why, for each of them.
    usable: torch.Tensor | None = None  # (batch,) bool; None: all
    unusable: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> "Batch":
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device, non_blocking=True)

        return Batch(move(self.waveforms), move(self.lengths), move(self.targets), move(self.target_lengths),
                     self.texts, self.indices, move(self.features), move(self.frames), move(self.usable),
                     self.unusable)


class Item(NamedTuple):
    """One dataset item: a 16 kHz waveform, its normalized text and token ids, its index, and why its audio was
    not usable ("" when it was)."""

    audio: np.ndarray
    text: str
    ids: list[int]
    index: int
    unusable: str = ""


SILENT_PEAK = 1e-4  # -80 dBFS: a training file that never gets louder holds no speech (a damaged or empty take)
STAND_IN = np.zeros(SAMPLE_RATE // 10, dtype=np.float32)  # what an unusable utterance becomes in its batch


class SpeechDataset(Dataset):
    """Manifest entries -> (16 kHz waveform, normalized text, token ids). Audio is read lazily per item.

    With `augment`, each waveform is augmented with a generator seeded by (seed, epoch, index): the same
    utterance sounds different every epoch, yet any epoch can be replayed exactly (call set_epoch first). An index
    of len(entries) or more is another copy of entry index % len(entries) (a corpus drawn more than once per epoch
    by BucketBatchSampler's mix), with augmentation draws of its own.
    """

    def __init__(
        self,
        entries: list[dict[str, Any]],
        vocab: Vocabulary,
        sample_rate: int = SAMPLE_RATE,
        augment: WaveformAugment | None = None,
        seed: int = 0,
    ) -> None:
        self.entries = entries
        self.vocab = vocab
        self.sample_rate = sample_rate
        self.augment = augment
        self.seed = seed
        # In shared memory: persistent loader workers keep their copy of the dataset across epochs, yet must see
        # the epoch the trainer sets (it is set before each epoch's first index is sent to them).
        self._epoch = torch.zeros((), dtype=torch.long).share_memory_()
        self.texts = [normalize(e["text"]) for e in entries]
        for entry, text in zip(entries, self.texts):
            if not vocab.covers(text):
                bad = sorted(set(text) - set(vocab.chars))
                raise ManifestError(f"{entry['audio_filepath']}: transcript has characters {bad} outside the vocabulary")

    def __len__(self) -> int:
        return len(self.entries)

    def durations(self) -> list[float]:
        return [float(e["duration"]) for e in self.entries]

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def __getitem__(self, index: int) -> Item:
        """The utterance, augmented; one whose audio cannot be read, or is silent, comes back as STAND_IN with
        no target and the reason, so that a few damaged files in a long run are skipped and counted, not fatal."""
        entry = index % len(self.entries)
        path = entry_audio(self.entries[entry])
        try:
            audio = load_audio(path, target_rate=self.sample_rate)
        except AudioError as err:
            return Item(STAND_IN, self.texts[entry], [], index, f"unreadable: {err}")
        if not audio.size or float(np.abs(audio).max()) < SILENT_PEAK:
            return Item(STAND_IN, self.texts[entry], [], index,
                        f"{self.entries[entry]['audio_filepath']}: silent (peak below -80 dBFS)")
        if self.augment is not None:
            audio = self.augment(audio, np.random.default_rng([self.seed, self.epoch, index]))
        return Item(audio, self.texts[entry], self.vocab.encode(self.texts[entry]), index)


def collate(items: Sequence[Item], features: LogMel | None = None) -> Batch:
    """Pad a list of dataset items into a Batch; with `features`, also compute the log-mel here (in a worker)."""
    items = [Item(*item) for item in items]
    waveforms, lengths = pad([item.audio for item in items])
    targets, target_lengths = pad([item.ids for item in items], dtype=torch.long)
    batch = Batch(waveforms, lengths, targets, target_lengths, [item.text for item in items],
                  [item.index for item in items])
    if any(item.unusable for item in items):
        batch.usable = torch.tensor([not item.unusable for item in items])
        batch.unusable = [item.unusable for item in items if item.unusable]
    if features is not None:
        batch.features, batch.frames = features(waveforms, lengths)
    return batch


Mix = Sequence[tuple[Sequence[int], float]]  # (utterance indices of one corpus, its share of an epoch's audio)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances whose padded size stays under max_batch_seconds.

    Utterances are sorted by duration and cut into batches, so padding is small. The first epoch visits
    batches from shortest to longest (SortaGrad: short utterances first stabilize early CTC training); later
    epochs shuffle the batch order with a seed derived from (seed, epoch), so any epoch can be replayed exactly.
    `start_batch` skips the batches already trained when resuming in the middle of an epoch.

    With a `mix` of corpora, each epoch holds epoch_seconds of audio (default: all the corpora once), each corpus
    its share of it: a corpus whose share is more than its audio comes whole that many times (the copies are
    indices beyond the dataset's length, see SpeechDataset), and the remainder is a random draw of its utterances,
    new every epoch and seeded by (seed, epoch), as is the whole plan; so resuming replays it exactly.

    Under data-parallel training, process `rank` of `num_replicas` takes every num_replicas-th batch of the epoch's
    order; the few batches left over are dropped so every process runs the same number of steps (DDP synchronizes
    each step). With SortaGrad, the processes' batches at one step have similar lengths.
    """

    def __init__(
        self,
        durations: list[float],
        max_batch_seconds: float,
        seed: int = 0,
        sortagrad: bool = True,
        max_batch_size: int = 256,
        num_replicas: int = 1,
        rank: int = 0,
        mix: Mix | None = None,
        epoch_seconds: float | None = None,
    ) -> None:
        self.durations = list(durations)
        self.max_batch_seconds, self.max_batch_size = max_batch_seconds, max_batch_size
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.sortagrad = sortagrad
        self.epoch = 0
        self.start_batch = 0
        self.mix = [(list(indices), float(share)) for indices, share in mix] if mix else None
        if self.mix and not all(indices and share > 0 for indices, share in self.mix):
            raise ValueError("every corpus of a mix needs utterances and a positive share")
        self.epoch_seconds = epoch_seconds or sum(self.durations)
        self.batches = length_buckets(self.durations, max_batch_seconds, max_batch_size) if self.mix is None else []
        self._planned: tuple[int, list[list[int]]] | None = None  # (epoch, its batches) of the last plan made

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def batches_of(self, epoch: int) -> list[list[int]]:
        """The epoch's batches in length order (the same every epoch without a mix)."""
        if self.mix is None:
            return self.batches
        if self._planned is None or self._planned[0] != epoch:
            chosen = self.epoch_utterances(epoch)
            n = len(self.durations)
            buckets = length_buckets([self.durations[i % n] for i in chosen], self.max_batch_seconds,
                                     self.max_batch_size)
            self._planned = epoch, [[chosen[j] for j in bucket] for bucket in buckets]
        return self._planned[1]

    def epoch_utterances(self, epoch: int) -> list[int]:
        """The (possibly repeated) utterance indices an epoch of the mix trains on."""
        rng = random.Random(f"mix:{self.seed}:{epoch}")
        n, total_share = len(self.durations), sum(share for _, share in self.mix or ())
        chosen: list[int] = []
        for indices, share in self.mix or ():
            copies, rest = divmod(share / total_share * self.epoch_seconds, sum(self.durations[i] for i in indices))
            chosen += [i + copy * n for copy in range(int(copies)) for i in indices]
            order = list(indices)
            rng.shuffle(order)
            for i in order:
                if rest <= 0:
                    break
                chosen.append(i + int(copies) * n)
                rest -= self.durations[i]
        return chosen

    @property
    def num_batches(self) -> int:
        """Batches of the current epoch for this process."""
        return len(self.batches_of(self.epoch)) // self.num_replicas

    def total_batches(self, epochs: int) -> int:
        """Batches of the first `epochs` epochs for this process: the length of the learning-rate schedule."""
        if self.mix is None:
            return epochs * (len(self.batches) // self.num_replicas)
        return sum(len(self.batches_of(epoch)) // self.num_replicas for epoch in range(epochs))

    def epoch_batches(self) -> list[list[int]]:
        """This process's batches of the current epoch, in order."""
        batches = list(self.batches_of(self.epoch))
        if not (self.epoch == 0 and self.sortagrad):
            random.Random(self.seed * 100_003 + self.epoch).shuffle(batches)
        return batches[self.rank : self.num_batches * self.num_replicas : self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches()[self.start_batch :]

    def __len__(self) -> int:
        return self.num_batches - self.start_batch
