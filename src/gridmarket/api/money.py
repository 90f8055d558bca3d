"""USD amounts on the wire: decimal strings, parsed once at the edge into int micro-USD.

`"12.5"` is 12,500,000 micro-USD. Accepted: plain digits with at most 6 decimals (the
micro-dollar), no sign, exponent, spaces, `NaN` or `Infinity`, and above zero. Anything else
(and JSON numbers, which are refused before this: binary floats cannot carry money exactly) is
a 422. `format_usd_micros` is the way back, always with 6 decimals.
"""

from __future__ import annotations

import re
from decimal import Decimal

from gridmarket.core.units import USD_MICROS

#: At most 12 integer digits: a trillion dollars is far beyond any deposit.
_USD_TEXT = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?")
MAX_USD_TEXT_CHARS = 19


def parse_usd_micros(text: object) -> int:
    """Micro-USD from a positive decimal string; `ValueError` with a reason otherwise."""
    if not isinstance(text, str):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if len(text) > MAX_USD_TEXT_CHARS or _USD_TEXT.fullmatch(text) is None:
        raise ValueError("must be a positive decimal string with at most 6 decimals")
    micros = Decimal(text) * USD_MICROS
    assert micros == micros.to_integral_value(), text  # the pattern allows 6 decimals at most
    if micros <= 0:
        raise ValueError("must be greater than zero")
    return int(micros)


def format_usd_micros(amount_usd_micros: int) -> str:
    """`12_500_000` -> `"12.500000"`."""
    sign = "-" if amount_usd_micros < 0 else ""
    whole, fraction = divmod(abs(amount_usd_micros), USD_MICROS)
    return f"{sign}{whole}.{fraction:06d}"
