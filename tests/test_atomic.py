"""Atomic writes: the target is either as it was or complete, and no temporary file is left behind."""
from __future__ import annotations

from pathlib import Path

import pytest

from asr.atomic import atomic_open, atomic_path


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_finished_write_replaces_the_file_in_utf8_with_unix_line_ends(tmp_path: Path):
    path = tmp_path / "sub" / "out.txt"  # the folder is made
    with atomic_open(path) as f:
        f.write("naïve\n")
        assert not path.exists()  # nothing visible before the block ends
    assert path.read_bytes() == "naïve\n".encode("utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_atomic_path_keeps_the_replaced_file_when_asked(tmp_path: Path):
    path, previous = tmp_path / "last.pt", tmp_path / "last.prev.pt"
    path.write_bytes(b"first")
    with atomic_path(path, keep_previous=previous) as tmp:
        tmp.write_bytes(b"second")
    assert path.read_bytes() == b"second" and previous.read_bytes() == b"first"


def test_a_path_that_is_a_folder_fails_with_an_os_error_and_leaves_nothing(tmp_path: Path):
    with pytest.raises(OSError), atomic_open(tmp_path, "wb") as f:
        f.write(b"data")
    assert list(tmp_path.parent.glob(f".{tmp_path.name}.tmp")) == [] and tmp_path.is_dir()
