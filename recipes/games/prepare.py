"""Speech of three Debian adventure games, each clip with the game's own line for it, checked by a recognizer.

Beneath a Steel Sky (`beneath-a-steel-sky`), Flight of the Amazon Queen (`flight-of-the-amazon-queen`) and Drascula:
The Vampire Strikes Back (`drascula`) are freeware games in Debian main with full English voice acting (many
characters, 11,025 Hz). The readers in local/ take the clips and their dialogue text out of the game data; the clips
are written under OUT/audio/<game>/ as the games store them (8-bit WAV, MP3); a clip is kept only when a recognizer
that never heard it confirms that it says its text (local/check.py: its CTC score of the text against its best
guess, with a threshold set so that only --false-accept of deliberately mismatched clip/text pairs would pass). Dev
and test are whole characters (never the most talkative ones), the rest train; every clip's verdict goes to
OUT/checks.jsonl.

    python recipes/games/prepare.py --debs data/games-debs --out data/games --model exp/people/stageA
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local import drascula, queen, sky  # noqa: E402 (the recipe's own readers, beside this script)
from local.check import calibrate, verdicts  # noqa: E402
from local.clips import Clip  # noqa: E402

from asr.atomic import atomic_open, atomic_path  # noqa: E402
from asr.corpora.layouts import audio_durations, save, stable_unit, unspellable  # noqa: E402
from asr.errors import ManifestError, exit_status  # noqa: E402
from asr.text import normalize  # noqa: E402

# game -> (Debian package, data folder inside it, reader)
GAMES: dict[str, tuple[str, str, Callable[[Path], Iterator[Clip]]]] = {
    "sky": ("beneath-a-steel-sky", "usr/share/scummvm/beneath-a-steel-sky", sky.read_clips),
    "queen": ("flight-of-the-amazon-queen", "usr/share/scummvm/flight-of-the-amazon-queen", queen.read_clips),
    "drascula": ("drascula", "usr/share/scummvm/drascula/en", drascula.read_clips),
}
HELD_OUT_MAX_SHARE = 0.08  # a character with more of a game's clips than this is never held out
CHARS_PER_S = (4.0, 30.0)  # a clip outside these speaking rates (characters of text per second) is left out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", default="data/games-debs", help="folder with the packages extracted, one folder "
                                                                 "per package (default: %(default)s)")
    parser.add_argument("--out", default="data/games", help="output folder (default: %(default)s)")
    parser.add_argument("--model", help="the checking model (default: the bundled one); it must never have been "
                                        "trained on these clips")
    parser.add_argument("--false-accept", type=float, default=0.02,
                        help="share of mismatched clip/text pairs the check may let through (default: %(default)s)")
    parser.add_argument("--held-out-share", type=float, default=0.06,
                        help="share of each game's clips for dev, and again for test (default: %(default)s)")
    parser.add_argument("--held-out", type=Path,
                        help="the held-out characters, one `SPLIT SPEAKER` line each (dev or test), instead of a "
                             "draw: recipes/games/held_out.txt keeps the first run's, whatever model checks")
    parser.add_argument("--games", nargs="+", choices=sorted(GAMES), default=sorted(GAMES),
                        help="the games to take (default: all)")
    parser.add_argument("--jobs", type=int, default=None, help="processes reading audio headers (default: all CPUs)")
    args = parser.parse_args(argv)

    import asr

    out = Path(args.out)
    transcriber = asr.load_model(args.model, runtime="torch")  # as the checks in README.md were measured
    kept: list[dict[str, Any]] = []
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "checks.jsonl") as log:
        for game in args.games:
            package, data_dir, read = GAMES[game]
            entries, dropped = extract(game, Path(args.debs) / package / data_dir, read, out / "audio" / game, args.jobs)
            found = verdicts(transcriber, entries)
            calibration = calibrate(found, args.false_accept)
            keep = [verdict.gap < calibration.threshold for verdict in found]
            passed = [entry for entry, keeps in zip(entries, keep) if keeps]
            for entry, verdict, keeps in zip(entries, found, keep):
                log.write(json.dumps({"id": entry["id"], "speaker": entry["speaker"], "text": entry["text"],
                                      "gap": round(verdict.gap, 4), "mismatch_gap": round(verdict.mismatch_gap, 4),
                                      "kept": keeps}) + "\n")
            hours = sum(e["duration"] for e in entries) / 3600
            print(f"{game}: {len(entries)} clips with text ({hours:.2f} h); dropped before the check: "
                  + (", ".join(f"{count} {reason}" for reason, count in dropped.items()) or "none"))
            print(f"{game}: check threshold {calibration.threshold:.3f} nats/char: kept {len(passed)} clips "
                  f"({sum(e['duration'] for e in passed) / 3600:.2f} h, {calibration.kept_share:.1%}); "
                  f"{calibration.false_accept:.1%} of mismatched pairs would pass")
            kept += passed
    fixed = read_held_out(args.held_out) if args.held_out else None
    for split, entries in split_by_character(kept, args.held_out_share, fixed).items():
        print(save(out / f"{split}.jsonl", entries))
        counts = Counter(e["speaker"] for e in entries)
        print(f"  {len(counts)} characters" + (f": {', '.join(sorted(counts))}" if split != "train" else ""))


def extract(game: str, data_dir: Path, read: Callable[[Path], Iterator[Clip]], audio_dir: Path, jobs: int | None
            ) -> tuple[list[dict[str, Any]], Counter]:
    """Write each clip's audio (once) and return manifest entries and the counts of clips left out, by reason."""
    if not data_dir.is_dir():
        raise ManifestError(f"{data_dir}: game data not found (run recipes/games/run.sh, or apt-get download and "
                            f"dpkg-deb -x the package there)")
    audio_dir.mkdir(parents=True, exist_ok=True)
    utterances, dropped = [], Counter()
    for clip in read(data_dir):
        text = normalize(clip.text)
        reason = unspellable(clip.text, text)
        if reason:
            dropped["unspellable or empty text"] += 1
            continue
        path = audio_dir / (clip.id.split("/", 1)[1] + clip.suffix)
        if not path.is_file() or path.stat().st_size != len(clip.audio):
            with atomic_path(path) as tmp:
                Path(tmp).write_bytes(clip.audio)
        utterances.append((clip, path, text))
    durations = audio_durations([path for _, path, _ in utterances], jobs)
    entries = []
    for (clip, path, text), duration in zip(utterances, durations):
        rate = len(text) / duration
        if not CHARS_PER_S[0] <= rate <= CHARS_PER_S[1]:
            dropped["implausible speaking rate"] += 1
            continue
        entries.append({"audio_filepath": str(path), "duration": duration, "text": text, "raw_text": clip.text,
                        "id": clip.id, "speaker": clip.speaker, "source": game})
    return entries, dropped


def read_held_out(path: Path) -> dict[str, str]:
    """speaker -> split from `SPLIT SPEAKER` lines (blank lines and # comments skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: cannot read the held-out characters ({err})") from err
    split_of: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2 or fields[0] not in ("dev", "test") or fields[1] in split_of:
            raise ManifestError(f"{path}:{number}: expected `dev SPEAKER` or `test SPEAKER`, each speaker once, "
                                f"got {line!r}")
        split_of[fields[1]] = fields[0]
    return split_of


def split_by_character(entries: list[dict[str, Any]], share: float, fixed: dict[str, str] | None = None
                       ) -> dict[str, list[dict[str, Any]]]:
    """Per game, characters ranked by a hash of their name go to test, then dev, until each holds `share` of the
    game's clips; characters over HELD_OUT_MAX_SHARE of a game's clips (the leads) always stay in train. With
    `fixed` (speaker -> split), those characters are held out and no others."""
    by_game: dict[str, Counter] = defaultdict(Counter)
    for entry in entries:
        by_game[entry["source"]][entry["speaker"]] += 1
    split_of: dict[str, str] = dict(fixed or {})
    for game, counts in by_game.items() if fixed is None else ():
        total = sum(counts.values())
        eligible = sorted((s for s, n in counts.items() if n <= HELD_OUT_MAX_SHARE * total),
                          key=lambda s: (stable_unit(f"character:{s}"), s))
        taken = {"test": 0, "dev": 0}
        for speaker in eligible:
            split = next((s for s in ("test", "dev") if taken[s] < share * total), None)
            if split is None:
                break
            split_of[speaker] = split
            taken[split] += counts[speaker]
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
    for entry in entries:
        splits[split_of.get(entry["speaker"], "train")].append(entry)
    return splits


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
