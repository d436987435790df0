"""The report pipe of a job's clone: read line by line, and its failures
worded as users read them."""

from __future__ import annotations

import asyncio
import os

import pytest

from worker.executor import reports


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        ("2 exec", "echi: command not found"),
        ("13 exec", "echi: permission denied"),
        ("8 exec", "echi: not an executable format"),
        ("2 cwd", "/nope: cannot change to this directory: No such file or directory"),
        ("22 setup mounting its /proc", "echi: cannot start: mounting its /proc: Invalid argument"),
        ("22 setup ValueError: odd", "echi: cannot start: ValueError: odd"),
        ("11 setup", "echi: cannot start: Resource temporarily unavailable"),
        ("garbage", "echi: cannot start: Invalid argument"),
    ],
)
def test_failures_are_one_line_that_says_why(failure: str, said: str) -> None:
    assert reports.describe(failure, "echi", b"/nope") == said


def test_lines_come_as_written_however_split_then_the_end() -> None:
    async def main() -> tuple[list[str], bool]:
        read, write = os.pipe()
        lines: list[str] = []
        ended = asyncio.Event()
        reports.read_lines(asyncio.get_running_loop(), read, lines.append, ended.set)
        for piece in (b"S\nX", b"256\n", b"E2 exec\n"):
            os.write(write, piece)
            await asyncio.sleep(0)  # let the reader run between the pieces
        os.close(write)
        await asyncio.wait_for(ended.wait(), 10)
        return lines, ended.is_set()

    assert asyncio.run(main()) == (["S", "X256", "E2 exec"], True)
