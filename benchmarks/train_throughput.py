"""Training throughput: audio seconds trained per wall second, beside a bare LSTM and the machine's matmul speed.

For each device setting (CPU at each --threads count, CUDA when present) it times, after warm-up steps:

- matmul: square matrix products in the trainer's autocast dtype (fp32 without autocast), the machine's peak;
- bare nn.LSTM: a bidirectional torch.nn.LSTM of the model's size, forward+backward on the same batch shapes;
- train step, model only: asr.train.Trainer.train_step on batches loaded once and kept on the device;
- train step + data loading: the Trainer's own DataLoader on --manifest (workers, waveform augmentation).

Achieved FLOP/s count the LSTM stack only (analytically, per second of audio), so rows compare with the matmul.
Config overrides follow the config file, as for `asr train`: `... bundled.yaml train.num_workers=2`.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from torch import nn

from asr.augment import coloured_noise
from asr.config import load_config, resolve_device
from asr.data import Batch, collate
from asr.errors import exit_status
from asr.manifest import write_manifest
from asr.train import ExperimentConfig, Trainer, epoch_batches

from common import argument_parser, facts_block, run_facts, table

DEFAULT_CONFIG = "recipes/synthetic/bundled.yaml"
UTTERANCE_S = (2.0, 8.0)  # stand-in utterance lengths, like the synthetic corpus
CHARS_PER_SECOND = 15.4  # transcript rate of the synthetic corpus (2-hour train manifest)


@dataclasses.dataclass
class Timing:
    seconds: float
    steps: int
    work: float  # audio seconds, or FLOPs for the matmul


@dataclasses.dataclass
class Row:
    setting: str
    what: str
    audio_s_per_s: float | None
    s_per_step: float
    flop_per_s: float
    peak_fraction: float | None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], float], warmup: int, steps: int, device: torch.device, min_seconds: float = 0.0) -> Timing:
    """Run `step` warmup times, then at least `steps` times (and min_seconds); it returns the work it did."""
    for _ in range(warmup):
        step()
    synchronize(device)
    start, work, count = time.perf_counter(), 0.0, 0
    while count < steps or time.perf_counter() - start < min_seconds:
        work += step()
        count += 1
    synchronize(device)
    return Timing(time.perf_counter() - start, count, work)


def write_noise_corpus(folder: Path, seconds: float, config: ExperimentConfig, seed: int = 0) -> Path:
    """A stand-in manifest: pink-noise utterances of 2-8 s with random-letter transcripts at the corpus's rate."""
    rng = np.random.default_rng(seed)
    rate = config.features.sample_rate
    letters = [c for c in config.vocab if c.isalpha()]
    entries, total = [], 0.0
    while total < seconds:
        samples = int(rng.uniform(*UTTERANCE_S) * rate)
        path = folder / f"noise_{len(entries):05d}.wav"
        soundfile.write(path, 0.1 * coloured_noise(samples, 1.0, rng), rate)
        # Words of 2-8 letters (5 on average) and a space: 6 characters each.
        words = ["".join(rng.choice(letters, size=rng.integers(2, 9)))
                 for _ in range(round(samples / rate * CHARS_PER_SECOND / 6))]
        entries.append({"audio_filepath": str(path), "duration": samples / rate, "text": " ".join(words)})
        total += samples / rate
    manifest = folder / "noise.jsonl"
    write_manifest(manifest, entries)
    return manifest


def make_trainer(config: ExperimentConfig, manifest: Path, device: str, threads: int, out_dir: Path) -> Trainer:
    """A Trainer on `manifest` for `device`; it sets torch's CPU threads."""
    config = copy.deepcopy(config)
    config.train = dataclasses.replace(config.train, train_manifest=str(manifest), dev_manifest=None,
                                       out_dir=str(out_dir), device=device, threads=threads)
    return Trainer(config)


def memory_batches(trainer: Trainer, count: int) -> list[Batch]:
    """`count` of the trainer's length buckets, spread from its shortest to its longest utterances, loaded once."""
    full = trainer.sampler.batches[:-1] or trainer.sampler.batches  # the last bucket holds the leftovers
    picks = sorted({round(i) for i in np.linspace(0, len(full) - 1, count)})
    return [collate([trainer.train_set[i] for i in full[p]]) for p in picks]


def lstm_flops_per_audio_s(trainer: Trainer) -> float:
    """Forward+backward FLOPs of the BiLSTM stack per audio second: 2·4·h·(in+h) per frame, direction, layer, x3."""
    model, features = trainer.config.model, trainer.config.features
    frames_per_s = features.sample_rate / features.hop_length / model.subsampling_factor
    h = model.hidden_size
    forward = sum(2 * 2 * 4 * h * (layer.forward_lstm.input_size + h) for layer in trainer.model.layers)
    return 3 * forward * frames_per_s


def dtype_name(trainer: Trainer) -> str:
    """The trainer's compute dtype: its autocast dtype, else float32."""
    return str(trainer.amp_dtype or torch.float32).removeprefix("torch.")


def cycled(items: list[tuple[Any, float]], run: Callable[[Any], object]) -> Callable[[], float]:
    """A step that runs on the next item in turn and returns its audio seconds."""
    turn = itertools.cycle(items)

    def step() -> float:
        item, audio_s = next(turn)
        run(item)
        return audio_s

    return step


def time_matmul(trainer: Trainer, size: int, args: argparse.Namespace) -> Timing:
    """size x size matrix products in the trainer's compute dtype, for at least a second."""
    dtype = trainer.amp_dtype or torch.float32
    a, b = (torch.randn(size, size, device=trainer.device, dtype=dtype) for _ in range(2))

    def step() -> float:
        torch.mm(a, b)
        return 2.0 * size**3

    return timed(step, args.warmup, args.steps, trainer.device, min_seconds=1.0)


def time_bare_lstm(trainer: Trainer, batches: list[tuple[Batch, float]], args: argparse.Namespace) -> Timing:
    """torch.nn.LSTM, bidirectional, the model's sizes, on inputs shaped like the model's after subsampling."""
    config = trainer.config.model
    lstm = nn.LSTM(trainer.model.subsampling.output_dim, config.hidden_size, config.num_layers,
                   batch_first=True, bidirectional=True).to(trainer.device)
    with torch.no_grad():
        inputs = [(torch.randn_like(trainer.model.subsampling(trainer.features(b.waveforms, b.lengths)[0])), s)
                  for b, s in batches]

    def run(x: torch.Tensor) -> None:
        with torch.autocast(trainer.device.type, dtype=trainer.amp_dtype or torch.float32,
                            enabled=trainer.amp_dtype is not None):
            out, _ = lstm(x)
        out.float().mean().backward()
        lstm.zero_grad(set_to_none=True)

    return timed(cycled(inputs, run), args.warmup, args.steps, trainer.device)


def time_with_loader(trainer: Trainer, args: argparse.Namespace) -> Timing:
    """The Trainer's batches (its DataLoader's, or cut on the device with train.data_on_device), epoch after epoch in
    shuffled order, feeding train_step as train.train_one_epoch does."""
    sample_rate = trainer.config.features.sample_rate

    def loader_batches() -> Iterator[Batch]:
        for epoch in itertools.count(1):  # epoch 0 runs shortest first; later epochs mix lengths
            trainer.state.epoch = epoch
            trainer.sampler.set_epoch(epoch)
            trainer.train_set.set_epoch(epoch)
            yield from epoch_batches(trainer)

    batches = loader_batches()

    def step() -> float:
        batch = next(batches)
        trainer.train_step(batch.to(trainer.device))
        return float(batch.lengths.sum()) / sample_rate

    # Workers load batches ahead during start-up; warm up past them, or a loader-bound run would look faster.
    ahead = 0 if trainer.device_corpus else trainer.loader.num_workers * (trainer.loader.prefetch_factor or 0)
    timing = timed(step, args.warmup + ahead, args.steps, trainer.device)
    batches.close()
    return timing


def measure(trainer: Trainer, label: str, batches: list[Batch], args: argparse.Namespace) -> list[Row]:
    """All rows for one device setting."""
    device = trainer.device
    sample_rate = trainer.config.features.sample_rate
    on_device = [(b.to(device), float(b.lengths.sum()) / sample_rate) for b in batches]
    flops = lstm_flops_per_audio_s(trainer)
    size = args.matmul_size or (8192 if device.type == "cuda" else 2048)

    def progress(what: str) -> None:
        print(f"[{label}] {what} ...", file=sys.stderr, flush=True)

    progress("matmul")
    matmul = time_matmul(trainer, size, args)
    peak = matmul.work / matmul.seconds
    rows = [Row(label, f"matmul {size}x{size} {dtype_name(trainer)}", None, matmul.seconds / matmul.steps, peak, None)]

    def add(what: str, timing: Timing) -> None:
        audio_s_per_s = timing.work / timing.seconds
        rows.append(Row(label, what, audio_s_per_s, timing.seconds / timing.steps, flops * audio_s_per_s,
                        flops * audio_s_per_s / peak))

    progress("bare nn.LSTM")
    add("bare nn.LSTM fwd+bwd", time_bare_lstm(trainer, on_device, args))
    progress("train step, model only")
    add("train step, model only", timed(cycled(on_device, trainer.train_step), args.warmup, args.steps, device))
    if args.manifest:
        progress("train step + data loading")
        workers = trainer.loader.num_workers
        source = "batches cut on the device" if trainer.device_corpus else \
            f"data loading ({workers} worker{'s' * (workers != 1)})"
        add(f"train step + {source}", time_with_loader(trainer, args))
    return rows


def devices() -> list[tuple[str, str]]:
    """torch's version and default threads, and the GPU's name when there is one."""
    facts = [("torch", f"{torch.__version__}, default {torch.get_num_threads()} threads")]
    if torch.cuda.is_available():
        facts.append(("GPU", torch.cuda.get_device_name()))
    return facts


def fmt(value: float | None) -> str:
    """Three significant figures with thousands separators; a dash for no value."""
    if value is None:
        return "—"
    digits = max(0, 2 - int(np.floor(np.log10(abs(value))))) if value else 0
    return f"{value:,.{digits}f}"


def render(facts: list[tuple[str, str]], rows: list[Row], notes: list[str], markdown: bool) -> str:
    """The facts, the table and the notes, as aligned text or as Markdown tables."""
    cells = [[r.setting, r.what, fmt(r.audio_s_per_s), fmt(r.s_per_step),
              fmt(r.flop_per_s / 1e9), "—" if r.peak_fraction is None else f"{r.peak_fraction:.1%}"] for r in rows]
    header = ["setting", "measurement", "audio s / s", "s / step", "GFLOP/s", "of matmul"]
    parts = [facts_block(facts, markdown), table(header, cells, "llrrrr", markdown), "\n".join(notes)]
    return "\n\n".join(part for part in parts if part)


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, markdown=True)
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"YAML config (default {DEFAULT_CONFIG})")
    parser.add_argument("overrides", nargs="*", help="config overrides such as train.num_workers=2 (after the config)")
    parser.add_argument("--manifest", type=Path, help="real training manifest: its utterances, and the data-loading rows")
    parser.add_argument("--device", default="auto", help="auto (CPU, plus CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--threads", default="1,2", type=lambda s: [int(n) for n in s.split(",")],
                        help="CPU thread counts, comma-separated (default 1,2)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--matmul-size", type=int, help="square matmul size (default 2048 on CPU, 8192 on CUDA)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file (for scripts)")
    return parser.parse_args()


def settings(args: argparse.Namespace) -> list[tuple[str, str, int | None]]:
    """(label, device, CPU threads) for each device setting asked for."""
    chosen = []
    if args.device in ("auto", "cpu"):
        chosen += [(f"cpu, {n} thread{'s' * (n > 1)}", "cpu", n) for n in args.threads]
    if args.device != "cpu" and (args.device != "auto" or torch.cuda.is_available()):
        device = resolve_device("cuda" if args.device == "auto" else args.device)
        chosen.append((str(device), str(device), None))
    return chosen


def describe(trainer: Trainer, batches: list[Batch], args: argparse.Namespace) -> list[tuple[str, str]]:
    """What was measured: config, model size, batch shapes, step counts, FLOPs per audio second."""
    cfg = trainer.config
    rate = cfg.features.sample_rate
    utterances = np.mean([len(b.lengths) for b in batches])
    padded = np.mean([b.waveforms.numel() / rate for b in batches])
    audio = np.mean([float(b.lengths.sum()) / rate for b in batches])
    source = str(args.manifest) if args.manifest else f"pink noise, {UTTERANCE_S[0]:g}-{UTTERANCE_S[1]:g} s utterances"
    return [
        ("config", f"{args.config} {' '.join(args.overrides)}".strip()),
        ("model", f"{cfg.model.subsampling}-{cfg.model.subsampling_factor} subsampling, {cfg.model.num_layers} x "
                  f"BiLSTM {cfg.model.hidden_size}, {trainer.model.num_parameters():,} parameters"),
        ("batches", f"{source}; {len(batches)} length buckets cycled, on average {utterances:.0f} utterances, "
                    f"{audio:.0f} audio s, {padded:.0f} padded s (max_batch_seconds {cfg.train.max_batch_seconds:g})"),
        ("LSTM FLOPs", f"{lstm_flops_per_audio_s(trainer) / 1e9:.2f} GFLOP per audio second, forward+backward"),
        ("steps", f"{args.warmup} warm-up, then {args.steps} timed (matmul: at least 1 s; with data loading, "
                  f"warm-up also covers the batches the workers load ahead)"),
    ]


def main() -> None:
    args = parse_args()
    config = load_config(ExperimentConfig, args.config, args.overrides)
    default_threads = torch.get_num_threads()
    facts = [*run_facts(), *devices()]
    rows: list[Row] = []
    notes = [] if args.manifest else ["train step + data loading: skipped, it needs a corpus on disk (--manifest)"]
    with tempfile.TemporaryDirectory() as tmp:
        # The Trainer reads a manifest even when its loader goes unused: without one, write a stand-in corpus.
        manifest = args.manifest or write_noise_corpus(
            Path(tmp), (args.steps + 1) * config.train.max_batch_seconds, config)
        batches: list[Batch] = []
        for label, device, threads in settings(args):
            trainer = make_trainer(config, manifest, device, threads or default_threads, Path(tmp) / "run")
            if not batches:
                batches = memory_batches(trainer, args.steps)
                facts += describe(trainer, batches, args)
            if trainer.amp_dtype is not None:
                label += f", {dtype_name(trainer)} autocast"
            rows += measure(trainer, label, batches, args)
            state = trainer.state
            if state.dropped_short or state.skipped_nonfinite:
                notes.append(f"{label}: {state.dropped_short} utterances dropped as shorter than their transcript, "
                             f"{state.skipped_nonfinite} batches skipped as non-finite")
    print(render(facts, rows, notes, args.markdown))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(row) for row in rows], indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
