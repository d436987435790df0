"""OutputBuffer: an append-only byte buffer read by (offset, limit)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.buffer import CHUNK, OutputBuffer

# 256 distinct bytes repeated, so a wrong offset shows up as different bytes.
_PATTERN = bytes(range(256)) * ((3 * CHUNK) // 256 + 2)


def blob(size: int, seed: int) -> bytes:
    """``size`` bytes that depend on ``seed`` (cheap even for several CHUNKs)."""
    start = seed % 256
    return _PATTERN[start : start + size]


# Mostly small writes (a job writing lines), some around and well over CHUNK.
_sizes = st.one_of(
    st.integers(0, 300),
    st.integers(CHUNK // 4 - 3, CHUNK // 4 + 3),  # kept as it came from here on
    st.integers(CHUNK - 3, CHUNK + 3),
    st.integers(0, 3 * CHUNK),
)
_appends = st.lists(st.tuples(_sizes, st.integers(0, 255)), max_size=25)
_reads = st.lists(
    st.tuples(st.integers(0, 30 * CHUNK + 10), st.integers(0, 4 * CHUNK)),
    min_size=1,
    max_size=30,
)


def check_reads(buffer: OutputBuffer, reference: bytearray, reads: list[tuple[int, int]]) -> None:
    total = len(reference)
    edges = [0, 1, total - 1, total, total + 1, CHUNK - 1, CHUNK, CHUNK + 1]
    offsets = [(o % (total + 2), limit) for o, limit in reads]
    offsets += [(e, limit) for e in edges if e >= 0 for limit in (0, 1, CHUNK, total + 1)]
    for offset, limit in offsets:
        where, got = buffer.read(offset, limit)
        assert isinstance(got, bytes)
        assert where == max(offset, buffer.start)
        assert got == bytes(reference[where : where + limit]), (offset, limit)


@settings(max_examples=150, deadline=None)
@given(appends=_appends, reads=_reads)
def test_reads_match_reference(
    appends: list[tuple[int, int]], reads: list[tuple[int, int]]
) -> None:
    buffer = OutputBuffer()
    reference = bytearray()
    for size, seed in appends:
        data = blob(size, seed)
        buffer.append(data)
        reference += data
        assert buffer.size == len(reference)
        # Read between appends too: readers follow a job while it writes.
        check_reads(buffer, reference, reads[:2])
    check_reads(buffer, reference, reads)


@settings(max_examples=50, deadline=None)
@given(appends=_appends, step=st.integers(1, 2 * CHUNK))
def test_sequential_reader_gets_every_byte_once(appends: list[tuple[int, int]], step: int) -> None:
    buffer = OutputBuffer()
    reference = bytearray()
    for size, seed in appends:
        data = blob(size, seed)
        buffer.append(data)
        reference += data
    received = bytearray()
    while piece := buffer.read(len(received), step)[1]:
        assert len(piece) <= step
        received += piece
    assert received == reference


def test_byte_at_a_time_writes_across_chunk_boundary() -> None:
    buffer = OutputBuffer()
    reference = bytearray()
    for i in range(CHUNK + 10):
        byte = bytes([i % 251])
        buffer.append(byte)
        reference += byte
    assert buffer.size == CHUNK + 10
    assert buffer.read(0, CHUNK + 100)[1] == bytes(reference)
    assert buffer.read(CHUNK - 5, 10)[1] == bytes(reference[CHUNK - 5 : CHUNK + 5])


def test_big_append_after_small_one() -> None:
    buffer = OutputBuffer()
    buffer.append(b"head")
    big = blob(2 * CHUNK + 7, 3)
    buffer.append(big)
    buffer.append(b"tail")
    expected = b"head" + big + b"tail"
    assert buffer.size == len(expected)
    assert buffer.read(0, len(expected) + 1)[1] == expected
    assert buffer.read(2, 2 * CHUNK)[1] == expected[2 : 2 + 2 * CHUNK]


def test_a_read_of_a_quarter_chunk_or_more_is_kept_as_it_came() -> None:
    # A pipe read of a job writing fast: copying it again would cost as much
    # as reading it.
    buffer = OutputBuffer()
    buffer.append(b"small")
    piece = blob(CHUNK // 4, 9)
    buffer.append(piece)
    assert buffer.read(5, len(piece))[1] is piece
    assert buffer.read(0, 5)[1] == b"small"


def test_empty_buffer() -> None:
    buffer = OutputBuffer()
    assert buffer.size == 0
    assert buffer.read(0, 10)[1] == b""
    assert buffer.read(5, 10)[1] == b""
    buffer.append(b"")
    assert buffer.size == 0
    assert buffer.read(0, 10)[1] == b""


@pytest.mark.parametrize("offset", [0, 5, 100])
def test_zero_limit_reads_nothing(offset: int) -> None:
    buffer = OutputBuffer()
    buffer.append(blob(CHUNK + 50, 0))
    assert buffer.read(offset, 0)[1] == b""


@pytest.mark.parametrize("prefill", [0, 10, CHUNK, 2 * CHUNK + 3])
def test_reading_at_or_past_the_end_is_empty(prefill: int) -> None:
    buffer = OutputBuffer()
    buffer.append(blob(prefill, 1))
    for offset in (prefill, prefill + 1, prefill + CHUNK, 10**12):
        assert buffer.read(offset, 1 << 20)[1] == b""


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1), (-5, -5), (-(10**12), 1)])
def test_negative_offset_or_limit_is_refused(offset: int, limit: int) -> None:
    buffer = OutputBuffer()
    buffer.append(b"some output")
    with pytest.raises(ValueError, match="negative"):
        buffer.read(offset, limit)


@settings(max_examples=150, deadline=None)
@given(appends=_appends, reads=_reads, limit=st.integers(1, 3 * CHUNK))
def test_capped_buffer_keeps_exactly_the_newest_bytes(
    appends: list[tuple[int, int]], reads: list[tuple[int, int]], limit: int
) -> None:
    buffer = OutputBuffer(limit)
    reference = bytearray()
    for size, seed in appends:
        data = blob(size, seed)
        buffer.append(data)
        reference += data
        assert buffer.size == len(reference)
        assert buffer.kept == min(limit, len(reference))
        assert buffer.start == len(reference) - buffer.kept
        check_reads(buffer, reference, reads[:2])
    check_reads(buffer, reference, reads)
    where, data = buffer.read(0, len(reference) + 1)
    assert (where, data) == (buffer.start, bytes(reference[buffer.start :]))


def test_skip_to_continues_past_a_gap() -> None:
    buffer = OutputBuffer()
    buffer.append(b"abc")
    buffer.skip_to(2)  # not beyond the end: nothing happens
    assert (buffer.start, buffer.size) == (0, 3)
    buffer.skip_to(100)
    assert (buffer.start, buffer.size, buffer.kept) == (100, 100, 0)
    buffer.append(b"xyz")
    assert buffer.read(0, 10) == (100, b"xyz")
    assert buffer.read(101, 10) == (101, b"yz")


def test_drop_all_keeps_offsets_and_frees_every_byte() -> None:
    buffer = OutputBuffer()
    buffer.append(b"x" * 100_000)
    buffer.append(b"tail")
    buffer.drop_all()
    assert (buffer.size, buffer.start, buffer.kept) == (100_004, 100_004, 0)
    assert buffer.read(0, 10) == (100_004, b"")
    buffer.append(b"more")
    assert buffer.read(0, 10) == (100_004, b"more")


def test_a_lower_limit_drops_the_oldest_at_once() -> None:
    buffer = OutputBuffer(1000)
    buffer.append(b"a" * 600 + b"b" * 400)
    buffer.set_limit(400)
    assert buffer.kept == 400 and buffer.read(0, 1000) == (600, b"b" * 400)
