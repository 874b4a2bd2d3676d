"""Data-parallel training: two gloo processes on the CPU under torchrun, against one process on the same batches."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.config import load_config
from asr.data import collate
from asr.train import ExperimentConfig, Trainer

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

# Runs inside each torchrun process: train, then save this replica's weights and the batches it saw.
WORKER = """
import sys, torch
from asr.config import load_config
from asr.train import ExperimentConfig, Trainer

resume, overrides = sys.argv[1] == "resume", sys.argv[2:]
trainer = Trainer(load_config(ExperimentConfig, None, overrides))
if resume:
    trainer.resume()
seen, step = [], trainer.train_step
trainer.train_step = lambda batch: seen.append(batch.indices) or step(batch)
trainer.run()
torch.save({"model": trainer.model.state_dict(), "batches": seen, "step": trainer.state.step},
           f"{trainer.out_dir}/rank{trainer.dist.rank}.pt")
trainer.shutdown(wait=True)  # as asr train does after a clean finish
# The DDP wrapper is gone before the interpreter exits (left to finalization, it aborted one process in three).
assert trainer.network is trainer.model and not torch.distributed.is_initialized()
"""


def overrides(corpus: Path, out_dir: Path, max_steps: int) -> list[str]:
    # No dropout and no SpecAugment: the processes' random draws differ from a single process's by design. fp32: the
    # one-process comparison is to fp32 rounding (a CPU with bf16 in hardware would otherwise autocast to it).
    return ["train.precision=fp32", f"train.train_manifest={corpus / 'train.jsonl'}", f"train.out_dir={out_dir}", f"train.max_steps={max_steps}",
            "train.epochs=3", "train.num_workers=0", "train.max_batch_seconds=8", "train.warmup_steps=50",
            "train.tensorboard=false", "train.keep_epoch_checkpoints=0", "train.save_every_steps=0",
            "model.hidden_size=32", "model.num_layers=2", "model.dropout=0",
            "spec_augment.freq_masks=0", "spec_augment.time_masks=0"]


def torchrun(tmp_path: Path, mode: str, args: list[str]) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(worker), mode, *args], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_processes_match_one_process_on_the_global_batch(tiny_corpus: Path, tmp_path: Path):
    out = tmp_path / "ddp"
    torchrun(tmp_path, "fresh", overrides(tiny_corpus, out, 4))
    rank0, rank1 = (torch.load(out / f"rank{r}.pt") for r in (0, 1))
    assert rank0["step"] == rank1["step"] == 4
    for name, tensor in rank0["model"].items():
        assert torch.equal(tensor, rank1["model"][name]), f"replicas differ in {name}"
    # The processes saw different batches: each took every other batch of the epoch.
    assert all(set(a).isdisjoint(b) for a, b in zip(rank0["batches"], rank1["batches"]))

    # One process, each step on the union of what the two processes saw at that step.
    single = Trainer(load_config(ExperimentConfig, None, overrides(tiny_corpus, tmp_path / "single", 4)))
    initial = {k: v.clone() for k, v in single.model.state_dict().items()}
    for batch0, batch1 in zip(rank0["batches"], rank1["batches"]):
        single.train_step(collate([single.train_set[i] for i in batch0 + batch1]))
    assert any(not torch.equal(t, initial[n]) for n, t in single.model.state_dict().items())
    for name, tensor in single.model.state_dict().items():
        assert torch.allclose(tensor, rank0["model"][name], atol=1e-5, rtol=1e-4), f"DDP and one process differ in {name}"


def test_resume_under_ddp_continues_exactly(tiny_corpus: Path, tmp_path: Path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    torchrun(tmp_path, "fresh", overrides(tiny_corpus, straight, 7))
    torchrun(tmp_path, "fresh", overrides(tiny_corpus, resumed, 4))
    assert (resumed / "last.pt").is_file() and not list(resumed.glob(".*tmp"))
    torchrun(tmp_path, "resume", overrides(tiny_corpus, resumed, 7))
    for rank in (0, 1):
        a, b = torch.load(straight / f"rank{rank}.pt"), torch.load(resumed / f"rank{rank}.pt")
        assert a["step"] == b["step"] == 7
        assert a["batches"][4:] == b["batches"]  # the resumed run picked up at the very next batch
        for name, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][name]), f"rank {rank}: {name} differs after resume"
