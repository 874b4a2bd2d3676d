"""Write manifests for your own recordings (see asr.corpora.layouts.audio_folder and csv_listing).

SOURCE is either a folder of audio files (searched recursively) each with its transcript in a same-named .txt
file beside it, or a CSV of `path,text` rows (header line optional; paths relative to the CSV's folder). Writes
train.jsonl, and dev.jsonl / test.jsonl when --dev-fraction / --test-fraction are set: utterances ranked by a
hash of their path (relative to SOURCE) go to test, then dev, so the split is the same on every run.

    python recipes/generic/prepare.py my_recordings/ --out data/mine --dev-fraction 0.05 --test-fraction 0.05
    python recipes/generic/prepare.py my_recordings/list.csv --out data/mine
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.corpora.layouts import audio_folder, csv_listing, save, split_by_hash
from asr.errors import exit_status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder of audio files with .txt transcripts, or CSV file of path,text")
    parser.add_argument("--out", required=True, help="manifest folder")
    parser.add_argument("--dev-fraction", type=float, default=0.0, help="share of utterances for dev (default: 0)")
    parser.add_argument("--test-fraction", type=float, default=0.0, help="share of utterances for test (default: 0)")
    parser.add_argument("--jobs", type=int, default=None, help="processes reading audio headers (default: all CPUs)")
    args = parser.parse_args(argv)

    read = csv_listing if Path(args.source).is_file() else audio_folder
    listing = read(args.source, jobs=args.jobs)
    if listing.dropped:
        print(listing.dropped_note())
    count = len(listing.entries)
    splits = split_by_hash(listing.entries, round(args.dev_fraction * count), round(args.test_fraction * count))
    for split, entries in splits.items():
        if entries:
            print(save(Path(args.out) / f"{split}.jsonl", entries))


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
