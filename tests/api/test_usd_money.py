"""USD decimal strings parse exactly into micro-USD, and everything else is refused."""

from __future__ import annotations

import pytest

from gridmarket.api.money import format_usd_micros, parse_usd_micros


@pytest.mark.parametrize(
    ("text", "micros"),
    [("1", 1_000_000), ("0.000001", 1), ("12.5", 12_500_000), ("999999999999.999999", 10**18 - 1)],
)
def test_exact_values(text: str, micros: int) -> None:
    assert parse_usd_micros(text) == micros


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "0.000000",
        "-1",
        "+1",
        "1.0000001",
        "1e3",
        "NaN",
        "Infinity",
        " 1",
        "1 ",
        "01",
        "1.",
        ".5",
        "1,5",
        "１",
        "",
        "1" * 13,
        1,
        1.5,
        None,
        True,
    ],
)
def test_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_usd_micros(value)


def test_format_round_trips() -> None:
    for micros in (1, 12_500_000, 10**15, -3):
        assert format_usd_micros(micros).count(".") == 1
    assert format_usd_micros(12_500_000) == "12.500000"
    assert format_usd_micros(-3) == "-0.000003"
    assert parse_usd_micros(format_usd_micros(123_456_789)) == 123_456_789
