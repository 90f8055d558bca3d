"""A deterministic, varied command stream for store and sequencer tests.

`workload(seed, n)` opens a few accounts (two suppliers with issued units, three buyers, one
of them auto-transferring), then mixes limit and market orders on both sides around one price
(so they rest, cross and trade), cancels, transfers to consumption, token commits and
settlements, withdrawals, payouts, expiry and refused commands. Commands never depend on
earlier outcomes (order ids to cancel are guessed from the count of commands so far), so the
stream is the same however its commands are interleaved.
"""

import random

from gridmarket.core.commands import (
    CancelAllOrders,
    CancelOrder,
    Command,
    CommitTokens,
    CreateAccount,
    Deposit,
    ExpireLots,
    IssueUnits,
    PlaceOrder,
    SetAutoTransfer,
    SetSupplierCapacity,
    SettleCall,
    SupplierPayout,
    Sweep,
    TransferIssuanceToTrading,
    TransferToConsumption,
    TransferToTrading,
    Withdraw,
)
from gridmarket.core.ids import AccountId, CallId, InstrumentId, OrderId

PRIME = InstrumentId("text-prime")
USD = 1_000_000
SUPPLIERS = [AccountId("s1"), AccountId("s2")]
BUYERS = [AccountId("b1"), AccountId("b2"), AccountId("b3")]


def opening() -> list[Command]:
    commands: list[Command] = []
    for supplier in SUPPLIERS:
        commands += [
            CreateAccount(supplier, is_supplier=True),
            Deposit(supplier, 1_000 * USD),
            SetSupplierCapacity(supplier, PRIME, 10**9),
            IssueUnits(supplier, PRIME, 10_000),
            TransferIssuanceToTrading(supplier, PRIME, 10_000),
        ]
    for buyer in BUYERS:
        commands += [
            CreateAccount(buyer, auto_transfer=buyer == BUYERS[2]),
            Deposit(buyer, 1_000_000 * USD),
        ]
    return commands


def random_command(rng: random.Random, sequenced: int, call_ids: list[CallId]) -> Command:
    """One command of the mix; `sequenced` is how many came before (for guessing order ids)."""
    account = rng.choice(SUPPLIERS + BUYERS)
    buyer = rng.choice(BUYERS)
    price = rng.randint(2_400, 2_600) * 1_000
    roll = rng.random()
    if roll < 0.40:
        side = "sell" if account in SUPPLIERS else "buy"
        return PlaceOrder(
            account,
            PRIME,
            side,
            "limit",
            rng.randint(1, 5),
            price,
            time_in_force=rng.choice(("gtc", "gtc", "gtc", "ioc", "fok")),
            post_only=rng.random() < 0.1,
            client_order_id=f"c{rng.randint(0, 40)}" if rng.random() < 0.2 else None,
        )
    if roll < 0.50:
        return PlaceOrder(buyer, PRIME, "buy", "market", rng.randint(1, 3))
    if roll < 0.55:
        return PlaceOrder(rng.choice(SUPPLIERS), PRIME, "sell", "market", rng.randint(1, 3))
    if roll < 0.65:
        return CancelOrder(account, OrderId(rng.randint(1, max(1, sequenced))))
    if roll < 0.67:
        return CancelAllOrders(account, rng.choice((None, PRIME)))
    if roll < 0.73:
        return TransferToConsumption(buyer, PRIME, rng.randint(1, 2))
    if roll < 0.79:
        call_id = CallId(f"call{sequenced}")
        call_ids.append(call_id)
        return CommitTokens(call_id, buyer, PRIME, rng.randint(1, 400_000))
    if roll < 0.85 and call_ids:
        return SettleCall(call_ids.pop(0), rng.randint(0, 500_000))
    if roll < 0.88:
        return Withdraw(buyer, rng.randint(1, 5) * USD)
    if roll < 0.90:
        return SupplierPayout(rng.choice(SUPPLIERS), rng.randint(1, 5) * USD)
    if roll < 0.92:
        return SetAutoTransfer(buyer, rng.random() < 0.5)
    if roll < 0.94:
        return TransferToTrading(buyer, PRIME, 1)  # always refused
    if roll < 0.96:
        return ExpireLots()
    if roll < 0.97:
        return Sweep(PRIME)
    return Deposit(AccountId("nobody"), USD)  # refused: unknown account


def workload(seed: int, n: int) -> list[Command]:
    """The opening, then `n` mixed commands."""
    rng = random.Random(seed)
    commands = opening()
    call_ids: list[CallId] = []
    while len(commands) < len(opening()) + n:
        commands.append(random_command(rng, len(commands), call_ids))
    return commands
