"""The one chunked codec: what frame/end write, Decoder reads back, however
the bytes are split on the way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker import chunked


def decode(wire: bytes, cuts: list[int]) -> tuple[bytes, chunked.Decoder]:
    decoder, body, last = chunked.Decoder(), b"", 0
    for cut in [*sorted(cuts), len(wire)]:
        body += b"".join(decoder.feed(wire[last:cut]))
        last = cut
    return body, decoder


@given(
    pieces=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    trailers=st.dictionaries(
        st.sampled_from(["x-job", "x-other"]), st.text('abc{}:" ,', max_size=20)
    ),
    data=st.data(),
)
def test_any_split_reads_back_the_same(
    pieces: list[bytes], trailers: dict[str, str], data: st.DataObject
) -> None:
    wire = b"".join(chunked.frame(p) for p in pieces) + chunked.end(trailers) + b"NEXT"
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=10))
    body, decoder = decode(wire, cuts)
    assert body == b"".join(pieces)
    assert decoder.done and decoder.rest == b"NEXT"
    assert decoder.trailers == {k: v.strip() for k, v in trailers.items()}


def test_sizes_may_carry_extensions_and_capitals() -> None:
    body, decoder = decode(b"A;name=x\r\n0123456789\r\n0\r\n\r\n", [3, 12])
    assert body == b"0123456789" and decoder.done


def test_not_done_until_the_empty_line() -> None:
    _, decoder = decode(b"3\r\nabc\r\n0\r\nX-Job: {}\r\n", [])
    assert not decoder.done


@pytest.mark.parametrize(
    "wire", [b"zz\r\n", b"3\r\nabcd\r\n", b"0\r\nno colon here\r\n\r\n", b"1" * 9000]
)
def test_bad_coding_is_an_error(wire: bytes) -> None:
    with pytest.raises(chunked.ChunkedError):
        chunked.Decoder().feed(wire)
