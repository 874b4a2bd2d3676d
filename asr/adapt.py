"""Adaptation to one speaker: fine-tune a trained model on a few minutes of one person's recordings.

What `asr adapt` and the demo's "Adapt to my voice" tab run. The recordings (a manifest, or a folder of audio files
with same-named .txt transcripts) are read into memory and checked: unreadable, empty or silent audio and
transcripts the vocabulary cannot spell are errors that name the file; a recording whose CTC loss under the starting
model is far above the others' (its transcript does not match its audio) is reported and left out. A slice of the
recordings is kept aside: it decides when to stop (the weights with its lowest CTC loss are kept) and gives the
before/after WER. Training is the usual step (asr.train's CTC loss and optimizer) at a small learning rate with
SpecAugment and mild waveform augmentation, in memory: a few minutes of audio take seconds per pass on a laptop CPU.
The result is a release like any other (`asr transcribe --model`, `asr demo --model`) with the starting model's
language model and decoding settings.
"""
from __future__ import annotations

import copy
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .audio import SAMPLE_RATE, load_audio
from .augment import AugmentConfig, WaveformAugment
from .batching import length_buckets
from .checkpoint import TrainedModel, build_model, load_trained, save_release
from .corpora.layouts import audio_folder
from .data import collate
from .decoding import DecodeConfig, Decoder, GreedyDecoder, build_decoder, ids_to_text
from .errors import ASRError, AudioError, ConfigError, ManifestError
from .evaluate import score
from .features import LogMel, SpecAugment, SpecAugmentConfig
from .manifest import entry_audio, read_manifest
from .model import TorchNetwork
from .network import batched_outputs
from .release import PRETRAINED_DIR, RELEASE_CONFIG, zip_release
from .text import Vocabulary, normalize
from .train import TrainConfig, apply_gradients, build_optimizer, forward_loss

PROMPTS_FILE = Path(__file__).with_name("adapt_prompts.txt")
SILENCE_PEAK = 1e-3  # a recording whose loudest sample is below this (-60 dBFS) holds no speech
MIN_RECORDING_S = 0.5  # a shorter recording cannot hold a whole prompt
# Mild waveform augmentation: a few minutes of one voice are easily memorized; small changes of speed, noise and
# microphone colour keep the model from learning the recordings instead of the voice.
MILD_AUGMENT = AugmentConfig(speed_factors=[0.95, 1.0, 1.05], noise_prob=0.3, snr_db=[15.0, 35.0], eq_prob=0.3,
                             eq_gain_db=4.0)


class AdaptError(ASRError):
    """The recordings cannot adapt a model: too few, or a recording or option that is unusable."""


def prompts() -> list[str]:
    """The built-in sentences to read aloud, ordered so that the first ones cover the most sounds."""
    return [line.strip() for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


@dataclass
class AdaptConfig:
    """How adaptation runs; the defaults suit a few minutes of one voice on a 2-core CPU."""

    steps: int = 120  # optimizer steps at most (fewer when the held-out loss stops improving)
    minutes_max: float = 10.0  # use at most this much of the recordings (in order), the rest is left out
    lr: float = 1e-3  # peak learning rate
    # Train the lowest N BiLSTM layers only (0: all, and the output layer): a voice, a microphone and a room change
    # the sounds, which the lower layers read; the upper layers and the output hold the spelling and the words,
    # which a few minutes of speech would only teach the prompts' vocabulary.
    layers: int = 2
    warmup_steps: int = 10
    batch_seconds: float = 30.0  # audio per optimizer step
    held_out: float = 0.2  # share of the recordings kept aside to stop and to report before/after WER
    eval_every: int = 10  # steps between held-out scorings
    patience: int = 4  # stop after this many scorings without a lower held-out loss
    min_seconds: float = 20.0  # usable audio needed, held-out slice included
    min_recordings: int = 5
    # A recording whose CTC loss per character is above both mismatch_ratio x the median and the median +
    # mismatch_margin is left out: measured with the bundled model, right transcripts stay below 2x the median
    # (espeak-ng prompts: median 0.27, at most 0.87; a real narrator: median 1.02, at most 1.51) and swapped ones
    # are far above (7.8; at least 3.4).
    mismatch_ratio: float = 3.0
    mismatch_margin: float = 2.0
    threads: int | None = None  # torch CPU threads (None: torch's default)
    time_limit_s: float | None = None  # stop training once adaptation has run this long; the best weights are kept
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "warmup_steps", "eval_every", "patience", "min_recordings", "threads", "layers"):
            value, lowest = getattr(self, name), 0 if name in ("warmup_steps", "layers") else 1
            if value is not None and value < lowest:
                raise ConfigError(f"{name.replace('_', '-')} must be at least {lowest}, got {value}")
        for name in ("minutes_max", "lr", "batch_seconds", "min_seconds", "mismatch_ratio", "mismatch_margin",
                     "time_limit_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive, got {value}")
        if not 0.0 < self.held_out < 1.0:
            raise ConfigError(f"held-out must be a share in (0, 1), got {self.held_out}")


@dataclass
class Recording:
    """One recording and its transcript, in memory."""

    path: str
    text: str  # normalized
    audio: np.ndarray  # mono float32 at SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class Scores:
    """How well a model does on the held-out recordings."""

    loss: float  # mean CTC loss per character
    wer: float  # greedy
    beam_wer: float | None = None  # with the model's language model, where it ships one


@dataclass
class Progress:
    """Sent after each optimizer step."""

    step: int
    steps: int
    held_out: Scores | None  # None at steps without a scoring
    best: Scores
    elapsed_s: float


@dataclass
class AdaptResult:
    trained: TrainedModel  # the adapted model, as write_adapted writes it
    before: Scores
    after: Scores
    trained_on: int  # recordings
    trained_seconds: float
    held_out: int
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    steps: int = 0
    best_step: int = 0
    skipped_steps: int = 0  # steps whose batch could not be learned from (see fine_tune)
    wall_s: float = 0.0

    def summary(self) -> str:
        """What adaptation did, in a few lines."""
        lines = [f"trained {self.steps} steps on {self.trained_on} recordings ({self.trained_seconds / 60:.1f} min) "
                 f"in {self.wall_s:.0f} s; kept step {self.best_step}"
                 + (f"; {self.skipped_steps} steps skipped (no usable batch)" if self.skipped_steps else ""),
                 f"held-out WER ({self.held_out} recordings): greedy {self.before.wer:.1%} -> {self.after.wer:.1%}"]
        if self.before.beam_wer is not None and self.after.beam_wer is not None:
            lines[-1] += f", with the language model {self.before.beam_wer:.1%} -> {self.after.beam_wer:.1%}"
        return "\n".join(lines)


def read_recordings(source: str | Path) -> list[dict[str, Any]]:
    """Manifest entries of a JSONL manifest, or of a folder of audio files with same-named .txt transcripts."""
    source = Path(source)
    if source.is_dir():
        listing = audio_folder(source, jobs=1)
        if listing.dropped:  # a transcript the model cannot write: the recording would silently not count
            name, why = listing.dropped[0]
            raise AdaptError(f"{source / name}.txt: {why}")
        return listing.entries
    if source.suffix == ".jsonl":
        return read_manifest(source)
    raise ManifestError(f"{source}: expected a JSONL manifest or a folder of audio files with .txt transcripts")


def load_recordings(entries: list[dict[str, Any]], vocab: Vocabulary, minutes_max: float
                    ) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Read the entries' audio (up to minutes_max in all); an unusable recording raises AdaptError naming it.
    Returns the recordings and those left out for the time limit."""
    recordings, left_out, total = [], [], 0.0
    for entry in entries:
        path, raw = str(entry["audio_filepath"]), str(entry.get("text", ""))
        if total >= minutes_max * 60:
            left_out.append((path, f"over --minutes-max {minutes_max:g}"))
            continue
        text = normalize(raw)
        if not text:
            raise AdaptError(f"{path}: the transcript is empty")
        if not vocab.covers(text):
            raise AdaptError(f"{path}: the transcript has characters {sorted(set(text) - set(vocab.chars))} the "
                             f"model cannot write")
        try:
            audio = load_audio(entry_audio(entry))
        except AudioError as err:
            raise AdaptError(str(err)) from None
        if len(audio) < MIN_RECORDING_S * SAMPLE_RATE:
            raise AdaptError(f"{path}: only {len(audio) / SAMPLE_RATE:.2f} s of audio; record the whole sentence")
        if float(np.abs(audio).max()) < SILENCE_PEAK:
            raise AdaptError(f"{path}: the recording is silent (check the microphone)")
        recordings.append(Recording(path, text, audio))
        total += recordings[-1].seconds
    return recordings, left_out


def utterance_losses(model: torch.nn.Module, features: LogMel, vocab: Vocabulary, recordings: list[Recording]
                     ) -> tuple[list[float], list[torch.Tensor]]:
    """Each recording's CTC loss per character (inf when its transcript cannot fit its frames) and log-probs."""
    outputs = [torch.from_numpy(log_probs) for log_probs in batched_outputs(
        TorchNetwork(features, model, "cpu"), [r.audio for r in recordings], 60 * SAMPLE_RATE)]
    losses = []
    for recording, log_probs in zip(recordings, outputs):
        target = torch.tensor(vocab.encode(recording.text))
        loss = F.ctc_loss(log_probs[:, None], target[None], torch.tensor([len(log_probs)]), torch.tensor([len(target)]),
                          blank=vocab.blank_id, reduction="sum")
        losses.append(float(loss) / len(target))
    return losses, outputs


def leave_out_mismatched(model: torch.nn.Module, features: LogMel, vocab: Vocabulary, recordings: list[Recording],
                         ratio: float, margin: float) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Recordings whose transcript fits their audio, and the others with why: a CTC loss per character above both
    `ratio` x the median and the median + `margin` (the words said are not the words written), or a transcript
    longer than the audio can hold."""
    losses, _ = utterance_losses(model, features, vocab, recordings)
    median = float(np.median([loss for loss in losses if math.isfinite(loss)] or [math.inf]))
    kept, left_out = [], []
    for recording, loss in zip(recordings, losses):
        if not math.isfinite(loss):
            left_out.append((recording.path, "the transcript is too long for the audio"))
        elif loss > max(ratio * median, median + margin):
            left_out.append((recording.path, f"the audio does not seem to match the transcript (CTC loss {loss:.2f} "
                                              f"per character, the median is {median:.2f})"))
        else:
            kept.append(recording)
    return kept, left_out


def held_out_scores(model: torch.nn.Module, features: LogMel, vocab: Vocabulary, recordings: list[Recording],
                    beam: Decoder | None = None) -> Scores:
    """Mean CTC loss per character and WER (greedy, and with `beam` when given) of the model on the recordings."""
    model.eval()
    losses, outputs = utterance_losses(model, features, vocab, recordings)
    references = [r.text for r in recordings]

    def wer(decoder: Decoder) -> float:
        hypotheses = [ids_to_text(vocab, decoder.decode_ids(lp[None], [len(lp)])[0]) for lp in outputs]
        return score(references, hypotheses).wer

    return Scores(float(np.mean(losses)), wer(GreedyDecoder(vocab)), wer(beam) if beam is not None else None)


def split_held_out(recordings: list[Recording], share: float, seed: int) -> tuple[list[Recording], list[Recording]]:
    """(training, held-out): a seeded random `share` of the recordings, at least one, kept aside."""
    count = max(1, round(share * len(recordings)))
    chosen = set(random.Random(seed).sample(range(len(recordings)), count))
    return ([r for i, r in enumerate(recordings) if i not in chosen], [r for i, r in enumerate(recordings) if i in chosen])


def adapt(recordings_source: str | Path | list[dict[str, Any]], model: str | Path | None = None,
          config: AdaptConfig | None = None, progress: Callable[[Progress], None] | None = None,
          log: Callable[[str], object] = print) -> AdaptResult:
    """Fine-tune `model` (a release, checkpoint or run folder; default: the bundled model) on the recordings."""
    config = config or AdaptConfig()
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    base = load_trained(PRETRAINED_DIR if model is None else model)
    network, features, vocab = build_model(base)
    entries = recordings_source if isinstance(recordings_source, list) else read_recordings(recordings_source)
    recordings, left_out = load_recordings(entries, vocab, config.minutes_max)
    recordings, mismatched = leave_out_mismatched(network, features, vocab, recordings, config.mismatch_ratio,
                                                  config.mismatch_margin)
    left_out += mismatched
    for path, why in left_out:
        log(f"left out {path}: {why}")
    seconds = sum(r.seconds for r in recordings)
    if seconds < config.min_seconds or len(recordings) < config.min_recordings:
        raise AdaptError(f"too little usable speech to adapt: {len(recordings)} recordings, {seconds:.0f} s (at least "
                         f"{config.min_recordings} recordings and {config.min_seconds:g} s are needed)"
                         + (f"; left out: {'; '.join(f'{p}: {why}' for p, why in mismatched)}" if mismatched else ""))
    train_set, held_out = split_held_out(recordings, config.held_out, config.seed)
    beam = None if base.decoding is None else \
        build_decoder(vocab, DecodeConfig(method="beam", **base.decoding.settings()))
    before = held_out_scores(network, features, vocab, held_out, beam)
    trained_seconds = sum(r.seconds for r in train_set)
    log(f"adapting on {len(train_set)} recordings ({trained_seconds:.0f} s), {len(held_out)} held out; held-out "
        f"WER before: {before.wer:.1%}")
    step, best_step, skipped = fine_tune(network, features, vocab, train_set, held_out, before, config, progress,
                                         started)
    after = held_out_scores(network, features, vocab, held_out, beam)
    metadata = {"adapted_from": "the bundled model" if model is None else str(base.source),
                "recordings": len(train_set), "held_out": len(held_out), "seconds": round(trained_seconds, 1),
                "steps": step, "best_step": best_step, "held_out_before": asdict(before),
                "held_out_after": asdict(after)}
    adapted = replace(base, weights=network.state_dict(), feature_state=features.state_dict(), metadata=metadata)
    return AdaptResult(adapted, before, after, len(train_set), trained_seconds, len(held_out), left_out, step,
                       best_step, skipped, time.perf_counter() - started)


def fine_tune(network: torch.nn.Module, features: LogMel, vocab: Vocabulary, train_set: list[Recording],
              held_out: list[Recording], before: Scores, config: AdaptConfig,
              progress: Callable[[Progress], None] | None, started: float) -> tuple[int, int, int]:
    """Train the network's lowest config.layers layers on train_set, scoring held_out every config.eval_every
    steps, until config.steps, config.patience scorings without a lower held-out loss, or config.time_limit_s;
    the network ends with the weights of the lowest held-out loss. The step is the trainer's (asr.train): a batch
    with no utterance CTC can align, or a non-finite loss or gradient, is skipped and counted.
    Returns (steps taken, step kept (0: none), steps skipped)."""
    best_state, best, best_step, without_improvement = copy.deepcopy(network.state_dict()), before, 0, 0
    if config.layers:
        for part in [*network.layers[config.layers:], network.output]:
            part.requires_grad_(False)
    optimizer, scheduler = build_optimizer(network, config.steps, config.lr, config.warmup_steps, min_lr_ratio=0.3,
                                           weight_decay=0.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)  # adaptation runs in fp32 on the CPU
    augment = WaveformAugment(MILD_AUGMENT, SAMPLE_RATE)
    spec_augment = SpecAugment(SpecAugmentConfig()).train()
    step = skipped = 0
    for step, indices in enumerate(shuffled_batches(train_set, config.batch_seconds, config.seed), start=1):
        network.train()
        items = [(augment(train_set[i].audio, np.random.default_rng([config.seed, step, i])), train_set[i].text,
                  vocab.encode(train_set[i].text), i) for i in indices]
        loss_sum, ok = forward_loss(network, features, spec_augment, collate(items), vocab.blank_id, amp_dtype=None)
        optimizer.zero_grad(set_to_none=True)
        usable = bool(ok.any() and torch.isfinite(loss_sum))
        if not usable or apply_gradients(loss_sum / ok.sum(), network, optimizer, scheduler, scaler,
                                         TrainConfig.grad_clip) is None:
            skipped += 1
        out_of_time = config.time_limit_s is not None and time.perf_counter() - started > config.time_limit_s
        scores = None
        if step % config.eval_every == 0 or step == config.steps or out_of_time:
            scores = held_out_scores(network, features, vocab, held_out)
            if scores.loss < best.loss:
                best_state, best, best_step, without_improvement = copy.deepcopy(network.state_dict()), scores, step, 0
            else:
                without_improvement += 1
        if progress:
            progress(Progress(step, config.steps, scores, best, time.perf_counter() - started))
        if without_improvement >= config.patience or out_of_time or step == config.steps:
            break
    network.load_state_dict(best_state)
    return step, best_step, skipped


def shuffled_batches(recordings: list[Recording], batch_seconds: float, seed: int) -> Iterator[list[int]]:
    """Batches of similar length (at most batch_seconds of audio each), in a new seeded order every pass, forever."""
    batches = length_buckets([len(r.audio) for r in recordings], batch_seconds * SAMPLE_RATE)
    rng = random.Random(seed)
    while True:
        rng.shuffle(batches)
        yield from batches


def write_adapted(trained: TrainedModel, out: str | Path) -> Path:
    """Write an adapted model as a release folder, or as a .zip of one: whole or not at all. An existing release
    at `out` is replaced; any other existing file or non-empty folder is refused before anything is written."""
    out = Path(out)
    check_output(out)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.absolute().parent) as tmp:
        folder = save_release(Path(tmp) / (out.stem if out.suffix == ".zip" else out.name), trained, torch.float16)
        if out.suffix == ".zip":
            return zip_release(folder, out)
        if out.exists():
            shutil.rmtree(out)  # a release (check_output): replaced by the new one
        folder.rename(out)
    return out


def check_output(out: Path) -> None:
    """ConfigError unless `out` can take a release: absent, an empty folder, a release folder, or a .zip path."""
    if not out.absolute().parent.is_dir():
        raise ConfigError(f"{out}: the folder to write the model in does not exist")
    if out.suffix == ".zip":
        if out.is_dir():
            raise ConfigError(f"{out}: is a folder")
        return
    if out.is_file() or out.is_dir() and any(out.iterdir()) and not (out / RELEASE_CONFIG).is_file():
        raise ConfigError(f"{out}: exists and is not a model release; choose another --out")
