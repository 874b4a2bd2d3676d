"""Checkpoints: written atomically, checksummed, read without unpickling code, rebuilt into model + features +
vocabulary."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_open, atomic_path
from .config import from_dict, to_dict
from .errors import CheckpointError, ConfigError
from .features import FeatureConfig, LogMel
from .model import BiLSTMCTC, ModelConfig
from .release import (RELEASE_CONFIG, RELEASE_FORMAT, RELEASE_LEXICON, RELEASE_LM, RELEASE_LM_BINARY, RELEASE_ONNX,
                      RELEASE_ONNX_INFO, RELEASE_WEIGHTS, ReleaseDecoding, is_release, read_release_config,
                      release_decoding, unzip_release)
from .text import DEFAULT_CHARS, Vocabulary

FORMAT = "asr-checkpoint-v2"  # v1 plus "sha256", the checksum of everything else (see checksum)
LEGACY_FORMAT = "asr-checkpoint-v1"  # no checksum: still loaded, unverified, so that earlier runs stay usable
LAST = "last.pt"  # the checkpoint a training run resumes from; the one before it is kept as last.prev.pt
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's weights_only message is decorated with terminal bold


@dataclass(frozen=True)
class ModelSpec:
    """What a trained network is, as whisper's ModelDimensions: its shape, its features and its vocabulary, enough
    to rebuild it before its weights are loaded. Saved as the "model", "features" and "vocab" of a checkpoint's
    config (the whole experiment config of a training run) or of a release's config.json."""

    model: ModelConfig
    features: FeatureConfig
    vocab: tuple[str, ...] = DEFAULT_CHARS

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str) -> ModelSpec:
        """The spec in a checkpoint's or release's config; CheckpointError naming `where` if it is not one."""
        try:
            return cls(from_dict(ModelConfig, config["model"], "model"),
                       from_dict(FeatureConfig, config["features"], "features"),
                       tuple(config.get("vocab") or DEFAULT_CHARS))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{where}: checkpoint does not match this version of asr ({err})") from None

    def to_config(self) -> dict[str, Any]:
        return {"model": to_dict(self.model), "features": to_dict(self.features), "vocab": list(self.vocab)}


@dataclass(frozen=True)
class TrainedModel:
    """A trained network as a checkpoint or a release holds it: what build_model rebuilds and save_release writes."""

    spec: ModelSpec
    weights: dict[str, torch.Tensor]  # the network's state dict
    feature_state: dict[str, torch.Tensor]  # the feature extractor's buffers (mel filterbank, normalization)
    source: Path  # where it was read from (for messages)
    # What it says about itself: a release's metadata (its description, what it was adapted from, ...), or for a
    # training checkpoint its file name, step, epoch and best dev WER.
    metadata: dict[str, Any] = field(default_factory=dict)
    decoding: ReleaseDecoding | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any], path: Path) -> TrainedModel:
        """The network of a training checkpoint (load_checkpoint's dict)."""
        try:
            config, weights, feature_state = checkpoint["config"], checkpoint["model"], checkpoint["features"]
        except KeyError as err:
            raise CheckpointError(f"{path}: checkpoint does not match this version of asr (no {err})") from None
        state = checkpoint.get("state", {})
        metadata = {"checkpoint": path.name, **{key: state[key] for key in ("step", "epoch", "best_dev_wer")
                                                 if key in state}}
        return cls(ModelSpec.from_config(config, str(path)), weights, feature_state, path, metadata)


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any], keep_previous: bool = False) -> None:
    """Write with its checksum to a temporary file in the same folder, flush it to disk, then rename: a crash or a
    failed write (disk full) never leaves a half-written file and never harms the checkpoint already there.

    keep_previous: the file replaced becomes previous_path(path), a fallback should the new one prove corrupt.
    """
    payload = {k: v for k, v in checkpoint.items() if k != "sha256"} | {"format": FORMAT}
    payload["sha256"] = checksum(payload)
    try:
        with atomic_path(path, keep_previous=previous_path(path) if keep_previous else None) as tmp, \
                open(tmp, "wb") as file:  # a file object, not a path: torch then reports a full disk as an OSError
            torch.save(payload, file)
    except OSError as err:
        raise CheckpointError(f"{path}: could not write the checkpoint ({err.strerror or err}); "
                              f"the checkpoints written before are kept") from None


def previous_path(path: str | os.PathLike[str]) -> Path:
    """Where save_checkpoint(keep_previous=True) keeps the file it replaces: last.pt -> last.prev.pt."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def load_latest(folder: str | os.PathLike[str], log: Callable[[str], object] = print) -> tuple[Path, dict[str, Any]]:
    """The newest of a run folder's last.pt and last.prev.pt that loads and verifies, logging why one was skipped
    (a run killed between the two renames, a corrupt file); CheckpointError naming both problems if neither does."""
    problems = []
    for path in (Path(folder) / LAST, previous_path(Path(folder) / LAST)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            log(f"skipping {err}")
            problems.append(str(err))
    raise CheckpointError(f"{folder}: no checkpoint to resume from ({'; '.join(problems)})")


def check_compatible(theirs: ModelSpec, ours: ModelSpec, where: str) -> None:
    """ConfigError unless a trained model (`theirs`: its vocabulary, network shape and features) is `ours`, so that
    its weights can start a run of `ours` (dropout shapes no weight and may differ)."""
    if theirs.vocab != ours.vocab:
        raise ConfigError(f"{where}: its vocabulary {''.join(theirs.vocab)!r} is not this run's {''.join(ours.vocab)!r}")
    for part, ignored in (("model", {"dropout"}), ("features", set())):
        mine, other = getattr(ours, part), getattr(theirs, part)
        differ = [f"{part}.{f.name} is {getattr(other, f.name)!r} there, {getattr(mine, f.name)!r} here"
                  for f in fields(other) if f.name not in ignored and getattr(other, f.name) != getattr(mine, f.name)]
        if differ:
            raise ConfigError(f"{where}: {'; '.join(differ)} (set them to the source's to start from it)")


def checksum(checkpoint: Mapping[str, Any]) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes, every other value's type and repr,
    in order (containers by kind: a dict and an OrderedDict, a list and a tuple hash alike).

    It is taken of the content rather than of the file so that the file stays a plain torch checkpoint, and it is
    checked on what torch.load returned: that catches corruption torch.load itself lets through (a flipped byte in
    tensor data loads without complaint).
    """
    digest = hashlib.sha256()
    _digest(digest, checkpoint)
    return digest.hexdigest()


def _digest(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        digest.update(f"map {len(value)};".encode())
        for key, item in value.items():
            _digest(digest, key)
            _digest(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"sequence {len(value)};".encode())
        for item in value:
            _digest(digest, item)
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file as given, or a training run folder's best.pt."""
    path = Path(path)
    return path / "best.pt" if path.is_dir() else path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load with weights_only=True (tensors and plain containers only; a pickled object is refused) and verify the
    checksum; a truncated, altered or unreadable file raises CheckpointError naming the file and the reason."""
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
    if not isinstance(checkpoint, dict) or checkpoint.get("format") not in (FORMAT, LEGACY_FORMAT):
        raise CheckpointError(f"{path}: not an asr checkpoint (format {FORMAT} expected)")
    if checkpoint["format"] == LEGACY_FORMAT:
        return checkpoint
    stored = checkpoint.pop("sha256", None)
    if stored is None:
        raise CheckpointError(f"{path}: corrupt checkpoint (its checksum is missing)")
    if stored != checksum(checkpoint):
        raise CheckpointError(f"{path}: corrupt checkpoint (checksum mismatch: the content changed after it was "
                              f"written)")
    return checkpoint


def build_model(trained: TrainedModel) -> tuple[BiLSTMCTC, LogMel, Vocabulary]:
    """Rebuild the network, the feature extractor and the vocabulary a model was trained with."""
    try:
        vocab = Vocabulary(list(trained.spec.vocab))
        model = BiLSTMCTC(trained.spec.model)
        features = LogMel(trained.spec.features)
        model.load_state_dict(trained.weights)
        features.load_state_dict(trained.feature_state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{trained.source}: checkpoint does not match this version of asr ({err})") from None
    return model.eval(), features.eval(), vocab


def last_epochs(run: str | os.PathLike[str], count: int) -> list[Path]:
    """A run folder's last `count` epoch checkpoints (epoch-*.pt, oldest first), the usual ones to average."""
    if count < 1:
        raise CheckpointError(f"the number of epochs to average must be at least 1, got {count}")
    paths = sorted(Path(run).glob("epoch-*.pt"))[-count:]
    if not paths:
        raise CheckpointError(f"{run}: no epoch-*.pt checkpoints (train.keep_epoch_checkpoints keeps them)")
    return paths


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """The mean of several checkpoints' model weights (usually the last epochs of one run), which is often a
    little more accurate than any of them; config, features and state come from the last one."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    checkpoints = [load_checkpoint(p) for p in paths]
    last = checkpoints[-1]
    keys = last["model"].keys()
    for path, checkpoint in zip(paths, checkpoints):
        if checkpoint["model"].keys() != keys or checkpoint.get("config", {}).get("model") != last["config"]["model"]:
            raise CheckpointError(f"{path}: a different model from {paths[-1]}; only checkpoints of one run average")
    model = {}
    for key, value in last["model"].items():
        if value.is_floating_point():
            model[key] = sum(c["model"][key].double() for c in checkpoints).div(len(checkpoints)).to(value.dtype)
        else:
            model[key] = value
    state = dict(last.get("state", {}), averaged=[p.name for p in paths])
    return {"config": last["config"], "model": model, "features": last["features"], "state": state}


def save_release(out_dir: str | os.PathLike[str], trained: TrainedModel, dtype: torch.dtype = torch.float16,
                 onnx: str | None = None) -> Path:
    """Write a trained network as a release: safetensors weights (no pickle) + its spec and metadata as JSON.

    Weights are stored in `dtype` (half precision halves the download and loses no accuracy for inference);
    optimizer state is left out. Feature buffers (mel filterbank, normalization statistics) stay in float32.
    trained.decoding, when set, is copied in as the release's recommended beam search: its language model, an ARPA
    file (gzip-compressed, as RELEASE_LM) or a KenLM binary (as RELEASE_LM_BINARY, which needs its lexicon), and
    the lexicon, the words beam search may output (RELEASE_LEXICON), with the settings tuned for them.
    onnx ("int8" or "fp32"): also the network exported for onnxruntime (RELEASE_ONNX), from the stored weights, so
    that CPU transcription can run without PyTorch; any ONNX file of an earlier release in the folder goes.
    """
    if onnx not in (None, "int8", "fp32"):
        raise ConfigError(f"onnx must be int8 or fp32, not {onnx!r}")
    from safetensors.torch import save_file

    from .decoding.lm import is_kenlm_binary

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, features, vocab = build_model(trained)  # validates the model before anything is written
    for name in (RELEASE_ONNX, RELEASE_ONNX_INFO):  # an earlier release's network must never outlive its weights
        (out_dir / name).unlink(missing_ok=True)
    tensors = {f"model.{k}": v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    tensors |= {f"features.{k}": v for k, v in features.state_dict().items()}
    release = {"format": RELEASE_FORMAT, **trained.spec.to_config(), "metadata": trained.metadata}
    if trained.decoding is not None:
        lm, lexicon = Path(trained.decoding.lm), trained.decoding.lexicon
        if not lm.is_file():
            raise CheckpointError(f"{lm}: language model not found")
        if lexicon is not None and not Path(lexicon).is_file():
            raise CheckpointError(f"{lexicon}: lexicon not found")
        binary = is_kenlm_binary(lm)
        if binary and lexicon is None:
            raise CheckpointError(f"{lm}: a binary KenLM model does not list its words; give its lexicon too")
        name = RELEASE_LM_BINARY if binary else RELEASE_LM
        data = lm.read_bytes()
        _write_into(out_dir, name, data if binary or lm.suffix == ".gz" else gzip.compress(data, mtime=0))
        if lexicon is not None:
            _write_into(out_dir, RELEASE_LEXICON, Path(lexicon).read_bytes())
        shipped = replace(trained.decoding, lm=name, lexicon=None if lexicon is None else RELEASE_LEXICON)
        release["decoding"] = shipped.settings()
    with atomic_path(out_dir / RELEASE_WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        os.chmod(tmp, 0o644)  # safetensors creates its file readable by its owner only; a release is for everyone
    with atomic_open(out_dir / RELEASE_CONFIG) as f:
        f.write(json.dumps(release, indent=2) + "\n")
    if onnx is not None:
        from .export import export_onnx

        # The weights as the release stores them, so that both runtimes run the same network.
        model.load_state_dict({k: v.to(dtype).float() if v.is_floating_point() else v
                               for k, v in model.state_dict().items()})
        export_onnx(features, model, vocab, out_dir / RELEASE_ONNX, int8=onnx == "int8")
    for name in {RELEASE_LM, RELEASE_LM_BINARY, RELEASE_LEXICON} - set(release.get("decoding", {}).values()):
        (out_dir / name).unlink(missing_ok=True)  # left by an earlier release in this folder, now not part of it
    return out_dir


def _write_into(folder: Path, name: str, data: bytes) -> None:
    """Write a release file atomically (its source may be that very file, so the data is read first)."""
    with atomic_open(folder / name, "wb") as f:
        f.write(data)


def load_trained(path: str | os.PathLike[str]) -> TrainedModel:
    """A release folder (or a zip of one), a checkpoint file or a run folder (its best.pt)."""
    path = Path(path)
    if path.suffix == ".zip" and path.is_file():
        return replace(load_release(unzip_release(path)), source=path)
    if is_release(path):
        return load_release(path)
    path = checkpoint_path(path)
    return TrainedModel.from_checkpoint(load_checkpoint(path), path)


def load_release(folder: str | os.PathLike[str]) -> TrainedModel:
    """Read a release folder (weights back in float32)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    release = read_release_config(folder)
    try:
        tensors = load_file(str(folder / RELEASE_WEIGHTS))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{folder / RELEASE_WEIGHTS}: not readable weights ({err})") from None
    parts: dict[str, dict[str, torch.Tensor]] = {"model": {}, "features": {}}
    for key, value in tensors.items():
        part, _, name = key.partition(".")
        if part in parts:
            parts[part][name] = value.float() if value.is_floating_point() else value
    where = str(folder / RELEASE_CONFIG)
    decoding = release_decoding(folder, release)
    return TrainedModel(ModelSpec.from_config(release, where), parts["model"], parts["features"], folder,
                        dict(release.get("metadata") or {}), decoding)
