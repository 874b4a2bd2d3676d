"""Checkpoints: written atomically, checksummed, read without unpickling code, rebuilt into model + features +
vocabulary."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from .atomic import atomic_open, atomic_path
from .config import from_dict
from .errors import CheckpointError, ConfigError
from .features import FeatureConfig, LogMel
from .model import BiLSTMCTC, ModelConfig
from .text import DEFAULT_CHARS, Vocabulary

FORMAT = "asr-checkpoint-v2"  # v1 plus "sha256", the checksum of everything else (see checksum)
LEGACY_FORMAT = "asr-checkpoint-v1"  # no checksum: still loaded, unverified, so that earlier runs stay usable
RELEASE_FORMAT = "asr-release-v1"
RELEASE_WEIGHTS = "model.safetensors"
RELEASE_CONFIG = "config.json"
RELEASE_LM = "lm.arpa.gz"  # an ARPA language model, gzip-compressed
RELEASE_LM_BINARY = "lm.bin"  # or one in KenLM's binary format, with its lexicon
RELEASE_LEXICON = "lexicon.txt"
PRETRAINED_DIR = Path(__file__).parent / "pretrained"  # the bundled model, a release
# Where zipped releases (`asr transcribe --model my-voice.zip`) are unpacked: beam search reads the LM from a file.
RELEASE_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asr" / "releases"
LAST = "last.pt"  # the checkpoint a training run resumes from; the one before it is kept as last.prev.pt
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's weights_only message is decorated with terminal bold


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


def check_compatible(theirs: Mapping[str, Any], ours: Mapping[str, Any], where: str) -> None:
    """ConfigError unless a trained model's config (`theirs`: its vocabulary, network shape and features) is
    `ours`, so that its weights can start a run of `ours` (dropout shapes no weight and may differ)."""
    if list(theirs.get("vocab") or DEFAULT_CHARS) != list(ours["vocab"]):
        raise ConfigError(f"{where}: its vocabulary {''.join(theirs.get('vocab') or DEFAULT_CHARS)!r} is not "
                          f"this run's {''.join(ours['vocab'])!r}")
    for part, ignored in (("model", {"dropout"}), ("features", set())):
        differ = [f"{part}.{key} is {value!r} there, {ours[part].get(key)!r} here"
                  for key, value in theirs[part].items() if key not in ignored and ours[part].get(key) != value]
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


def save_release(out_dir: str | os.PathLike[str], checkpoint: dict[str, Any], dtype: torch.dtype = torch.float16,
                 metadata: dict[str, Any] | None = None, lm: str | os.PathLike[str] | None = None,
                 decoding: dict[str, Any] | None = None, lexicon: str | os.PathLike[str] | None = None) -> Path:
    """Write a checkpoint's network as a release: safetensors weights (no pickle) + the configs as JSON.

    Weights are stored in `dtype` (half precision halves the download and loses no accuracy for inference);
    optimizer state is left out. Feature buffers (mel filterbank, normalization statistics) stay in float32.
    lm: a language model copied in, an ARPA file (gzip-compressed, as RELEASE_LM) or a KenLM binary (as
    RELEASE_LM_BINARY, which needs its lexicon), with `decoding` (lm_weight, word_score, beam_size tuned for it)
    recorded as the release's recommended beam search. lexicon: the words beam search may output (RELEASE_LEXICON).
    """
    from safetensors.torch import save_file

    from .decoding.lm import is_kenlm_binary

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, features, vocab = build_model(checkpoint)  # validates the checkpoint before anything is written
    tensors = {f"model.{k}": v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    tensors |= {f"features.{k}": v for k, v in features.state_dict().items()}
    config = checkpoint["config"]
    release = {"format": RELEASE_FORMAT, "model": config["model"], "features": config["features"],
               "vocab": vocab.chars, "metadata": metadata or {}}
    if lm is not None:
        lm = Path(lm)
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
        release["decoding"] = {"lm": name, **(decoding or {})}
        if lexicon is not None:
            _write_into(out_dir, RELEASE_LEXICON, Path(lexicon).read_bytes())
            release["decoding"]["lexicon"] = RELEASE_LEXICON
    with atomic_path(out_dir / RELEASE_WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        os.chmod(tmp, 0o644)  # safetensors creates its file readable by its owner only; a release is for everyone
    with atomic_open(out_dir / RELEASE_CONFIG) as f:
        f.write(json.dumps(release, indent=2) + "\n")
    for name in {RELEASE_LM, RELEASE_LM_BINARY, RELEASE_LEXICON} - set(release.get("decoding", {}).values()):
        (out_dir / name).unlink(missing_ok=True)  # left by an earlier release in this folder, now not part of it
    return out_dir


def _write_into(folder: Path, name: str, data: bytes) -> None:
    """Write a release file atomically (its source may be that very file, so the data is read first)."""
    with atomic_open(folder / name, "wb") as f:
        f.write(data)


def is_release(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / RELEASE_CONFIG).is_file()


RELEASE_FILES = (RELEASE_WEIGHTS, RELEASE_CONFIG, RELEASE_LM, RELEASE_LM_BINARY, RELEASE_LEXICON)


def zip_release(folder: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write a release folder as a zip holding one folder named like the zip (unzipped, it is a release folder);
    the files are stored, not compressed: weights and KenLM binaries hardly compress."""
    folder, out = Path(folder), Path(out)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name in RELEASE_FILES:
            if (folder / name).is_file():
                archive.write(folder / name, f"{out.stem}/{name}")
    os.chmod(out, 0o644)
    return out


def unzip_release(path: str | os.PathLike[str]) -> Path:
    """The release folder a zip of one (zip_release) unpacks to, in the user's cache, keyed by the zip's content:
    unpacked once, then reused. Only the release's own file names are taken, so a crafted zip writes nothing else."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    folder = RELEASE_CACHE / digest.hexdigest()[:32]
    if is_release(folder):
        return folder
    try:
        with zipfile.ZipFile(path) as archive:
            members = {PurePosixPath(m).name: m for m in archive.namelist() if PurePosixPath(m).name in RELEASE_FILES
                       and len(PurePosixPath(m).parts) <= 2}
            if RELEASE_CONFIG not in members:
                raise CheckpointError(f"{path}: not a zipped model release (no {RELEASE_CONFIG} in it)")
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".unzip-", dir=folder.parent))
            try:
                for name, member in members.items():
                    with archive.open(member) as source, open(tmp / name, "wb") as target:
                        shutil.copyfileobj(source, target)
                try:
                    tmp.rename(folder)  # whole or not at all
                except OSError:
                    if not is_release(folder):  # else another process unpacked the same zip meanwhile
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{path}: not a readable zip of a model release ({err})") from None
    return folder


def load_trained(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """A release folder (or a zip of one), a checkpoint file or a run folder (its best.pt), in the checkpoint
    layout build_model expects, and the path it was read from."""
    path = Path(path)
    if path.suffix == ".zip" and path.is_file():
        return load_release(unzip_release(path)), path
    if is_release(path):
        return load_release(path), path
    path = checkpoint_path(path)
    return load_checkpoint(path), path


def model_metadata(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    """What a model says about itself: a release's metadata (its description, what it was adapted from, ...), or for
    a training checkpoint its file name, step, epoch and best dev WER."""
    if "metadata" in checkpoint:
        return dict(checkpoint["metadata"])
    state = checkpoint.get("state", {})
    return {"checkpoint": path.name, **{key: state[key] for key in ("step", "epoch", "best_dev_wer") if key in state}}


def load_release(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a release folder into the checkpoint layout build_model expects (weights back in float32)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        release = json.loads((folder / RELEASE_CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{folder / RELEASE_CONFIG}: not a readable model config ({err})") from None
    if not isinstance(release, dict) or release.get("format") != RELEASE_FORMAT:
        raise CheckpointError(f"{folder / RELEASE_CONFIG}: not an asr model config (format {RELEASE_FORMAT} expected)")
    try:
        tensors = load_file(str(folder / RELEASE_WEIGHTS))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{folder / RELEASE_WEIGHTS}: not readable weights ({err})") from None
    parts: dict[str, dict[str, torch.Tensor]] = {"model": {}, "features": {}}
    for key, value in tensors.items():
        part, _, name = key.partition(".")
        if part in parts:
            parts[part][name] = value.float() if value.is_floating_point() else value
    config = {k: release.get(k) for k in ("model", "features", "vocab")}
    checkpoint = {"config": config, **parts, "metadata": release.get("metadata", {})}
    if isinstance(release.get("decoding"), dict):
        decoding = dict(release["decoding"])
        for key, what in (("lm", "language model"), ("lexicon", "lexicon")):
            if key in decoding or key == "lm":
                path = folder / str(decoding.get(key, ""))
                if not path.is_file():
                    raise CheckpointError(f"{folder / RELEASE_CONFIG}: its {what} {path.name} is missing")
                decoding[key] = str(path)
        checkpoint["decoding"] = decoding
    return checkpoint
