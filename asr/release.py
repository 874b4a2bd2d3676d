"""A model release: the folder layout `asr package` writes and its JSON config, readable without PyTorch (the
weights are checkpoint.py's), so that an ONNX transcription path can find its network, LM and tuned settings."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .atomic import atomic_path
from .errors import CheckpointError

RELEASE_FORMAT = "asr-release-v1"
RELEASE_WEIGHTS = "model.safetensors"
RELEASE_CONFIG = "config.json"
RELEASE_LM = "lm.arpa.gz"  # an ARPA language model, gzip-compressed
RELEASE_LM_BINARY = "lm.bin"  # or one in KenLM's binary format, with its lexicon
RELEASE_LEXICON = "lexicon.txt"
# Optional: the network, log-mel features included, exported for onnxruntime (asr.export.export_onnx), with the
# JSON that export writes beside it. Transcription on a CPU then needs neither PyTorch nor the weights above.
RELEASE_ONNX = "model.onnx"
RELEASE_ONNX_INFO = RELEASE_ONNX + ".json"
PRETRAINED_DIR = Path(__file__).parent / "pretrained"  # the bundled model, a release
# Where zipped releases (`asr transcribe --model my-voice.zip`) are unpacked: beam search reads the LM from a file.
RELEASE_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asr" / "releases"

@dataclass(frozen=True)
class ReleaseDecoding:
    """A release's recommended beam search: its language model and lexicon (file names inside the release folder,
    absolute paths once loaded) and the settings tuned for them (None: DecodeConfig's default)."""

    lm: str
    lexicon: str | None = None
    lm_weight: float | None = None
    word_score: float | None = None
    beam_size: int | None = None

    def settings(self) -> dict[str, Any]:
        """The DecodeConfig fields it sets: DecodeConfig(method="beam", **decoding.settings())."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def is_release(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / RELEASE_CONFIG).is_file()


RELEASE_FILES = (RELEASE_WEIGHTS, RELEASE_CONFIG, RELEASE_LM, RELEASE_LM_BINARY, RELEASE_LEXICON, RELEASE_ONNX,
                 RELEASE_ONNX_INFO)


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


def read_release_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A release's config.json, checked to be one."""
    path = Path(folder) / RELEASE_CONFIG
    try:
        release = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not a readable model config ({err})") from None
    if not isinstance(release, dict) or release.get("format") != RELEASE_FORMAT:
        raise CheckpointError(f"{path}: not an asr model config (format {RELEASE_FORMAT} expected)")
    return release


def release_decoding(folder: str | os.PathLike[str], release: dict[str, Any]) -> ReleaseDecoding | None:
    """The recommended beam search of a release's config, its files as absolute paths (checked to exist)."""
    if not isinstance(release.get("decoding"), dict):
        return None
    folder, where = Path(folder), Path(folder) / RELEASE_CONFIG
    settings = dict(release["decoding"])
    for key, what in (("lm", "language model"), ("lexicon", "lexicon")):
        if key in settings or key == "lm":
            path = folder / str(settings.get(key, ""))
            if not path.is_file():
                raise CheckpointError(f"{where}: its {what} {path.name} is missing")
            settings[key] = str(path)
    try:
        return ReleaseDecoding(**settings)
    except TypeError as err:
        raise CheckpointError(f"{where}: unknown decoding settings ({err})") from None
