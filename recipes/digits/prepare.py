"""Write train/dev/test manifests of the Free Spoken Digit Dataset (FSDD): single English digits, 8 kHz.

The dataset is a folder of `{digit}_{speaker}_{index}.wav` recordings (any audio format asr.audio reads: the
project's shared copy is FLAC); the transcript is the digit's word ("7" -> "seven"). Dev and test are whole
speakers (`--dev-speakers`, `--test-speakers`, chosen by a hash of the name), so the split is the same on every
machine. Entries get `speaker` "fsdd:<name>" and `source` "fsdd".

    python recipes/digits/prepare.py ../shared/corpora/free-spoken-digit-dataset/recordings --out data/digits
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from asr.audio import AUDIO_SUFFIXES
from asr.corpora.layouts import Utterance, make_listing, save, split_by_speaker
from asr.errors import ManifestError, exit_status

NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[A-Za-z]+)_(?P<index>[0-9]+)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", help="the FSDD recordings/ folder")
    parser.add_argument("--out", default="data/digits", help="manifest folder (default: %(default)s)")
    parser.add_argument("--dev-speakers", type=int, default=1, help="speakers for dev (default: %(default)s)")
    parser.add_argument("--test-speakers", type=int, default=1, help="speakers for test (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None, help="processes reading audio headers (default: all CPUs)")
    args = parser.parse_args(argv)

    entries = [entry | {"source": "fsdd"} for entry in make_listing(utterances(Path(args.recordings)), args.jobs).entries]
    for split, part in split_by_speaker(entries, args.dev_speakers, args.test_speakers).items():
        print(save(Path(args.out) / f"{split}.jsonl", part))


def utterances(folder: Path) -> list[Utterance]:
    """Every recording of the folder; a file whose name is not `{digit}_{speaker}_{index}` is an error."""
    if not folder.is_dir():
        raise ManifestError(f"{folder}: recordings folder not found")
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        match = NAME.fullmatch(path.stem)
        if not match:
            raise ManifestError(f"{path}: not named {{digit}}_{{speaker}}_{{index}}")
        found.append(Utterance(f"fsdd/{path.stem}", path, match["digit"], f"fsdd:{match['speaker']}"))
    if not found:
        raise ManifestError(f"{folder}: no recordings ({' '.join(sorted(AUDIO_SUFFIXES))})")
    return found


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
