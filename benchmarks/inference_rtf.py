"""Inference speed of `asr transcribe`: real-time factor on ~10 minutes of audio, peak memory, start-up time.

Builds one long recording from a manifest's utterances (with pauses between them, so the voice-activity
segmenter has work to do), then runs the real command line in fresh processes for every combination of
threads (1, 2), decoder (greedy; beam search with the model's shipped LM) and runtime (onnxruntime with the
model's model.onnx, where it has one; PyTorch fp32; PyTorch int8):

    python benchmarks/inference_rtf.py --manifest data/synthetic/test.jsonl [--minutes 10] [--repeats 3] [--pin]
        [--markdown]

RTF = wall time of the whole process / audio duration (start-up, reading, features, network, decoding and
segmentation included); "after start-up" subtracts the same command's time on a one-second file. Start-up is
the wall time from process start to the first transcript of that one-second file. Peak RSS is the process's.
Each figure is the median of the repeats; --pin runs every process on one core (as a side-by-side comparison
with another recognizer pins both).
"""
from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, load_audio
from asr.evaluate import score
from asr.manifest import read_manifest
from asr.release import PRETRAINED_DIR, RELEASE_ONNX

from common import argument_parser, facts_block, machine, run_asr, run_facts, software, table

PAUSE_S = 0.5


def build_recording(manifest: str, minutes: float, path: Path) -> tuple[float, str]:
    """Concatenate the manifest's utterances (cycled if needed) with pauses; returns (seconds, reference)."""
    entries = read_manifest(manifest)
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)
    texts, samples = [], 0
    with soundfile.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        for entry in itertools.cycle(entries):
            if samples >= minutes * 60 * SAMPLE_RATE:
                break
            audio = load_audio(entry["audio_filepath"])
            f.write(np.concatenate([audio, pause]))
            samples += len(audio) + len(pause)
            texts.append(entry["text"])
    return samples / SAMPLE_RATE, " ".join(texts)


def main() -> None:
    parser = argument_parser(__doc__, markdown=True)
    parser.add_argument("--manifest", required=True, help="utterances to build the recording from (e.g. a test split)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the recording")
    parser.add_argument("--model", help="model to benchmark (default: the bundled one)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting; the median counts")
    parser.add_argument("--pin", action="store_true", help="run every process on one core (the first allowed)")
    args = parser.parse_args()

    model = ["--model", args.model] if args.model else []
    cpus = {min(os.sched_getaffinity(0))} if args.pin else None
    runtimes = [("PyTorch", "fp32", ["--runtime", "torch"]), ("PyTorch", "int8", ["--runtime", "torch", "--int8"])]
    if (Path(args.model or PRETRAINED_DIR) / RELEASE_ONNX).is_file():
        runtimes.insert(0, ("onnxruntime", "model.onnx", ["--runtime", "onnx"]))

    def median_run(options: list[str]) -> tuple[float, float, str]:
        runs = [run_asr(options, cpus=cpus) for _ in range(args.repeats)]
        return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[0][2])

    with tempfile.TemporaryDirectory() as tmp:
        long_wav, short_wav = Path(tmp) / "long.wav", Path(tmp) / "short.wav"
        duration, reference = build_recording(args.manifest, args.minutes, long_wav)
        soundfile.write(short_wav, load_audio(long_wav)[:SAMPLE_RATE], SAMPLE_RATE)
        audio = f"{duration / 60:.1f} min of audio from {args.manifest}"
        print(f"{audio}; {machine()}", file=sys.stderr)
        rows = []
        for threads, decoder, (runtime, weights, flags) in itertools.product(
                (1,) if args.pin else (1, 2), ("greedy", "beam"), runtimes):
            options = ["transcribe", *model, "--threads", str(threads), "--decoder", decoder, *flags]
            startup = median_run([*options, str(short_wav)])[0]
            wall, peak_mb, stdout = median_run([*options, str(long_wav)])
            wer = score([reference], [stdout.strip()]).wer
            rows.append((threads, decoder, runtime, weights, wall / duration, (wall - startup) / (duration - 1.0),
                         startup, peak_mb, wer))
            print(f"threads {threads} {decoder:6s} {runtime} {weights}: RTF {rows[-1][4]:.4f} "
                  f"(after start-up {rows[-1][5]:.4f}), start-up {startup:.2f} s, peak RSS {peak_mb:.0f} MB, "
                  f"WER {wer:.2%}", file=sys.stderr, flush=True)
    if args.markdown:
        print(facts_block([*run_facts(), ("software", software("torch", "onnxruntime")), ("audio", audio),
                           ("runs", f"{args.repeats} per setting, the median kept"
                                    + (", each process pinned to one core" if args.pin else ""))]) + "\n")
        print(table(["threads", "decoder", "runtime", "weights", "RTF", "RTF after start-up", "start-up (s)",
                     "peak RSS (MB)", "WER"],
                    [[str(threads), decoder, runtime, weights, f"{rtf:.4f}", f"{rtf_run:.4f}", f"{startup:.2f}",
                      f"{peak:.0f}", f"{wer:.2%}"]
                     for threads, decoder, runtime, weights, rtf, rtf_run, startup, peak, wer in rows]))


if __name__ == "__main__":
    main()
