"""Write the text and vocabulary of a word language model from extracted Debian packages (see lm_text.py beside it):
OUT/lm_text.txt (normalized, deduplicated sentences, one per line, no dev/test sentence) and OUT/vocab.txt (one word
per line, most frequent first), with a table of what each source gave and, with --held-out, the out-of-vocabulary
rate on held-out modern prose.

    python recipes/lm/prepare.py --debs data/lm-debs --out data/lm --held-out gnome-user-docs debian-handbook

--debs DIR holds one folder per package, as `dpkg-deb -x NAME_*.deb DIR/NAME` leaves it (recipes/lm/run.sh). The
fortunes and WordNet text is read where the synthetic corpus reads it (/usr/share/games/fortunes, /usr/share/wordnet).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "realspeech")]  # this recipe's readers, and the real-speech dev set's

import lm_text  # noqa: E402

from asr.decoding.lm import arpa_words, read_word_list  # noqa: E402
from asr.errors import ManifestError, exit_status  # noqa: E402


def source_table(stats: list[lm_text.SourceStats]) -> list[str]:
    """One line per source and a total: sentences and words kept, sentences dropped and why."""
    header = f"{'source':20s} {'sentences':>10s} {'words':>11s} {'dev/test':>9s} {'duplicate':>10s} {'not prose':>10s}"
    rows = [header]
    total = lm_text.SourceStats("all")
    for stat in [*stats, total]:
        if stat is not total:
            for key in ("sentences", "words", "held_out", "duplicates", "rejected"):
                setattr(total, key, getattr(total, key) + getattr(stat, key))
        rows.append(f"{stat.name:20s} {stat.sentences:10,d} {stat.words:11,d} {stat.held_out:9,d} "
                    f"{stat.duplicates:10,d} {stat.rejected:10,d}")
    return rows


def oov_report(name: str, sentences: list[str], vocabularies: dict[str, list[str]]) -> list[str]:
    """Lines giving the OOV rate of each vocabulary on one held-out text, with its most frequent OOV words."""
    lines = []
    for label, words in vocabularies.items():
        oov, total, counts = lm_text.oov_rate(sentences, words)
        if not total:
            raise ManifestError(f"{name}: no held-out prose found")
        top = ", ".join(f"{word} {count}" for word, count in counts.most_common(12))
        lines.append(f"OOV on {name} ({total:,d} words): {label} ({len(words):,d} words) {100 * oov / total:.2f} % "
                     f"({oov:,d}); most frequent: {top}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", required=True, help="folder holding one extracted tree per package")
    parser.add_argument("--out", default="data/lm", help="output folder (default: %(default)s)")
    parser.add_argument("--packages", nargs="+", choices=list(lm_text.PACKAGES),
                        help="read these packages only (default: all)")
    parser.add_argument("--realspeech-debs", default="data/realspeech-debs",
                        help="the real-speech recipe's package folder; its warzone2100-data tree gives tutorial "
                             "lines to keep out of the LM text (default: %(default)s)")
    parser.add_argument("--exclude", action="append", default=[], metavar="MANIFEST",
                        help="a JSONL manifest whose multi-word transcripts must stay out of the LM text (repeatable)")
    parser.add_argument("--vocab-size", type=int, default=150_000, help="words in vocab.txt (default: %(default)s)")
    parser.add_argument("--wordfreq", default="large", choices=["large", "small", "best", "none"],
                        help="wordfreq list merged into the vocabulary ranking, or none (default: %(default)s)")
    parser.add_argument("--held-out", nargs="+", default=[], choices=list(lm_text.HELD_OUT_PACKAGES),
                        help="measure the OOV rate on these packages' prose (read from --debs)")
    parser.add_argument("--compare-lm",
                        help="with --held-out, another vocabulary to measure: an ARPA LM's, or a word list")
    args = parser.parse_args(argv)
    start = time.monotonic()

    debs, out = Path(args.debs), Path(args.out)
    if not debs.is_dir():
        raise ManifestError(f"{debs}: package folder not found (recipes/lm/run.sh downloads and extracts them)")
    warzone = Path(args.realspeech_debs) / "warzone2100-data"
    if not warzone.is_dir():
        raise ManifestError(f"{warzone}: not found; its tutorial lines (a dev set) must be kept out of the LM text "
                            f"(apt-get download warzone2100-data && dpkg-deb -x warzone2100-data_*.deb {warzone})")
    synthetic_text = list(lm_text.synthetic_sentences())
    held_out = lm_text.HeldOut(lm_text.synthetic_held_out(synthetic_text),
                               lm_text.realspeech_phrases(warzone, args.exclude))
    roots = {name: debs / name for name in args.packages or lm_text.PACKAGES}
    sentences, stats = lm_text.lm_sentences(roots, held_out, synthetic_text)
    print("\n".join(source_table(stats)))
    lm_text.write_lines(out / "lm_text.txt", sentences)
    words = sum(stat.words for stat in stats)
    print(f"wrote {out / 'lm_text.txt'}: {len(sentences):,d} sentences, {words:,d} words")

    reference = [] if args.wordfreq == "none" else lm_text.wordfreq_reference("en", args.wordfreq)
    vocabulary = lm_text.build_vocabulary(lm_text.word_counts(sentences), reference, size=args.vocab_size)
    lm_text.write_lines(out / "vocab.txt", vocabulary)
    merged = "the LM text" if args.wordfreq == "none" else f"wordfreq '{args.wordfreq}' and the LM text"
    print(f"wrote {out / 'vocab.txt'}: {len(vocabulary):,d} words ranked by frequency in {merged}")

    if args.held_out:
        vocabularies = {"vocab.txt": vocabulary}
        if args.compare_lm:
            compared = Path(args.compare_lm)
            is_arpa = compared.name.endswith((".arpa", ".arpa.gz"))
            vocabularies[compared.name] = arpa_words(compared) if is_arpa else read_word_list(compared)
        for name in args.held_out:
            root = debs / name
            if not root.is_dir():
                raise ManifestError(f"{root}: package folder not found (dpkg-deb -x {name}_*.deb {root})")
            raws = (piece for raw in lm_text.HELD_OUT_PACKAGES[name](root) for piece in lm_text.sentence_pieces(raw))
            prose = [text for text in map(lm_text.clean_sentence, raws) if text is not None]
            print("\n".join(oov_report(name, prose, vocabularies)))
    print(f"done in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(exit_status(sys.argv[0], main))
