"""worker.linux.read_file: kernel and ordinary files, read whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.linux import read_file


def test_a_file_larger_than_one_read_comes_back_whole(tmp_path: Path) -> None:
    data = os.urandom(200_000)  # three reads of 64 KiB and a part
    (tmp_path / "big").write_bytes(data)
    assert read_file(tmp_path / "big") == data


def test_an_empty_file_reads_as_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert read_file(tmp_path / "empty") == b""


def test_a_proc_file_is_generated_and_read_at_once() -> None:
    assert f"Pid:\t{os.getpid()}\n".encode() in read_file(f"/proc/{os.getpid()}/status")


def test_a_missing_file_raises() -> None:
    with pytest.raises(FileNotFoundError):
        read_file("/proc/self/no-such-file")


def test_a_read_that_fails_leaves_no_descriptor_open(tmp_path: Path) -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(IsADirectoryError):
        read_file(tmp_path)  # opens, then its read fails
    assert sorted(os.listdir("/proc/self/fd")) == before
