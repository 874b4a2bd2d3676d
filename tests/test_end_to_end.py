"""The whole path on a tiny synthesized corpus: train, score, transcribe (API and CLI), resume exactly."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import asr
from asr.checkpoint import last_epochs
from asr.config import load_config
from asr.evaluate import score
from asr.manifest import read_manifest
from asr.release import PRETRAINED_DIR
from asr.text import DEFAULT_CHARS
from asr.train import ExperimentConfig, Trainer

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` is the fast tier

TINY = [
    "model.hidden_size=128",
    "model.num_layers=2",
    "model.dropout=0.0",
    "spec_augment.enabled=false",
    "train.lr=3e-3",
    "train.warmup_steps=30",
    "train.max_batch_seconds=10",
    "train.num_workers=0",
    "train.log_every_steps=1",
    "train.seed=7",
]


def make_trainer(corpus: Path, out_dir: Path, *overrides: str) -> Trainer:
    manifest = corpus / "train.jsonl"
    config = load_config(ExperimentConfig, None, [*TINY, f"train.train_manifest={manifest}",
                                                  f"train.out_dir={out_dir}", *overrides])
    return Trainer(config, log=lambda message: None)


@pytest.fixture(scope="module")
def trained_run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("run")
    trainer = make_trainer(tiny_corpus, out_dir, "train.epochs=45", f"train.dev_manifest={tiny_corpus / 'train.jsonl'}")
    trainer.run()
    return out_dir


def test_training_learns_the_corpus(trained_run: Path, tiny_corpus: Path):
    records = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "dev_cer" in r]
    assert len(epochs) == 45
    assert epochs[-1]["dev_cer"] < 0.10, epochs[-1]  # training-set CER well under 20%
    losses = [r["loss"] for r in records if r.get("loss") is not None]
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
    assert (trained_run / "best.pt").is_file() and (trained_run / "last.pt").is_file()
    assert (trained_run / "config.yaml").is_file()


def test_python_api_transcribes_files_and_arrays(trained_run: Path, tiny_corpus: Path):
    model = asr.load_model(trained_run)
    entry = read_manifest(tiny_corpus / "train.jsonl")[0]
    result = model.transcribe(entry["audio_filepath"])
    assert score([entry["text"]], [result.text]).cer < 0.2
    assert result.source == entry["audio_filepath"] and result.duration == round(entry["duration"], 3)
    assert result.text == " ".join(w.word for w in result.segments[0].words)
    audio, rate = soundfile.read(entry["audio_filepath"], dtype="int16")
    stereo_44k = np.repeat(np.interp(np.arange(0, len(audio), rate / 44100), np.arange(len(audio)), audio)[:, None], 2, 1)
    assert score([entry["text"]], [model.transcribe(stereo_44k.astype(np.float32) / 32768, 44100).text]).cer < 0.25


def test_cli_transcribe_and_evaluate(trained_run: Path, tiny_corpus: Path, tmp_path: Path):
    entry = read_manifest(tiny_corpus / "train.jsonl")[1]
    out = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", "--model", str(trained_run),
                          entry["audio_filepath"]], capture_output=True, text=True, check=True)
    assert score([entry["text"]], [out.stdout.strip()]).cer < 0.2
    report = tmp_path / "report.jsonl"
    out = subprocess.run([sys.executable, "-m", "asr.cli", "evaluate", "--model", str(trained_run / "best.pt"),
                          "--manifest", str(tiny_corpus / "train.jsonl"), "--report", str(report), "--worst", "3"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("WER ") and "worst 3 utterances" in out.stdout
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(rows) == 36 and {"reference", "hypothesis", "word_errors", "char_errors"} <= rows[0].keys()
    cer = float(out.stdout.split("CER ")[1].split("%")[0]) / 100
    assert cer < 0.10


def test_resume_continues_exactly(tiny_corpus: Path, tmp_path: Path):
    """Stop at step 12 and resume to 24: same losses, optimizer state and weights as an uninterrupted run."""
    common = ("train.epochs=6",)
    straight = make_trainer(tiny_corpus, tmp_path / "straight", *common, "train.max_steps=24")
    straight.run()
    stopped = make_trainer(tiny_corpus, tmp_path / "resumed", *common, "train.max_steps=12")
    assert stopped.run().step == 12
    resumed = make_trainer(tiny_corpus, tmp_path / "resumed", *common, "train.max_steps=24")
    resumed.resume()
    assert resumed.state.step == 12 and resumed.state.batch_in_epoch == 12 - len(resumed.sampler.batches) * resumed.state.epoch
    assert resumed.scheduler.last_epoch == 12
    assert resumed.run().step == 24

    def losses(run: str) -> list[float]:
        lines = (tmp_path / run / "log.jsonl").read_text().splitlines()
        return [r["loss"] for r in map(json.loads, lines) if "loss" in r]

    assert losses("resumed")[12:] == losses("straight")[12:]
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    a, b = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"]) and a[k]["step"] == b[k]["step"] for k in a)


def test_run_folder_holds_log_tensorboard_and_last_epochs(trained_run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    records = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    epochs = [r for r in records if "dev_wer" in r]
    assert len(epochs) == 45 and all(r["grad_norm"] > 0 and r["lr"] > 0 and r["audio_s_per_s"] > 0 for r in steps)
    events = EventAccumulator(str(trained_run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/audio_s_per_s", "dev/wer", "dev/cer"} <= tags
    assert [e.value for e in events.Scalars("dev/wer")] == pytest.approx([r["dev_wer"] for r in epochs])
    assert sorted(p.name for p in trained_run.glob("epoch-*.pt")) == [f"epoch-{e:04d}.pt" for e in range(41, 46)]
    assert (trained_run / "config.yaml").is_file()


def test_average_of_the_last_epochs(trained_run: Path, tiny_corpus: Path, tmp_path: Path):
    out = tmp_path / "avg.pt"
    result = subprocess.run([sys.executable, "-m", "asr.cli", "average", str(trained_run), "--last", "3",
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "epoch-0043.pt, epoch-0044.pt, epoch-0045.pt" in result.stdout
    averaged = torch.load(out, weights_only=True)["model"]
    parts = [torch.load(trained_run / f"epoch-{e:04d}.pt", weights_only=True)["model"] for e in (43, 44, 45)]
    for name, tensor in averaged.items():
        assert torch.allclose(tensor, sum(p[name] for p in parts) / 3, atol=1e-6), name
    model = asr.load_model(out)
    entries = read_manifest(tiny_corpus / "train.jsonl")
    report = score([e["text"] for e in entries], model.transcribe_files([e["audio_filepath"] for e in entries]))
    assert report.cer < 0.10  # the averaged weights still know the corpus


def test_last_epochs_are_the_newest_epoch_checkpoints(tmp_path: Path):
    for epoch in (9, 10, 11, 12):
        (tmp_path / f"epoch-{epoch:04d}.pt").touch()
    assert [p.name for p in last_epochs(tmp_path, 3)] == ["epoch-0010.pt", "epoch-0011.pt", "epoch-0012.pt"]
    with pytest.raises(asr.CheckpointError, match="at least 1, got 0"):
        last_epochs(tmp_path, 0)
    with pytest.raises(asr.CheckpointError, match="no epoch-"):
        last_epochs(tmp_path / "elsewhere", 3)


def test_early_stopping_ends_training_when_dev_stops_improving(tiny_corpus: Path, tmp_path: Path):
    # Two epochs are far too few to leave WER 100 %, so the second epoch does not improve on the first.
    trainer = make_trainer(tiny_corpus, tmp_path / "run", "train.epochs=6", "train.early_stop_patience=1",
                           "train.tensorboard=false", f"train.dev_manifest={tiny_corpus / 'train.jsonl'}",
                           "train.lr=1e-5")
    state = trainer.run()
    assert state.epoch == 2 and state.epochs_without_improvement == 1
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()


def test_global_normalization_statistics_come_from_the_training_audio(tiny_corpus: Path, tmp_path: Path):
    trainer = make_trainer(tiny_corpus, tmp_path / "run", "features.normalize=global")
    mean, std = trainer.features.global_mean, trainer.features.global_std
    assert mean.abs().sum() > 0 and not torch.allclose(std, torch.ones_like(std))
    waveform = torch.from_numpy(trainer.train_set[0][0])
    feats, frames = trainer.features(waveform[None], torch.tensor([len(waveform)]))
    assert feats[0, : int(frames[0])].mean().abs() < 0.5  # roughly centred, unlike raw log-mel (about -5 and below)


def test_features_in_the_loader_train_the_same(tiny_corpus: Path, tmp_path: Path):
    losses = []
    for where in ("false", "true"):
        # fp32: the two placements are compared to fp32 rounding (bf16 autocast would round the features differently)
        trainer = make_trainer(tiny_corpus, tmp_path / where, "train.max_steps=3", f"train.features_in_loader={where}",
                               "train.tensorboard=false", "features.normalize=global", "train.precision=fp32")
        batch = next(iter(trainer.loader))
        assert (batch.features is not None) == (where == "true")
        trainer.run()
        losses.append([json.loads(line)["loss"] for line in (tmp_path / where / "log.jsonl").read_text().splitlines()])
    assert len(losses[0]) == 3 and losses[0] == pytest.approx(losses[1], rel=1e-5)


def bundled_shape() -> list[str]:
    """Overrides that give a run the bundled model's network and features, as its config.json records them."""
    release = json.loads((PRETRAINED_DIR / "config.json").read_text())
    return [f"{part}.{key}={value}" for part in ("model", "features") for key, value in release[part].items()]


def test_warm_start_from_the_bundled_model(tiny_corpus: Path, tmp_path: Path):
    """train.init_from=bundled starts where the bundled model is: its first loss is far below a cold start's."""
    first_losses = []
    for init in ([], ["train.init_from=bundled"]):
        out = tmp_path / ("warm" if init else "cold")
        make_trainer(tiny_corpus, out, *bundled_shape(), "train.max_steps=1", "train.tensorboard=false", *init).run()
        first_losses.append(json.loads((out / "log.jsonl").read_text().splitlines()[0])["loss"])
    cold, warm = first_losses
    assert warm < cold / 3, (cold, warm)


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.hidden_size=128"], "train.init_from=bundled: model.hidden_size is 320 there, 128 here"),
    ([f"vocab={json.dumps([*DEFAULT_CHARS, '-'])}", f"model.vocab_size={len(DEFAULT_CHARS) + 2}"],
     "train.init_from=bundled: its vocabulary \" 'abcdefghijklmnopqrstuvwxyz\" is not this run's \" 'abcdefghijklmnopqrstuvwxyz-\""),
    (["train.init_from=missing.pt"], "missing.pt: checkpoint not found"),
])
def test_warm_start_refuses_another_shape(tiny_corpus: Path, tmp_path: Path, overrides: list[str], message: str):
    with pytest.raises((asr.ConfigError, asr.CheckpointError)) as error:
        make_trainer(tiny_corpus, tmp_path, *bundled_shape(), "train.init_from=bundled", *overrides)
    assert message in str(error.value)


def test_dev_is_scored_every_few_epochs_and_after_the_last(tiny_corpus: Path, tmp_path: Path):
    make_trainer(tiny_corpus, tmp_path, "train.epochs=5", "train.dev_every_epochs=2", "train.tensorboard=false",
                 f"train.dev_manifest={tiny_corpus / 'train.jsonl'}", "model.hidden_size=32", "model.num_layers=1").run()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "dev_wer" in r] == [2, 4, 5]
    assert sorted(p.name for p in tmp_path.glob("epoch-*.pt")) == ["epoch-0002.pt", "epoch-0004.pt", "epoch-0005.pt"]


def split_by_voice(corpus: Path, out: Path) -> tuple[Path, Path, Path]:
    """The tiny corpus as two training corpora (by voice) and a dev manifest whose entries name their source."""
    from asr.manifest import write_manifest

    entries = read_manifest(corpus / "train.jsonl")
    voices = sorted({e["speaker"] for e in entries})
    first = [e for e in entries if e["speaker"] == voices[0]]
    rest = [e for e in entries if e["speaker"] != voices[0]]
    write_manifest(out / "a.jsonl", first)
    write_manifest(out / "b.jsonl", rest)
    write_manifest(out / "dev.jsonl", [e | {"source": "a"} for e in first[:4]] + [e | {"source": "b"} for e in rest[:4]])
    return out / "a.jsonl", out / "b.jsonl", out / "dev.jsonl"


def test_a_mix_of_corpora_trains_resumes_exactly_and_scores_each_source(tiny_corpus: Path, tmp_path: Path):
    a, b, dev = split_by_voice(tiny_corpus, tmp_path)
    mix = (f"train.train_mix=[{{manifest: {a}, share: 0.7}}, {{manifest: {b}, share: 0.3}}]", "train.epoch_hours=0.01",
           f"train.dev_manifest={dev}", f"train.monitor_manifests=[{a}]", "train.epochs=3")

    def trainer(run: str, *extra: str) -> Trainer:
        config = load_config(ExperimentConfig, None, [*TINY, f"train.out_dir={tmp_path / run}", *mix, *extra])
        return Trainer(config, log=lambda message: None)

    straight = trainer("straight")
    total = straight.total_steps
    assert total == straight.sampler.total_batches(3)
    straight.run()
    stopped = trainer("resumed", f"train.max_steps={total // 2}")
    stopped.run()
    resumed = trainer("resumed")
    resumed.resume()
    resumed.run()

    def records(run: str) -> list[dict]:
        return [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]

    assert [r["loss"] for r in records("resumed") if "loss" in r][total // 2:] == \
        [r["loss"] for r in records("straight") if "loss" in r][total // 2:]
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    epochs = [r for r in records("straight") if "epoch" in r]
    assert len(epochs) == 3
    assert {"dev_wer", "dev_cer", "dev_wer/a", "dev_wer/b", f"dev_wer/{tmp_path.name}/a"} <= epochs[-1].keys()
    first_epoch = straight.sampler.epoch_utterances(0)
    seconds_a = sum(straight.sampler.durations[i % len(straight.train_set)] for i in first_epoch
                    if i % len(straight.train_set) < len(read_manifest(a)))
    assert seconds_a / 36 == pytest.approx(0.7, abs=0.1)  # 0.7 of the 36-s epoch from corpus a
