"""Integer arithmetic for money and quantities. No floats anywhere: micro-USD, tokens, units."""

TOKENS_PER_UNIT = 1_000_000
USD_MICROS = 1_000_000
BPS_DENOMINATOR = 10_000


def ceil_div(numerator: int, denominator: int) -> int:
    """Ceiling of a non-negative integer division."""
    assert denominator > 0 and numerator >= 0
    return -(-numerator // denominator)
