"""The `asr` command: parse arguments, call the library, print results, turn errors into one line + exit code."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ASRError, CheckpointError

EXIT_ERROR = 1


def cmd_train(args: argparse.Namespace) -> None:
    from .config import load_config
    from .train import ExperimentConfig, Trainer

    config = load_config(ExperimentConfig, args.config, args.overrides)
    trainer = Trainer(config)
    try:
        if args.resume:
            trainer.resume(None if args.resume is True else args.resume)
        state = trainer.run()
    finally:
        trainer.dist.shutdown()
    if trainer.dist.is_main:
        print(f"finished at step {state.step}; checkpoints in {trainer.out_dir}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_manifest
    from .manifest import read_manifest
    from .transcribe import load_model

    transcriber = load_model(args.model, device=args.device)
    entries = read_manifest(args.manifest)
    report = evaluate_manifest(transcriber, entries, args.batch_seconds)
    report_path = Path(args.report) if args.report else Path(args.manifest).with_suffix(".report.jsonl")
    report.write(report_path)
    print(f"WER {report.wer:.2%}  CER {report.cer:.2%}  ({len(entries)} utterances, {report.words} words)")
    print(f"per-utterance report: {report_path}")
    if args.worst:
        print(f"worst {min(args.worst, len(entries))} utterances:")
        for u in report.worst(args.worst):
            print(f"  {u.word_errors} errors  {u.audio_filepath}\n    REF: {u.reference}\n    HYP: {u.hypothesis}")


def cmd_transcribe(args: argparse.Namespace) -> None:
    from .transcribe import load_model

    transcriber = load_model(args.model, device=args.device)
    texts = transcriber.transcribe_files(args.files)
    for path, text in zip(args.files, texts):
        print(f"{path}\t{text}" if len(args.files) > 1 else text)


def cmd_average(args: argparse.Namespace) -> None:
    from .checkpoint import average_checkpoints, save_checkpoint

    paths = [Path(p) for p in args.checkpoints]
    if args.last < 1:
        raise CheckpointError(f"--last must be at least 1, got {args.last}")
    if len(paths) == 1 and paths[0].is_dir():
        run = paths[0]
        paths = sorted(run.glob("epoch-*.pt"))[-args.last:]
        if not paths:
            raise CheckpointError(f"{run}: no epoch-*.pt checkpoints (train.keep_epoch_checkpoints keeps them)")
    out = Path(args.out) if args.out else paths[-1].parent / f"average-{len(paths)}.pt"
    save_checkpoint(out, average_checkpoints(paths))
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {out}")


def cmd_package(args: argparse.Namespace) -> None:
    import torch

    from .checkpoint import RELEASE_CONFIG, RELEASE_WEIGHTS, checkpoint_path, load_checkpoint, save_release

    path = checkpoint_path(args.checkpoint)
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("state", {})
    metadata = {"checkpoint": path.name, **{k: state[k] for k in ("step", "epoch", "best_dev_wer") if k in state}}
    dtype = {"float16": torch.float16, "float32": torch.float32}[args.dtype]
    out = save_release(args.out, checkpoint, dtype, metadata)
    size_mb = (out / RELEASE_WEIGHTS).stat().st_size / 1e6
    print(f"wrote {out / RELEASE_WEIGHTS} ({size_mb:.1f} MB, {args.dtype}) and {out / RELEASE_CONFIG}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Train, evaluate and run BiLSTM-CTC speech recognizers.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", help="YAML config (sections: train, model, features, spec_augment, vocab)")
    train.add_argument("overrides", nargs="*", help="config overrides such as train.lr=1e-3 model.num_layers=3")
    train.add_argument("--resume", nargs="?", const=True, default=False,
                       help="continue from OUT_DIR/last.pt, or from the checkpoint given")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="WER/CER of a model on a manifest")
    evaluate.add_argument("--model", help="release folder, checkpoint file or run folder (default: the bundled model)")
    evaluate.add_argument("--manifest", required=True, help="JSONL manifest with audio_filepath, duration, text")
    evaluate.add_argument("--report", help="per-utterance JSONL report (default: next to the manifest)")
    evaluate.add_argument("--worst", type=int, default=10, help="list this many worst utterances")
    evaluate.add_argument("--batch-seconds", type=float, default=120.0, help="padded audio seconds per batch")
    evaluate.add_argument("--device", default="cpu", help="cpu or cuda")
    evaluate.set_defaults(func=cmd_evaluate)

    transcribe = sub.add_parser("transcribe", help="print the transcript of audio files")
    transcribe.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3, ...)")
    transcribe.add_argument("--model", help="release folder, checkpoint file or run folder (default: the bundled model)")
    transcribe.add_argument("--device", default="cpu", help="cpu or cuda")
    transcribe.set_defaults(func=cmd_transcribe)

    average = sub.add_parser("average", help="average the weights of the last epochs' checkpoints")
    average.add_argument("checkpoints", nargs="+", help="a run folder (its epoch-*.pt) or checkpoint files")
    average.add_argument("--last", type=int, default=5, help="with a run folder: how many of the last epochs")
    average.add_argument("--out", help="output checkpoint (default: average-N.pt beside the inputs)")
    average.set_defaults(func=cmd_average)

    package = sub.add_parser("package", help="turn a training checkpoint into a release (safetensors + JSON)")
    package.add_argument("checkpoint", help="checkpoint file or run folder (its best.pt)")
    package.add_argument("--out", required=True, help="folder for model.safetensors and config.json")
    package.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="weight precision")
    package.set_defaults(func=cmd_package)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ASRError as err:
        print(f"asr {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
