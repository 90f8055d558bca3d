"""Auto-Reload through the Stripe adapter on a real market (SQLite and PostgreSQL), against a
fake Stripe: an unknown outcome answers a retryable 503, keeps the charge pending, and the next
reload asks again under the same key (charged and deposited once); recovery at start-up
leaves a still-unknown charge pending instead of failing Auto Mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from autobuy_support import PRIME, USD, ask, buyer, consumption_tokens, enable_reload, usd_available
from fake_stripe import CUSTOMER, SECRET_KEY, FakeStripe

from gridmarket.adapters import payment
from gridmarket.adapters.payment import PaymentProvider, StripeMethod
from gridmarket.adapters.stripe_payment import StripeConfig, StripePaymentProvider
from gridmarket.core.units import TOKENS_PER_UNIT
from gridmarket.gateway.autobuy import AutoBuyer
from gridmarket.gateway.contract import Caller, GatewayError
from gridmarket.service.market import MarketService


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as running:
        yield running


@pytest.fixture
async def market(database_url: str) -> AsyncIterator[MarketService]:
    async with MarketService.from_url(database_url, tune_gc=False) as running:
        yield running


def _stripe_buyer(market: MarketService, stripe: FakeStripe) -> AutoBuyer:
    def provider(engine: sa.Engine) -> PaymentProvider:
        config = StripeConfig(SECRET_KEY, stripe.api_base, total_timeout_s=0.5)
        return StripePaymentProvider(engine, config)

    return AutoBuyer(lambda: market, payments=provider)


async def _stripe_payer(market: MarketService) -> Caller:
    """An Auto Mode account with no USD, Auto-Reload of 5 USD on, and a Stripe card."""
    caller = await buyer(market)
    await enable_reload(market, caller.account_id, 0, 5 * USD, 50 * USD)
    method = StripeMethod(CUSTOMER, "pm_card_visa")
    await asyncio.to_thread(
        payment.set_method, market.store.engine, caller.account_id, None, 0, method
    )
    return caller


async def test_an_unknown_outcome_is_a_503_then_charged_once_under_the_same_key(
    market: MarketService, stripe: FakeStripe
) -> None:
    await ask(market, "s1", 5, 2 * USD)
    caller = await _stripe_payer(market)
    autobuy = _stripe_buyer(market, stripe)
    stripe.hang_s = 2.0
    stripe.fail("lost")  # Stripe charges, the answer never arrives
    executed = len(stripe.executed)

    with pytest.raises(GatewayError) as unknown:
        await autobuy.ensure(caller, PRIME, 1)
    assert (unknown.value.status, unknown.value.code) == (503, "payment_pending")
    assert unknown.value.retry_after_s == 2
    [pending] = await asyncio.to_thread(payment.unfinished_charges, market.store.engine)
    assert (pending.status, pending.amount_usd_micros) == ("pending", 5 * USD)
    assert usd_available(market, caller.account_id) == 0  # not deposited while unknown

    await autobuy.ensure(caller, PRIME, 1)
    await autobuy.aclose()

    assert len(stripe.executed) == executed + 1
    keys = [key for method_, _path, _form, key in stripe.requests[-2:] if method_ == "POST"]
    assert keys == [pending.idempotency_key] * 2
    assert consumption_tokens(market, caller.account_id) == TOKENS_PER_UNIT
    assert usd_available(market, caller.account_id) == 3 * USD  # 5 charged, 2 spent
    assert await asyncio.to_thread(payment.unfinished_charges, market.store.engine) == []


async def test_recovery_leaves_a_still_unknown_charge_pending(
    market: MarketService, stripe: FakeStripe
) -> None:
    caller = await _stripe_payer(market)
    engine = market.store.engine
    last = market.sequencer.exchange.last_seq
    key = f"k-crashed-{caller.account_id}"  # the fake Stripe outlives one database's run
    await asyncio.to_thread(payment.begin_charge, engine, key, caller.account_id, 2 * USD, 0, last)
    autobuy = _stripe_buyer(market, stripe)
    stripe.fail("error500")

    await autobuy.recover(market)  # Stripe fails: no exception, the charge waits

    [pending] = await asyncio.to_thread(payment.unfinished_charges, engine)
    assert (pending.idempotency_key, pending.status) == (key, "pending")
    await autobuy.recover(market)  # Stripe answers now: charged and deposited once
    await autobuy.aclose()
    assert await asyncio.to_thread(payment.unfinished_charges, engine) == []
    assert usd_available(market, caller.account_id) == 2 * USD
