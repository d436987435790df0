"""Limits: sizes, and the server's defaults and maxima (pure)."""

from __future__ import annotations

import pytest

from worker.errors import BadRequest
from worker.executor.limits import Policy, given
from worker.protocol import Limits
from worker.units import parse_size

POLICY = Policy(
    defaults=Limits(memory=512 << 20, pids=4096),
    maxima=Limits(memory=4 << 30, cpus=2.0, pids=32768),
)


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("512M", 512 << 20), ("1.5G", 3 << 29), ("100k", 102400), ("2 GiB", 2 << 30)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "12X", "-5M", "1e9"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_defaults_fill_what_was_not_asked() -> None:
    assert POLICY.resolve(Limits()) == Limits(memory=512 << 20, pids=4096)
    asked = POLICY.resolve(Limits(memory=1 << 30, cpus=0.5))
    assert asked == Limits(memory=1 << 30, cpus=0.5, pids=4096)
    assert given(asked) == {"memory": 1 << 30, "cpus": 0.5, "pids": 4096}


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        (
            Limits(memory=8 << 30),
            "'limits.memory' of 8192 MiB is above this server's maximum of 4096 MiB",
        ),
        (Limits(cpus=2.5), "'limits.cpus' of 2.5 is above this server's maximum of 2"),
        (Limits(pids=40000), "maximum of 32768"),
    ],
)
def test_above_a_maximum_is_a_400_naming_it(asked: Limits, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        POLICY.resolve(asked)
    assert message in refused.value.message
    assert refused.value.http_status == 400


def test_limits_without_a_maximum_are_not_capped() -> None:
    assert POLICY.resolve(Limits(io_write_bps=1 << 40)).io_write_bps == 1 << 40
