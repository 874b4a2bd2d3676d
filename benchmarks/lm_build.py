"""Time and memory of `asr lm` on a large text: wall seconds, peak RSS, n-grams per order, file size.

Without --text it first writes a text of --words words (default 10 million): sentences of the fortune cookie files
(/usr/share/games/fortunes) and of WordNet's glosses and examples (/usr/share/wordnet) cut into pieces of 2 to 6
words and joined at random, so that the text has English words and phrases and keeps producing new n-grams as
real text does. Then it runs the real command line in fresh processes: the full model, and the model pruned to
--max-ngrams n-grams (`asr lm --max-ngrams`):

    python benchmarks/lm_build.py [--words 10000000 | --text corpus.txt] [--order 3] [--max-ngrams N] [--markdown]

Wall time is the whole process (start-up, reading and normalizing the text, counting, estimating, writing the
.arpa.gz). Peak RSS is the `asr lm` process's own (wait4), its normalizing worker processes not included. Linux
counts a parent's resident memory at the moment of exec into the child's peak, so this script keeps itself small:
it imports nothing heavy and writes the text in a separate process.
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import re
import sys
import tempfile
from pathlib import Path

from common import argument_parser, facts_block, run_asr, run_facts, software, table

FORTUNES = Path("/usr/share/games/fortunes")
WORDNET = Path("/usr/share/wordnet")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def source_sentences() -> list[list[str]]:
    """Sentences (lists of raw words, 3 or more) of the fortune files and of WordNet's glosses and examples."""
    texts = []
    for path in sorted(FORTUNES.glob("*")):
        if path.suffix not in (".dat", ".u8") and path.is_file() and "art" not in path.name:
            texts += path.read_text(encoding="utf-8", errors="replace").split("\n%\n")
    for path in sorted(WORDNET.glob("data.*")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith(" ") and " | " in line:  # a synset: its gloss follows " | ", parts split by ";"
                texts += [part.strip(' "') for part in line.split(" | ", 1)[1].split(";")]
    sentences = (s.split() for text in texts for s in _SENTENCE_END.split(" ".join(text.split())))
    return [words for words in sentences if len(words) >= 3]


def write_text(path: Path, words: int, seed: int) -> int:
    """Write lines of `words` words or more in all, each as long as a random source sentence and made of pieces of
    2 to 6 words of random source sentences; returns how many lines. The joins keep making new bigrams and trigrams
    as more real text would (10 M words hold 2.1 M distinct bigrams and 5.5 M distinct trigrams), where whole source
    sentences (1.9 M words in all) would only repeat the same few."""
    pool = source_sentences()
    rng = random.Random(seed)
    lines, written = [], 0
    while written < words:
        line: list[str] = []
        length = len(rng.choice(pool))
        while len(line) < length:
            sentence = rng.choice(pool)
            start = rng.randrange(len(sentence))
            line += sentence[start:start + rng.randint(2, 6)]
        lines.append(" ".join(line))
        written += len(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def measure(text: Path, folder: Path, order: int, max_ngrams: int) -> tuple[int, list[list[str]]]:
    """Build the full and the pruned model of the text: the words counted, and a table row per model."""
    rows = []
    for extra in [[], ["--max-ngrams", str(max_ngrams)]]:
        out = folder / f"lm-{len(rows)}.arpa.gz"
        wall, rss_mb, stdout = run_asr(["lm", str(text), "--order", str(order), "--out", str(out), *extra],
                                       show_stderr=True)
        print(stdout.strip(), file=sys.stderr)
        # "wrote OUT (N MB) from N sentences, N words: 1-grams N, 2-grams N, ...[; min counts 1,1,2]"
        words, sizes, min_counts = re.search(r" sentences, (\d+) words: (.*?)(?:; min counts (.*))?$", stdout).groups()
        per_order = [int(size.split()[1]) for size in sizes.split(", ")]
        rows.append([" ".join(extra) or "full", f"{wall:.1f}", f"{rss_mb:.0f}",
                     " / ".join(f"{size:,}" for size in per_order), f"{sum(per_order):,}",
                     min_counts or ",".join(["1"] * order), f"{out.stat().st_size / 1e6:.1f}"])
    return int(words), rows


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__, markdown=True)
    parser.add_argument("--text", help="text to build from (default: generate --words words)")
    parser.add_argument("--words", type=int, default=10_000_000, help="words of text to generate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated text")
    parser.add_argument("--order", type=int, default=3, help="n-gram order")
    parser.add_argument("--max-ngrams", type=int, default=5_000_000, help="size target of the pruned model")
    parser.add_argument("--out-dir", help="keep the text and models here (default: a temporary folder)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        text = Path(args.text) if args.text else folder / "text.txt"
        if not args.text:
            with multiprocessing.Pool(1) as pool:  # its memory is not ours (see the module's docstring)
                lines = pool.apply(write_text, (text, args.words, args.seed))
            print(f"generated {lines} lines in {text}", file=sys.stderr)
        words, rows = measure(text, folder, args.order, args.max_ngrams)
    facts = [*run_facts(), ("software", software("numpy")),
             ("text", f"{args.text or 'generated'}: {words:,} words after normalizing")]
    header = ["model", "wall s", "peak RSS MB", "n-grams per order", "n-grams", "min counts", ".arpa.gz MB"]
    print(facts_block(facts, args.markdown) + "\n")
    print(table(header, rows, "lrrrrlr", args.markdown))


if __name__ == "__main__":
    main()
