"""Tagged text for the punctuation and capitalization model: the raw sentences (case and punctuation kept) of the
everyday-English sources the LM recipe reads (recipes/lm/lm_text.py), each turned into the words a recognizer
writes with their case and following mark (asr.punctuation.labelled_words).

    python recipes/punctuation/prepare.py --debs data/lm-debs --out data/punctuation

Writes OUT/{train,dev,test}.jsonl, one sentence a line ({"source", "words", "cases", "marks"}), consecutive
sentences of a source in their order (training reads them as running text). dev: one block of 20 consecutive
sentences in 50 of the training sources; test: the LM recipe's held-out packages (gnome-user-docs,
debian-handbook), modern prose of sources the model never sees.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

RECIPES = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(RECIPES / "lm"), str(RECIPES / "realspeech")]  # the LM recipe's readers, and what they import

import lm_text  # noqa: E402

from asr.atomic import atomic_open  # noqa: E402
from asr.errors import ManifestError, exit_status  # noqa: E402
from asr.punctuation import labelled_words  # noqa: E402

# Dictionary entries are definitions, not running prose: a share of them is enough.
MAX_WORDS = {"dict-gcide": 600_000, "dict-foldoc": 200_000}
BLOCK, DEV_EVERY = 20, 50


def tagged(name: str, raws: Iterable[str], limit: int | None) -> Iterator[dict]:
    """The source's sentences as tagged words, deduplicated, at most `limit` words."""
    seen: set[tuple[str, ...]] = set()
    words = 0
    for raw in raws:
        labelled = labelled_words(" ".join(raw.split()))
        if labelled is None or len(labelled) < 3:
            continue
        key = tuple(w for w, _, _ in labelled)
        if key in seen:
            continue
        seen.add(key)
        words += len(labelled)
        if limit is not None and words > limit:
            return
        yield {"source": name, "words": list(key), "cases": [c for _, c, _ in labelled],
               "marks": [m for _, _, m in labelled]}


def sources(debs: Path) -> Iterator[tuple[str, Iterable[str]]]:
    """(name, raw sentences) of the LM recipe's packages, then the fortunes (not WordNet's one-line examples)."""
    for name, read in lm_text.PACKAGES.items():
        root = debs / name
        if not root.is_dir():
            raise ManifestError(f"{root}: package folder not found (apt-get download {name} && "
                                f"dpkg-deb -x {name}_*.deb {root})")
        yield name, read(root)
    yield "fortunes", (raw for origin, raw in lm_text.synthetic_sentences() if origin.startswith("fortunes"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debs", required=True, help="folder of extracted packages (recipes/lm/run.sh's)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    debs, out = Path(args.debs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter[tuple[str, str]] = Counter()
    with atomic_open(out / "train.jsonl") as train, atomic_open(out / "dev.jsonl") as dev:
        for name, raws in sources(debs):
            rows = tagged(name, raws, MAX_WORDS.get(name))
            for block, chunk in enumerate(iter(lambda: list(itertools.islice(rows, BLOCK)), [])):
                split, file = ("dev", dev) if block % DEV_EVERY == DEV_EVERY - 1 else ("train", train)
                for row in chunk:
                    file.write(json.dumps(row) + "\n")
                    counts[split, name] += len(row["words"])
    with atomic_open(out / "test.jsonl") as test:
        for name, read in lm_text.HELD_OUT_PACKAGES.items():
            for row in tagged(name, read(debs / name), None):
                test.write(json.dumps(row) + "\n")
                counts["test", name] += len(row["words"])
    for (split, name), words in sorted(counts.items()):
        print(f"{split:5s} {name:20s} {words:10,d} words")


if __name__ == "__main__":
    exit_status("prepare.py", main)
