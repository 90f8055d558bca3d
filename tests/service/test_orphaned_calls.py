"""A call a crash left in flight is settled as failed and unbilled when the server's market
opens again: its tokens are released, the receipt says `failed`, the ledger balances."""

from __future__ import annotations

from pathlib import Path

from autobuy_support import PRIME, ask, buyer

from gridmarket.core.commands import CommitTokens, PlaceOrder, SettleCall, TransferToConsumption
from gridmarket.core.events import CallSettled, TokensCommitted
from gridmarket.core.ids import CallId
from gridmarket.service.audit import audit_store
from gridmarket.service.market import MarketService
from gridmarket.service.runtime import open_market, settle_orphaned_calls
from gridmarket.settings import Settings

USD = 1_000_000


async def test_orphaned_calls_are_settled_failed_and_unbilled(
    database_url: str, tmp_path: Path
) -> None:
    async with MarketService.from_url(database_url, tune_gc=False) as market:
        await ask(market, "supplier", 2, 1_000 * 1_000)
        caller = await buyer(market, mode="advanced", usd_micros=10 * USD)
        account = caller.account_id
        await market.submit(PlaceOrder(account, PRIME, "buy", "limit", 2, 1_000_000))
        await market.submit(TransferToConsumption(account, PRIME, 2))
        done = await market.submit(CommitTokens(CallId("done"), account, PRIME, 500, "k", None))
        assert isinstance(done.events[0], TokensCommitted)
        await market.submit(SettleCall(CallId("done"), 400, request_id="r1"))
        for call in ("cut-1", "cut-2"):
            outcome = await market.submit(CommitTokens(CallId(call), account, PRIME, 300, "k"))
            assert isinstance(outcome.events[0], TokensCommitted)
        available_key = f"{account}/{PRIME}/consumption_available"
        tokens_before = market.sequencer.exchange.balance(available_key)

    # The process died here, calls cut-1 and cut-2 in flight. The market opens again.
    settings = Settings.resolve(data_dir=tmp_path, database_url=database_url, environ={})
    async with open_market(settings) as market:
        state = market.sequencer.exchange.state
        assert state.calls == {}
        exchange = market.sequencer.exchange
        available = exchange.balance(available_key)
        assert available == tokens_before + 600  # both commitments released, nothing billed
        assert exchange.balance(f"{account}/{PRIME}/consumption_committed") == 0
        assert state.key_tokens == {"k": 400}  # only the settled call's billed tokens count
        # Nothing left to settle: a second pass does nothing.
        assert await settle_orphaned_calls(market) == 0
        settled = [
            event
            for _, event in market.store.load_events(0)
            if isinstance(event, CallSettled) and event.call_id.startswith("cut-")
        ]
    assert sorted((e.call_id, e.billed_tokens, e.released_tokens, e.status) for e in settled) == [
        ("cut-1", 0, 300, "failed"),
        ("cut-2", 0, 300, "failed"),
    ]
    assert audit_store(database_url).balanced
