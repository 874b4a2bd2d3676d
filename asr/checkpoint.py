"""Checkpoints: written atomically, read without unpickling code, rebuilt into model + features + vocabulary."""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from .config import from_dict
from .errors import CheckpointError
from .features import FeatureConfig, LogMel
from .model import BiLSTMCTC, ModelConfig
from .text import DEFAULT_CHARS, Vocabulary

FORMAT = "asr-checkpoint-v1"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's weights_only message is decorated with terminal bold


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": FORMAT, **checkpoint}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load with weights_only=True (tensors and plain containers only; a pickled object is refused)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about odd pickle protocols before failing on them
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - garbage bytes make the unpickler raise almost any type
        text = _ANSI.sub("", str(err)).strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an asr checkpoint (format {FORMAT} expected)")
    return checkpoint


def build_model(checkpoint: dict[str, Any], path: str = "checkpoint") -> tuple[BiLSTMCTC, LogMel, Vocabulary]:
    """Rebuild the network, the feature extractor and the vocabulary a checkpoint was trained with."""
    try:
        config = checkpoint["config"]
        vocab = Vocabulary(list(config.get("vocab", DEFAULT_CHARS)))
        model = BiLSTMCTC(from_dict(ModelConfig, config["model"]))
        features = LogMel(from_dict(FeatureConfig, config["features"]))
        model.load_state_dict(checkpoint["model"])
        features.load_state_dict(checkpoint["features"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: checkpoint does not match this version of asr ({err})") from None
    return model.eval(), features.eval(), vocab
