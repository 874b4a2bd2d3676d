import pytest
import torch

from asr import ConfigError
from asr.config import load_config
from asr.train import ExperimentConfig


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epochs: 3\n  lr: 1.0e-3\nmodel:\n  hidden_size: 64\n")
    config = load_config(ExperimentConfig, path, ["train.lr=2e-3", "model.num_layers=2", "train.dev_manifest=null"])
    assert config.train.epochs == 3
    assert config.train.lr == pytest.approx(2e-3)  # "2e-3" is a string to YAML 1.1 but a float here
    assert config.model.hidden_size == 64 and config.model.num_layers == 2
    assert config.train.dev_manifest is None
    assert config.features.n_mels == 80  # untouched sections keep their defaults


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("train:\n  epocs: 3\n", [], "unknown key"),
        ("model: [1, 2]\n", [], "expected a mapping"),
        ("", ["train.epochs=abc"], "train.epochs: expected int"),
        ("", ["train.epochs"], "expected key=value"),
        ("", ["nosuchsection.x=1"], "unknown key"),
        ("train: {epochs: 2\n", [], "invalid YAML"),
        ("", ["features.normalize=x"], "features.normalize must be 'utterance', 'global' or 'none', got 'x'"),
        ("", ["features.win_ms=50"], "features.win_ms 50.0 must give a window of 1..n_fft"),
        ("", ["model.hidden_size=0"], "model.hidden_size must be at least 1, got 0"),
        ("", ["model.subsampling=pool"], "model.subsampling must be 'stack' or 'conv'"),
        ("", ["model.dropout=1"], r"model.dropout must be in \[0, 1\)"),
        ("", ["spec_augment.time_masks=-1"], "spec_augment.time_masks must not be negative"),
        ("", ["augment.pitch_prob=2"], r"augment.pitch_prob must be a probability in \[0, 1\], got 2.0"),
        ("", ["train.lr=0"], "train.lr must be positive, got 0.0"),
        ("", ["train.epochs=0"], "train.epochs must be at least 1, got 0"),
        ("", ["train.precision=fp8"], "train.precision must be bf16, fp16 or fp32, got 'fp8'"),
        ("", ["features.sample_rate=8000"], "features.sample_rate is 8000, but this toolkit reads all audio at 16000 Hz"),
        ("", ["features.n_mels=64"], "model.input_dim is 80, but features.n_mels is 64: set model.input_dim=64"),
        ("", ['vocab=["a", "b"]'], "model.vocab_size is 29, but the vocabulary has 3 symbols"),
    ],
)
def test_bad_configs_raise_config_error(tmp_path, text, overrides, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(ExperimentConfig, path, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(ExperimentConfig, tmp_path / "nope.yaml")


def test_cli_refuses_a_bad_value_in_one_line_before_reading_any_data(tmp_path, capsys):
    """A config checks itself when it is built, so a wrong value is reported before the manifest is even read."""
    from asr.cli import main

    config = tmp_path / "config.yaml"
    config.write_text("train:\n  train_manifest: missing.jsonl\n")
    assert main(["train", str(config), f"train.out_dir={tmp_path / 'run'}", "features.normalize=x"]) == 1
    err = capsys.readouterr().err
    assert err == "asr train: error: features.normalize must be 'utterance', 'global' or 'none', got 'x'\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("has_bf16", [True, False])
def test_cpu_training_autocasts_to_bf16_only_where_the_cpu_computes_it(monkeypatch, has_bf16):
    from asr import train
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: has_bf16)
    cpu = torch.device("cpu")
    assert train.autocast_dtype(cpu, "bf16") == (torch.bfloat16 if has_bf16 else None)
    assert train.autocast_dtype(cpu, "fp16") is None and train.autocast_dtype(cpu, "fp32") is None
    assert train.autocast_dtype(torch.device("cuda", 0), "fp16") == torch.float16
    assert train.autocast_dtype(torch.device("cuda", 0), "fp32") is None
