"""An exported model (asr export --format onnx, or a release's model.onnx) run by onnxruntime, as an
asr.network.Network: transcription on a CPU without importing PyTorch, which alone takes about 2 s and 900 MB here.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .batching import pad_arrays
from .errors import CheckpointError, ConfigError
from .text import BLANK, Vocabulary


def onnx_session(path: Path, threads: int | None = None):  # noqa: ANN201 - an onnxruntime.InferenceSession
    """An onnxruntime session of `path` on the CPU (threads: intra-op threads, default onnxruntime's choice); a file
    onnxruntime cannot read is a CheckpointError naming it."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("an ONNX model needs onnxruntime: pip install onnxruntime") from None
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1  # one graph at a time; its operators use the intra-op threads
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for every kind of bad file
        raise CheckpointError(f"{path}: not a readable ONNX model ({str(err).splitlines()[0]})") from None


class OnnxNetwork:
    """The ONNX graph of export_onnx (waveforms + lengths -> log_probs + frame_lengths) and the JSON beside it
    (tokens, frame duration). threads: onnxruntime's intra-op threads (default: its own choice, one per core)."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        path = Path(path)
        info_path = Path(f"{path}.json")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            tokens, self.frame_s, self.sample_rate = info["tokens"], float(info["frame_s"]), int(info["sample_rate"])
            if tokens[0] != BLANK or info.get("blank_id", 0) != 0:
                raise ValueError(f"token 0 must be the blank {BLANK}")
            self.vocab = Vocabulary(list(tokens[1:]))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as err:
            raise CheckpointError(f"{info_path}: not the description of an exported asr model ({err})") from None
        self.session = onnx_session(path, threads)
        names = {i.name for i in self.session.get_inputs()}
        if names != {"waveforms", "lengths"}:
            raise CheckpointError(f"{path}: not an asr export (inputs {sorted(names)}, expected waveforms and lengths)")
        self.path = path

    def __call__(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        batch, lengths = pad_arrays(waveforms)
        log_probs, frames = self.session.run(["log_probs", "frame_lengths"], {"waveforms": batch, "lengths": lengths})
        return log_probs, frames
