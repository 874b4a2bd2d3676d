"""Atomic file writes: whole or not at all, whatever happens mid-write (a crash, a full disk, Ctrl-C).

Every file the toolkit writes for later use (checkpoints, releases, manifests, audio, LMs, transcripts) goes through
here: the data goes to a hidden temporary file beside the target, is flushed to disk, and is renamed over the
target, which readers therefore see either as it was or complete. A failed write removes the temporary file.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_path(path: str | os.PathLike[str], keep_previous: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A temporary path beside `path` for the block to write; on success it is synced and renamed to `path`.

    For writers that take a file name (soundfile, torch.jit, safetensors). keep_previous: a file already at `path`
    is first renamed there (a fallback copy), after the new data is safely on disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only a failed write leaves it


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **open_args: Any) -> Iterator[IO[Any]]:
    """open() for writing that replaces `path` only when the block ends without an error. Text modes default to
    UTF-8 with "\\n" line ends on every platform."""
    if "b" not in mode:
        open_args = {"encoding": "utf-8", "newline": "\n"} | open_args
    with atomic_path(path) as tmp, open(tmp, mode, **open_args) as file:
        yield file
