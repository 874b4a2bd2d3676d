"""Write Mozilla Common Voice manifests from a language folder on disk (see asr.corpora.layouts.commonvoice): one per
official split file, train.tsv, dev.tsv, test.tsv (and validated.tsv if asked).

Durations come from clip_durations.tsv where the release has it; otherwise every MP3 is decoded, in --jobs
processes. Sentences with letters the a-z vocabulary cannot spell (accents are fine: café -> cafe) are dropped
and counted.

    python recipes/commonvoice/prepare.py /data/cv-corpus-17.0-2024-03-15/en --out data/commonvoice --jobs 16
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.corpora.layouts import COMMONVOICE_SPLITS, commonvoice, save
from asr.errors import exit_status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the language folder holding clips/ and the .tsv files")
    parser.add_argument("--splits", nargs="+", choices=COMMONVOICE_SPLITS, default=["train", "dev", "test"],
                        help="split files to convert (default: %(default)s)")
    parser.add_argument("--out", default="data/commonvoice", help="manifest folder (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None, help="processes decoding audio (default: all CPUs)")
    args = parser.parse_args(argv)

    for split in args.splits:
        listing = commonvoice(args.root, split, jobs=args.jobs)
        if listing.dropped:
            print(f"{split}: {listing.dropped_note()}")
        print(save(Path(args.out) / f"{split}.jsonl", listing.entries))


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
