"""Training: CTC loss on a BiLSTM over log-mel features, with checkpoints that resume exactly.

Reads top to bottom: configs; set-up as plain functions (data, optimizer, loss, dev scoring); the run folder; the
Trainer (weights, checkpoints, the step, the run); the epoch loop as functions (train_one_epoch, end_epoch).
The same code runs as one process or as N data-parallel processes under torchrun (see distributed.py).
Faults lose at most the steps since the last checkpoint: last.pt is checksummed and keeps its predecessor
(last.prev.pt) for --resume to fall back on; SIGINT/SIGTERM finish the step, save last.pt and stop; a failed
checkpoint write stops training with the earlier checkpoints intact; batches with a NaN/Inf loss are skipped.
"""
from __future__ import annotations

import copy
import functools
import gc
import json
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import distributed
from .audio import load_audio
from .augment import AugmentConfig, WaveformAugment
from .checkpoint import LAST, ModelSpec, check_compatible, load_checkpoint, load_latest, load_trained, save_checkpoint
from .config import to_dict
from .data import Batch, BucketBatchSampler, SpeechDataset, collate
from .decoding import GreedyDecoder, ids_to_text
from .device_data import DeviceCorpus
from .errors import AudioError, CheckpointError, ConfigError, ManifestError
from .evaluate import Report, score
from .features import FeatureConfig, LogMel, SpecAugment, SpecAugmentConfig
from .manifest import entry_audio, read_manifest
from .model import BiLSTMCTC, ModelConfig, TorchNetwork
from .network import BATCH_SECONDS, outputs_of_files
from .release import PRETRAINED_DIR
from .stop_signals import StopRequests, ignore_stop_signals
from .text import DEFAULT_CHARS, Vocabulary


@dataclass
class CorpusShare:
    """One corpus of a training mix: its manifest and its share of each epoch's audio (shares are relative: they
    are divided by their sum)."""

    manifest: str = ""
    share: float = 1.0

    def __post_init__(self) -> None:
        if not self.manifest or not self.share > 0:
            raise ConfigError(f"train.train_mix: each corpus needs a manifest and a positive share, got "
                              f"{self.manifest!r} with share {self.share}")


@dataclass
class TrainConfig:
    train_manifest: str = ""
    # Several training corpora instead of train_manifest, each with its share of every epoch's audio (a corpus with
    # more share than audio repeats, one with less is sampled anew each epoch), e.g.
    # [{manifest: a.jsonl, share: 0.6}, {manifest: b.jsonl, share: 0.4}].
    train_mix: list[CorpusShare] = field(default_factory=list)
    epoch_hours: float | None = None  # with train_mix: audio per epoch (default: all the corpora's audio once)
    dev_manifest: str | None = None  # scored after every epoch; its WER chooses best.pt; per `source` in the log
    # Further dev sets scored and logged beside dev_manifest (under their file names), never used to choose best.pt.
    monitor_manifests: list[str] = field(default_factory=list)
    out_dir: str = "runs/exp"
    epochs: int = 20
    max_steps: int | None = None  # stop early after this many optimizer steps (the schedule still spans it)
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.02  # cosine decay ends at lr x this
    warmup_steps: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 5.0
    max_batch_seconds: float = 240.0  # padded audio seconds per batch
    max_duration_s: float = 30.0  # longer training utterances are skipped (and counted)
    # Unreadable or silent training files are skipped and counted; the run stops, naming the last, once more than
    # this share of the utterances drawn so far were (and at least MIN_UNUSABLE): a corpus that broken needs mending.
    max_unusable_share: float = 0.01
    num_workers: int = 1
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    # Autocast dtype: "bf16", "fp16" or "fp32" on CUDA; on a CPU bf16 where it has bf16 in hardware, else fp32.
    precision: str = "bf16"
    threads: int | None = None  # torch intra-op threads on CPU (None: torch's default)
    # Log-mel in the data-loading workers on the CPU instead of on the training device (the GPU when there is
    # one): frees the GPU of the STFT when it is the bottleneck, at the cost of CPU time in the workers.
    features_in_loader: bool = False
    # Hold the training audio in the training device's memory (int16: 100 hours take 11.5 GB) and cut and augment
    # the batches there (asr/device_data.py) instead of in loader workers: for GPUs whose host cannot feed them.
    data_on_device: bool = False
    save_every_steps: int = 500
    log_every_steps: int = 20
    tensorboard: bool = True  # scalars in OUT_DIR/tensorboard besides log.jsonl
    keep_epoch_checkpoints: int = 5  # model-only checkpoints of the last N epochs, for `asr average`
    early_stop_patience: int = 0  # stop after this many dev scorings without a better dev WER (0: never)
    # Score dev (and keep an epoch checkpoint) every N epochs and after the last: on a GPU, an epoch of a small
    # corpus can take less time than scoring its dev set.
    dev_every_epochs: int = 1
    # Start from trained weights instead of random ones (fine-tuning, warm start): "bundled" (the model shipped
    # with the package), a release folder, a checkpoint file or a run folder (its best.pt). The network and
    # feature settings and the vocabulary must be those of the source; the optimizer and schedule start afresh.
    init_from: str | None = None

    def __post_init__(self) -> None:
        # 0 means "never" for the saving and stopping counters.
        at_least = {"epochs": 1, "max_steps": 1, "warmup_steps": 0, "num_workers": 0, "threads": 1,
                    "save_every_steps": 0, "log_every_steps": 1, "keep_epoch_checkpoints": 0,
                    "early_stop_patience": 0, "dev_every_epochs": 1}
        for name, lowest in at_least.items():
            value = getattr(self, name)
            if value is not None and value < lowest:
                raise ConfigError(f"train.{name} must be at least {lowest}, got {value}")
        if self.train_manifest and self.train_mix:
            raise ConfigError("train: give train.train_manifest or train.train_mix, not both")
        if self.epoch_hours is not None and not (self.train_mix and self.epoch_hours > 0):
            raise ConfigError(f"train.epoch_hours goes with train.train_mix and must be positive, got {self.epoch_hours}")
        for name in ("lr", "grad_clip", "max_batch_seconds", "max_duration_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.max_unusable_share <= 1.0:
            raise ConfigError(f"train.max_unusable_share must be in [0, 1], got {self.max_unusable_share}")
        if not 0.0 <= self.min_lr_ratio <= 1.0 or self.weight_decay < 0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1] and weight_decay not negative, got "
                              f"{self.min_lr_ratio} and {self.weight_decay}")
        if self.precision not in ("bf16", "fp16", "fp32"):
            raise ConfigError(f"train.precision must be bf16, fp16 or fp32, got {self.precision!r}")
        if self.data_on_device and self.features_in_loader:
            raise ConfigError("train.data_on_device and train.features_in_loader exclude each other: with the data "
                              "on the device there is no loader")


@dataclass
class ExperimentConfig:
    """Everything a run needs; saved in the run folder and inside every checkpoint."""

    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    vocab: list[str] = field(default_factory=lambda: list(DEFAULT_CHARS))

    def __post_init__(self) -> None:
        # The network's input and output sizes follow from the features and the vocabulary; a config that says
        # otherwise is refused rather than silently corrected.
        symbols = len(Vocabulary(list(self.vocab)))
        for name, value, source in (("vocab_size", symbols, f"the vocabulary has {symbols} symbols (its characters "
                                     "and the blank)"),
                                    ("input_dim", self.features.n_mels, f"features.n_mels is {self.features.n_mels}")):
            if getattr(self.model, name) != value:
                raise ConfigError(f"model.{name} is {getattr(self.model, name)}, but {source}: set "
                                  f"model.{name}={value}")

    def spec(self) -> ModelSpec:
        """The network this config trains, as checkpoints and releases describe it."""
        return ModelSpec(self.model, self.features, tuple(self.vocab))


@dataclass
class TrainState:
    """Where training stands: saved in checkpoints so --resume continues at the very next batch."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_dev_wer: float = math.inf
    skipped_long: int = 0  # training utterances over max_duration_s
    dropped_short: int = 0  # utterances whose target is longer than the model's output frames
    skipped_nonfinite: int = 0  # batches whose loss was NaN/Inf; their gradients are never applied
    skipped_unusable: int = 0  # training utterances drawn whose audio was unreadable or silent
    utterances_seen: int = 0  # training utterances drawn, over all processes
    epochs_without_improvement: int = 0
    world_size: int = 1  # processes that trained; resuming needs the same number


@dataclass
class StepResult:
    """One optimizer step, summed or averaged over all processes."""

    loss: float | None  # mean CTC loss per character over the step's utterances; None: step skipped
    grad_norm: float | None
    audio_seconds: float


MIN_UNUSABLE = 10  # unusable utterances a run always survives, whatever their share (a first batch of bad luck)


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float):
    """LR multiplier: linear warm-up (CTC diverges easily at full LR from random weights), then cosine decay."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainingData:
    """The training set and how its batches reach the step: the CPU loader, or the corpus held on the device."""

    train_set: SpeechDataset
    sampler: BucketBatchSampler
    loader: DataLoader
    loader_features: LogMel | None  # the workers' copy of the feature extractor (train.features_in_loader)
    device_corpus: DeviceCorpus | None
    skipped_long: int  # utterances over train.max_duration_s, left out


def build_training_data(config: ExperimentConfig, features: LogMel, dist: distributed.Distributed,
                        device: torch.device, vocab: Vocabulary) -> TrainingData:
    """Read the training manifest and set up batching, augmentation and loading. With global normalization and no
    warm start, `features` first gets its statistics from the training audio."""
    cfg = config.train
    corpora = [CorpusShare(cfg.train_manifest)] if cfg.train_manifest else cfg.train_mix
    kept, mix, skipped_long = [], [], 0
    for corpus in corpora:
        entries = read_manifest(corpus.manifest)
        short = [e for e in entries if e["duration"] <= cfg.max_duration_s]
        if not short:
            raise ConfigError(f"{corpus.manifest}: every utterance is longer than train.max_duration_s "
                              f"({cfg.max_duration_s:g} s)")
        mix.append((range(len(kept), len(kept) + len(short)), corpus.share))
        kept += short
        skipped_long += len(entries) - len(short)
    babble_pool = [entry_audio(e) for e in kept]  # babble mixes other training utterances
    augment = (WaveformAugment(config.augment, config.features.sample_rate, babble_pool)
               if config.augment.enabled and not cfg.data_on_device else None)
    train_set = SpeechDataset(kept, vocab, config.features.sample_rate, augment, cfg.seed)
    epoch_seconds = cfg.epoch_hours * 3600 if cfg.epoch_hours else None
    sampler = BucketBatchSampler(train_set.durations(), cfg.max_batch_seconds, seed=cfg.seed,
                                 num_replicas=dist.world_size, rank=dist.rank,
                                 mix=mix if cfg.train_mix else None, epoch_seconds=epoch_seconds)
    # init_from brings its own statistics, and resume loads them again.
    if config.features.normalize == "global" and not cfg.init_from:
        features.fit_global_stats(global_stats_sample(train_set, config.features.sample_rate))
    loader_features = copy.deepcopy(features).cpu() if cfg.features_in_loader else None
    loader = DataLoader(
        train_set,
        batch_sampler=sampler,
        collate_fn=functools.partial(collate, features=loader_features),
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,  # no worker start-up cost at every epoch
        worker_init_fn=ignore_stop_signals,  # a signal to the whole process group is the trainer's to handle
        pin_memory=device.type == "cuda",
        # A private generator: creating the loader's iterator must not draw from the global RNG,
        # or a resumed run would see different dropout and SpecAugment masks than an uninterrupted one.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    device_corpus = DeviceCorpus(train_set, device, config.augment, cfg.seed) if cfg.data_on_device else None
    return TrainingData(train_set, sampler, loader, loader_features, device_corpus, skipped_long)


def global_stats_sample(train_set: SpeechDataset, sample_rate: int, max_utterances: int = 500
                        ) -> Iterator[torch.Tensor]:
    """Un-augmented training waveforms, an evenly spread sample, for global normalization statistics."""
    step = max(1, len(train_set) // max_utterances)
    for entry in train_set.entries[::step][:max_utterances]:
        try:
            yield torch.from_numpy(load_audio(entry_audio(entry), target_rate=sample_rate))
        except AudioError:
            continue  # training skips it too (SpeechDataset)


def build_optimizer(model: torch.nn.Module, total_steps: int, lr: float, warmup_steps: int, min_lr_ratio: float,
                    weight_decay: float) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with linear warm-up and cosine decay over total_steps (to lr x min_lr_ratio)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup_steps, total_steps, min_lr_ratio))
    return optimizer, scheduler


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). Elsewhere bf16 autocast is emulated, slower
    than fp32."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The mixed-precision dtype training runs in: bf16 or fp16 on CUDA as configured, bf16 on a CPU that computes
    it in hardware (a training step of the bundled model's size about 1.5 times as fast as fp32: docs/benchmarks.md);
    None (fp32) otherwise."""
    if precision == "fp32" or device.type not in ("cuda", "cpu"):
        return None
    if device.type == "cpu":
        return torch.bfloat16 if precision == "bf16" and cpu_has_bf16() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def ctc_loss_sum(log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch, blank: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over the batch of each utterance's CTC loss per target character, and which utterances count: CTC cannot
    emit a target longer than its frames, so such utterances (too fast, or mislabelled) are left out."""
    # zero_infinity: an impossible alignment (repeated letters that need more blank frames than there are) gives 0
    # instead of inf and no gradient.
    losses = F.ctc_loss(log_probs.transpose(0, 1), batch.targets, out_lengths, batch.target_lengths,
                        blank=blank, reduction="none", zero_infinity=True)
    ok = batch.target_lengths <= out_lengths
    if batch.usable is not None:
        ok &= batch.usable  # an unusable utterance's stand-in is in the batch, never in the loss
    return (losses / batch.target_lengths.clamp(min=1))[ok].sum(), ok


def forward_loss(network: torch.nn.Module, features: LogMel, augment: SpecAugment, batch: Batch, blank: int,
                 amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward half of a training step: log-mel (unless the loader made it), SpecAugment and the network under
    autocast (amp_dtype; None: fp32), then ctc_loss_sum's (loss sum, utterances that count)."""
    device_type = next(network.parameters()).device.type
    with torch.autocast(device_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        if batch.features is None:
            feats, frames = features(batch.waveforms, batch.lengths)
        else:
            feats, frames = batch.features, batch.frames
        log_probs, out_lengths = network(augment(feats), frames)
    return ctc_loss_sum(log_probs, out_lengths, batch, blank)


def apply_gradients(loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LambdaLR, scaler: torch.amp.GradScaler, grad_clip: float
                    ) -> float | None:
    """The update half of a training step, from zeroed gradients: backward (loss-scaled under fp16), clip the
    gradient norm to grad_clip, step the optimizer and the schedule. Returns the norm before clipping, or None
    when it is not finite: then nothing is applied and the gradients are cleared."""
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if not torch.isfinite(grad_norm):
        optimizer.zero_grad(set_to_none=True)
        scaler.update()
        return None
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return float(grad_norm)


@torch.inference_mode()
def dev_scores(model: torch.nn.Module, features: LogMel, vocab: Vocabulary, entries: list[dict[str, Any]],
               device: torch.device, batch_seconds: float = BATCH_SECONDS) -> Report:
    """Greedy scores of the network on a dev manifest's entries (WER, CER, and per voice family and source)."""
    sources, greedy = [entry_audio(e) for e in entries], GreedyDecoder(vocab)
    hypotheses = [ids_to_text(vocab, greedy.decode_ids(log_probs[None], [len(log_probs)])[0])
                  for log_probs in outputs_of_files(TorchNetwork(features, model, device), sources,
                                                    batch_seconds * features.config.sample_rate)]
    return score([e["text"] for e in entries], hypotheses, [str(s) for s in sources], entries)


class RunFolder:
    """A run's checkpoints: rank 0 writes, every process learns whether it worked (a failed write stops them all)."""

    def __init__(self, path: Path, dist: distributed.Distributed) -> None:
        self.path, self.dist = path, dist

    def write(self, name: str, checkpoint: dict[str, Any], step: int) -> None:
        """Write path/name (last.pt keeps its predecessor); every process calls this and learns the outcome.

        A failed write (disk full) stops training on every process with a CheckpointError rather than a warning:
        the steps trained on would be held by no checkpoint, and the condition rarely clears by itself. The earlier
        checkpoints are intact, so --resume continues once there is room again.
        """
        error = None
        if self.dist.is_main:
            try:
                save_checkpoint(self.path / name, checkpoint, keep_previous=name == LAST)
            except CheckpointError as err:
                error = f"{err}; training stopped at step {step}"
        error = self.dist.broadcast(error)
        if error:
            raise CheckpointError(error)

    def keep_last_epochs(self, keep: int) -> None:
        """Delete all but the newest `keep` epoch checkpoints (rank 0)."""
        if self.dist.is_main:
            for old in sorted(self.path.glob("epoch-*.pt"))[:-keep]:
                old.unlink()


class Trainer:
    """One training run: the model, its data and optimizer, the step, and the epoch loop with dev scoring and
    checkpoints. Faults lose at most the steps since the last checkpoint (see the module's docstring)."""

    def __init__(self, config: ExperimentConfig, log=print) -> None:
        cfg = config.train
        if not cfg.train_manifest and not cfg.train_mix:
            raise ConfigError("train.train_manifest (or train.train_mix) is required")
        self.config = config
        self.dist, self.device = distributed.setup(cfg.device)
        self.log = log if self.dist.is_main else (lambda *_: None)
        self.out_dir = Path(cfg.out_dir)
        self.run_folder = RunFolder(self.out_dir, self.dist)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # Rank 0 seeds like a single-process run (DDP copies its initial weights to the others); the other ranks
        # get their own dropout and SpecAugment draws.
        random.seed(cfg.seed + self.dist.rank)
        torch.manual_seed(cfg.seed + self.dist.rank)
        self.vocab = Vocabulary(list(config.vocab))
        self.stop_requests = StopRequests()
        self.stopped_by: int | None = None  # the signal all processes agreed to stop on (see train_step)

        self.features = LogMel(config.features).to(self.device)
        data = build_training_data(config, self.features, self.dist, self.device, self.vocab)
        self.train_set, self.sampler, self.loader = data.train_set, data.sampler, data.loader
        self.loader_features, self.device_corpus = data.loader_features, data.device_corpus
        self.state = TrainState(world_size=self.dist.world_size, skipped_long=data.skipped_long)
        self.dev_entries = read_manifest(cfg.dev_manifest) if cfg.dev_manifest else []
        self.monitor_entries = {monitor_name(path): read_manifest(path) for path in cfg.monitor_manifests}

        self.augment = SpecAugment(config.spec_augment).to(self.device)
        self.model = BiLSTMCTC(config.model).to(self.device)
        if cfg.init_from:
            self.init_from(cfg.init_from)
        self.network = self.model  # what the step calls: the model, or its DDP wrapper
        if self.dist.enabled:
            self.network = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.total_steps = self.sampler.total_batches(cfg.epochs)
        self.optimizer, self.scheduler = build_optimizer(self.model, self.total_steps, cfg.lr, cfg.warmup_steps,
                                                         cfg.min_lr_ratio, cfg.weight_decay)
        self.amp_dtype = autocast_dtype(self.device, cfg.precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def shutdown(self, wait: bool = False) -> None:
        """Leave the process group (Distributed.shutdown; wait after a clean finish), the DDP wrapper first. Left
        alive, the wrapper and the gloo process group its reducer holds were torn down while the interpreter
        finalized, which aborted about one process in three with "terminate called without an active exception"
        (two processes, a DDP model on gloo, torchrun, 2026-12-07: 12 of 44 runs that destroyed the group with the
        wrapper alive; 0 of 32 that deleted it first)."""
        if self.network is not self.model:
            self.network = self.model
            gc.collect()  # DDP's hooks hold it in reference cycles: free it now, not at exit
        self.dist.shutdown(wait)

    def init_from(self, source: str) -> None:
        """Start from a trained model's network and feature weights (train.init_from), once its vocabulary, shape
        and features are checked to be this run's."""
        trained = load_trained(PRETRAINED_DIR if source == "bundled" else source)
        check_compatible(trained.spec, self.config.spec(), f"train.init_from={source}")
        self.load_weights(trained.weights, trained.feature_state)
        self.log(f"initialized from {trained.source}")

    def load_weights(self, weights: dict[str, torch.Tensor], feature_state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(weights)
        self.features.load_state_dict(feature_state)
        if self.loader_features is not None:
            self.loader_features.load_state_dict(feature_state)

    # -- checkpoints ------------------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.config),
            "model": self.model.state_dict(),
            "features": self.features.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": to_dict(self.state),
            "rng": self.dist.gather(rng_state()),  # one per process, so each resumes its own random stream
        }

    def save(self, name: str) -> None:
        """Every process calls this at the same point (the RNG states are gathered); rank 0 writes."""
        self.run_folder.write(name, self.checkpoint(), self.state.step)

    def save_epoch_checkpoint(self) -> None:
        """A model-only checkpoint per epoch (loadable like best.pt), keeping the last few for averaging."""
        keep = self.config.train.keep_epoch_checkpoints
        if keep:
            self.run_folder.write(f"epoch-{self.state.epoch:04d}.pt", {
                "config": to_dict(self.config), "model": self.model.state_dict(),
                "features": self.features.state_dict(), "state": to_dict(self.state)}, self.state.step)
            self.run_folder.keep_last_epochs(keep)

    def resume(self, path: str | Path | None = None) -> None:
        """Restore model, optimizer, scheduler, step, epoch, position in the epoch and RNG states: from `path`, or
        else from the newest of last.pt and last.prev.pt that loads and verifies (checkpoint.load_latest)."""
        path, ckpt = (Path(path), load_checkpoint(path)) if path else load_latest(self.out_dir, self.log)
        self.load_weights(ckpt["model"], ckpt["features"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(**ckpt["state"])
        if self.state.world_size != self.dist.world_size:
            raise ConfigError(f"{path}: written by {self.state.world_size} training process(es); resume it with "
                              f"the same number (this run has {self.dist.world_size})")
        rng = ckpt["rng"]
        set_rng_state(rng[self.dist.rank] if isinstance(rng, list) else rng)  # a list since multi-process runs
        self.log(f"resumed from {path} at step {self.state.step} (epoch {self.state.epoch}, "
                 f"batch {self.state.batch_in_epoch})")

    # -- one optimizer step -----------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> StepResult:
        """Forward, CTC loss, backward, clip, step; the same decisions on every process."""
        local_sum, ok = forward_loss(self.network, self.features, self.augment, batch, self.vocab.blank_id,
                                     self.amp_dtype)
        finite = bool(torch.isfinite(local_sum))
        # One collective per step: totals over all processes, so every process takes the same decisions, including
        # whether to stop after this step when any of them got a signal (they then save and return together).
        received = self.stop_requests.received
        usable = batch.usable if batch.usable is not None else torch.ones_like(ok)
        (n_ok, n_dropped, n_unusable, n_items, n_nonfinite, loss_sum, audio_samples, n_sigterm,
         n_sigint) = self.dist.all_reduce_sum(
            [float(ok.sum()), float((~ok & usable).sum()), float((~usable).sum()), float(len(batch.indices)),
             float(not finite), float(local_sum.detach()) if finite else 0.0, float(batch.lengths.sum()),
             float(received == signal.SIGTERM), float(received == signal.SIGINT)], self.device)
        if n_sigterm or n_sigint:
            self.stopped_by = signal.SIGTERM if n_sigterm else signal.SIGINT
        self.state.dropped_short += int(n_dropped)
        self.count_unusable(batch.unusable, int(n_unusable), int(n_items))
        audio_seconds = audio_samples / self.config.features.sample_rate
        self.optimizer.zero_grad(set_to_none=True)
        if n_ok == 0:
            return StepResult(None, None, audio_seconds)
        if n_nonfinite:
            self.state.skipped_nonfinite += 1
            return StepResult(None, None, audio_seconds)
        # Sum over this process's utterances, scaled so that DDP's gradient average over processes equals the
        # gradient of the mean over all utterances of the global batch (exactly what one process would compute).
        # Gradients are identical on all processes after DDP's all-reduce, so all of them skip a non-finite one.
        grad_norm = apply_gradients(local_sum * (self.dist.world_size / n_ok), self.model, self.optimizer,
                                    self.scheduler, self.scaler, self.config.train.grad_clip)
        if grad_norm is None:
            self.state.skipped_nonfinite += 1
            return StepResult(None, None, audio_seconds)
        return StepResult(loss_sum / n_ok, grad_norm, audio_seconds)

    def count_unusable(self, reasons: list[str], unusable: int, items: int) -> None:
        """Count a step's unusable utterances (`unusable` of `items` over all processes; this process's reasons);
        raise ManifestError once more than train.max_unusable_share of those drawn so far were unusable."""
        self.state.skipped_unusable += unusable
        self.state.utterances_seen += items
        for reason in reasons:
            self.log(f"skipped a training utterance: {reason}")
        skipped, seen = self.state.skipped_unusable, self.state.utterances_seen
        if skipped >= MIN_UNUSABLE and skipped > self.config.train.max_unusable_share * seen:
            last = f"; the last here: {reasons[-1]}" if reasons else ""
            raise ManifestError(f"{skipped} of the {seen} training utterances drawn so far were unreadable or silent, "
                                f"more than train.max_unusable_share ({self.config.train.max_unusable_share:g}): "
                                f"mend or remove them from the manifest{last}")

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> TrainState:
        cfg = self.config.train
        start_run_folder(self)
        tracker = Tracker(self.out_dir, cfg.tensorboard) if self.dist.is_main else None
        max_steps = cfg.max_steps or self.total_steps
        try:
            with self.stop_requests:
                while self.state.epoch < cfg.epochs and self.state.step < max_steps:
                    train_one_epoch(self, max_steps, tracker)
                    if self.stopped_by or self.state.batch_in_epoch < self.sampler.num_batches:
                        break  # a signal, or max_steps reached mid-epoch; train_epoch saved last.pt
                    self.state.epoch += 1
                    self.state.batch_in_epoch = 0
                    if end_epoch(self, tracker):
                        break
                if not self.dev_entries and not self.stopped_by:
                    self.save("best.pt")
        finally:
            if tracker:
                tracker.close()
            stop_loader_workers(self.loader)
        ended = f"stopped by {signal.Signals(self.stopped_by).name}" if self.stopped_by else "done"
        self.log(f"{ended} at step {self.state.step}: dropped {self.state.dropped_short} utterances shorter than "
                 f"their transcript, skipped {self.state.skipped_nonfinite} non-finite batches and "
                 f"{self.state.skipped_unusable} unreadable or silent utterances")
        return self.state

def stop_loader_workers(loader: DataLoader) -> None:
    """End a loader's persistent workers now, however the run ended. Left to garbage collection, they outlive a run
    that ends in an exception (its traceback holds the loader) into interpreter exit, where multiprocessing stops
    its children with SIGTERM, which loader workers ignore (ignore_stop_signals), and waits for them forever: the
    process hung after printing the worker's traceback. A later iteration starts new workers."""
    # DataLoader has no public way to do this; Lightning's teardown calls the same private method.
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
        loader._iterator = None


def start_run_folder(trainer: Trainer) -> None:
    """Write the effective config into the run folder and say what is about to run."""
    if trainer.dist.is_main:
        trainer.out_dir.mkdir(parents=True, exist_ok=True)
        effective = yaml.safe_dump(to_dict(trainer.config), sort_keys=False)
        (trainer.out_dir / "config.yaml").write_text(effective)
        trainer.log(effective.rstrip())
    trainer.log(f"model: {trainer.model.num_parameters():,} parameters; device {trainer.device}"
             f"{f' x {trainer.dist.world_size} processes' if trainer.dist.enabled else ''}; "
             f"{len(trainer.train_set)} training utterances ({sum(trainer.train_set.durations()) / 3600:.2f} h) "
             f"in {trainer.sampler.num_batches} batches per epoch per process; "
             f"{trainer.state.skipped_long} skipped as too long")
    sampler = trainer.sampler
    if sampler.mix:
        hours = sampler.epoch_seconds / 3600
        total_share = sum(share for _, share in sampler.mix)
        for corpus, (indices, share) in zip(trainer.config.train.train_mix, sampler.mix):
            natural = sum(sampler.durations[i] for i in indices) / 3600
            trainer.log(f"  {corpus.manifest}: {len(indices)} utterances, {natural:.2f} h; share {share / total_share:.0%}"
                        f" of each epoch's {hours:.2f} h ({share / total_share * hours / natural:.2f} x its audio)")


def train_one_epoch(trainer: Trainer, max_steps: int, tracker: Tracker | None) -> None:
    """Train the rest of the current epoch (or up to max_steps, or a stop request), saving last.pt as configured."""
    cfg = trainer.config.train
    trainer.sampler.set_epoch(trainer.state.epoch, trainer.state.batch_in_epoch)
    trainer.train_set.set_epoch(trainer.state.epoch)
    trainer.model.train()
    trainer.augment.train()
    bar = tqdm(total=trainer.sampler.num_batches, initial=trainer.state.batch_in_epoch, desc=f"epoch {trainer.state.epoch}",
               unit="batch", dynamic_ncols=True, leave=False, disable=not trainer.dist.is_main)
    audio_seconds, started = 0.0, time.perf_counter()
    for batch in epoch_batches(trainer):
        result = trainer.train_step(batch.to(trainer.device))
        trainer.state.step += 1
        trainer.state.batch_in_epoch += 1
        audio_seconds += result.audio_seconds
        speed = audio_seconds / (time.perf_counter() - started)
        bar.update()
        bar.set_postfix(loss=f"{result.loss:.3f}" if result.loss is not None else "skip",
                        audio_s_per_s=f"{speed:.0f}")
        if tracker and trainer.state.step % cfg.log_every_steps == 0:
            tracker.write({"step": trainer.state.step, "loss": result.loss, "grad_norm": result.grad_norm,
                           "lr": trainer.scheduler.get_last_lr()[0], "audio_s_per_s": round(speed, 1)})
        done = bool(trainer.stopped_by) or trainer.state.step >= max_steps
        if done or cfg.save_every_steps and trainer.state.step % cfg.save_every_steps == 0:
            trainer.save(LAST)
        if done:
            break
    bar.close()


def epoch_batches(trainer: Trainer) -> Iterator[Batch]:
    """The rest of the epoch's batches, from the loader or cut on the device (train.data_on_device)."""
    if trainer.device_corpus is None:
        yield from trainer.loader
        return
    for number, indices in enumerate(trainer.sampler, start=trainer.sampler.start_batch):
        yield trainer.device_corpus.batch(indices, trainer.state.epoch, number)


def end_epoch(trainer: Trainer, tracker: Tracker | None) -> bool:
    """Score dev, keep best/last/epoch checkpoints; True when early stopping ends training."""
    cfg = trainer.config.train
    record: dict[str, Any] = {"epoch": trainer.state.epoch, "step": trainer.state.step}
    if trainer.state.epoch % cfg.dev_every_epochs and trainer.state.epoch < cfg.epochs:
        trainer.save(LAST)
        return False
    if trainer.dev_entries or trainer.monitor_entries:
        scores = score_dev(trainer) if trainer.dist.is_main else None
        scores = trainer.dist.broadcast(scores)  # the others wait while rank 0 scores
        record |= {f"dev_{measure}{'/' if name else ''}{name}": value
                   for name, pair in scores.items() for measure, value in zip(("wer", "cer"), pair)}
        trainer.log(f"epoch {trainer.state.epoch}: step {trainer.state.step}, "
                    + "; ".join(f"{name or 'dev'} WER {wer:.2%}  CER {cer:.2%}" for name, (wer, cer) in scores.items()))
    if trainer.dev_entries:
        wer = record["dev_wer"]
        if wer < trainer.state.best_dev_wer:
            trainer.state.best_dev_wer, trainer.state.epochs_without_improvement = wer, 0
            trainer.save("best.pt")
        else:
            trainer.state.epochs_without_improvement += 1
    trainer.save(LAST)
    trainer.save_epoch_checkpoint()
    if tracker:
        tracker.write(record)
    patience = cfg.early_stop_patience
    if patience and trainer.dev_entries and trainer.state.epochs_without_improvement >= patience:
        trainer.log(f"early stop: dev WER has not improved for {patience} epochs (best {trainer.state.best_dev_wer:.2%})")
        return True
    return False


def score_dev(trainer: Trainer) -> dict[str, tuple[float, float]]:
    """Greedy (WER, CER) of the model as it stands (rank 0): "" for the dev manifest, then its sources (when it has
    several), then each monitored manifest by name."""
    trainer.model.eval()
    scores = {}
    try:
        if trainer.dev_entries:
            report = dev_scores(trainer.model, trainer.features, trainer.vocab, trainer.dev_entries, trainer.device)
            sources = report.by("source")
            scores[""] = report.wer, report.cer
            if len(sources) > 1:
                scores |= {name: (part.wer, part.cer) for name, part in sources.items()}
        for name, entries in trainer.monitor_entries.items():
            report = dev_scores(trainer.model, trainer.features, trainer.vocab, entries, trainer.device)
            scores[name] = report.wer, report.cer
        return scores
    finally:
        trainer.model.train()


def monitor_name(path: str) -> str:
    """How a monitored dev manifest is named in the log: its folder and file name, e.g. synthetic/dev."""
    return f"{Path(path).parent.name}/{Path(path).stem}"


class Tracker:
    """Training records to OUT_DIR/log.jsonl (one JSON object per line) and, optionally, TensorBoard scalars."""

    def __init__(self, out_dir: Path, tensorboard: bool) -> None:
        self.file = open(out_dir / "log.jsonl", "a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("train.tensorboard needs the tensorboard package (pip install tensorboard), "
                                  "or set train.tensorboard=false") from None
            self.writer = SummaryWriter(str(out_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer:
            group = "dev" if "epoch" in record else "train"
            for key, value in record.items():
                if key not in ("step", "epoch") and value is not None:
                    self.writer.add_scalar(f"{group}/{key.removeprefix('dev_')}", value, record["step"])
            self.writer.flush()

    def close(self) -> None:
        self.file.close()
        if self.writer:
            self.writer.close()
