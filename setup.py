"""Builds the compiled spawner (worker/executor/spawn.c) into the package.

Everything else is in pyproject.toml. The spawner is a small C program
with no dependency but libc; where no C compiler is found, or it fails, the
build goes on without it and the server uses the Python spawner instead
(slower to start jobs, the same in every other way; ``worker serve`` says
which it uses).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = os.path.join("worker", "executor", "spawn.c")
BINARY = os.path.join("worker", "executor", "worker-spawn")


def compile_spawner(target: str) -> bool:
    """Static where the C library allows (it then runs on any Linux of this
    architecture, whatever libc is there: a container image, say)."""
    compiler = shlex.split(os.environ.get("CC") or "cc")
    errors = ""
    for linking in (["-static"], []):
        command = [*compiler, "-O2", "-std=gnu11", "-Wall", "-s", *linking, "-o", target, SOURCE]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors = str(exc)
            break
        if done.returncode == 0:
            return True
        errors = done.stderr
    print(f"worker: no compiled spawner, jobs start through Python:\n{errors}", file=sys.stderr)
    return False


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not sys.platform.startswith("linux"):
            return
        in_place = getattr(self, "editable_mode", False)
        target = BINARY if in_place else os.path.join(self.build_lib, BINARY)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Never ship one from an earlier build (it may speak an older format).
        with contextlib.suppress(FileNotFoundError):
            os.remove(target)
        compile_spawner(target)


commands: dict[str, type] = {"build_py": BuildPy}
try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]


class BdistWheel(bdist_wheel):
    """With the spawner inside, the wheel is for this platform (any Python 3)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        return "py3", "none", sysconfig.get_platform().replace("-", "_").replace(".", "_")


commands["bdist_wheel"] = BdistWheel
setup(cmdclass=commands)
