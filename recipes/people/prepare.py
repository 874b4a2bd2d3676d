"""Compose the dev and test sets of people from the corpora's own held-out splits, and check them against training.

Each --dev / --test item is a manifest, optionally with `:N` to take N of its utterances (spread by a hash of
their id, the same on every machine). Entries without a `source` get their manifest's folder name as one, so
`asr evaluate` and training's dev log break scores down by corpus. With --train, the held-out sets are checked
against every training manifest: no audio file (or span) and no speaker may be in both (LJSpeech's single reader
has no speaker id: its clips are held out, not its voice).

    python recipes/people/prepare.py --out data/people \
        --dev data/speechocean762/dev.jsonl data/ljspeech/dev.jsonl data/digits/dev.jsonl:60 data/realspeech/dev.jsonl \
        --test data/speechocean762/test.jsonl data/ljspeech/test.jsonl data/digits/test.jsonl:60 \
        --train data/speechocean762/train.jsonl data/ljspeech/train.jsonl data/digits/train.jsonl
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from asr.corpora.layouts import save, stable_unit
from asr.errors import ManifestError, exit_status
from asr.manifest import entry_audio, read_manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/people", help="folder for dev.jsonl and test.jsonl (default: %(default)s)")
    parser.add_argument("--dev", nargs="+", required=True, help="held-out manifests for dev, each MANIFEST[:N]")
    parser.add_argument("--test", nargs="*", default=[], help="held-out manifests for test, each MANIFEST[:N]")
    parser.add_argument("--train", nargs="*", default=[], help="training manifests to check the held-out sets against")
    args = parser.parse_args(argv)

    training = [entry for path in args.train for entry in read_manifest(path)]
    for split, items in (("dev", args.dev), ("test", args.test)):
        if not items:
            continue
        entries = [entry for item in items for entry in held_out_part(item)]
        check_disjoint(split, entries, training)
        print(save(Path(args.out) / f"{split}.jsonl", entries))
        for source, (count, seconds) in sorted(by_source(entries).items()):
            print(f"  {source:28s} {count:5d} utterances, {seconds / 60:6.1f} min")


def held_out_part(item: str) -> list[dict[str, Any]]:
    """The entries of MANIFEST[:N], each with a source."""
    path, _, count = item.rpartition(":") if item.rpartition(":")[2].isdigit() else (item, "", "")
    entries = read_manifest(path)
    if count:
        ranked = sorted(entries, key=lambda e: stable_unit(str(e.get("id", e["audio_filepath"]))))
        chosen = {id(e) for e in ranked[: int(count)]}
        entries = [e for e in entries if id(e) in chosen]
    return [e if "source" in e else e | {"source": Path(path).parent.name} for e in entries]


def check_disjoint(split: str, held: list[dict[str, Any]], training: list[dict[str, Any]]) -> None:
    """ManifestError when a held-out utterance's audio or speaker is also trained on."""
    trained_audio = {str(entry_audio(e)) for e in training}
    trained_speakers = {e["speaker"] for e in training if "speaker" in e}
    for entry in held:
        if str(entry_audio(entry)) in trained_audio:
            raise ManifestError(f"{split}: {entry_audio(entry)} is also a training utterance")
        if entry.get("speaker") in trained_speakers:
            raise ManifestError(f"{split}: speaker {entry['speaker']} is also in the training data")


def by_source(entries: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    counts, seconds = Counter(), Counter()
    for entry in entries:
        counts[entry["source"]] += 1
        seconds[entry["source"]] += entry["duration"]
    return {source: (counts[source], seconds[source]) for source in counts}


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
