"""The clone's side of a start (jobinit), in a throwaway process: once it
runs as the job's uid it may be unable to read the Python it is made of, so
from there on it must import nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Runs ``jobinit.child`` in a fork with every further import refused (as for
# a uid that cannot read the interpreter's files), and prints what the job
# wrote and what the child reported.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from worker.executor import jobinit

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            raise ImportError(f"{name} imported after the start")

    sys.modules.pop("warnings", None)  # os.execvpe would import it again
    argv = tuple(os.fsencode(a) for a in json.loads(sys.argv[1]))
    path = os.fsencode(sys.argv[2])
    uid = int(sys.argv[3]) if sys.argv[3] else None
    init = sys.argv[4] == "init"
    launch = jobinit.Launch(argv, ((b"PATH", path),), b"/", uid, uid, pid_namespace=init)
    out_r, out_w = os.pipe()
    report_r, report_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        sys.meta_path.insert(0, Refuse())
        jobinit.child(launch, null, out_w, report_w)
    for fd in (out_w, report_w, null):
        os.close(fd)
    def everything(fd):
        data = b""
        while chunk := os.read(fd, 4096):
            data += chunk
        return data.decode()
    output, report = everything(out_r), everything(report_r)
    os.waitpid(pid, 0)
    print(json.dumps({"output": output, "report": report}))
    """
)


def start(
    argv: list[str], path: str = "/usr/bin:/bin", uid: int | None = None, init: bool = False
) -> dict[str, str]:
    who = "" if uid is None else str(uid)
    how = "init" if init else "direct"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(argv), path, who, how],
        capture_output=True,
        timeout=30,
        check=True,
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("init", [False, True], ids=["direct", "under its init"])
def test_the_command_is_found_and_run_with_no_import(init: bool) -> None:
    result = start(["sh", "-c", "echo started"], init=init)
    assert result["output"] == "started\n"
    assert not result["report"].startswith("E"), result["report"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching uid needs root")
def test_after_the_uid_switch_nothing_is_imported() -> None:
    result = start(["sh", "-c", "id -u"], uid=65534, init=True)
    assert result["output"] == "65534\n", result["report"]


def test_a_missing_command_reports_not_found() -> None:
    result = start(["no-such-command-here"])
    assert result["report"].split()[:2] == ["E2", "exec"]


def test_a_denied_command_earlier_in_the_path_beats_a_later_miss(
    tmp_path: os.PathLike[str],
) -> None:
    denied = os.path.join(tmp_path, "tool")
    with open(denied, "w") as handle:
        handle.write("#!/bin/sh\n")
    os.chmod(denied, 0o644)  # not executable: EACCES
    result = start(["tool"], path=f"{tmp_path}:/nonexistent")
    assert result["report"].split()[:2] == ["E13", "exec"]


def test_an_unexpected_error_names_itself() -> None:
    from worker.executor.jobinit import _unexpected

    line = _unexpected(ValueError("odd\nthing"))
    assert line == "E22 setup ValueError: odd thing"
