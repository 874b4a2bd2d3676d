"""Write the real-speech dev set (the readers: realspeech_sources.py beside this script) from extracted Debian
packages: OUT/dev.jsonl, converted audio under OUT/audio/, and a summary per package. A dev set only: never train
on it.

    python recipes/realspeech/prepare.py --debs data/realspeech-debs --out data/realspeech
    python recipes/realspeech/prepare.py --root codec2-examples=/tmp/codec2 --root klettres-data=/tmp/kl --out x

--debs DIR holds one folder per package, as `dpkg-deb -x NAME_*.deb DIR/NAME` leaves it (recipes/realspeech/run.sh).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realspeech_sources import SOURCES  # noqa: E402 (the recipe's readers, beside this script)

from asr.corpora.layouts import Listing, save  # noqa: E402
from asr.errors import ManifestError, exit_status  # noqa: E402


def package_roots(debs: str | None, roots: list[str], packages: list[str] | None) -> dict[str, Path]:
    """Package name -> extracted tree: DIR/NAME for each package (default: all) with --debs, else each --root."""
    if debs is not None:
        return {name: Path(debs) / name for name in packages or SOURCES}
    chosen = {}
    for value in roots:
        name, _, path = value.partition("=")
        if name not in SOURCES or not path:
            raise ManifestError(f"--root {value}: expected NAME=PATH with NAME one of {', '.join(SOURCES)}")
        chosen[name] = Path(path)
    return chosen


def summary(name: str, listing: Listing) -> str:
    """One line: utterances, minutes, speakers, and how many were dropped (the first as example)."""
    entries: list[dict[str, Any]] = listing.entries
    minutes = sum(entry["duration"] for entry in entries) / 60
    speakers = len({entry["speaker"] for entry in entries})
    line = f"{name}: {len(entries)} utterances, {minutes:.1f} min, {speakers} speakers, {len(listing.dropped)} dropped"
    return line + (f" (first: {listing.dropped[0][0]}: {listing.dropped[0][1]})" if listing.dropped else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--debs", help="folder holding one extracted tree per package, named by the package")
    where.add_argument("--root", action="append", default=[], metavar="NAME=PATH", help="one package's tree")
    parser.add_argument("--packages", nargs="+", choices=list(SOURCES), help="with --debs: these only (default: all)")
    parser.add_argument("--out", default="data/realspeech", help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)

    entries = []
    for name, root in package_roots(args.debs, args.root, args.packages).items():
        if not root.is_dir():
            raise ManifestError(f"{root}: package folder not found (dpkg-deb -x {name}_*.deb {root})")
        listing = SOURCES[name](root, args.out)
        print(summary(name, listing))
        entries.extend(listing.entries)
    if not entries:
        raise ManifestError(f"{args.debs or args.root[0]}: no utterances found")
    print(save(Path(args.out) / "dev.jsonl", entries))


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
