"""Model size against the release limits: parameters, release file size and greedy CPU real-time factor per shape.

The shipped model must fit a release file of at most 25 MB and decode greedily at RTF <= 0.015 on one CPU thread,
features included. For each shape (hidden size x layers x subsampling factor) this builds the network with random
weights (speed does not depend on their values), runs `Transcriber.transcribe_files` — reading, features, network,
greedy decoding: what `asr evaluate` runs — on the first --seconds of a manifest's utterances, and prints the wall time per audio second with float32 and int8 (dynamic quantization) weights. Release sizes are
computed from the parameter count: float16 weights, as `asr package` writes them, or int8 (one byte a weight, what
a release stored in int8 would take). A shape fits as float16 when that file and the float32 RTF are within the
limits, as int8 when the int8 file and the int8 RTF are.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from asr.features import FeatureConfig, LogMel
from asr.manifest import read_manifest
from asr.model import BiLSTMCTC, ModelConfig, TorchNetwork, quantize_int8
from asr.text import Vocabulary
from asr.transcribe import Transcriber

from common import argument_parser, facts_block, run_facts, software, table

RELEASE_LIMIT_MB = 25.0
RTF_LIMIT = 0.015


def parse_shape(text: str) -> ModelConfig:
    """'320x5x3' -> hidden 320, 5 layers, frame stacking by 3 (append 'c' for the convolutional front: '320x5x3c')."""
    kind = "conv" if text.endswith("c") else "stack"
    try:
        hidden, layers, factor = (int(part) for part in text.rstrip("c").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not HIDDENxLAYERSxFACTOR, e.g. 320x5x3") from None
    return ModelConfig(hidden_size=hidden, num_layers=layers, subsampling_factor=factor, subsampling=kind)


def first_utterances(manifest: str, seconds: float) -> tuple[list[str], float]:
    """Audio paths of the manifest's first utterances, up to `seconds` of audio, and their total duration."""
    paths, total = [], 0.0
    for entry in read_manifest(manifest):
        paths.append(entry["audio_filepath"])
        total += entry["duration"]
        if total >= seconds:
            break
    return paths, total


def rtf(transcriber: Transcriber, paths: list[str], audio_s: float, repeats: int) -> float:
    """Best of `repeats` timed passes (after one untimed), wall seconds per audio second."""
    transcriber.transcribe_files(paths[:2])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        transcriber.transcribe_files(paths)
        best = min(best, time.perf_counter() - start)
    return best / audio_s


def main() -> None:
    parser = argument_parser(__doc__, markdown=True)
    parser.add_argument("--manifest", required=True, help="utterances to transcribe (e.g. a synthetic test split)")
    parser.add_argument("--shapes", type=lambda s: [parse_shape(p) for p in s.split(",")],
                        default=[parse_shape(p) for p in "320x5x3,384x5x3,448x5x3,512x5x3,384x6x4,448x6x4,512x5x4".split(",")],
                        help="comma-separated HIDDENxLAYERSxFACTOR[c] (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=120.0, help="audio per timed pass (default 120)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per setting, best kept (default 2)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not os.path.exists(args.manifest):
        sys.exit(f"{args.manifest}: no such manifest")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    paths, audio_s = first_utterances(args.manifest, args.seconds)
    features = LogMel(FeatureConfig())
    vocab = Vocabulary()
    rows = []
    for config in args.shapes:
        model = BiLSTMCTC(config).eval()
        params = model.num_parameters()
        fp32 = rtf(Transcriber(TorchNetwork(features, model), vocab), paths, audio_s, args.repeats)
        int8 = rtf(Transcriber(TorchNetwork(features, quantize_int8(model)), vocab), paths, audio_s, args.repeats)
        name = f"{config.hidden_size}x{config.num_layers}, {config.subsampling} {config.subsampling_factor}"
        rows.append((name, params / 1e6, params * 2 / 1e6, fp32, int8))
        if not args.markdown:
            print(f"{name}: {params / 1e6:.1f} M params, release {params * 2 / 1e6:.1f} MB fp16, "
                  f"RTF fp32 {fp32:.4f}, int8 {int8:.4f}", flush=True)
    if args.markdown:
        print(facts_block([*run_facts(f"; {args.threads} thread(s)"), ("software", software("torch")),
                           ("audio", f"{len(paths)} utterances ({audio_s:.0f} s) of {args.manifest}")]) + "\n")
        cells = []
        for name, millions, megabytes, fp32, int8 in rows:
            as_fp16 = megabytes <= RELEASE_LIMIT_MB and fp32 <= RTF_LIMIT
            as_int8 = megabytes / 2 <= RELEASE_LIMIT_MB and int8 <= RTF_LIMIT
            cells.append([name, f"{millions:.1f}", f"{megabytes:.1f} / {megabytes / 2:.1f}", f"{fp32:.4f}",
                          f"{int8:.4f}", "yes" if as_fp16 else "no", "yes" if as_int8 else "no"])
        print(table(["shape (hidden x layers, front)", "parameters (M)", "release fp16 / int8 (MB)", "RTF fp32",
                     "RTF int8", "fits as fp16", "fits as int8"], cells))


if __name__ == "__main__":
    main()
