"""Write LJSpeech train/dev/test manifests from a copy on disk (see asr.corpora.layouts.ljspeech).

LJSpeech has no official split. Utterances are ranked by a hash of their id (LJ001-0001, ...): the first
--test-size go to test, the next --dev-size to dev, the rest to train. The split depends only on the ids, so it is
the same on every machine and every run.

    python recipes/ljspeech/prepare.py /data/LJSpeech-1.1 --out data/ljspeech --dev-size 500 --test-size 500
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.corpora.layouts import ljspeech, save, split_by_hash
from asr.errors import exit_status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the folder holding metadata.csv and wavs/, or the folder holding LJSpeech-1.1/")
    parser.add_argument("--out", default="data/ljspeech", help="manifest folder (default: %(default)s)")
    parser.add_argument("--dev-size", type=int, default=500, help="dev utterances (default: %(default)s)")
    parser.add_argument("--test-size", type=int, default=500, help="test utterances (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None, help="processes reading audio headers (default: all CPUs)")
    args = parser.parse_args(argv)

    listing = ljspeech(args.root, jobs=args.jobs)
    if listing.dropped:
        print(listing.dropped_note())
    for split, entries in split_by_hash(listing.entries, args.dev_size, args.test_size).items():
        if entries:
            print(save(Path(args.out) / f"{split}.jsonl", entries))


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
