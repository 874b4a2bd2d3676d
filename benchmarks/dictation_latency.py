"""Cost of one live-dictation update (asr/dictation.py): what the demo's streaming handler spends per 0.5 s chunk.

Feeds 30 s of test-split speech, joined without pauses (the worst case: the live segment grows to its 12 s limit
before a forced cut), as 48 kHz int16 chunks of 0.5 s, the way the browser sends them, and times each push():

    python benchmarks/dictation_latency.py --manifest data/synthetic/test.jsonl [--threads 2] [--runtime torch]
"""
from __future__ import annotations

import time

import numpy as np

import asr
from asr.audio import load_audio, resample
from asr.dictation import Dictation
from asr.manifest import read_manifest

from common import argument_parser, facts_block, run_facts, software, table

CHUNK_S, SECONDS, BROWSER_RATE = 0.5, 30.0, 48000


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--manifest", required=True, help="utterances to speak (e.g. a test split)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the runtime's choice)")
    parser.add_argument("--runtime", default="auto", help="auto, torch or onnx (asr.load_model)")
    args = parser.parse_args()
    speech, total = [], 0
    for entry in read_manifest(args.manifest):
        speech.append(load_audio(entry["audio_filepath"]))
        total += len(speech[-1])
        if total >= SECONDS * 16000:
            break
    audio = (resample(np.concatenate(speech)[: int(SECONDS * 16000)], 16000, BROWSER_RATE) * 20000).astype(np.int16)
    model = asr.load_model(runtime=args.runtime, threads=args.threads)
    runtime = type(model.network).__name__
    step = int(CHUNK_S * BROWSER_RATE)
    rows = []
    for name, decoding in (("greedy", None), ("beam + LM", model.recommended_decoding)):
        model.decoder(decoding)  # built before timing, as the demo's is after its first use
        dictation, times = Dictation(model), []
        for start in range(0, len(audio), step):
            began = time.perf_counter()
            dictation.push(BROWSER_RATE, audio[start : start + step], decoding=decoding)
            times.append(time.perf_counter() - began)
        dictation.finish(decoding)
        rows.append([name, runtime, str(args.threads or "default"), str(len(times)), f"{np.median(times) * 1000:.0f}",
                     f"{np.percentile(times, 95) * 1000:.0f}", f"{max(times) * 1000:.0f}"])
    print(facts_block([*run_facts(), ("software", software("torch", "onnxruntime"))]) + "\n")
    print(table(["decoder", "network", "threads", "updates", "median (ms)", "95th percentile (ms)", "max (ms)"], rows))


if __name__ == "__main__":
    main()
