"""The scheduler submits ExpireLots when a lot is due and catches up missed 4-hourly sweeps."""

import dataclasses
from pathlib import Path

from gridmarket.core.commands import (
    CreateAccount,
    IssueUnits,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
    TransferToConsumption,
)
from gridmarket.core.events import TokensForfeited
from gridmarket.core.exchange import ExchangeConfig
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.core.instruments import default_catalogue
from gridmarket.core.lots import SWEEP_PERIOD_MS
from gridmarket.service.market import MarketService
from gridmarket.service.scheduler import Scheduler

PRIME = InstrumentId("text-prime")
HOUR_MS = 3_600_000


class FakeClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _config(**changes: object) -> ExchangeConfig:
    instruments = default_catalogue()
    instruments[PRIME] = dataclasses.replace(instruments[PRIME], **changes)  # type: ignore[arg-type]
    return ExchangeConfig(instruments=instruments)


async def test_expiry_is_submitted_only_when_a_lot_is_due(tmp_path: Path) -> None:
    clock = FakeClock(10 * SWEEP_PERIOD_MS + 1)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = _config(consumption_window_ms=HOUR_MS)
    async with MarketService.from_url(url, config=config, clock=clock) as market:
        supplier = AccountId("s1")
        for command in (
            CreateAccount(supplier, is_supplier=True),
            SetSupplierCapacity(supplier, PRIME, 100_000),
            IssueUnits(supplier, PRIME, 2),
            TransferIssuanceToTrading(supplier, PRIME, 2),
            TransferToConsumption(supplier, PRIME, 2),
        ):
            await market.submit(command)
        scheduler = Scheduler(market.sequencer, clock)
        assert await scheduler.tick() == 0  # nothing has expired yet

        clock.now_ms += HOUR_MS
        subscription = market.subscribe()
        assert await scheduler.tick() == 1
        events = (await anext(subscription)).events
        subscription.close()
        assert [type(e) for e in events] == [TokensForfeited]
        assert sum(e.tokens for e in events if isinstance(e, TokensForfeited)) == 2_000_000
        assert await scheduler.tick() == 0  # nothing left to expire


async def test_a_missed_sweep_runs_once_after_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(10 * SWEEP_PERIOD_MS + HOUR_MS)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = _config(sweep_enabled=True)
    async with MarketService.from_url(url, config=config, clock=clock) as market:
        scheduler = Scheduler(market.sequencer, clock)
        assert await scheduler.tick() == 1  # the 10th boundary has not been swept
        assert await scheduler.tick() == 0
    clock.now_ms += 2 * SWEEP_PERIOD_MS  # down across two boundaries
    async with MarketService.from_url(url, config=config, clock=clock) as market:
        scheduler = Scheduler(market.sequencer, clock)
        assert await scheduler.tick() == 1  # one catch-up sweep, not two
        assert await scheduler.tick() == 0
