"""The usage read model, fed a real exchange's outcomes: one receipt per settled call with its
lots, funding trades and USD value (ceil per lot), the lots another supplier delivered and what
was paid for them, calls in flight, daily totals per UTC day,
key and instrument, and the per-account bound on retained receipts."""

from __future__ import annotations

from gridmarket.core.commands import CommitTokens, PlaceOrder, SettleCall, TransferToConsumption
from gridmarket.core.events import CallSettled, LotCreated, Trade
from gridmarket.core.ids import AccountId, CallId
from gridmarket.service.usage import (
    BilledLot,
    Substitution,
    Usage,
    lot_value_usd_micros,
    tokens_per_second,
)

from .helpers import START_MS, TP, Market, of_type

C1 = AccountId("c1")
DAY_MS = 86_400_000


class Fed:
    """A market whose every outcome is applied to a `Usage` model, as the feed would."""

    def __init__(self) -> None:
        self.m = Market()
        self.usage = Usage(max_receipts_per_account=10)
        self.trades: list[Trade] = []

    def apply(self, command: object) -> list[object]:
        outcome = self.m.apply(command)  # type: ignore[arg-type]
        self.usage.apply_outcome(outcome.seq, outcome.ts_ms, outcome.events)
        self.trades.extend(of_type(outcome.events, Trade))
        return list(outcome.events)

    def commit(self, call: str, tokens: int, key: str | None) -> None:
        events = self.apply(CommitTokens(CallId(call), C1, TP, tokens, key))
        assert type(events[0]).__name__ == "TokensCommitted", events

    def settle(self, call: str, used: int, **receipt: object) -> CallSettled:
        events = self.apply(SettleCall(CallId(call), used, **receipt))  # type: ignore[arg-type]
        (settled,) = of_type(events, CallSettled)
        return settled


def _two_lots() -> tuple[Fed, list[LotCreated]]:
    """c1 buys 1 unit from s1 at 2.000 and 1 from s2 at 2.500, then moves both to consumption."""
    f = Fed()
    m = f.m
    for name, price in (("s1", 2_000_000), ("s2", 2_500_000)):
        m.supplier(name, 1)
        f.apply(PlaceOrder(AccountId(name), TP, "sell", "limit", 1, price))
    m.account("c1", 10_000_000)
    f.apply(PlaceOrder(C1, TP, "buy", "market", 2, None))
    events = f.apply(TransferToConsumption(C1, TP, 2))
    return f, of_type(events, LotCreated)


def test_a_receipt_names_its_lots_funding_trades_and_value() -> None:
    f, lots = _two_lots()
    assert [(lot.supplier_id, lot.price_usd_micros) for lot in lots] == [
        ("s1", 2_000_000),
        ("s2", 2_500_000),
    ]
    trade_by_seller = {t.seller_account_id: t.trade_id for t in f.trades}
    f.m.advance(1_000)
    f.commit("a", 1_500_000, "k1")
    f.m.advance(2_000)
    settled = f.settle(
        "a",
        1_200_000,
        request_id="req_a",
        supplier_id="s1",
        model="smollm2",
        prompt_tokens=200_000,
        completion_tokens=1_000_000,
        ttft_ms=400,
        duration_ms=2_400,
    )
    (seq,) = f.usage.receipt_seqs("c1")
    receipt = f.usage.receipt("c1", seq)
    assert receipt is not None and receipt.seq == settled.seq
    assert receipt == f.usage.receipt_by_request("c1", "req_a")
    assert receipt.billed_lots == (
        BilledLot(lots[0].lot_id, 1_000_000, "s1", 2_000_000, (trade_by_seller["s1"],), 2_000_000),
        # 200,000 tokens at 2.500 a million: 0.500 USD
        BilledLot(lots[1].lot_id, 200_000, "s2", 2_500_000, (trade_by_seller["s2"],), 500_000),
    )
    assert receipt.billed_usd_micros == 2_500_000
    # s1 delivered s2's lot too: s2 paid s1 for its 200,000 tokens
    assert receipt.substitutions == (Substitution(lots[1].lot_id, "s2", "s1", 200_000, 500_000, 0),)
    assert (receipt.used_tokens, receipt.billed_tokens, receipt.released_tokens) == (
        1_200_000,
        1_200_000,
        300_000,
    )
    assert (receipt.committed_tokens, receipt.key_id, receipt.model) == (1_500_000, "k1", "smollm2")
    assert receipt.started_ms == START_MS + 1_000 and receipt.settled_ms == START_MS + 3_000
    # 1,000,000 completion tokens over 2,000 ms of generation
    assert receipt.tokens_per_second == 500_000
    assert f.usage.in_flight == {}


def test_value_rounds_up_per_lot_and_failed_calls_cost_nothing() -> None:
    f, _ = _two_lots()
    f.commit("a", 1_000_003, "k1")  # all of lot 1 and 3 tokens of lot 2
    receipt_a = f.settle("a", 1_000_003, request_id="a")
    f.commit("b", 100, "k2")
    f.settle("b", 0, request_id="b", status="failed")
    a = f.usage.receipt_by_request("c1", "a")
    b = f.usage.receipt_by_request("c1", "b")
    assert a is not None and b is not None and a.seq == receipt_a.seq
    # 3 tokens at 2.500 a million are 7.5 micro-USD: rounded up to 8
    assert [lot.value_usd_micros for lot in a.billed_lots] == [2_000_000, 8]
    assert a.billed_usd_micros == 2_000_008
    assert (b.billed_tokens, b.billed_usd_micros, b.billed_lots, b.status) == (0, 0, (), "failed")


def test_calls_in_flight_until_settled() -> None:
    f, _ = _two_lots()
    f.commit("a", 10, "k1")
    f.commit("b", 20, None)
    assert sorted(
        (c.call_id, c.committed_tokens, c.key_id) for c in f.usage.in_flight_of("c1")
    ) == [("a", 10, "k1"), ("b", 20, None)]
    assert f.usage.in_flight_by_instrument() == {TP: 2}
    f.settle("a", 5)
    assert [c.call_id for c in f.usage.in_flight_of("c1")] == ["b"]
    assert f.usage.in_flight_of("s1") == []


def test_daily_totals_per_utc_day_key_and_instrument() -> None:
    f, _ = _two_lots()
    day0 = f.m.now_ms // DAY_MS
    f.commit("a", 1_000, "k1")
    f.settle("a", 600, prompt_tokens=100, completion_tokens=500)  # lot 1 at 2.000: 1,200
    f.commit("b", 1_000, "k1")
    f.settle("b", 0, status="failed")
    f.commit("c", 1_000, "k2")
    f.settle("c", 1_000, prompt_tokens=400, completion_tokens=600)  # 2,000
    f.m.advance(DAY_MS)
    f.commit("d", 500, "k1")
    f.settle("d", 500, prompt_tokens=50, completion_tokens=450)  # 1,000
    rows = {
        (key.day - day0, key.key_id): (
            t.calls,
            t.ok_calls,
            t.failed_calls,
            t.prompt_tokens,
            t.completion_tokens,
            t.billed_tokens,
            t.billed_usd_micros,
        )
        for key, t in f.usage.daily("c1")
    }
    assert rows == {
        (0, "k1"): (2, 1, 1, 100, 500, 600, 1_200),
        (0, "k2"): (1, 1, 0, 400, 600, 1_000, 2_000),
        (1, "k1"): (1, 1, 0, 50, 450, 500, 1_000),
    }
    assert [key.day - day0 for key, _ in f.usage.daily("c1")] == [1, 0, 0]  # newest day first
    lifetime = f.usage.totals[(TP, "k1")]
    assert (lifetime.calls, lifetime.billed_tokens, lifetime.billed_usd_micros) == (3, 1_100, 2_200)
    assert f.usage.calls_by_status == {(TP, "ok"): 3, (TP, "failed"): 1}
    assert f.usage.daily("s1") == []


def test_only_the_newest_receipts_are_kept_but_totals_count_all() -> None:
    f, _ = _two_lots()
    for i in range(12):
        f.commit(f"call{i}", 10, "k1")
        f.settle(f"call{i}", 10, request_id=f"r{i}")
    kept = [f.usage.receipt("c1", s) for s in f.usage.receipt_seqs("c1")]
    # the 11th goes over 10: the excess and the oldest tenth (r0, r1) are dropped
    assert [r.request_id for r in kept if r is not None] == [f"r{i}" for i in range(2, 12)]
    assert f.usage.receipt_by_request("c1", "r0") is None
    ((_, totals),) = f.usage.daily("c1")
    assert (totals.calls, totals.billed_tokens) == (12, 120)


def test_outcomes_applied_twice_count_once() -> None:
    f, _ = _two_lots()
    f.commit("a", 10, "k1")
    outcome = f.m.apply(SettleCall(CallId("a"), 10))
    f.usage.apply_outcome(outcome.seq, outcome.ts_ms, outcome.events)
    f.usage.apply_outcome(outcome.seq, outcome.ts_ms, outcome.events)
    assert len(f.usage.receipt_seqs("c1")) == 1


def test_arithmetic_helpers() -> None:
    assert lot_value_usd_micros(1, 1_000) == 1  # 0.001 micro-USD rounds up to 1
    assert lot_value_usd_micros(0, 5_000_000) == 0
    assert lot_value_usd_micros(3, 2_500_000) == 8
    assert tokens_per_second(90, 100, 1_100) == 90  # 90 tokens in 1,000 ms of generation
    assert tokens_per_second(90, None, 1_000) == 90
    assert tokens_per_second(90, 1_000, 1_000) == 90  # TTFT not below duration: whole duration
    assert tokens_per_second(0, 10, 100) is None
    assert tokens_per_second(5, None, None) is None
    assert tokens_per_second(5, None, 0) is None


def test_daily_rows_are_bounded_oldest_day_first() -> None:
    f, _ = _two_lots()
    f.usage = Usage(max_receipts_per_account=10, max_daily_rows_per_account=2)
    day0 = f.m.now_ms // DAY_MS
    for i, (key, days) in enumerate(((None, 0), ("k1", 0), ("k1", 1))):
        f.m.advance(days * DAY_MS)
        f.commit(f"c{i}", 10, key)
        f.settle(f"c{i}", 10)
    # the third row goes over 2: the first row of the oldest day (no key) is dropped
    assert [(k.day - day0, k.key_id) for k, _ in f.usage.daily("c1")] == [(1, "k1"), (0, "k1")]
