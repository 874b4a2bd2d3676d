"""Train the punctuation and capitalization tagger on prepare.py's text and export it for asr.punctuation.

    python recipes/punctuation/train.py --data data/punctuation --out exp/punctuation [--minutes 20]

The tagger: word embeddings (the most frequent words of the training text; <unk> for the rest, <num> for written
numbers) -> 2 x BiLSTM -> per word, logits of its case (lower, Capital, UPPER) and of the mark after it (none , .
? !). Windows of running text (consecutive sentences of a source), random offsets each pass, some words replaced
by <unk> so that unknown names are judged by their context. The best checkpoint on dev (mean F1 of the marks) is
exported as OUT/punctuation.onnx (int8 weights, onnxruntime's dynamic quantization) with OUT/punctuation.onnx.json.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from asr.atomic import atomic_open, atomic_path
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="prepare.py's folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab-size", type=int, default=40_000)
    parser.add_argument("--minutes", type=float, default=20.0, help="training time")
    parser.add_argument("--batch", type=int, default=64, help="windows per step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
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
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    began, step, best, passes = time.monotonic(), 0, -1.0, 0
    while time.monotonic() - began < args.minutes * 60:
        parts = [windows(i, c, m, int(rng.integers(WINDOW))) for i, c, m in train_ids]
        ids, cases, marks = (np.concatenate([p[k] for p in parts]) for k in range(3))
        order = rng.permutation(len(ids))
        for start in range(0, len(order) - args.batch + 1, args.batch):
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
            step += 1
            if step % 500 == 0 or time.monotonic() - began >= args.minutes * 60:
                f1, case_accuracy = evaluate(model, dev_data)
                print(f"pass {passes} step {step} loss {loss.item():.3f} dev mark F1 {f1:.3f} case accuracy "
                      f"{case_accuracy:.4f} ({(time.monotonic() - began) / 60:.1f} min)", flush=True)
                if f1 > best:
                    best = f1
                    torch.save({"model": model.state_dict(), "vocab": vocab, "step": step}, out / "best.pt")
                if time.monotonic() - began >= args.minutes * 60:
                    break
        passes += 1
    checkpoint = torch.load(out / "best.pt")
    model.load_state_dict(checkpoint["model"])
    export(model, vocab, out / "punctuation.onnx")
    print(f"wrote {out / 'punctuation.onnx'} (step {checkpoint['step']}, dev mark F1 {best:.3f})")


if __name__ == "__main__":
    main()
