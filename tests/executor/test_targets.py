"""Finding a job's processes: descendants from the kernel's lists of children."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import until
from worker.executor import targets
from worker.executor.targets import children

ROOT = Path(__file__).resolve().parents[2]

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


def test_a_listed_child_whose_pid_went_to_a_stranger_is_not_taken(
    tree: psutil.Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list was read while the child lived; by the time it is looked at,
    it has ended and its PID is a stranger's: a process that is not the
    parent's child (here one that is not, and never was)."""
    expected = {p.pid for p in tree.children(recursive=True)}
    stranger = subprocess.Popen(["sleep", "60"])
    real = targets.direct_children
    monkeypatch.setattr(
        targets,
        "direct_children",
        lambda pid=None: [*(real(pid) or []), stranger.pid] if pid == tree.pid else real(pid),
    )
    try:
        assert {p.pid for p in children(tree, recursive=True)} == expected
    finally:
        stranger.kill()
        stranger.wait()


# Run in a PID namespace of its own, where choosing the next PID
# (ns_last_pid) touches nothing outside: a process the walk knew ends, and
# its PID goes to a stranger with a child of its own.
REUSE = """
import json, os, psutil, subprocess, sys, time
from tests.helpers import until
from worker.executor.targets import descendants

def shell_with_a_child():
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    until(lambda: len(psutil.Process(shell.pid).children()) == 1)
    return shell

known = shell_with_a_child()
stale = psutil.Process(known.pid)
for child in stale.children():
    child.kill()
known.kill()
known.wait()
deadline = time.monotonic() + 30
while True:
    with open("/proc/sys/kernel/ns_last_pid", "w") as last:
        last.write(str(known.pid - 1))
    stranger = shell_with_a_child()
    if psutil.Process(stranger.pid).create_time() != stale.create_time():
        break
    # Born within the same clock tick (10 ms) as the ended process: nothing
    # tells them apart by PID and start time. A real reuse takes a whole
    # cycle of PIDs; here, try again in a later tick.
    for child in psutil.Process(stranger.pid).children():
        child.kill()
    stranger.kill()
    stranger.wait()
    assert time.monotonic() < deadline, "every stranger was born in the same tick"
print(json.dumps({
    "reused": stranger.pid == known.pid,
    "stale": [p.pid for p in descendants([stale])],
    "stranger's": [p.pid for p in descendants([psutil.Process(stranger.pid)])],
}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace of its own needs root")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare(1) here")
def test_an_ended_process_whose_pid_was_reused_has_no_descendants() -> None:
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", REUSE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["reused"], "the stranger did not get the ended process's PID"
    assert seen["stranger's"], "the walk found nothing even for the stranger itself"
    assert seen["stale"] == []
