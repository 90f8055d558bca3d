"""Opening accounts: the registry row first, then `CreateAccount` through the sequencer.

    opened = await open_account(market, name="alice", is_supplier=False, mode="easy")

Order and crash repair. The registry (names, modes, keys: `adapters.registry`) and the core's
command log are written in two steps, not one transaction: the log is the sequencer's alone.
The registry row (with the account's first signing and consumption keys) is written FIRST, in
one transaction; only then is `CreateAccount` submitted. A crash between the two leaves an
account that is registered but unknown to the core, never the reverse. `open_market` repairs
that on every start, before the server answers anything: `repair_missing_accounts` re-submits
`CreateAccount` (same id, same flags, derived from the registry row) for every registered
account the replayed core lacks. The operator who created the account got no answer (the
response is sent only after the commit), so an optional deposit asked for in that request was
not made either, and must be repeated; the keys already handed out cannot have been, since
nothing was returned.

Mode: an `easy` (Auto Mode) account is created with auto-transfer on, so bought units go
straight to consumption; `advanced` with it off.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import NamedTuple

from gridmarket.adapters import registry
from gridmarket.adapters.registry import AccountRecord, ConsumptionKeyRecord, Mode, SigningKeyRecord
from gridmarket.auth.keys import display_prefix, new_consumption_key
from gridmarket.auth.signing import fingerprint, generate_keypair
from gridmarket.core.commands import CreateAccount, Deposit
from gridmarket.core.events import AccountCreated, Rejected, UsdMoved
from gridmarket.core.exchange import Outcome
from gridmarket.core.ids import AccountId
from gridmarket.service.market import MarketService
from gridmarket.service.sequencer import system_clock_ms


class OpenedAccount(NamedTuple):
    """What the operator gets back once, secrets included; nothing here is stored in clear."""

    account_id: AccountId
    consumption_key: str
    #: Standard base64 of the 32-byte Ed25519 seed.
    private_key: str
    public_key: str
    fingerprint: str


class DepositRefused(Exception):
    """The core refused a deposit (`reason`: a `RejectReason` value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_account_id() -> AccountId:
    """A random id: `acct_` and 24 hex digits (fits the core's 64-character limit, no `/`)."""
    return AccountId("acct_" + secrets.token_hex(12))


def create_account_command(account: AccountRecord) -> CreateAccount:
    """The core command for a registry row: the same one when opening and when repairing."""
    return CreateAccount(account.account_id, account.is_supplier, account.mode == "easy")


async def open_account(
    market: MarketService, *, name: str, is_supplier: bool, mode: Mode
) -> OpenedAccount:
    """Register an account with a signing key and a consumption key, then create it in the core."""
    now_ms = system_clock_ms()
    account = AccountRecord(new_account_id(), name, is_supplier, mode, now_ms)
    seed, public_raw = generate_keypair()
    public_key = base64.b64encode(public_raw).decode("ascii")
    key_fingerprint = fingerprint(public_raw)
    plaintext, key_id, key_hash = new_consumption_key()
    await asyncio.to_thread(
        registry.insert_account,
        market.store.engine,
        account,
        SigningKeyRecord(key_fingerprint, account.account_id, public_key, now_ms),
        ConsumptionKeyRecord(
            key_id, account.account_id, key_hash, display_prefix(plaintext), now_ms
        ),
    )
    outcome = await market.submit(create_account_command(account))
    assert isinstance(outcome.events[0], AccountCreated), outcome.events  # a fresh random id
    return OpenedAccount(
        account.account_id,
        plaintext,
        base64.b64encode(seed).decode("ascii"),
        public_key,
        key_fingerprint,
    )


async def deposit(market: MarketService, account_id: AccountId, amount_usd_micros: int) -> Outcome:
    """Credit USD from outside; `DepositRefused` if the core refuses it."""
    outcome = await market.submit(Deposit(account_id, amount_usd_micros))
    event = outcome.events[0]
    if isinstance(event, Rejected):
        raise DepositRefused(event.reason)
    assert isinstance(event, UsdMoved), outcome.events
    return outcome


async def repair_missing_accounts(market: MarketService) -> list[AccountId]:
    """Create in the core every registered account it lacks; the ids created, oldest first.

    Run once the sequencer has replayed the log and before the server takes requests, so no
    `open_account` can be between its two steps at the same time.
    """
    engine = market.store.engine
    known = market.sequencer.exchange.state.accounts
    missing = [
        a for a in await asyncio.to_thread(registry.all_account_ids, engine) if a not in known
    ]
    repaired: list[AccountId] = []
    for account_id in missing:
        account = await asyncio.to_thread(registry.get_account, engine, account_id)
        assert account is not None
        outcome = await market.submit(create_account_command(account))
        assert isinstance(outcome.events[0], AccountCreated), outcome.events
        repaired.append(account_id)
    return repaired
