"""Start-up of `asr transcribe` on a one-second file: greedy decoding, and beam search with the model's LM and
lexicon, once with an empty cache (a user's first beam start, which works out the lexicon's spellings and writes
them to the cache) and once with that cache filled (every later start):

    python benchmarks/beam_startup.py [--model M] [--runtime onnx] [--repeats 5] [--pin] [--markdown]

Start-up is the wall time of the whole process, from its start to the printed transcript; peak RSS is the
process's. Each figure is the median of --repeats fresh processes; every process gets a cache folder of its own
(empty, or a copy of one filled by an untimed first run), so the user's own cache is never read or written.
--pin runs every process on one core.
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from common import argument_parser, facts_block, run_asr, run_facts, software, table

SAMPLE_RATE = 16000


def main() -> None:
    parser = argument_parser(__doc__, markdown=True)
    parser.add_argument("--model", help="model to start (default: the bundled one)")
    parser.add_argument("--runtime", default="auto", help="asr transcribe's --runtime (default: auto)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per setting; the median counts")
    parser.add_argument("--pin", action="store_true", help="run every process on one core (the first allowed)")
    args = parser.parse_args()
    cpus = {min(os.sched_getaffinity(0))} if args.pin else None

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one_second = tmp / "one.wav"
        # A quiet tone: the segmenter hands the network one second, whatever the model makes of it.
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        soundfile.write(one_second, (0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SAMPLE_RATE)
        options = ["transcribe", *(["--model", args.model] if args.model else []), "--runtime", args.runtime,
                   "--threads", "1", str(one_second)]

        def start(decoder: str, filled: Path | None, run: int) -> tuple[float, float]:
            cache = tmp / f"cache-{decoder}-{'filled' if filled else 'empty'}-{run}"
            if filled:
                shutil.copytree(filled, cache)
            os.environ["XDG_CACHE_HOME"] = str(cache)
            wall, peak_mb, _ = run_asr([*options, "--decoder", decoder], cpus=cpus)
            return wall, peak_mb

        def median(decoder: str, filled: Path | None = None) -> tuple[float, float]:
            runs = [start(decoder, filled, run) for run in range(args.repeats)]
            return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)

        filled = tmp / "filled"
        os.environ["XDG_CACHE_HOME"] = str(filled)
        run_asr([*options, "--decoder", "beam"], cpus=cpus)  # untimed: fills the cache the "filled" runs copy
        rows = [("greedy", "", *median("greedy")), ("beam", "empty (first start)", *median("beam")),
                ("beam", "filled (later starts)", *median("beam", filled))]
    greedy = rows[0][2]
    for decoder, cache, wall, peak in rows:
        print(f"{decoder:6s} {cache:22s} start-up {wall:.2f} s ({wall / greedy:.2f} x greedy), peak RSS {peak:.0f} MB",
              file=sys.stderr)
    if args.markdown:
        print(facts_block([*run_facts(" (each process pinned to one core)" if args.pin else ""),
                           ("software", software("onnxruntime")),
                           ("runs", f"{args.repeats} per setting, the median kept")]) + "\n")
        print(table(["decoder", "spellings cache", "start-up (s)", "× greedy", "peak RSS (MB)"],
                    [[d, c or "—", f"{w:.2f}", f"{w / greedy:.2f}", f"{p:.0f}"] for d, c, w, p in rows],
                    align="llrrr"))


if __name__ == "__main__":
    main()
