"""Write LibriSpeech manifests from a copy on disk (see asr.corpora.layouts.librispeech): one per subset, plus one of the
training subsets together (train-960.jsonl for all three).

    python recipes/librispeech/prepare.py /data/LibriSpeech --out data/librispeech --jobs 8
    python recipes/librispeech/prepare.py /data --subsets train-clean-100 dev-clean test-clean
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.corpora.layouts import librispeech, librispeech_subsets, save
from asr.errors import exit_status


def combined_name(subsets: list[str]) -> str:
    """train-960 for train-clean-100 + train-clean-360 + train-other-500: the hours the names end with."""
    hours = [name.rpartition("-")[2] for name in subsets]
    return "train-" + (str(sum(map(int, hours))) if all(h.isdigit() for h in hours) else "combined")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the folder holding the subset folders, or the folder holding LibriSpeech/")
    parser.add_argument("--subsets", nargs="+", help="subset folders to prepare (default: every standard one found)")
    parser.add_argument("--out", default="data/librispeech", help="manifest folder (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None, help="processes reading audio headers (default: all CPUs)")
    args = parser.parse_args(argv)

    train = {}
    for name, folder in librispeech_subsets(args.root, args.subsets).items():
        listing = librispeech(folder, jobs=args.jobs)
        if listing.dropped:
            print(f"{name}: {listing.dropped_note()}")
        print(save(Path(args.out) / f"{name}.jsonl", listing.entries))
        if name.startswith("train"):
            train[name] = listing.entries
    if len(train) > 1:
        print(save(Path(args.out) / f"{combined_name(list(train))}.jsonl", [e for es in train.values() for e in es]))


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
