"""Numbers and times as the Trading API writes them: exact decimal strings, never via float.

The Grid's clients require prices, fees and 24h price statistics as JSON strings
(reference/grid-client-contract.md, "Fields that must be JSON strings") and recommend decimal
strings everywhere else; DESIGN section 2 fixes the style: `"2.500"`.

- `usd(micros)`: micro-USD as dollars with at least 3 decimals (the default tick is 0.001 USD)
  and up to 6, trailing zeros beyond the third dropped: 2_500_000 -> "2.500",
  1_234_567 -> "1.234567", -100_000 -> "-0.100". Exact: integer arithmetic only.
- `units(n)`: whole units as a decimal string, `"5"`.
- `percent(numerator, denominator)`: 100 × n ÷ d with 2 decimals, rounded half away from zero.
- `timestamp(ms)`: ISO 8601 UTC with milliseconds, `"2026-01-01T00:30:00.000Z"`.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

MICROS_PER_USD = 1_000_000
MIN_USD_DECIMALS = 3


def usd(micros: int) -> str:
    """Micro-USD as a dollar decimal string: `2_500_000` -> `"2.500"`."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS_PER_USD)
    digits = f"{fraction:06d}".rstrip("0").ljust(MIN_USD_DECIMALS, "0")
    return f"{sign}{whole}.{digits}"


def units(quantity_units: int) -> str:
    """A whole number of units as a string: `5` -> `"5"`."""
    return str(quantity_units)


def percent(numerator: int, denominator: int) -> str:
    """`100 × numerator ÷ denominator` with 2 decimals, half away from zero: (1, 8) -> "12.50"."""
    assert denominator > 0
    sign = "-" if numerator < 0 else ""
    hundredths, remainder = divmod(abs(numerator) * 10_000, denominator)
    if 2 * remainder >= denominator:
        hundredths += 1
    if hundredths == 0:
        sign = ""
    whole, fraction = divmod(hundredths, 100)
    return f"{sign}{whole}.{fraction:02d}"


def price_decimals(tick_usd_micros: int) -> int:
    """How many decimals a price on this tick needs: 1_000 (0.001 USD) -> 3."""
    assert tick_usd_micros > 0
    decimals = 6
    while decimals > 0 and tick_usd_micros % 10 == 0:
        tick_usd_micros //= 10
        decimals -= 1
    return decimals


def timestamp(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC: `"2026-01-01T00:30:00.000Z"`."""
    seconds, millis = divmod(ms, 1_000)
    return f"{_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4_096)
def _second(seconds: int) -> str:
    # Formatting a datetime costs more than the rest of an order's JSON; answers mostly name
    # the last few seconds, so they are formatted once each.
    return f"{datetime.fromtimestamp(seconds, tz=UTC):%Y-%m-%dT%H:%M:%S}"
