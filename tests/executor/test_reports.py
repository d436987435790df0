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


def test_a_drain_reads_the_last_words_at_once_without_the_loop() -> None:
    """The init's end and its last line are ready together; the drain hands
    over the line (and the end) before the loop gets round to the pipe."""
    loop = asyncio.new_event_loop()
    try:
        read, write = os.pipe()
        lines: list[str] = []
        ends: list[bool] = []
        drain = reports.read_lines(loop, read, lines.append, lambda: ends.append(True))
        os.write(write, b"S\n")
        drain()  # the writer lives on: what is there, and no waiting for more
        assert (lines, ends) == (["S"], [])
        os.write(write, b"X15\n")
        os.close(write)
        drain()
        assert (lines, ends) == (["S", "X15"], [True])
        with pytest.raises(OSError):
            os.fstat(read)  # closed at its end
        drain()  # once ended, nothing more happens
        assert ends == [True]
    finally:
        loop.close()
