"""An account's settings and its money out, for the account itself and for the operator.

Settings (grid-api-notes.md §7.3), served as
`{account_mode, auto_transfer_enabled, auto_buy_enabled, auto_top_up_enabled, auto_reload_enabled,
auto_reload_threshold_usd, auto_reload_amount_usd, auto_reload_monthly_limit_usd,
mode_managed_fields}`; `auto_top_up_enabled` is The Grid's name for auto-buy, served too.

Modes (DESIGN §10, §7): `easy` (Auto Mode) manages `auto_transfer_enabled` and
`auto_buy_enabled`, both always on; a write that would turn either off is a 403
`mode_managed_setting`, a write that keeps them on is accepted and changes nothing.
`advanced` leaves both free. Entering a mode applies its defaults: `easy` turns both on,
`advanced` turns both off (as an account opened in that mode has them), and they can then
be set. Switching to the mode the account is already in changes nothing.

Where each setting lives: the mode, auto-buy and Auto-Reload in the registry (`accounts`
row); auto-transfer in the core (command `SetAutoTransfer`, in the command log), because the
core applies it on every fill. A mode switch writes both, in the order that never leaves a
state its mode forbids if the process dies in between: to `easy`, the core first (auto-transfer
on is allowed in `advanced`); to `advanced`, the registry first. In this process, settings
writes run one at a time (one lock), and the signed-request key cache forgets the account at
once, so its next order sees the new mode.

Auto-Reload: `PATCH .../auto_reload {enabled, threshold, amount, monthly_limit}`, any subset,
amounts as USD decimal strings (or null to clear, only while disabled). Enabled needs all
three, `amount` <= `monthly_limit`, each at most the exchange's largest single USD move. With
the Stripe payment provider configured, `amount` (what each charge is a multiple of) must also
be whole cents and at least 0.50 (Stripe's smallest charge), checked whenever it is given or
Auto-Reload is enabled. This
module only stores them; Auto Mode's buyer (`gateway.autobuy`) reads them when a call needs
tokens and charges the payment method through `adapters.payment`.

Money out: `Withdraw` and `SupplierPayout` through the core; a refusal is a 422 whose code is
the core's reason (`insufficient_funds`, `not_a_supplier`, `invalid_amount`, or
`receivable_outstanding` while a supplier owes the operator for substitutions).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from starlette.datastructures import State

from gridmarket.adapters import registry
from gridmarket.adapters.registry import MODES, AutoReload, Mode
from gridmarket.adapters.stripe_payment import reload_amount_problem
from gridmarket.api import wire
from gridmarket.api.bodies import boolean, invalid, object_of, usd_micros
from gridmarket.api.errors import Problem
from gridmarket.api.key_ops import forget_cached_keys
from gridmarket.core.commands import SetAutoTransfer, SupplierPayout, Withdraw
from gridmarket.core.events import AutoTransferSet, Rejected, UsdMoved
from gridmarket.core.ids import AccountId
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

MODE_MANAGED_FIELDS = ("auto_transfer_enabled", "auto_buy_enabled", "auto_top_up_enabled")
AUTO_RELOAD_FIELDS = ("enabled", "threshold", "amount", "monthly_limit")
MODE_MANAGED_CODE = "mode_managed_setting"


def _lock(state: State) -> asyncio.Lock:
    # Created on first use; no await between the check and the set, so exactly once.
    if getattr(state, "settings_lock", None) is None:
        state.settings_lock = asyncio.Lock()
    lock: asyncio.Lock = state.settings_lock
    return lock


def _not_found(account_id: str) -> Problem:
    return Problem(404, "account_not_found", f"no account {account_id!r}")


def _core_auto_transfer(market: MarketService, account_id: str, mode: Mode) -> bool:
    account = market.sequencer.exchange.state.accounts.get(AccountId(account_id))
    # Only between a crash and the start-up repair can the core lack a registered account.
    return mode == "easy" if account is None else account.auto_transfer


def _usd(micros: int | None) -> str | None:
    return None if micros is None else wire.usd(micros)


async def read_settings(market: MarketService, account_id: str) -> dict[str, Any]:
    stored = await asyncio.to_thread(registry.get_settings, market.store.engine, account_id)
    if stored is None:
        raise _not_found(account_id)
    easy = stored.mode == "easy"
    auto_buy = easy or bool(stored.auto_buy_enabled)
    return {
        "account_mode": stored.mode,
        "auto_transfer_enabled": _core_auto_transfer(market, account_id, stored.mode),
        "auto_buy_enabled": auto_buy,
        "auto_top_up_enabled": auto_buy,
        "auto_reload_enabled": stored.auto_reload_enabled,
        "auto_reload_threshold_usd": _usd(stored.auto_reload_threshold_usd_micros),
        "auto_reload_amount_usd": _usd(stored.auto_reload_amount_usd_micros),
        "auto_reload_monthly_limit_usd": _usd(stored.auto_reload_monthly_limit_usd_micros),
        "mode_managed_fields": list(MODE_MANAGED_FIELDS) if easy else [],
    }


async def _submit_auto_transfer(market: MarketService, account_id: str, enabled: bool) -> None:
    if _core_auto_transfer(market, account_id, "advanced") == enabled:
        return
    outcome = await market.submit(SetAutoTransfer(AccountId(account_id), enabled))
    if not any(isinstance(event, AutoTransferSet) for event in outcome.events):
        raise Problem(409, "account_not_ready", "the account is not open in the market yet")


async def _mode_of(market: MarketService, account_id: str) -> Mode:
    stored = await asyncio.to_thread(registry.get_settings, market.store.engine, account_id)
    if stored is None:
        raise _not_found(account_id)
    return stored.mode


def mode_value(value: object, field: str = "mode") -> Mode:
    if value not in MODES:
        raise invalid(field, "must be easy or advanced")
    return "easy" if value == "easy" else "advanced"


async def set_mode(state: State, market: MarketService, account_id: str, mode: Mode) -> None:
    """Switch the account's mode, applying the new mode's defaults (see the module doc)."""
    engine = market.store.engine
    async with _lock(state):
        if await _mode_of(market, account_id) == mode:
            return
        if mode == "easy":
            await _submit_auto_transfer(market, account_id, True)
            await asyncio.to_thread(registry.set_mode, engine, account_id, mode)
        else:
            await asyncio.to_thread(registry.set_mode, engine, account_id, mode)
            await _submit_auto_transfer(market, account_id, False)
        forget_cached_keys(state, account_id)


def _managed_refusal(field: str) -> Problem:
    return Problem(
        403,
        MODE_MANAGED_CODE,
        f"{field} is managed by Auto Mode (easy): switch to advanced to turn it off",
    )


async def set_auto_transfer(
    state: State, market: MarketService, account_id: str, enabled: bool | None
) -> None:
    """Set auto-transfer on fill; None (The Grid's `auto_transfer_override: null`): the mode's."""
    async with _lock(state):
        mode = await _mode_of(market, account_id)
        wanted = mode == "easy" if enabled is None else enabled
        if mode == "easy" and not wanted:
            raise _managed_refusal("auto_transfer_enabled")
        await _submit_auto_transfer(market, account_id, wanted)


async def set_auto_buy(
    state: State, market: MarketService, account_id: str, enabled: bool | None
) -> None:
    """Set auto-buy; None flips it (The Grid's `auto-top-up/toggle`)."""
    engine = market.store.engine
    async with _lock(state):
        stored = await asyncio.to_thread(registry.get_settings, engine, account_id)
        if stored is None:
            raise _not_found(account_id)
        if stored.mode == "easy":
            if enabled is not True:
                raise _managed_refusal("auto_buy_enabled")
            return
        wanted = not stored.auto_buy_enabled if enabled is None else enabled
        await asyncio.to_thread(registry.set_auto_buy, engine, account_id, wanted)


async def patch_auto_reload(
    state: State, market: MarketService, account_id: str, body: dict[str, Any]
) -> None:
    limit = market.sequencer.exchange.state.config.max_usd_move_usd_micros
    settings = getattr(state, "settings", None)
    stripe = isinstance(settings, Settings) and settings.payment.provider == "stripe"
    object_of(body, AUTO_RELOAD_FIELDS, field="body")
    if not body:
        raise invalid("body", "give at least one of " + ", ".join(AUTO_RELOAD_FIELDS))
    given: dict[str, Any] = {}
    if "enabled" in body:
        given["enabled"] = boolean(body["enabled"], "enabled")
    for field in AUTO_RELOAD_FIELDS[1:]:
        if field in body:
            value = body[field]
            given[field] = None if value is None else usd_micros(value, field, limit)

    def change(stored: AutoReload) -> AutoReload:
        new = AutoReload(
            given.get("enabled", stored.enabled),
            given.get("threshold", stored.threshold_usd_micros),
            given.get("amount", stored.amount_usd_micros),
            given.get("monthly_limit", stored.monthly_limit_usd_micros),
        )
        if new.enabled:
            for field, value in zip(AUTO_RELOAD_FIELDS[1:], new[1:], strict=True):
                if value is None:
                    raise invalid(field, "required while Auto-Reload is enabled")
        if (
            new.amount_usd_micros is not None
            and new.monthly_limit_usd_micros is not None
            and new.amount_usd_micros > new.monthly_limit_usd_micros
        ):
            raise invalid("amount", "must not exceed monthly_limit")
        if stripe and new.amount_usd_micros is not None and (new.enabled or "amount" in given):
            problem = reload_amount_problem(new.amount_usd_micros)
            if problem is not None:
                raise invalid("amount", problem)
        return new

    async with _lock(state):
        updated = await asyncio.to_thread(
            registry.update_auto_reload, market.store.engine, account_id, change
        )
    if updated is None:
        raise _not_found(account_id)


# -- money out ------------------------------------------------------------------------------------


async def move_usd_out(
    market: MarketService,
    account_id: str,
    body: dict[str, Any],
    kind: Literal["withdrawal", "payout"],
) -> dict[str, Any]:
    """A withdrawal or supplier payout of `{"amount_usd": "12.50"}`; the record made."""
    object_of(body, ("amount_usd",), field="body")
    if "amount_usd" not in body:
        raise invalid("amount_usd", "required")
    limit = market.sequencer.exchange.state.config.max_usd_move_usd_micros
    amount = usd_micros(body["amount_usd"], "amount_usd", limit)
    command = (Withdraw if kind == "withdrawal" else SupplierPayout)(AccountId(account_id), amount)
    outcome = await market.submit(command)
    for event in outcome.events:
        if isinstance(event, Rejected):
            raise Problem(422, event.reason, f"{kind} refused: {event.reason}")
    assert any(isinstance(e, UsdMoved) for e in outcome.events), outcome.events
    record_id = ("wd_" if kind == "withdrawal" else "po_") + str(outcome.seq)
    available = market.sequencer.exchange.balance(f"{account_id}/usd/available")
    return {
        f"{kind}_id": record_id,
        "id": record_id,
        "account_id": account_id,
        "amount_usd": wire.usd(amount),
        "status": "completed",
        "created_at": wire.timestamp(outcome.ts_ms),
        "usd_available": wire.usd(available),
    }
