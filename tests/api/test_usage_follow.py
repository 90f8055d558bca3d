"""The usage model on a running market service: receipts committed before it started come from
the store, later ones from the feed, each exactly once, and a subscriber the feed drops catches
up from the store without losing or doubling a receipt."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gridmarket.core.commands import (
    Command,
    CommitTokens,
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    SettleCall,
    TransferIssuanceToTrading,
    TransferToConsumption,
)
from gridmarket.core.events import OrderRejected, Rejected
from gridmarket.core.ids import AccountId, CallId, InstrumentId
from gridmarket.service.market import MarketService
from gridmarket.service.sequencer import SequencerLimits
from gridmarket.service.usage import Usage

TP = InstrumentId("text-prime")
S1, C1 = AccountId("s1"), AccountId("c1")


async def _submit(market: MarketService, command: Command) -> None:
    outcome = await market.submit(command)
    bad = [e for e in outcome.events if isinstance(e, Rejected | OrderRejected)]
    assert not bad, (command, bad)


async def _call(market: MarketService, call: str, used: int) -> None:
    await _submit(market, CommitTokens(CallId(call), C1, TP, 100, "k1"))
    await _submit(market, SettleCall(CallId(call), used, request_id=call))


async def test_backfill_then_feed_then_catch_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limits = SequencerLimits(max_subscriber_outcomes=1)
    url = f"sqlite:///{tmp_path / 'market.db'}"
    async with MarketService.from_url(url, limits=limits, tune_gc=False) as market:
        for command in (
            CreateAccount(S1, is_supplier=True),
            SetSupplierCapacity(S1, TP, 10**9),
            IssueUnits(S1, TP, 1),
            TransferIssuanceToTrading(S1, TP, 1),
            PlaceOrder(S1, TP, "sell", "limit", 1, 2_000_000),
            CreateAccount(C1),
            Deposit(C1, 10**9),
            PlaceOrder(C1, TP, "buy", "market", 1),
            TransferToConsumption(C1, TP, 1),
        ):
            await _submit(market, command)
        await _call(market, "before", 10)  # in the store before the model starts
        model = Usage()
        async with model.following(market):
            await _call(market, "live", 20)
            # Many outcomes in one batch: more than the feed holds for the model.
            calls = [CallId(f"b{i}") for i in range(8)]
            commits = [CommitTokens(c, C1, TP, 100, "k1") for c in calls]
            await asyncio.gather(*(_submit(market, command) for command in commits))
            await asyncio.gather(*(_submit(market, SettleCall(c, 5, request_id=c)) for c in calls))
            await _submit(market, CommitTokens(CallId("open"), C1, TP, 7))
            assert await model.caught_up(market.sequencer.committed_seq, timeout_s=5)

    assert "catching up from the store" in caplog.text
    receipts = [model.receipt("c1", seq) for seq in model.receipt_seqs("c1")]
    ids = [r.request_id for r in receipts if r is not None]
    assert ids[:2] == ["before", "live"] and sorted(ids[2:]) == [f"b{i}" for i in range(8)]
    ((_, totals),) = model.daily("c1")
    # 10 + 20 + 8 × 5 tokens at 2.000 USD a million tokens: 2 micro-USD a token
    assert (totals.calls, totals.billed_tokens, totals.billed_usd_micros) == (10, 70, 140)
    assert [c.call_id for c in model.in_flight_of("c1")] == ["open"]
