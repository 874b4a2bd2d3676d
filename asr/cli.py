"""The `asr` command: parse arguments, call the library, print results, turn errors into one line + exit code."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import exit_status
from .writers import OUTPUT_FORMATS

if TYPE_CHECKING:
    from .audio import AudioSource


def cmd_train(args: argparse.Namespace) -> None:
    """Train, or continue with --resume. SIGINT/SIGTERM stop training after saving last.pt, with exit code
    128 + the signal's number (130, 143, as a shell reports a process killed by it): the run is resumable, not done."""
    import signal

    from .config import load_config
    from .checkpoint import LAST
    from .train import ExperimentConfig, Trainer

    config = load_config(ExperimentConfig, args.config, args.overrides)
    trainer = Trainer(config)
    try:
        if args.resume:
            trainer.resume(None if args.resume is True else args.resume)
        state = trainer.run()
    except BaseException:
        trainer.shutdown()  # no waiting: another process may be gone or stuck
        raise
    trainer.shutdown(wait=True)
    if trainer.stopped_by:
        if trainer.dist.is_main:
            print(f"stopped by {signal.Signals(trainer.stopped_by).name} at step {state.step}; "
                  f"saved {trainer.out_dir / LAST} (--resume continues from it)")
        raise SystemExit(128 + trainer.stopped_by)
    if trainer.dist.is_main:
        print(f"finished at step {state.step}; checkpoints in {trainer.out_dir}")


def add_model_arguments(parser: argparse.ArgumentParser, runtimes: bool = True) -> None:
    """Which model, where it runs and how fast: shared by transcribe, evaluate, tune-lm and export."""
    parser.add_argument("--model", help="release folder, checkpoint file, run folder or exported .onnx file "
                                        "(default: the bundled model)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--int8", action="store_true", help="8-bit LSTM and linear weights: faster on CPUs")
    parser.add_argument("--threads", type=int, help="CPU threads for the network (default: the runtime's choice)")
    if runtimes:
        parser.add_argument("--runtime", choices=("auto", "torch", "onnx"), default="auto",
                            help="onnx: onnxruntime on the CPU, without PyTorch (a release's model.onnx, e.g. the "
                                 "bundled model's, or an .onnx file); torch: PyTorch (checkpoints, GPUs, --int8); "
                                 "auto (default): onnx where the model has it and --device is cpu, else torch")


def add_batch_argument(parser: argparse.ArgumentParser) -> None:
    """How much audio the network takes at once: shared by transcribe, evaluate and tune-lm."""
    from .network import BATCH_SECONDS

    parser.add_argument("--batch-seconds", type=float, default=BATCH_SECONDS,
                        help="padded audio seconds per network batch")


def load_transcriber(args: argparse.Namespace, decode: bool = True):  # noqa: ANN201 - Transcriber, lazily imported
    """The model the options name, decoding as they ask by default (decode=False: greedy)."""
    from .errors import ConfigError
    from .transcribe import load_model

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    transcriber = load_model(args.model, device=args.device, int8=args.int8,
                             runtime=getattr(args, "runtime", "torch"), threads=args.threads)
    if decode:
        transcriber.decoding = decoding_config(args, transcriber.recommended_decoding)
        transcriber.decoder()  # built now, so a bad LM or lexicon is reported before any audio is read
    return transcriber


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of DecodeConfig (asr/decoding/config.py) shared by transcribe, evaluate and tune-lm."""
    from .decoding import DecodeConfig
    from .decoding.config import METHODS

    group = parser.add_argument_group("decoding")
    group.add_argument("--decoder", choices=METHODS,
                       help="greedy (default) or beam search (implied by --lm, --lexicon, --hotword); beam search "
                            "without --lm uses the model's own LM and tuned weights when it ships one")
    group.add_argument("--beam-size", type=int, help=f"hypotheses kept per frame (default: the model's, else "
                                                     f"{DecodeConfig.beam_size})")
    group.add_argument("--lm", help="n-gram LM: ARPA (.arpa or .arpa.gz), a word LM or a character LM (asr lm "
                                    "--chars), or a KenLM binary word LM with --lexicon; 'none' for beam search "
                                    "without one")
    group.add_argument("--lexicon", help="words the beam search may output, one per line (default: the word LM's)")
    group.add_argument("--lm-weight", type=float, help=f"weight of the LM score (default: the model's, else "
                                                       f"{DecodeConfig.lm_weight:g})")
    group.add_argument("--word-score", type=float, help=f"score added per word (default: the model's, else "
                                                        f"{DecodeConfig.word_score:g})")
    group.add_argument("--hotword", action="append", default=[], help="a word or phrase to favour (repeatable)")
    group.add_argument("--hotword-weight", type=float, default=DecodeConfig.hotword_weight,
                       help="score added per hotword word")


def decoding_config(args: argparse.Namespace, recommended=None):  # noqa: ANN001,ANN201 - lazily imported types
    """The DecodeConfig the options ask for. Beam search without --lm or --lexicon starts from the model's
    recommended one (its shipped LM and tuned weights) where it has one; options given explicitly win."""
    from dataclasses import replace

    from .decoding import DecodeConfig

    beam = args.decoder == "beam" or (args.decoder is None and bool(args.lm or args.lexicon or args.hotword))
    if not beam:
        return DecodeConfig()
    base = recommended if recommended is not None and not args.lm and not args.lexicon else DecodeConfig("beam")
    explicit = {"beam_size": args.beam_size, "lm_weight": args.lm_weight, "word_score": args.word_score}
    return replace(base, **{k: v for k, v in explicit.items() if v is not None},
                   lm=None if args.lm == "none" else args.lm or base.lm, lexicon=args.lexicon or base.lexicon,
                   hotwords=args.hotword, hotword_weight=args.hotword_weight)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_manifest
    from .manifest import read_manifest

    transcriber = load_transcriber(args)
    entries = read_manifest(args.manifest)
    report = evaluate_manifest(transcriber, entries, args.batch_seconds)
    report_path = Path(args.report) if args.report else Path(args.manifest).with_suffix(".report.jsonl")
    report.write(report_path)
    print(f"WER {report.wer:.2%}  CER {report.cer:.2%}  ({len(entries)} utterances, {report.words} words)")
    for key, title in (("family", "voice family"), ("source", "source")):
        groups = report.by(key)
        if groups:
            print(f"by {title}:")
            for name, part in groups.items():
                print(f"  {name:24s} WER {part.wer:7.2%}  CER {part.cer:7.2%}  "
                      f"({len(part.utterances)} utterances, {part.words} words)")
    print(f"per-utterance report: {report_path}")
    if args.worst:
        print(f"worst {min(args.worst, len(entries))} utterances:")
        for u in report.worst(args.worst):
            print(f"  {u.word_errors} errors  {u.audio_filepath}\n    REF: {u.reference}\n    HYP: {u.hypothesis}")


def audio_inputs(names: list[str]) -> list[AudioSource]:
    """Expand the inputs of `asr transcribe`: files as given, folders searched for audio, manifests read (an entry
    with an offset is its span of the file), "-" kept."""
    from .audio import AUDIO_SUFFIXES
    from .errors import AudioError
    from .manifest import entry_audio, read_manifest

    inputs: list[AudioSource] = []
    for name in names:
        path = Path(name)
        if name == "-":
            inputs.append(name)
        elif path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                raise AudioError(f"{path}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in this folder")
            inputs.extend(found)
        elif path.suffix == ".jsonl":
            inputs.extend(entry_audio(e) for e in read_manifest(path))
        else:
            inputs.append(name)
    return inputs


def cmd_transcribe(args: argparse.Namespace) -> None:
    import shutil
    import tempfile

    from tqdm import tqdm

    from .writers import render, write_transcript
    from .written import written

    inputs = audio_inputs(args.inputs)
    output_dir = args.output_dir or ("." if args.output_format == "all" else None)
    transcriber = load_transcriber(args)
    with tempfile.TemporaryDirectory(prefix="asr-stdin-") as tmp:
        sources = list(inputs)
        if "-" in sources:  # audio on standard input is spooled to a file, which any decoder can then read
            with open(Path(tmp) / "stdin", "wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f)
            sources = [str(Path(tmp) / "stdin") if s == "-" else s for s in sources]
        results = transcriber.transcribe_many(sources, batch_seconds=args.batch_seconds)
        failures = 0
        taken: set[str] = set()
        progress = tqdm(total=len(inputs), unit="file", disable=None if len(inputs) > 1 else True, file=sys.stderr)
        for name, source, result in zip(map(str, inputs), sources, results):
            progress.update()
            if isinstance(result, Exception):
                message = str(result).replace(str(source), name)
                if len(inputs) == 1:
                    raise type(result)(message)
                failures += 1
                progress.write(f"asr transcribe: error: {message}", file=sys.stderr)
                continue
            result.source = name
            if not args.raw:
                result = written(result, punctuate=not args.no_punctuate)
            if output_dir:
                for path in write_transcript(result, output_dir, args.output_format or "txt", taken=taken):
                    progress.write(f"wrote {path}", file=sys.stderr)
            elif args.output_format in ("txt", None):
                progress.write(f"{name}\t{result.text}" if len(inputs) > 1 else result.text, file=sys.stdout)
            else:
                progress.write(render(result, args.output_format).rstrip("\n"), file=sys.stdout)
        progress.close()
    if failures:
        from .errors import AudioError

        raise AudioError(f"{failures} of {len(inputs)} inputs could not be transcribed (see above)")


def cmd_lm(args: argparse.Namespace) -> None:
    from .errors import ConfigError
    from .decoding.lm import (char_tokens, check_min_counts, count_ngrams, estimate_lm, read_training_text,
                              read_word_list)

    try:
        min_counts = [int(c) for c in args.min_counts.split(",")] if args.min_counts else None
    except ValueError:
        raise ConfigError(f"--min-counts: expected counts separated by commas, e.g. 1,1,2; got {args.min_counts!r}"
                          ) from None
    if not Path(args.out).absolute().parent.is_dir():  # before minutes of counting, not after
        raise ConfigError(f"{args.out}: the folder to write the language model in does not exist")
    if args.vocab and args.chars:
        raise ConfigError("--vocab lists words: a character LM (--chars) has its model's characters as vocabulary")
    vocabulary = read_word_list(args.vocab) if args.vocab else None
    sentences = read_training_text(args.text, processes=(os.cpu_count() or 1) if args.jobs is None else args.jobs)
    if args.chars:
        sentences = (char_tokens(" ".join(words)) for words in sentences)
    check_min_counts(min_counts, args.order)
    counts = count_ngrams(sentences, args.order, vocabulary=vocabulary)
    model = estimate_lm(counts, min_counts, args.max_ngrams)
    model.write_arpa(args.out)
    sizes = ", ".join(f"{n}-grams {size}" for n, size in enumerate(model.sizes, start=1))
    pruned = f"; min counts {','.join(map(str, model.min_counts))}" if max(model.min_counts) > 1 else ""
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB) from {counts.sentences} sentences, "
          f"{counts.tokens} {'tokens' if args.chars else 'words'}: {sizes}{pruned}")


def cmd_tune_lm(args: argparse.Namespace) -> None:
    from .errors import ConfigError
    from .evaluate import Tuning, grid_search
    from .manifest import read_manifest

    transcriber = load_transcriber(args, decode=False)
    args.decoder = "beam"
    config = decoding_config(args, transcriber.recommended_decoding)
    if config.lm is None:
        raise ConfigError("--lm is required (this model ships no language model): the LM whose weights to tune")
    if args.json and not Path(args.json).absolute().parent.is_dir():  # before the decoding, not after
        raise ConfigError(f"{args.json}: the folder to write the results in does not exist")
    entries = read_manifest(args.manifest)
    grid = grid_search(transcriber, entries, config, args.lm_weights, args.word_scores, args.batch_seconds)
    rows = []
    print("lm_weight  word_score    WER     CER")
    for setting, report in grid:
        print(f"{setting.lm_weight:9g}  {setting.word_score:10g}  {report.wer:6.2%}  {report.cer:6.2%}", flush=True)
        rows.append({"lm_weight": setting.lm_weight, "word_score": setting.word_score, "wer": report.wer,
                     "cer": report.cer})
    tuning = Tuning(args.manifest, len(entries), config.lm, config.beam_size, rows)
    best = tuning.best
    print(f"best: --lm-weight {best['lm_weight']:g} --word-score {best['word_score']:g} "
          f"(WER {best['wer']:.2%}, CER {best['cer']:.2%} on {len(entries)} utterances)")
    if args.json:
        tuning.write(args.json)
        print(f"wrote {args.json} (asr package --tuned {args.json} takes its best setting)")


def cmd_export(args: argparse.Namespace) -> None:
    from .export import export_onnx, export_torchscript

    if args.format == "onnx":
        # onnxruntime quantizes the ONNX graph itself; torch's int8 modules have no ONNX form.
        transcriber = load_transcriber(argparse.Namespace(**{**vars(args), "int8": False}), decode=False)
        network = transcriber.network
        path = export_onnx(network.features, network.model, transcriber.vocab, args.out, int8=args.int8)
    else:
        transcriber = load_transcriber(args, decode=False)
        network = transcriber.network
        path = export_torchscript(network.features, network.model, transcriber.vocab, args.out)
    kind = {"onnx": "ONNX", "torchscript": "TorchScript"}[args.format] + (", int8" if args.int8 else "")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {kind}) and {path}.json (tokens, frame rate)")


def cmd_demo(args: argparse.Namespace) -> None:
    try:
        from asr_demo.app import launch  # demo/, beside the library: it imports asr, never the reverse
    except ImportError as err:
        from .errors import ConfigError

        raise ConfigError(f"the demo needs gradio and the demo/ folder of a source checkout ({err})") from None
    launch(args.model, host=args.host, port=args.port, share=args.share)


def cmd_average(args: argparse.Namespace) -> None:
    from .checkpoint import average_checkpoints, last_epochs, save_checkpoint

    paths = [Path(p) for p in args.checkpoints]
    if len(paths) == 1 and paths[0].is_dir():
        paths = last_epochs(paths[0], args.last)
    out = Path(args.out) if args.out else paths[-1].parent / f"average-{len(paths)}.pt"
    save_checkpoint(out, average_checkpoints(paths))
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {out}")


def cmd_adapt(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from .adapt import AdaptConfig, Progress, adapt, check_output, write_adapted

    given = {"steps": args.steps, "minutes_max": args.minutes_max, "lr": args.lr, "layers": args.layers,
             "threads": args.threads, "time_limit_s": args.time_limit, "seed": args.seed}
    config = AdaptConfig(**{key: value for key, value in given.items() if value is not None})
    check_output(Path(args.out))  # before minutes of work, not after
    bar: tqdm | None = None  # from the first step on: loading and checking the recordings come first

    def progress(update: Progress) -> None:
        nonlocal bar
        bar = bar or tqdm(total=update.steps, unit="step", desc="adapting", file=sys.stderr, dynamic_ncols=True)
        bar.update(update.step - bar.n)
        if update.held_out is not None:
            bar.set_postfix(held_out_wer=f"{update.held_out.wer:.1%}", best_wer=f"{update.best.wer:.1%}")

    try:
        result = adapt(args.recordings, args.model, config, progress, log=lambda line: tqdm.write(line, sys.stderr))
    finally:
        if bar is not None:
            bar.close()
    path = write_adapted(result.trained, args.out)
    print(result.summary())
    print(f"wrote {path} (use it with asr transcribe --model {path} or asr demo --model {path})")


def cmd_package(args: argparse.Namespace) -> None:
    from dataclasses import replace

    import torch

    from .checkpoint import load_trained, save_release
    from .errors import ConfigError
    from .evaluate import read_tuned
    from .release import (RELEASE_CONFIG, RELEASE_LEXICON, RELEASE_LM, RELEASE_LM_BINARY, RELEASE_ONNX,
                          RELEASE_WEIGHTS, ReleaseDecoding)

    trained = load_trained(args.checkpoint)  # a release is re-packaged (e.g. to add an LM) keeping its metadata
    metadata = trained.metadata | ({} if args.description is None else {"description": args.description})
    dtype = {"float16": torch.float16, "float32": torch.float32}[args.dtype]
    if args.lexicon and not args.lm:
        raise ConfigError("--lexicon goes with --lm: it lists the words of the LM shipped with the model")
    if args.tuned and (args.lm_weight is not None or args.word_score is not None):
        raise ConfigError("--tuned gives the LM weight and the word score: leave out --lm-weight and --word-score")
    given = read_tuned(args.tuned) if args.tuned else {"lm_weight": args.lm_weight, "word_score": args.word_score}
    decoding = None if args.lm is None else ReleaseDecoding(args.lm, args.lexicon, **given, beam_size=args.beam_size)
    out = save_release(args.out, replace(trained, metadata=metadata, decoding=decoding), dtype, onnx=args.onnx)
    size_mb = (out / RELEASE_WEIGHTS).stat().st_size / 1e6
    shipped = [out / name for name in (RELEASE_LM, RELEASE_LM_BINARY, RELEASE_LEXICON)
               if args.lm and (out / name).exists()] + ([out / RELEASE_ONNX] if args.onnx else [])
    print(f"wrote {out / RELEASE_WEIGHTS} ({size_mb:.1f} MB, {args.dtype}) and {out / RELEASE_CONFIG}"
          + (f", with {' and '.join(map(str, shipped))}" if shipped else ""))


MANIFEST_LAYOUTS = ("kaldi", "librispeech", "ljspeech", "commonvoice", "folder", "csv")


def cmd_manifest(args: argparse.Namespace) -> None:
    from .corpora import layouts
    from .corpora.kaldi import kaldi_data_dir
    from .errors import ConfigError

    if args.root and args.layout != "kaldi":
        raise ConfigError("--root goes with the kaldi layout (the folder wav.scp paths are relative to)")
    if (args.split is not None) != (args.layout == "commonvoice") or \
            args.split not in (None, *layouts.COMMONVOICE_SPLITS):
        raise ConfigError("--split goes with the commonvoice layout, which needs one of "
                          + ", ".join(layouts.COMMONVOICE_SPLITS))
    readers = {
        "kaldi": lambda: kaldi_data_dir(args.corpus, args.root, args.speaker_prefix, args.jobs),
        "librispeech": lambda: layouts.librispeech(args.corpus, args.jobs),
        "ljspeech": lambda: layouts.ljspeech(args.corpus, args.jobs),
        "commonvoice": lambda: layouts.commonvoice(args.corpus, args.split, args.jobs),
        "folder": lambda: layouts.audio_folder(args.corpus, args.jobs),
        "csv": lambda: layouts.csv_listing(args.corpus, args.jobs),
    }
    listing = readers[args.layout]()
    if args.speaker_prefix and args.layout != "kaldi":
        listing.entries = [e | {"speaker": args.speaker_prefix + e["speaker"]} if "speaker" in e else e
                           for e in listing.entries]
    if listing.dropped:
        print(listing.dropped_note())
    if not listing.entries:
        raise ConfigError(f"{args.corpus}: no utterance left to write")
    print(layouts.save(args.out, listing.entries))


def manifest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("layout", choices=MANIFEST_LAYOUTS,
                        help="kaldi: a data directory (wav.scp, text, utt2spk, optional segments and spk2gender); "
                             "librispeech: one subset folder; ljspeech: the folder with metadata.csv; "
                             "commonvoice: a language folder (with --split); folder: audio with same-named .txt "
                             "files; csv: path,text rows")
    parser.add_argument("corpus", help="the data directory, folder or file of that layout")
    parser.add_argument("--out", required=True, help="the JSONL manifest to write")
    parser.add_argument("--root", help="kaldi: the folder wav.scp's relative paths start from (default: the data "
                                       "directory's parent)")
    parser.add_argument("--split", help="commonvoice: the split whose .tsv to read (train, dev, test, validated)")
    parser.add_argument("--speaker-prefix", default="", help="put before every speaker id (e.g. 'so762:'), so "
                                                             "that speakers of several corpora stay apart")
    parser.add_argument("--jobs", type=int, help="processes reading audio headers (default: all CPUs)")


def train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (sections: train, model, features, spec_augment, augment, vocab)")
    parser.add_argument("overrides", nargs="*", help="config overrides such as train.lr=1e-3 model.num_layers=3")
    parser.add_argument("--resume", nargs="?", const=True, default=False,
                        help="continue from OUT_DIR/last.pt (or last.prev.pt if last.pt is damaged), "
                             "or from the checkpoint given")


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--manifest", required=True, help="JSONL manifest with audio_filepath, duration, text")
    parser.add_argument("--report", help="per-utterance JSONL report (default: next to the manifest)")
    parser.add_argument("--worst", type=int, default=10, help="list this many worst utterances")
    add_batch_argument(parser)
    add_decoding_arguments(parser)


def transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+",
                        help="audio files (wav, flac, ogg, mp3, ...), folders of them, JSONL manifests, - for stdin")
    add_model_arguments(parser)
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS,
                        help="txt, json (segments, words with times and confidence), srt, vtt, or all (files); "
                             "printed unless --output-dir is given")
    parser.add_argument("--output-dir", help="write one file per input and format here")
    parser.add_argument("--raw", action="store_true",
                        help="the decoder's own text: lowercase, no punctuation, numbers in words (default: as "
                             "people write it, \"It was 1984. Call me at 3:30 p.m.\", word times kept)")
    parser.add_argument("--no-punctuate", action="store_true",
                        help="numbers as digits, but no capitals or punctuation")
    add_batch_argument(parser)
    add_decoding_arguments(parser)


def lm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="training text: one sentence per line, or a JSONL manifest (its text field)")
    parser.add_argument("--out", required=True, help="ARPA file to write (.arpa, or .arpa.gz compressed)")
    parser.add_argument("--order", type=int, default=3, help="n-gram order")
    parser.add_argument("--min-counts", help="per-order minimum counts to keep an n-gram, e.g. 1,1,2 (smaller file)")
    parser.add_argument("--max-ngrams", type=int,
                        help="prune to at most this many n-grams in all, raising the minimum counts (from "
                             "--min-counts) of the highest order first; prints the counts chosen")
    parser.add_argument("--vocab", help="closed vocabulary, a word per line (e.g. recipes/lm's vocab.txt): its words "
                                        "are the LM's even if the text lacks them, other words count as <unk>")
    parser.add_argument("--chars", action="store_true", help="a character LM for lexicon-free decoding")
    parser.add_argument("--jobs", type=int, help="processes that normalize the text (default: one per CPU; 0: none)")


def tune_lm_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--manifest", required=True, help="JSONL manifest, usually the dev split")
    parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.5, 1, 1.5, 2, 3], help="LM weights to try")
    parser.add_argument("--word-scores", type=float, nargs="+", default=[-1, 0, 1, 2], help="word scores to try")
    parser.add_argument("--json", help="also write the grid and the best setting here as JSON (asr package --tuned "
                                       "takes it)")
    add_batch_argument(parser)
    add_decoding_arguments(parser)


def demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="release folder, checkpoint file or run folder (default: the bundled model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")


def export_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, runtimes=False)
    parser.add_argument("--out", required=True,
                        help="the .pt or .onnx file to write (a .json with the tokens goes beside it)")
    parser.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript",
                        help="TorchScript (libtorch, PyTorch) or ONNX (onnxruntime, sherpa-onnx; needs the onnx "
                             "package)")


def average_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", help="a run folder (its epoch-*.pt) or checkpoint files")
    parser.add_argument("--last", type=int, default=5, help="with a run folder: how many of the last epochs")
    parser.add_argument("--out", help="output checkpoint (default: average-N.pt beside the inputs)")


def adapt_arguments(parser: argparse.ArgumentParser) -> None:
    from .adapt import AdaptConfig

    parser.add_argument("recordings", help="one speaker's recordings: a JSONL manifest, or a folder of audio files "
                                           "with same-named .txt transcripts")
    parser.add_argument("--out", required=True, help="the adapted model: a release folder, or a .zip of one")
    parser.add_argument("--model", help="the model to start from: release folder or .zip, checkpoint file or run "
                                        "folder (default: the bundled model)")
    parser.add_argument("--minutes-max", type=float, default=AdaptConfig.minutes_max,
                        help="use at most this many minutes of recordings")
    parser.add_argument("--steps", type=int, default=AdaptConfig.steps,
                        help="optimizer steps at most, fewer when the held-out loss stops improving")
    parser.add_argument("--lr", type=float, default=AdaptConfig.lr, help="peak learning rate")
    parser.add_argument("--layers", type=int, default=AdaptConfig.layers,
                        help="train the lowest N BiLSTM layers, 0 for all")
    parser.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's choice)")
    parser.add_argument("--time-limit", type=float, help="seconds of training at most; the best weights so far are "
                                                         "kept")
    parser.add_argument("--seed", type=int, default=AdaptConfig.seed,
                        help="random seed: which recordings are held out, augmentation")


def package_arguments(parser: argparse.ArgumentParser) -> None:
    from .decoding import DecodeConfig

    parser.add_argument("checkpoint", help="checkpoint file, run folder (its best.pt), or a release to re-package")
    parser.add_argument("--out", required=True, help="folder for model.safetensors and config.json")
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="weight precision")
    parser.add_argument("--onnx", choices=["int8", "fp32"],
                        help="also write the network for onnxruntime (model.onnx, its weights int8 or fp32): "
                             "asr transcribe then runs it on CPUs without PyTorch, faster and leaner")
    parser.add_argument("--lm", help="an LM to ship with the model for beam search (see asr tune-lm): ARPA, or "
                                     "KenLM binary with --lexicon")
    parser.add_argument("--lexicon", help="with --lm: the words beam search may output, one per line")
    parser.add_argument("--lm-weight", type=float, help=f"with --lm: its tuned LM weight (default: "
                                                       f"{DecodeConfig.lm_weight:g})")
    parser.add_argument("--word-score", type=float, help=f"with --lm: its tuned word score (default: "
                                                        f"{DecodeConfig.word_score:g})")
    parser.add_argument("--description", help="what the model is and how well it does, in a sentence or two: "
                                              "kept in its config.json, shown by asr demo")
    parser.add_argument("--tuned", help="with --lm: take its LM weight and word score from asr tune-lm --json's file")
    parser.add_argument("--beam-size", type=int, default=DecodeConfig.beam_size, help="with --lm: the beam size to use")


# name, help, its arguments, the function that runs it
COMMANDS = [
    ("train", "train a model from a YAML config", train_arguments, cmd_train),
    ("evaluate", "WER/CER of a model on a manifest", evaluate_arguments, cmd_evaluate),
    ("transcribe", "transcribe audio files of any length", transcribe_arguments, cmd_transcribe),
    ("lm", "build an n-gram language model (ARPA) for beam search", lm_arguments, cmd_lm),
    ("tune-lm", "grid-search --lm-weight and --word-score on a (dev) manifest", tune_lm_arguments, cmd_tune_lm),
    ("demo", "serve the browser demo: live dictation and file upload (Gradio)", demo_arguments, cmd_demo),
    ("export", "write a model as one TorchScript or ONNX file (waveform in, log-probs out)", export_arguments,
     cmd_export),
    ("average", "average the weights of the last epochs' checkpoints", average_arguments, cmd_average),
    ("adapt", "adapt a model to one speaker from a few minutes of their recordings", adapt_arguments, cmd_adapt),
    ("package", "turn a training checkpoint into a release (safetensors + JSON)", package_arguments, cmd_package),
    ("manifest", "write a JSONL manifest of a corpus on disk (Kaldi data directory, LibriSpeech, ...)",
     manifest_arguments, cmd_manifest),
]


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends each option with its real default, taken from where it is defined (the settings dataclasses),
    except for options whose default is "not given" (None, off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        not_given = action.default is None or action.default is False or action.default in ([], argparse.SUPPRESS)
        if action.option_strings and not not_given and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `asr` parser with every command; only `command`'s own arguments are added (all when None), so that a
    command imports what its defaults come from and nothing else (`asr --help` and `asr transcribe` stay fast)."""
    parser = argparse.ArgumentParser(prog="asr", description="Train, evaluate and run BiLSTM-CTC speech recognizers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add_arguments, func in COMMANDS:
        command_parser = sub.add_parser(name, help=help_text, formatter_class=DefaultsHelpFormatter)
        if command in (None, name):
            add_arguments(command_parser)
        command_parser.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The command is the first word that is not an option (the top-level parser has only --help).
    args = build_parser(next((word for word in argv if not word.startswith("-")), "")).parse_args(argv)
    return exit_status(f"asr {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
