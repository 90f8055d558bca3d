"""The scheduled sweep, off unless the instrument enables it, moves the units each account bought
(cancelling its asks first, reason `sweep`) to consumption, leaves a supplier's own issued units in
trading, and runs at 00/04/08/12/16/20 UTC."""

from datetime import UTC, datetime
from typing import NamedTuple

import pytest

from gridmarket.core.commands import Sweep
from gridmarket.core.events import LotCreated, OrderCancelled, Rejected, UnitsTransferred
from gridmarket.core.ids import AccountId, InstrumentId, LotId, OrderId, TradeId
from gridmarket.core.lots import next_sweep_at_ms

from .helpers import HOUR_MS, TP, TS, Market, variant


@pytest.mark.parametrize(
    ("instrument", "reason"),
    [(TP, "sweep_disabled"), (InstrumentId("nope"), "unknown_instrument")],
    ids=["disabled_by_default", "unknown_instrument"],
)
def test_sweep_refused(instrument: InstrumentId, reason: str) -> None:
    m = Market(variant(TS, sweep_enabled=True))
    m.bought("c1", 2, 1_000_000)
    m.ask("c1", 1, 1_500_000)
    before = m.balances()
    outcome = m.apply(Sweep(instrument))
    assert outcome.events == [Rejected(outcome.seq, m.now_ms, "Sweep", None, reason)]
    assert m.balances() == before


def _market(window_ms: int | None = None) -> tuple[Market, dict[str, OrderId]]:
    m = Market(variant(TP, sweep_enabled=True, consumption_window_ms=window_ms))
    m.supplier("s1", 10)
    m.supplier("s2", 5, usd_micros=10_000_000)
    m.account("c1", 10_000_000)
    m.account("c2", 10_000_000, auto_transfer=True)
    m.account("c3", 10_000_000)
    m.ask("s1", 6, 2_000_000)
    m.buy("c1", 3, 2_000_000)  # trade 1
    m.buy("s2", 2, 2_000_000)  # trade 2: a supplier buying another's units
    m.buy("c2", 1, 2_000_000)  # trade 3: straight to consumption (lot 1)
    ids = {
        "c1_ask": m.ask("c1", 1, 2_500_000),
        "s2_ask": m.ask("s2", 3, 2_600_000),
        "s1_ask": m.ask("s1", 2, 2_700_000),
        "c3_bid": m.bid("c3", 1, 1_000_000),
    }
    return m, ids


def test_sweep_moves_bought_units_and_cancels_their_asks() -> None:
    m, ids = _market()
    m.advance(HOUR_MS)
    outcome = m.apply(Sweep(TP))
    seq, ts = outcome.seq, m.now_ms
    s1, s2, c1 = AccountId("s1"), AccountId("s2"), AccountId("c1")
    assert outcome.events == [
        OrderCancelled(seq, ts, ids["s2_ask"], s2, TP, "sweep", 3),
        LotCreated(seq, ts, LotId(2), s2, TP, s1, 2_000_000, 2_000_000, (TradeId(2),), None),
        UnitsTransferred(seq, ts, s2, TP, "trading", "consumption", 2),
        OrderCancelled(seq, ts, ids["c1_ask"], c1, TP, "sweep", 1),
        LotCreated(seq, ts, LotId(3), c1, TP, s1, 2_000_000, 3_000_000, (TradeId(1),), None),
        UnitsTransferred(seq, ts, c1, TP, "trading", "consumption", 3),
    ]
    # c1: everything it bought is in consumption.
    assert m.tokens("c1") == (0, 0, 3_000_000, 0)
    # s2: its own 5 units stay in trading, the 2 it bought moved.
    assert m.tokens("s2") == (5_000_000, 0, 2_000_000, 0)
    assert [b.snapshot() for b in m.state.accounts["s2"].holdings[TP].batches] == [("s2", 0, 5, ())]
    # s1 holds only its own units: untouched, its ask still open.
    assert m.tokens("s1") == (2_000_000, 2_000_000, 0, 0)
    assert m.status(ids["s1_ask"]) == "active"
    # c2's units were already in consumption; c3's bid is not an ask.
    assert m.tokens("c2") == (0, 0, 1_000_000, 0)
    assert m.status(ids["c3_bid"]) == "active"
    assert m.usd("c3") == (9_000_000, 1_000_000)


def test_sweep_lots_take_the_consumption_window() -> None:
    m, _ = _market(window_ms=4 * HOUR_MS)
    m.advance(HOUR_MS)
    outcome = m.apply(Sweep(TP))
    assert {e.expires_at_ms for e in outcome.events if isinstance(e, LotCreated)} == {
        m.now_ms + 4 * HOUR_MS
    }


def test_a_second_sweep_finds_nothing() -> None:
    m, _ = _market()
    m.apply(Sweep(TP))
    before = m.balances()
    assert m.apply(Sweep(TP)).events == []
    assert m.balances() == before


def test_sweep_leaves_other_instruments_alone() -> None:
    m = Market(variant(TP, sweep_enabled=True), variant(TS, sweep_enabled=True))
    m.supplier("s1", 2, TS)
    m.ask("s1", 2, 1_000_000, instrument_id=TS)
    m.account("c1", 10_000_000)
    m.buy("c1", 2, 1_000_000, instrument_id=TS)
    assert m.apply(Sweep(TP)).events == []
    assert m.tokens("c1", TS) == (2_000_000, 0, 0, 0)


def _ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * 1_000  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now_ms", "next_ms"),
    [
        (_ms(2026, 1, 1, 0, 0, 0), _ms(2026, 1, 1, 4)),
        (_ms(2026, 1, 1, 0, 0, 0) + 1, _ms(2026, 1, 1, 4)),
        (_ms(2026, 1, 1, 3, 59, 59) + 999, _ms(2026, 1, 1, 4)),
        (_ms(2026, 1, 1, 4), _ms(2026, 1, 1, 8)),
        (_ms(2026, 1, 1, 11, 15), _ms(2026, 1, 1, 12)),
        (_ms(2026, 1, 1, 12), _ms(2026, 1, 1, 16)),
        (_ms(2026, 1, 1, 16, 0, 1), _ms(2026, 1, 1, 20)),
        (_ms(2026, 1, 1, 20), _ms(2026, 1, 2, 0)),
        (_ms(2026, 12, 31, 23, 59, 59), _ms(2027, 1, 1, 0)),
        (0, 4 * HOUR_MS),
    ],
    ids=[
        "midnight_to_four",
        "just_after_midnight",
        "just_before_four",
        "four_to_eight",
        "morning_to_noon",
        "noon_to_sixteen",
        "after_sixteen",
        "twenty_to_next_midnight",
        "new_year",
        "epoch",
    ],
)
def test_next_sweep_at(now_ms: int, next_ms: int) -> None:
    assert next_sweep_at_ms(now_ms) == next_ms
    assert datetime.fromtimestamp(next_ms / 1_000, UTC).hour in (0, 4, 8, 12, 16, 20)


H = HOUR_MS
DAY = _ms(2026, 1, 1)


class Due(NamedTuple):
    name: str
    #: Times (offsets from 2026-01-01T00:00Z) at which a Sweep of text-prime ran.
    swept_at: list[int]
    now: int
    due: list[InstrumentId]


# text-prime and text-standard have sweeps enabled; nothing else does.
DUES = [
    Due("never_swept_is_due", [], 1 * H, [TP, TS]),
    Due("swept_this_period_not_due", [4 * H + 10], 7 * H, [TS]),
    Due("due_again_at_the_next_boundary", [4 * H + 10], 8 * H, [TP, TS]),
    Due("swept_exactly_at_the_boundary", [8 * H], 8 * H, [TS]),
    Due("one_ms_before_the_boundary", [4 * H], 8 * H - 1, [TS]),
    Due("catches_up_after_downtime", [4 * H], 31 * H, [TP, TS]),
]


@pytest.mark.parametrize("s", DUES, ids=lambda s: s.name)
def test_sweeps_due(s: Due) -> None:
    m = Market(variant(TP, sweep_enabled=True), variant(TS, sweep_enabled=True), start_ms=DAY)
    for offset in s.swept_at:
        m.advance(DAY + offset - m.now_ms)
        assert m.apply(Sweep(TP)).events == []  # nothing to move, still recorded
    assert m.ex.sweeps_due(DAY + s.now) == s.due


def test_a_refused_sweep_is_not_recorded() -> None:
    m = Market(start_ms=DAY)
    m.apply(Sweep(TP))
    assert m.ex.sweeps_due(DAY + H) == []
    assert m.state.last_sweep_ms == {}
