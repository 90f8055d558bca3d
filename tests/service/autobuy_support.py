"""Shared set-up for the Auto Mode service tests: a real market with supplier asks on a book."""

from __future__ import annotations

import asyncio

from gridmarket.adapters import registry
from gridmarket.adapters.registry import AutoReload, Mode
from gridmarket.core.commands import (
    CreateAccount,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.events import OrderAccepted, Rejected
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.gateway.contract import Caller
from gridmarket.service import accounts
from gridmarket.service.market import MarketService

PRIME = InstrumentId("text-prime")
USD = 1_000_000


async def ask(
    market: MarketService, supplier: str, units: int, price_usd_micros: int, *, fresh: bool = True
) -> None:
    """A supplier issues `units` and rests them as one ask at `price_usd_micros`."""
    supplier_id = AccountId(supplier)
    commands: list[object] = []
    if fresh:
        commands += [
            CreateAccount(supplier_id, is_supplier=True),
            SetSupplierCapacity(supplier_id, PRIME, 10**9),
        ]
    commands += [
        IssueUnits(supplier_id, PRIME, units),
        TransferIssuanceToTrading(supplier_id, PRIME, units),
        PlaceOrder(supplier_id, PRIME, "sell", "limit", units, price_usd_micros),
    ]
    for command in commands:
        outcome = await market.submit(command)  # type: ignore[arg-type]
        assert not any(isinstance(e, Rejected) for e in outcome.events), outcome.events
    assert isinstance(outcome.events[0], OrderAccepted), outcome.events


async def buyer(
    market: MarketService, *, mode: Mode = "easy", usd_micros: int = 0, name: str = "buyer"
) -> Caller:
    """A registered account (registry row and core account) holding `usd_micros`."""
    opened = await accounts.open_account(market, name=name, is_supplier=False, mode=mode)
    if usd_micros:
        await accounts.deposit(market, opened.account_id, usd_micros)
    return Caller(opened.account_id, "key_" + name)


async def enable_reload(
    market: MarketService, account_id: str, threshold: int, amount: int, monthly_limit: int
) -> None:
    await asyncio.to_thread(
        registry.update_auto_reload,
        market.store.engine,
        account_id,
        lambda _stored: AutoReload(True, threshold, amount, monthly_limit),
    )


def usd_available(market: MarketService, account_id: str) -> int:
    return market.sequencer.exchange.balance(f"{account_id}/usd/available")


def consumption_tokens(market: MarketService, account_id: str) -> int:
    return market.sequencer.exchange.balance(f"{account_id}/{PRIME}/consumption_available")


def orders_of(market: MarketService, account_id: str) -> list[object]:
    state = market.sequencer.exchange.state
    return [o for o in state.orders.values() if o.account_id == account_id]
