"""The Auto Mode arithmetic, by table: whole units to buy, the slippage guard on the tick, the
cost of a buy from the asks, the Auto-Reload charge within the monthly limit, the UTC month."""

from __future__ import annotations

import pytest

from gridmarket.adapters.payment import utc_month
from gridmarket.gateway.autobuy_math import quote_cost, reload_charge, units_to_buy, worst_price

M = 1_000_000  # tokens per unit, and micro-USD per USD


@pytest.mark.parametrize(
    ("needed", "available", "min_units", "increment", "units"),
    [
        (1, 0, 1, 1, 1),  # one token missing: a whole unit
        (M, 0, 1, 1, 1),
        (M + 1, 0, 1, 1, 2),
        (M + 1, 1, 1, 1, 1),  # exactly one unit missing
        (5 * M, 5 * M, 1, 1, 0),  # nothing missing
        (5 * M, 6 * M, 1, 1, 0),
        (1, 0, 3, 1, 3),  # the instrument's minimum
        (3 * M + 1, 0, 1, 2, 4),  # rounded up to the increment
        (4 * M, 0, 1, 2, 4),
        (50 * 10_000, 0, 1, 1, 1),  # a stampede of 50 x 10,000: one unit
        (2_500_000, 700_000, 1, 1, 2),
    ],
)
def test_units_to_buy(
    needed: int, available: int, min_units: int, increment: int, units: int
) -> None:
    assert units_to_buy(needed, available, min_units, increment) == units


@pytest.mark.parametrize(
    ("best_ask", "slippage_bps", "tick", "worst"),
    [
        (1_000_000, 500, 1_000, 1_050_000),
        (1_000_000, 0, 1_000, 1_000_000),
        (1_234_000, 500, 1_000, 1_295_000),  # 1,295,700 rounded down to the tick
        (1_000, 500, 1_000, 1_000),  # under one tick of slippage: the best ask itself
        (3_000, 5_000, 1_000, 4_000),  # 4,500 rounded down
        (2_000_000, 10_000, 250_000, 4_000_000),
        (999_999, 1, 1, 1_000_098),  # 1,000_098.9999 floored
    ],
)
def test_worst_price(best_ask: int, slippage_bps: int, tick: int, worst: int) -> None:
    assert worst_price(best_ask, slippage_bps, tick) == worst
    assert worst % tick == 0 or worst == best_ask
    assert worst >= best_ask


@pytest.mark.parametrize(
    ("levels", "units", "worst", "fee_bps", "reference", "cost"),
    [
        ([(2 * M, 5)], 3, 2 * M, 0, None, 6 * M),
        ([(M, 1), (2 * M, 5)], 3, 2 * M, 0, None, 5 * M),
        ([(M, 1), (2 * M, 5)], 3, M, 0, None, None),  # beyond the guard
        ([(M, 2)], 3, 2 * M, 0, None, None),  # not enough units
        ([], 1, 2 * M, 0, None, None),  # empty book
        ([(M, 3)], 3, M, 25, None, 3 * M + 7_500),  # the taker fee
        ([(1_000, 1)], 1, 1_000, 15, None, 1_002),  # fee rounded up: 1.5 -> 2
        ([(M, 1), (1_500_000, 1)], 2, 2 * M, 0, M, 2_500_000),  # the band's edge (50%) is in
        ([(M, 1), (1_501_000, 1)], 2, 2 * M, 0, M, None),  # beyond 50% of the last price
    ],
)
def test_quote_cost(
    levels: list[tuple[int, int]],
    units: int,
    worst: int,
    fee_bps: int,
    reference: int | None,
    cost: int | None,
) -> None:
    assert quote_cost(levels, units, worst, fee_bps, reference, 5_000) == cost


@pytest.mark.parametrize(
    ("usd", "cost", "threshold", "amount", "month", "limit", "charge"),
    [
        (10 * M, 2 * M, 1 * M, 5 * M, 0, 50 * M, 0),  # enough, stays above the threshold
        (3 * M, 2 * M, 1 * M, 5 * M, 0, 50 * M, 0),  # lands exactly on the threshold
        (3 * M, 2 * M, 2 * M, 5 * M, 0, 50 * M, 5 * M),  # would dip below it
        (0, 2 * M, 1 * M, 5 * M, 0, 50 * M, 5 * M),
        (0, 12 * M, 0, 5 * M, 0, 50 * M, 15 * M),  # whole multiples of the amount
        (0, 12 * M, 0, 5 * M, 40 * M, 50 * M, None),  # the month has room for 10 only
        (0, 10 * M, 0, 5 * M, 40 * M, 50 * M, 10 * M),  # exactly the room left
        (0, 2 * M, 20 * M, 5 * M, 40 * M, 50 * M, 10 * M),  # threshold wants 25: room 10
        (3 * M, 2 * M, 20 * M, 5 * M, 50 * M, 50 * M, 0),  # no room, but the buy is paid
        (0, 1, 0, 5 * M, 0, 4 * M, None),  # one amount is above the monthly limit
        (0, 1, 0, 5 * M, 60 * M, 50 * M, None),  # over the limit already
    ],
)
def test_reload_charge(
    usd: int, cost: int, threshold: int, amount: int, month: int, limit: int, charge: int | None
) -> None:
    assert reload_charge(usd, cost, threshold, amount, month, limit) == charge
    if charge is not None:
        assert charge % amount == 0
        assert month + charge <= limit or charge == 0
        assert usd + charge >= cost


@pytest.mark.parametrize(
    ("epoch_ms", "month"),
    [
        (0, "1970-01"),
        (1_764_547_199_999, "2025-11"),  # 2025-11-30T23:59:59.999Z
        (1_764_547_200_000, "2025-12"),  # 2025-12-01T00:00:00Z
        (1_798_761_599_999, "2026-12"),
        (1_798_761_600_000, "2027-01"),
    ],
)
def test_the_monthly_limit_runs_by_utc_calendar_month(epoch_ms: int, month: str) -> None:
    assert utc_month(epoch_ms) == month
