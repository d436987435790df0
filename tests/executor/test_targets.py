"""Finding a job's processes: descendants from the kernel's lists of children."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import psutil
import pytest

from tests.helpers import until
from worker.executor import targets
from worker.executor.targets import children

# A shell with a sleep and a subshell, whose own sleep is a grandchild.
TREE = "sleep 60 & (sleep 60 & wait) & wait"


@pytest.fixture
def tree() -> Iterator[psutil.Process]:
    shell = subprocess.Popen(["sh", "-c", TREE], start_new_session=True)
    root = psutil.Process(shell.pid)
    try:
        until(lambda: len(root.children(recursive=True)) == 3)
        yield root
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the session this test made
        shell.wait()


def test_descendants_come_without_a_scan_of_every_process(
    tree: psutil.Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {p.pid for p in tree.children(recursive=True)}

    def no_scan(*_: object, **__: object) -> list[psutil.Process]:
        raise AssertionError("scanned every process on the host")

    monkeypatch.setattr(psutil.Process, "children", no_scan)
    assert {p.pid for p in children(tree, recursive=True)} == expected


def test_without_lists_of_children_the_scan_finds_the_same(
    tree: psutil.Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {p.pid for p in tree.children(recursive=True)}
    monkeypatch.setattr(targets, "_lists_of_children", lambda: False)
    assert {p.pid for p in children(tree, recursive=True)} == expected


def test_a_process_that_is_gone_has_no_descendants() -> None:
    done = subprocess.Popen(["true"])
    process = psutil.Process(done.pid)
    done.wait()
    assert children(process, recursive=True) == []
