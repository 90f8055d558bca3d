"""The market's clock-driven commands: lot expiry and the scheduled 4-hourly sweeps.

The core never reads a clock, so something must tell it that time has passed. The scheduler
polls the sequencer's live state every `poll_interval_s` and submits `ExpireLots` when a lot
with uncommitted tokens has expired, and `Sweep(instrument)` for each instrument whose sweep is
enabled and whose latest 00/04/08/12/16/20 UTC boundary has not been swept yet (so a sweep
missed while the server was down runs as soon as it is back). These are ordinary commands:
logged, replayed, acknowledged like any other.
"""

import asyncio
import logging

from gridmarket.core.commands import ExpireLots, Sweep
from gridmarket.service.errors import ServiceError
from gridmarket.service.sequencer import Clock, Sequencer

log = logging.getLogger("gridmarket.scheduler")


class Scheduler:
    def __init__(self, sequencer: Sequencer, clock: Clock, poll_interval_s: float = 1.0) -> None:
        self._sequencer = sequencer
        self._clock = clock
        self._poll_interval_s = poll_interval_s

    async def tick(self) -> int:
        """Submit whatever is due now; the number of commands submitted."""
        now_ms = self._clock()
        exchange = self._sequencer.exchange
        submitted = 0
        expiry_ms = exchange.next_expiry_ms()
        if expiry_ms is not None and expiry_ms <= now_ms:
            await self._sequencer.submit(ExpireLots())
            submitted += 1
        for instrument_id in exchange.sweeps_due(now_ms):
            await self._sequencer.submit(Sweep(instrument_id))
            submitted += 1
        return submitted

    async def run(self) -> None:
        """Tick until cancelled; a failed tick is logged and retried on the next one."""
        while True:
            try:
                await self.tick()
            except ServiceError as error:
                log.warning("scheduler tick failed: %s", error)
            await asyncio.sleep(self._poll_interval_s)
