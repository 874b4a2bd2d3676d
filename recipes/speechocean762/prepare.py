"""Write speechocean762 train/dev/test manifests from its Kaldi data directories (see asr.corpora.kaldi).

speechocean762 (OpenSLR 101) is non-native English read by Mandarin speakers, half children (6-15), half adults.
Its own split has `train/` and `test/` speakers; dev and test here are whole speakers of its test split, taken
evenly across gender and child/adult (`split_by_speaker`), and the other test-split speakers join train. No
speaker is in two splits. Each entry gets `speaker` "so762:<id>", `gender`, `age` and `source`
"speechocean762/child" or "speechocean762/adult".

    python recipes/speechocean762/prepare.py ../shared/corpora/speechocean762 --out data/speechocean762 \
        --dev-speakers 20 --test-speakers 20
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from asr.corpora.kaldi import kaldi_data_dir
from asr.corpora.layouts import locate_corpus, save, split_by_speaker
from asr.errors import ManifestError, exit_status

SPEAKER_PREFIX = "so762:"
CHILD_MAX_AGE = 15  # the corpus's children are 6 to 15


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="the speechocean762 folder holding train/ and test/ (and WAVE/)")
    parser.add_argument("--out", default="data/speechocean762", help="manifest folder (default: %(default)s)")
    parser.add_argument("--dev-speakers", type=int, default=20, help="test-split speakers for dev (default: %(default)s)")
    parser.add_argument("--test-speakers", type=int, default=20, help="test-split speakers for test (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None, help="processes reading audio headers (default: all CPUs)")
    args = parser.parse_args(argv)

    corpus = locate_corpus(args.corpus, "train/wav.scp")
    train = read_split(corpus / "train", args.jobs)
    held = split_by_speaker(read_split(corpus / "test", args.jobs), args.dev_speakers, args.test_speakers, stratum=stratum)
    for split, entries in {"train": train + held["train"], "dev": held["dev"], "test": held["test"]}.items():
        print(save(Path(args.out) / f"{split}.jsonl", entries))


def read_split(data_dir: Path, jobs: int | None = None) -> list[dict[str, Any]]:
    """A data directory's entries with their speaker's age and group (from spk2age) as `age` and `source`."""
    listing = kaldi_data_dir(data_dir, root=data_dir.parent, speaker_prefix=SPEAKER_PREFIX, jobs=jobs)
    if listing.dropped:
        print(f"{data_dir.name}: {listing.dropped_note()}")
    ages = read_ages(data_dir / "spk2age")
    entries = []
    for entry in listing.entries:
        speaker = entry["speaker"].removeprefix(SPEAKER_PREFIX)
        if speaker not in ages:
            raise ManifestError(f"{data_dir / 'spk2age'}: no age for speaker {speaker}")
        group = "child" if ages[speaker] <= CHILD_MAX_AGE else "adult"
        entries.append(entry | {"age": ages[speaker], "source": f"speechocean762/{group}"})
    return entries


def read_ages(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    ages = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise ManifestError(f"{path}:{line_no}: expected '<speaker> <age>'")
        ages[fields[0]] = int(fields[1])
    return ages


def stratum(entry: dict[str, Any]) -> str:
    return f"{entry['source']}/{entry.get('gender', '')}"


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
