"""Training survives faults: SIGKILL at random steps, corrupt checkpoints, a full disk, SIGTERM/SIGINT, NaN batches.

Every "nothing is lost" claim is checked the strict way: the run that met the fault, resumed, ends bit-identical
(torch.equal on every tensor) to an uninterrupted run with the same seed, on the CPU. Dropout and SpecAugment stay on,
so the random streams must resume exactly too.

The SIGKILL test kills `asr train` ASR_FAULT_KILLS times (default 3) in a run of ASR_FAULT_STEPS steps (default 30)
at random steps and at random moments within them (checkpoint writes included), drawn from ASR_FAULT_SEED (fixed
by default; set it to try other kill points).
A longer form: ASR_FAULT_KILLS=25 ASR_FAULT_STEPS=200 pytest tests/test_faults.py -k sigkill
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import asr.checkpoint
from asr.checkpoint import FORMAT, LEGACY_FORMAT, load_checkpoint, previous_path, save_checkpoint
from asr.config import load_config
from asr.errors import CheckpointError
from asr.train import ExperimentConfig, Trainer

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

KILLS = int(os.environ.get("ASR_FAULT_KILLS", "3"))
STEPS = int(os.environ.get("ASR_FAULT_STEPS", "30"))
SEED = int(os.environ.get("ASR_FAULT_SEED", "20261127"))  # fixed, so a failure reruns the same way; vary it by hand

# A tiny model on short batches (13 per epoch, so runs cross epoch boundaries); dropout and SpecAugment on.
TINY = ["model.hidden_size=32", "model.num_layers=2", "train.num_workers=0", "train.max_batch_seconds=6",
        "train.epochs=100", "train.warmup_steps=5", "train.lr=3e-3", "train.log_every_steps=1", "train.seed=11",
        "train.tensorboard=false", "train.keep_epoch_checkpoints=1"]


# -- helpers ------------------------------------------------------------------------------------------------------
def make_trainer(corpus: Path, out_dir: Path, *overrides: str, log=lambda message: None) -> Trainer:
    config = load_config(ExperimentConfig, None, [*TINY, f"train.train_manifest={corpus / 'train.jsonl'}",
                                                  f"train.out_dir={out_dir}", *overrides])
    return Trainer(config, log=log)


@dataclass
class Run:
    """A training process whose output goes to files (a pipe nobody reads could fill up and stall it)."""

    process: subprocess.Popen
    stdout: Path
    stderr: Path

    def finish(self, timeout_s: float = 300) -> tuple[int, str, str]:
        returncode = self.process.wait(timeout_s)
        return returncode, self.stdout.read_text(), self.stderr.read_text()


def start(args: list[str], out_dir: Path) -> Run:
    number = len(list(out_dir.parent.glob(f"{out_dir.name}.*.stdout")))
    stdout, stderr = (out_dir.parent / f"{out_dir.name}.{number}.{name}" for name in ("stdout", "stderr"))
    with open(stdout, "w") as out, open(stderr, "w") as err:
        # A session of its own, so that a test can signal its whole process group, loader workers included.
        process = subprocess.Popen(args, stdout=out, stderr=err, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                                   start_new_session=True)
    return Run(process, stdout, stderr)


def launch(corpus: Path, out_dir: Path, *overrides: str, resume: bool = False) -> Run:
    """`asr train` in its own process (one thread: the same arithmetic in every run)."""
    config = out_dir.parent / "empty.yaml"
    config.write_text("{}\n")
    args = [sys.executable, "-m", "asr.cli", "train", str(config), *TINY, "train.threads=1",
            f"train.train_manifest={corpus / 'train.jsonl'}", f"train.out_dir={out_dir}", *overrides]
    return start(args + (["--resume"] if resume else []), out_dir)


def logged(out_dir: Path) -> tuple[int, int]:
    """Records in OUT_DIR/log.jsonl so far (one per step; a resumed run logs the steps it does again), and the step
    of the last one."""
    path = out_dir / "log.jsonl"
    lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
    complete = [line for line in lines if line.endswith(b"\n")]
    return len(complete), json.loads(complete[-1])["step"] if complete else 0


def wait_for(run: Run, out_dir: Path, records: int = 0, step: int = 0, timeout_s: float = 120) -> None:
    """Until the log holds at least `records` records, the last at `step` or later (or the process ended)."""
    deadline = time.monotonic() + timeout_s
    while run.process.poll() is None:
        count, last = logged(out_dir)
        if count >= records and last >= step:
            return
        assert time.monotonic() < deadline, f"{out_dir}: no record {records} at step {step} after {timeout_s} s"
        time.sleep(0.002)


def assert_same_training(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two checkpoints (or trainers' checkpoint()) hold bit-identical weights, optimizer and schedule."""
    assert a["state"] == b["state"]
    assert a["scheduler"] == b["scheduler"]
    assert a["model"].keys() == b["model"].keys() and a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), f"weights differ in {name}"
    for key, slot in a["optimizer"]["state"].items():
        for name, tensor in slot.items():
            assert torch.equal(tensor, b["optimizer"]["state"][key][name]), f"optimizer state differs in {key}.{name}"


def deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(deep_equal, a, b))
    return type(a) is type(b) and a == b


def tensor_data_offset(path: Path) -> tuple[int, int]:
    """Where the largest tensor's bytes lie in a torch zip file: (offset, size)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "rb") as file:
        file.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", file.read(4))
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def small_checkpoint() -> dict[str, Any]:
    """A checkpoint-shaped dict with the kinds of values training saves."""
    generator = torch.Generator().manual_seed(0)
    return {"config": {"model": {"hidden_size": 32}, "vocab": ["a", "b"], "lr": 1.5e-3, "max_steps": None},
            "model": {"w": torch.randn(64, 32, generator=generator), "b": torch.zeros(32, dtype=torch.bfloat16)},
            "optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(64, generator=generator)}},
                          "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "params": [0]}]},
            "state": {"step": 3, "best_dev_wer": float("inf")},
            "rng": [{"torch": torch.get_rng_state(), "python": random.Random(1).getstate()}]}


@pytest.fixture(scope="module")
def straight_cli(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The final last.pt of an uninterrupted `asr train` run of STEPS steps."""
    out_dir = tmp_path_factory.mktemp("faults") / "straight"
    returncode, _, stderr = launch(tiny_corpus, out_dir, f"train.max_steps={STEPS}").finish()
    assert returncode == 0, stderr[-3000:]
    return load_checkpoint(out_dir / "last.pt")


@pytest.fixture(scope="module")
def straight_8(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The checkpoint of an uninterrupted in-process run of 8 steps."""
    trainer = make_trainer(tiny_corpus, tmp_path_factory.mktemp("faults") / "straight_8", "train.max_steps=8")
    assert trainer.run().step == 8
    return trainer.checkpoint()


# -- checksums ----------------------------------------------------------------------------------------------------
def test_checkpoints_carry_a_checksum_and_still_load_with_plain_weights_only_torch_load(tmp_path: Path):
    checkpoint = small_checkpoint()
    save_checkpoint(tmp_path / "a.pt", checkpoint)
    raw = torch.load(tmp_path / "a.pt", weights_only=True)
    assert raw["format"] == FORMAT and len(raw["sha256"]) == 64
    loaded = load_checkpoint(tmp_path / "a.pt")
    assert "sha256" not in loaded and deep_equal(loaded, {**checkpoint, "format": FORMAT})
    save_checkpoint(tmp_path / "b.pt", loaded)  # a loaded checkpoint saved again verifies again
    assert deep_equal(load_checkpoint(tmp_path / "b.pt"), loaded)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_truncated_checkpoint_is_refused(tmp_path: Path, cut: float):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_checkpoint())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: not a readable checkpoint \(.+\)"):
        load_checkpoint(path)


def test_flipped_tensor_byte_is_caught_by_the_checksum(tmp_path: Path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_checkpoint())
    offset, size = tensor_data_offset(path)
    flip_byte(path, offset + size // 2)
    assert torch.load(path, weights_only=True)  # torch.load itself does not notice
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: corrupt checkpoint \(checksum mismatch"):
        load_checkpoint(path)


def test_no_flipped_byte_anywhere_gives_back_different_content(tmp_path: Path):
    """Each byte position in turn (a sample of them): refused with a CheckpointError, or loaded unchanged (a byte
    torch never reads, such as zip padding) - never loaded with different content."""
    original = tmp_path / "original.pt"
    save_checkpoint(original, small_checkpoint())
    expected = load_checkpoint(original)
    data = original.read_bytes()
    refused = 0
    for offset in range(0, len(data), max(1, len(data) // 400)):
        corrupt = tmp_path / "corrupt.pt"
        corrupt.write_bytes(data)
        flip_byte(corrupt, offset)
        try:
            loaded = load_checkpoint(corrupt)
        except CheckpointError as err:
            assert str(err).startswith(f"{corrupt}: "), err
            refused += 1
            continue
        assert deep_equal(loaded, expected), f"byte {offset} flipped: loaded with different content"
    assert refused > 100


def test_altered_content_or_missing_checksum_is_refused(tmp_path: Path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_checkpoint())
    raw = torch.load(path, weights_only=True)
    raw["state"]["step"] = 4  # rewritten by hand with the old checksum
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)
    del raw["sha256"]
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="checksum is missing"):
        load_checkpoint(path)


def test_checkpoints_from_before_checksums_still_load(tmp_path: Path):
    """asr-checkpoint-v1 files (no checksum) load unverified, so that runs trained before keep working."""
    old = {"format": LEGACY_FORMAT, **small_checkpoint()}
    torch.save(old, tmp_path / "old.pt")
    assert deep_equal(load_checkpoint(tmp_path / "old.pt"), old)


# -- failed writes ------------------------------------------------------------------------------------------------
def disk_full_after(monkeypatch: pytest.MonkeyPatch, good_writes: int) -> None:
    """torch.save in asr.checkpoint writes half the file and then fails as a full disk does, after `good_writes`."""
    real_save, calls = torch.save, []

    def save(obj: Any, file: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= good_writes:
            return real_save(obj, file, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        file.write(buffer.getvalue()[: buffer.tell() // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(asr.checkpoint.torch, "save", save)


def test_failed_write_keeps_the_checkpoint_already_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_checkpoint(), keep_previous=True)
    before = path.read_bytes()
    disk_full_after(monkeypatch, 0)
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: could not write the checkpoint "
                                              r"\(No space left on device\)"):
        save_checkpoint(path, {**small_checkpoint(), "state": {"step": 4}}, keep_previous=True)
    assert path.read_bytes() == before and load_checkpoint(path)["state"]["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file, nothing rotated


def test_disk_full_stops_training_with_the_last_good_checkpoint_intact(tiny_corpus: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       straight_8: dict[str, Any]):
    """Stop, not warn: a run that cannot save would pile up steps no checkpoint holds. Once there is room again,
    --resume continues from the last good checkpoint and ends where an uninterrupted run does."""
    out = tmp_path / "run"
    trainer = make_trainer(tiny_corpus, out, "train.max_steps=8", "train.save_every_steps=1")
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    disk_full_after(monkeypatch, 4)  # steps 1-4 are saved; the write at step 5 fails midway
    with pytest.raises(CheckpointError) as failure:
        trainer.run()
    assert str(failure.value) == (f"{out / 'last.pt'}: could not write the checkpoint (No space left on device); "
                                  f"the checkpoints written before are kept; training stopped at step 5")
    assert load_checkpoint(out / "last.pt")["state"]["step"] == 4
    assert load_checkpoint(out / "last.prev.pt")["state"]["step"] == 3
    assert not list(out.glob(".*"))  # no temporary file left behind
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # restored on the way out

    monkeypatch.undo()  # room again
    resumed = make_trainer(tiny_corpus, out, "train.max_steps=8", "train.save_every_steps=1")
    resumed.resume()
    assert resumed.state.step == 4 and resumed.run().step == 8
    assert_same_training(resumed.checkpoint(), straight_8)


# -- falling back to the previous checkpoint ----------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "flipped_tensor_byte", "missing"])
def test_resume_skips_a_corrupt_last_checkpoint_and_still_ends_the_same(tiny_corpus: Path, tmp_path: Path,
                                                                        damage: str, straight_8: dict[str, Any]):
    """missing: a run killed between the two renames of a save (last.pt moved to last.prev.pt, not yet replaced)."""
    out = tmp_path / "run"
    assert make_trainer(tiny_corpus, out, "train.max_steps=5", "train.save_every_steps=1").run().step == 5
    last = out / "last.pt"
    assert load_checkpoint(previous_path(last))["state"]["step"] == 4
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[:-1000])
        reason = "not a readable checkpoint"
    elif damage == "flipped_tensor_byte":
        offset, size = tensor_data_offset(last)
        flip_byte(last, offset + size // 3)
        reason = "corrupt checkpoint (checksum mismatch"
    else:
        last.unlink()
        reason = "checkpoint not found"

    messages: list[str] = []
    resumed = make_trainer(tiny_corpus, out, "train.max_steps=8", "train.save_every_steps=1", log=messages.append)
    resumed.resume()
    assert messages[0].startswith(f"skipping {last}: {reason}"), messages
    assert messages[1].startswith(f"resumed from {out / 'last.prev.pt'} at step 4"), messages
    assert resumed.run().step == 8
    assert_same_training(resumed.checkpoint(), straight_8)


def test_resume_with_no_good_checkpoint_says_why(tiny_corpus: Path, tmp_path: Path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match=r"no checkpoint to resume from \(.*last.pt: not a readable checkpoint"
                                              r".*last.prev.pt: checkpoint not found\)"):
        make_trainer(tiny_corpus, out).resume()


# -- signals ------------------------------------------------------------------------------------------------------
def test_sigterm_saves_exits_cleanly_and_resume_ends_the_same(tiny_corpus: Path, tmp_path: Path,
                                                              straight_cli: dict[str, Any]):
    out = tmp_path / "run"
    # No periodic checkpoints: the one to resume from is the one the signal makes the trainer write.
    run = launch(tiny_corpus, out, f"train.max_steps={STEPS}", "train.save_every_steps=0")
    wait_for(run, out, records=5)
    run.process.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = run.finish(60)
    assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr
    step = load_checkpoint(out / "last.pt")["state"]["step"]
    assert 5 <= step < STEPS
    assert stdout.splitlines()[-1] == (f"stopped by SIGTERM at step {step}; saved {out / 'last.pt'} "
                                       f"(--resume continues from it)")
    assert not (out / "best.pt").exists()  # the run is not finished

    returncode, stdout, stderr = launch(tiny_corpus, out, f"train.max_steps={STEPS}", "train.save_every_steps=0",
                                        resume=True).finish()
    assert returncode == 0, stderr[-3000:]
    assert f"resumed from {out / 'last.pt'} at step {step}" in stdout
    assert_same_training(load_checkpoint(out / "last.pt"), straight_cli)


def test_sigterm_to_the_whole_process_group_stops_as_cleanly_with_loader_workers(tiny_corpus: Path, tmp_path: Path):
    """A scheduler (Slurm preemption) or `pkill -f "asr train"` signals the loader workers too: they leave it to the
    trainer, which saves last.pt and stops as for a signal to it alone."""
    out = tmp_path / "run"
    run = launch(tiny_corpus, out, f"train.max_steps={STEPS}", "train.save_every_steps=0", "train.num_workers=1")
    wait_for(run, out, records=3)
    os.killpg(run.process.pid, signal.SIGTERM)
    returncode, stdout, stderr = run.finish(60)
    assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr and "DataLoader worker" not in stderr
    step = load_checkpoint(out / "last.pt")["state"]["step"]
    assert 3 <= step < STEPS and stdout.splitlines()[-1].startswith(f"stopped by SIGTERM at step {step}")


def test_an_error_in_a_loader_worker_ends_the_run_instead_of_hanging_it(tiny_corpus: Path, tmp_path: Path):
    """An exception raised in a loader worker ends `asr train` with status 1. It used to hang at interpreter exit:
    multiprocessing stopped the still-running worker with SIGTERM, which loader workers ignore, and waited."""
    out = tmp_path / "run"
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n")
    # The third utterance read raises, in the worker (forked after the patch); the CLI is then started as usual.
    script = f"""
import sys
import asr.data
real = asr.data.SpeechDataset.__getitem__
calls = []
def failing(self, index):
    calls.append(index)
    if len(calls) == 3:
        raise RuntimeError("a bug in a loader worker")
    return real(self, index)
asr.data.SpeechDataset.__getitem__ = failing
from asr.cli import main
sys.argv = ["asr", "train", {str(config)!r}, *{TINY!r}, "train.threads=1", "train.num_workers=1",
            "train.train_manifest={tiny_corpus / 'train.jsonl'}", "train.out_dir={out}"]
sys.exit(main())
"""
    run = start([sys.executable, "-c", script], out)
    try:
        returncode, _, stderr = run.finish(120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.process.pid, signal.SIGKILL)  # a hang: the worker too
    assert returncode == 1 and "a bug in a loader worker" in stderr, stderr[-3000:]


def test_sigint_stops_after_the_step_under_way_and_handlers_are_restored(tiny_corpus: Path, tmp_path: Path,
                                                                        straight_8: dict[str, Any]):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    trainer = make_trainer(tiny_corpus, tmp_path / "run", "train.max_steps=8", "train.save_every_steps=0")
    step = trainer.train_step

    def interrupted_step(batch):  # noqa: ANN001, ANN202
        if trainer.state.step == 2:  # Ctrl-C arrives while the third step is loading
            signal.raise_signal(signal.SIGINT)
        return step(batch)

    trainer.train_step = interrupted_step
    state = trainer.run()
    assert trainer.stopped_by == signal.SIGINT and state.step == 3
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert load_checkpoint(tmp_path / "run" / "last.pt")["state"]["step"] == 3

    resumed = make_trainer(tiny_corpus, tmp_path / "run", "train.max_steps=8")
    resumed.resume()
    assert resumed.run().step == 8
    assert_same_training(resumed.checkpoint(), straight_8)


def test_a_second_sigint_interrupts_at_once(tiny_corpus: Path, tmp_path: Path):
    before = signal.getsignal(signal.SIGINT)
    trainer = make_trainer(tiny_corpus, tmp_path / "run", "train.max_steps=8", "train.save_every_steps=0")
    step = trainer.train_step

    def impatient_step(batch):  # noqa: ANN001, ANN202
        if trainer.state.step == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return step(batch)

    trainer.train_step = impatient_step
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert trainer.state.step == 2 and signal.getsignal(signal.SIGINT) is before


DDP_WORKER = """
import json, os, sys
from asr.config import load_config
from asr.train import ExperimentConfig, Trainer

trainer = Trainer(load_config(ExperimentConfig, None, sys.argv[1:]))
open(f"{trainer.out_dir}.pid{trainer.dist.rank}", "w").write(str(os.getpid()))
state = trainer.run()
with open(f"{trainer.out_dir}.rank{trainer.dist.rank}.json", "w") as file:
    json.dump({"step": state.step, "stopped_by": trainer.stopped_by}, file)
trainer.shutdown()
"""


def test_sigterm_to_one_ddp_process_stops_all_at_the_same_step(tiny_corpus: Path, tmp_path: Path):
    """Two gloo processes under torchrun; only rank 1 gets SIGTERM. Both stop after the same step (no deadlock in
    the collectives), rank 0 writes last.pt for that step, and both return normally."""
    out = tmp_path / "ddp"
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_WORKER)
    run = start([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
                 *TINY, "train.threads=1", f"train.train_manifest={tiny_corpus / 'train.jsonl'}",
                 f"train.out_dir={out}", "train.save_every_steps=0", "train.max_steps=500"], out)
    try:
        wait_for(run, out, records=3)
        assert run.process.poll() is None, run.stderr.read_text()[-3000:]
        os.kill(int(Path(f"{out}.pid1").read_text()), signal.SIGTERM)
        returncode, _, stderr = run.finish(120)
    finally:
        if run.process.poll() is None:  # failed midway: stop the workers (own sessions, so by pid) and torchrun
            for pid_file in tmp_path.glob("ddp.pid*"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
            run.process.kill()
    assert returncode == 0, stderr[-3000:]
    ranks = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] == {"step": ranks[0]["step"], "stopped_by": signal.SIGTERM}
    assert 3 <= ranks[0]["step"] < 500
    assert load_checkpoint(out / "last.pt")["state"]["step"] == ranks[0]["step"]


# -- non-finite losses ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("poison", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nonfinite_loss_is_skipped_counted_and_not_applied(tiny_corpus: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, poison: float):
    trainer = make_trainer(tiny_corpus, tmp_path / "run")
    batch = next(iter(trainer.loader))
    weights = {name: tensor.clone() for name, tensor in trainer.model.state_dict().items()}
    ctc_loss = torch.nn.functional.ctc_loss
    monkeypatch.setattr(torch.nn.functional, "ctc_loss", lambda *args, **kwargs: ctc_loss(*args, **kwargs) + poison)
    result = trainer.train_step(batch)
    assert result.loss is None and result.grad_norm is None and trainer.state.skipped_nonfinite == 1
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), f"{name} changed by a {poison} loss"
    assert all(p.grad is None for p in trainer.model.parameters())
    assert trainer.optimizer.state_dict()["state"] == {} and trainer.scheduler.last_epoch == 0  # no step taken

    monkeypatch.undo()  # the same batch with its real loss does train: the checks above could see a change
    assert trainer.train_step(batch).loss is not None and trainer.state.skipped_nonfinite == 1
    assert any(not torch.equal(tensor, weights[name]) for name, tensor in trainer.model.state_dict().items())


def test_a_batch_of_nan_audio_is_skipped_and_training_goes_on(tiny_corpus: Path, tmp_path: Path):
    messages: list[str] = []
    trainer = make_trainer(tiny_corpus, tmp_path / "run", "train.max_steps=6", log=messages.append)
    step = trainer.train_step

    def corrupt_third_batch(batch):  # noqa: ANN001, ANN202
        if trainer.state.step == 2:
            batch.waveforms[0, 1000:1100] = float("nan")
        return step(batch)

    trainer.train_step = corrupt_third_batch
    assert trainer.run().step == 6 and trainer.state.skipped_nonfinite == 1
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert losses[2] is None and all(loss is not None for loss in losses[:2] + losses[3:])
    assert all(torch.isfinite(tensor).all() for tensor in trainer.model.state_dict().values())
    assert "skipped 1 non-finite batches" in messages[-1]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["state"]["skipped_nonfinite"] == 1


# -- SIGKILL --------------------------------------------------------------------------------------------------------
def test_sigkill_at_random_steps_then_resume_ends_bit_identical(tiny_corpus: Path, tmp_path: Path,
                                                                straight_cli: dict[str, Any]):
    assert STEPS >= KILLS + 6, "ASR_FAULT_STEPS must leave room for ASR_FAULT_KILLS kills"
    print(f"ASR_FAULT_SEED={SEED}")  # shown when the test fails: the same kill points again
    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(1, STEPS - 5), KILLS))  # the steps to kill at, and soon after
    out = tmp_path / "run"
    kills: list[str] = []
    for target in [*targets, None]:
        resume = (out / "last.pt").exists() or (out / "last.prev.pt").exists()
        records = logged(out)[0]
        run = launch(tiny_corpus, out, f"train.max_steps={STEPS}", "train.save_every_steps=1", resume=resume)
        if target is None:
            break
        wait_for(run, out, records=records + 1, step=target)  # a step of this process, at the target
        time.sleep(rng.uniform(0, 0.05))  # anywhere in a step, its checkpoint write included
        assert run.process.poll() is None, f"the run ended before kill {len(kills) + 1}: {kills}"
        run.process.kill()
        run.process.wait()
        kills.append(f"at step {logged(out)[1]}")
    returncode, stdout, stderr = run.finish()
    assert returncode == 0, f"killed {kills}: {stderr[-3000:]}"
    assert f"finished at step {STEPS}" in stdout and "resumed from" in stdout, stdout[-2000:]
    final = load_checkpoint(out / "last.pt")
    assert final["state"]["step"] == STEPS
    assert_same_training(final, straight_cli)
    assert not list(out.glob(".*.tmp"))


def damaged_corpus(corpus: Path, folder: Path, broken: int) -> Path:
    """A copy of the tiny corpus's manifest in `folder` whose first `broken` utterances point at damaged files:
    alternately bytes no decoder reads and a WAV of digital silence. Returns the folder (its train.jsonl)."""
    import numpy as np
    import soundfile

    from asr.manifest import read_manifest, write_manifest

    entries = read_manifest(corpus / "train.jsonl")
    folder.mkdir(parents=True, exist_ok=True)
    for i, entry in enumerate(entries[:broken]):
        path = folder / f"damaged-{i}.wav"
        if i % 2:
            soundfile.write(path, np.zeros(16000, dtype=np.float32), 16000)
        else:
            path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
        entry["audio_filepath"] = str(path)
    write_manifest(folder / "train.jsonl", entries)
    return folder


def test_a_few_unreadable_or_silent_files_are_skipped_counted_and_training_goes_on(tiny_corpus: Path,
                                                                                   tmp_path: Path):
    messages: list[str] = []
    corpus = damaged_corpus(tiny_corpus, tmp_path / "corpus", broken=2)
    trainer = make_trainer(corpus, tmp_path / "run", "train.epochs=2", "train.max_unusable_share=0.1",
                           log=messages.append)
    state = trainer.run()
    assert state.epoch == 2 and state.skipped_unusable == 4  # both files, in each epoch
    assert state.utterances_seen == 2 * 36 and state.dropped_short == 0
    assert any("damaged-0.wav" in m and "unreadable" in m for m in messages)
    assert any("damaged-1.wav: silent" in m for m in messages)
    assert "and 4 unreadable or silent utterances" in messages[-1]
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if "loss" in line]
    trained = [loss for loss in losses if loss is not None]  # None: a batch of nothing but damaged files
    assert len(trained) >= len(losses) - 2 and all(loss == loss for loss in trained)  # none NaN
    assert load_checkpoint(tmp_path / "run" / "last.pt")["state"]["skipped_unusable"] == 4


def test_too_many_unusable_files_stop_the_run_with_one_clear_error(tiny_corpus: Path, tmp_path: Path):
    from asr.errors import ManifestError

    corpus = damaged_corpus(tiny_corpus, tmp_path / "corpus", broken=12)
    trainer = make_trainer(corpus, tmp_path / "run", "train.epochs=3")
    with pytest.raises(ManifestError, match=r"of the \d+ training utterances drawn so far were unreadable or "
                                            r"silent, more than train.max_unusable_share \(0.01\)") as caught:
        trainer.run()
    assert "\n" not in str(caught.value) and "damaged-" in str(caught.value)
    assert trainer.state.skipped_unusable >= 10 and trainer.state.epoch == 0
