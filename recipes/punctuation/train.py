"""Train the punctuation and capitalization tagger on prepare.py's text and export it for asr.punctuation.

    python recipes/punctuation/train.py --data data/punctuation --out exp/punctuation [--steps 4000]
    python recipes/punctuation/train.py ... --minutes 60       # stop after an hour, then the same with --resume

The tagger: word embeddings (the most frequent words of the training text; <unk> for the rest, <num> for written
numbers) -> 2 x BiLSTM -> per word, logits of its case (lower, Capital, UPPER) and of the mark after it (none , .
? !). Windows of running text (consecutive sentences of a source), random offsets each pass, some words replaced
by <unk> so that unknown names are judged by their context. The best checkpoint on dev (mean F1 of the marks) is
exported as OUT/punctuation.onnx (int8 weights, onnxruntime's dynamic quantization) with OUT/punctuation.onnx.json
once the last step is done. A run stopped early (--minutes, --stop-after, SIGINT/SIGTERM) leaves OUT/last.pt, and
--resume continues it exactly (the same windows, order, dropout and LR as without the stop).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from asr.atomic import atomic_open, atomic_path
from asr.stop_signals import StopRequests
from asr.train import warmup_cosine
from asr.punctuation import CASES, MARKS, NUM, PAD, UNK, WINDOW, word_token

WORD_DROPOUT = 0.05


class Tagger(nn.Module):
    def __init__(self, vocab_size: int, embedding: int = 96, hidden: int = 160, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=0)
        self.lstm = nn.LSTM(embedding, hidden, layers, batch_first=True, bidirectional=True, dropout=0.2)
        self.dropout = nn.Dropout(0.2)
        self.case = nn.Linear(2 * hidden, len(CASES))
        self.mark = nn.Linear(2 * hidden, len(MARKS))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = self.lstm(self.dropout(self.embed(tokens)))
        x = self.dropout(x)
        return self.case(x), self.mark(x)


def read_streams(path: Path) -> list[tuple[list[str], np.ndarray, np.ndarray]]:
    """Each source's running text: its words, cases and marks in file order."""
    by_source: dict[str, tuple[list[str], list[int], list[int]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            words, cases, marks = by_source.setdefault(row["source"], ([], [], []))
            words += row["words"]
            cases += row["cases"]
            marks += row["marks"]
    return [(w, np.array(c), np.array(m)) for w, c, m in by_source.values()]


def windows(ids: np.ndarray, cases: np.ndarray, marks: np.ndarray, offset: int) -> tuple[np.ndarray, ...]:
    """The stream cut into WINDOW-word rows starting at `offset` (the remainder dropped)."""
    n = (len(ids) - offset) // WINDOW * WINDOW
    return tuple(a[offset : offset + n].reshape(-1, WINDOW) for a in (ids, cases, marks))


def mark_f1(predicted: np.ndarray, truth: np.ndarray) -> list[float]:
    """F1 of each mark other than none."""
    scores = []
    for mark in range(1, len(MARKS)):
        hit = np.sum((predicted == mark) & (truth == mark))
        precision, recall = hit / max(np.sum(predicted == mark), 1), hit / max(np.sum(truth == mark), 1)
        scores.append(2 * precision * recall / max(precision + recall, 1e-9))
    return scores


@torch.inference_mode()
def evaluate(model: Tagger, data: tuple[np.ndarray, ...]) -> tuple[float, float]:
    """(mean mark F1, case accuracy) on windows."""
    model.eval()
    ids, cases, marks = data
    case_out, mark_out = [], []
    for start in range(0, len(ids), 256):
        c, m = model(torch.from_numpy(ids[start : start + 256]))
        case_out.append(c.argmax(-1).numpy())
        mark_out.append(m.argmax(-1).numpy())
    model.train()
    return float(np.mean(mark_f1(np.concatenate(mark_out), marks))), float(np.mean(np.concatenate(case_out) == cases))


def export(model: Tagger, vocab: list[str], path: Path) -> None:
    """ONNX (tokens (batch, words) int64 -> case_logits, mark_logits), weights int8, and its JSON."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = model.eval()
    with atomic_path(path) as tmp, torch.no_grad():
        float_path = tmp.with_name(tmp.name + ".fp32")
        torch.onnx.export(model, (torch.ones(2, WINDOW, dtype=torch.long),), str(float_path), dynamo=False,
                          opset_version=17, input_names=["tokens"], output_names=["case_logits", "mark_logits"],
                          dynamic_axes={"tokens": {0: "batch", 1: "words"}, "case_logits": {0: "batch", 1: "words"},
                                        "mark_logits": {0: "batch", 1: "words"}})
        quantize_dynamic(str(float_path), str(tmp), weight_type=QuantType.QInt8)
        float_path.unlink()
    with atomic_open(f"{path}.json") as f:
        json.dump({"vocab": vocab, "cases": list(CASES), "marks": list(MARKS), "window": WINDOW}, f)


class Run:
    """Where training stands, saved in OUT/last.pt so that --resume continues exactly: the weights and optimizer,
    the step, the pass under way (numpy's generator as the pass began, so its windows and order come out the same,
    and how many of its batches are done), torch's generator (dropout, word dropout) and the best dev score."""

    def __init__(self, model: Tagger, optimizer: torch.optim.Optimizer, scheduler: Any,
                 rng: np.random.Generator) -> None:
        self.model, self.optimizer, self.scheduler, self.rng = model, optimizer, scheduler, rng
        self.step, self.passes, self.batch_in_pass, self.best = 0, 0, 0, -1.0
        self.pass_rng_state = rng.bit_generator.state

    def save(self, path: Path, vocab: list[str]) -> None:
        with atomic_path(path) as tmp:
            torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(), "vocab": vocab,
                        "step": self.step, "passes": self.passes, "batch_in_pass": self.batch_in_pass,
                        "best": self.best, "pass_rng_state": self.pass_rng_state,
                        "torch_rng_state": torch.get_rng_state()}, tmp)

    def restore(self, path: Path, vocab: list[str]) -> None:
        state = torch.load(path, weights_only=False)
        if state["vocab"] != vocab:
            raise SystemExit(f"{path}: trained with another vocabulary (other data or --vocab-size)")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.passes, self.batch_in_pass = state["step"], state["passes"], state["batch_in_pass"]
        self.best, self.pass_rng_state = state["best"], state["pass_rng_state"]
        self.rng.bit_generator.state = self.pass_rng_state
        torch.set_rng_state(state["torch_rng_state"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="prepare.py's folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab-size", type=int, default=40_000)
    parser.add_argument("--steps", type=int, default=4000, help="training steps in all (the LR schedule's length)")
    parser.add_argument("--minutes", type=float, help="stop after this long (OUT/last.pt; --resume goes on)")
    parser.add_argument("--stop-after", type=int, help="stop after this many steps of this run (likewise)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between dev scores and checkpoints")
    parser.add_argument("--batch", type=int, default=64, help="windows per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak LR (warm-up, then cosine decay to a tenth)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = read_streams(data / "train.jsonl")
    counts = Counter(word_token(w) for words, _, _ in train for w in words)
    vocab = [PAD, UNK, NUM] + [w for w, _ in counts.most_common(args.vocab_size) if w not in (PAD, UNK, NUM)]
    index = {w: i for i, w in enumerate(vocab)}

    def ids_of(words: list[str]) -> np.ndarray:
        return np.array([index.get(word_token(w), 1) for w in words], dtype=np.int64)

    train_ids = [(ids_of(w), c, m) for w, c, m in train]
    dev = [windows(ids_of(w), c, m, 0) for w, c, m in read_streams(data / "dev.jsonl")]
    dev_data = tuple(np.concatenate([d[k] for d in dev]) for k in range(3))
    print(f"{sum(len(i) for i, _, _ in train_ids):,} training words, vocabulary {len(vocab):,}, "
          f"{len(dev_data[0]) * WINDOW:,} dev words", flush=True)
    model = Tagger(len(vocab))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(min(100, args.steps // 10), args.steps, 0.1))
    run = Run(model, optimizer, scheduler, np.random.default_rng(args.seed))
    if args.resume and (out / "last.pt").is_file():
        run.restore(out / "last.pt", vocab)
        print(f"resumed at step {run.step} (pass {run.passes}, batch {run.batch_in_pass})", flush=True)
    loss_fn = nn.CrossEntropyLoss()
    began, first_step = time.monotonic(), run.step

    def told_to_stop() -> bool:
        return ((args.minutes is not None and time.monotonic() - began >= args.minutes * 60) or stop.received is not None
                or (args.stop_after is not None and run.step - first_step >= args.stop_after))

    with StopRequests() as stop:
        while run.step < args.steps and not told_to_stop():
            run.pass_rng_state = run.rng.bit_generator.state
            parts = [windows(i, c, m, int(run.rng.integers(WINDOW))) for i, c, m in train_ids]
            ids, cases, marks = (np.concatenate([p[k] for p in parts]) for k in range(3))
            order = run.rng.permutation(len(ids))
            starts = range(0, len(order) - args.batch + 1, args.batch)
            for start in starts[run.batch_in_pass :]:
                rows = order[start : start + args.batch]
                tokens = torch.from_numpy(ids[rows])
                tokens = tokens.masked_fill(torch.rand(tokens.shape) < WORD_DROPOUT, 1)
                case_logits, mark_logits = model(tokens)
                loss = (loss_fn(case_logits.reshape(-1, len(CASES)), torch.from_numpy(cases[rows]).reshape(-1))
                        + loss_fn(mark_logits.reshape(-1, len(MARKS)), torch.from_numpy(marks[rows]).reshape(-1)))
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                run.step += 1
                run.batch_in_pass += 1
                stopping = run.step >= args.steps or told_to_stop()
                # Dev scores at fixed steps only, so that a stopped and resumed run chooses among the same ones.
                scored = run.step % args.eval_every == 0 or run.step == args.steps
                if scored:
                    f1, case_accuracy = evaluate(model, dev_data)
                    print(f"pass {run.passes} step {run.step} loss {loss.item():.3f} lr "
                          f"{scheduler.get_last_lr()[0]:.2e} dev mark F1 {f1:.3f} case accuracy {case_accuracy:.4f} "
                          f"({(time.monotonic() - began) / 60:.1f} min)", flush=True)
                    if f1 > run.best:
                        run.best = f1
                        torch.save({"model": model.state_dict(), "vocab": vocab, "step": run.step}, out / "best.pt")
                if scored or stopping:
                    run.save(out / "last.pt", vocab)
                if stopping:
                    break
            else:
                run.passes, run.batch_in_pass = run.passes + 1, 0
    if run.step < args.steps:
        print(f"stopped at step {run.step} of {args.steps}: --resume goes on from {out / 'last.pt'}")
        return
    checkpoint = torch.load(out / "best.pt")
    model.load_state_dict(checkpoint["model"])
    export(model, vocab, out / "punctuation.onnx")
    print(f"wrote {out / 'punctuation.onnx'} (step {checkpoint['step']}, dev mark F1 {run.best:.3f})")


if __name__ == "__main__":
    main()
