import pytest

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
