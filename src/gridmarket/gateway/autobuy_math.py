"""Auto Mode's arithmetic, in integers only (table-tested in tests/unit/test_autobuy_math.py).

- `units_to_buy`: whole units (1 unit = 1,000,000 tokens) covering a shortfall, at least the
  instrument's minimum, rounded up to its increment;
- `worst_price`: the slippage guard, best ask x (10,000 + bps) / 10,000 rounded DOWN to the
  tick, never below the best ask;
- `quote_cost`: what a market buy of n units costs against the asks, taker fee included, or
  None when the asks up to the worst price (and inside the price band) cannot fill it;
- `reload_charge`: what Auto-Reload charges before a buy, within the monthly limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from gridmarket.core.matching import out_of_band
from gridmarket.core.units import BPS_DENOMINATOR, TOKENS_PER_UNIT, ceil_div


def units_to_buy(
    needed_tokens: int,
    available_tokens: int,
    min_units: int = 1,
    increment_units: int = 1,
) -> int:
    """Whole units that cover `needed_tokens` beyond what is available (0 if nothing is missing)."""
    missing = needed_tokens - available_tokens
    if missing <= 0:
        return 0
    units = max(ceil_div(missing, TOKENS_PER_UNIT), min_units)
    return ceil_div(units, increment_units) * increment_units


def worst_price(best_ask_usd_micros: int, slippage_bps: int, tick_usd_micros: int) -> int:
    """The best ask plus the slippage, rounded down to the tick, never below the best ask."""
    assert slippage_bps >= 0 and tick_usd_micros > 0
    guarded = best_ask_usd_micros * (BPS_DENOMINATOR + slippage_bps) // BPS_DENOMINATOR
    return max(guarded // tick_usd_micros * tick_usd_micros, best_ask_usd_micros)


def quote_cost(
    levels: Iterable[tuple[int, int]],
    units: int,
    worst_price_usd_micros: int,
    taker_fee_bps: int,
    reference_usd_micros: int | None = None,
    band_bps: int = BPS_DENOMINATOR,
) -> int | None:
    """What buying `units` from ask `levels` (price, units; best first) costs, taker fee
    included; None if they cannot fill it at or under the worst price and inside the band."""
    needed = units
    notional = 0
    for price, available in levels:
        if price > worst_price_usd_micros:
            return None
        if reference_usd_micros is not None and out_of_band(price, reference_usd_micros, band_bps):
            return None
        taken = min(needed, available)
        notional += taken * price
        needed -= taken
        if not needed:
            return notional + ceil_div(notional * taker_fee_bps, BPS_DENOMINATOR)
    return None


def reload_charge(
    usd_available: int,
    cost_usd_micros: int,
    threshold_usd_micros: int,
    amount_usd_micros: int,
    charged_this_month_usd_micros: int,
    monthly_limit_usd_micros: int,
) -> int | None:
    """What Auto-Reload charges before a buy of `cost_usd_micros`: whole multiples of the
    amount, enough to leave at least the threshold after the buy if the month's limit allows,
    else at least enough to pay the buy; 0 when nothing is needed; None when even that would
    break the monthly limit."""
    assert amount_usd_micros > 0
    short = cost_usd_micros - usd_available
    to_threshold = short + threshold_usd_micros
    if to_threshold <= 0:
        return 0
    wanted = ceil_div(to_threshold, amount_usd_micros)
    required = ceil_div(short, amount_usd_micros) if short > 0 else 0
    room = max(monthly_limit_usd_micros - charged_this_month_usd_micros, 0) // amount_usd_micros
    times = min(wanted, room)
    if times < required:
        return None
    return times * amount_usd_micros
