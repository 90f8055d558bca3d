"""Load for the crash test: a market under continuous order flow that reports every ack.

    python tests/crash/loadgen.py DATABASE_URL [SEED]

Opens the market on DATABASE_URL (migrating and replaying what is there), opens accounts
(suppliers with issued units, funded buyers; on a store that already has them this only adds
rejections and more funds), prints `READY`, then runs many submitter tasks forever: limit and
market orders on both sides around one price, so that they rest, cross and trade, plus
cancels and transfers to consumption. After each acknowledged command it prints one flushed
JSON line: {"seq": ..., "order_id": ... or null, "trade_ids": [...]}. A printed line is a
promise: that command is committed. The crash test SIGKILLs this process at a random moment.
"""

import asyncio
import json
import random
import sys

from gridmarket.core.commands import (
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
    TransferToConsumption,
)
from gridmarket.core.events import OrderAccepted, Trade
from gridmarket.core.ids import AccountId, InstrumentId, OrderId
from gridmarket.service.market import MarketService

PRIME = InstrumentId("text-prime")
SUPPLIERS = [AccountId(f"supplier{i}") for i in range(4)]
BUYERS = [AccountId(f"buyer{i}") for i in range(8)]
TASKS = 48


def opening() -> list[Command]:
    commands: list[Command] = []
    for supplier in SUPPLIERS:
        commands += [
            CreateAccount(supplier, is_supplier=True),
            SetSupplierCapacity(supplier, PRIME, 10**11),
            IssueUnits(supplier, PRIME, 200_000),
            TransferIssuanceToTrading(supplier, PRIME, 200_000),
        ]
    for buyer in BUYERS:
        commands += [CreateAccount(buyer), Deposit(buyer, 10**13)]
    return commands


def order(rng: random.Random, recent: list[OrderId]) -> Command:
    roll = rng.random()
    if roll < 0.1 and recent:
        owner = rng.choice(SUPPLIERS + BUYERS)
        return CancelOrder(owner, rng.choice(recent))
    if roll < 0.15:
        return TransferToConsumption(rng.choice(BUYERS), PRIME, 1)
    selling = rng.random() < 0.5
    account = rng.choice(SUPPLIERS if selling else BUYERS)
    side = "sell" if selling else "buy"
    if roll < 0.3:
        return PlaceOrder(account, PRIME, side, "market", rng.randint(1, 4))
    # Mostly resting just off 2.500; a third priced through it, so they cross.
    offset = rng.randint(-5, 10) * 1_000
    price = 2_500_000 - offset if side == "buy" else 2_500_000 + offset
    return PlaceOrder(account, PRIME, side, "limit", rng.randint(1, 6), price)


async def trader(market: MarketService, rng: random.Random, recent: list[OrderId]) -> None:
    write = sys.stdout.write
    flush = sys.stdout.flush
    while True:
        outcome = await market.submit(order(rng, recent))
        order_id = None
        trade_ids = []
        for event in outcome.events:
            if type(event) is OrderAccepted:
                order_id = event.order_id
                recent.append(event.order_id)
            elif type(event) is Trade:
                trade_ids.append(event.trade_id)
        del recent[:-200]
        write(json.dumps({"seq": outcome.seq, "order_id": order_id, "trade_ids": trade_ids}))
        write("\n")
        flush()


async def main(url: str, seed: int) -> None:
    async with MarketService.from_url(url) as market:
        for command in opening():
            await market.submit(command)
        print("READY", flush=True)
        recent: list[OrderId] = []
        await asyncio.gather(
            *(trader(market, random.Random(seed * 1_000 + i), recent) for i in range(TASKS))
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1))
