"""The Stripe payment adapter against a fake Stripe on a loopback port (tests/support/
fake_stripe.py): each Stripe outcome's meaning for the port, the request it sends, retries of
an unknown outcome under the same key charging once, and the whole-cents rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from fake_stripe import CUSTOMER, SECRET_KEY, FakeStripe
from live_server import free_port

from gridmarket.adapters import payment
from gridmarket.adapters.payment import Charged, Declined, PaymentUnavailable, StripeMethod
from gridmarket.adapters.store import Store
from gridmarket.adapters.stripe_payment import (
    StripeConfig,
    StripePaymentProvider,
    reload_amount_problem,
)

ACCOUNT = "acct_stripe_payer"
USD = 1_000_000


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as running:
        yield running


@pytest.fixture
def store(tmp_path: object) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path}/payments.db")
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def provider(store: Store, stripe: FakeStripe) -> AsyncIterator[StripePaymentProvider]:
    stripe.fail("", 0)
    made = StripePaymentProvider(
        store.engine, StripeConfig(SECRET_KEY, stripe.api_base, total_timeout_s=0.5)
    )
    try:
        yield made
    finally:
        await made.aclose()


def _method(store: Store, payment_method: str, customer: str = CUSTOMER) -> None:
    payment.set_method(store.engine, ACCOUNT, None, 0, StripeMethod(customer, payment_method))


@pytest.mark.parametrize(
    ("payment_method", "reason"),
    [
        ("pm_card_visa", None),
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_authenticationRequired", "authentication_required"),
    ],
)
async def test_stripes_test_cards_map_to_charged_or_declined(
    store: Store,
    stripe: FakeStripe,
    provider: StripePaymentProvider,
    payment_method: str,
    reason: str | None,
) -> None:
    _method(store, payment_method)
    key = f"k-{payment_method}"
    executed = len(stripe.executed)

    result = await provider.charge(ACCOUNT, 12_340_000, key)

    expected = Charged(key, 12_340_000) if reason is None else Declined(key, reason)
    assert result == expected
    assert len(stripe.executed) == executed + (reason is None)
    created = [r for r in stripe.requests if r[1] == "/v1/payment_intents"]
    method, path, form, sent_key = created[-1]
    assert (method, path, sent_key) == ("POST", "/v1/payment_intents", key)
    # A declined intent is left open by Stripe: it is cancelled, so nothing can complete it.
    intent = stripe.intents[f"pi_fake{len(stripe.intents)}"]
    assert intent["status"] == ("succeeded" if reason is None else "canceled")
    assert form is not None
    assert {name: form[name] for name in ("amount", "currency", "confirm", "off_session")} == {
        "amount": "1234",
        "currency": "usd",
        "confirm": "true",
        "off_session": "true",
    }
    assert (form["customer"], form["payment_method"]) == (CUSTOMER, payment_method)
    assert (form["metadata[account_id]"], form["metadata[idempotency_key]"]) == (ACCOUNT, key)


async def test_configuration_errors_are_declines_the_operator_can_read(
    store: Store, stripe: FakeStripe, provider: StripePaymentProvider
) -> None:
    _method(store, "pm_card_visa", customer="cus_Unknown")
    assert await provider.charge(ACCOUNT, USD, "k-cus") == Declined(
        "k-cus", "stripe_resource_missing"
    )
    _method(store, "pm_card_visa")
    wrong_key = StripePaymentProvider(store.engine, StripeConfig("sk_test_wrong", stripe.api_base))
    try:
        assert await wrong_key.charge(ACCOUNT, USD, "k-auth") == Declined(
            "k-auth", "stripe_authentication_failed"
        )
        assert "sk_test_wrong" not in repr(wrong_key)
    finally:
        await wrong_key.aclose()
    requests = len(stripe.requests)
    assert await provider.charge("acct_without_method", USD, "k-none") == Declined(
        "k-none", "no_payment_method"
    )
    assert len(stripe.requests) == requests  # nothing asked of Stripe


@pytest.mark.parametrize("failure", ["lost", "error500", "rate_limit"])
async def test_an_unknown_outcome_is_asked_again_under_its_key_and_charged_once(
    store: Store, stripe: FakeStripe, provider: StripePaymentProvider, failure: str
) -> None:
    _method(store, "pm_card_visa")
    stripe.hang_s = 2.0
    stripe.fail(failure)
    executed = len(stripe.executed)

    with pytest.raises(PaymentUnavailable) as unknown:
        await provider.charge(ACCOUNT, 5 * USD, f"k-{failure}")
    assert unknown.value.reason in ("stripe_timeout", "stripe_http_500", "stripe_http_429")
    again = await provider.charge(ACCOUNT, 5 * USD, f"k-{failure}")
    replayed = await provider.charge(ACCOUNT, 5 * USD, f"k-{failure}")

    assert again == replayed == Charged(f"k-{failure}", 5 * USD)
    assert len(stripe.executed) == executed + 1  # one charge for all three asks


async def test_an_unreachable_stripe_is_an_unknown_outcome(store: Store) -> None:
    _method(store, "pm_card_visa")
    closed = StripePaymentProvider(
        store.engine, StripeConfig(SECRET_KEY, f"http://127.0.0.1:{free_port()}")
    )
    try:
        with pytest.raises(PaymentUnavailable) as unknown:
            await closed.charge(ACCOUNT, USD, "k-down")
    finally:
        await closed.aclose()
    assert unknown.value.reason == "stripe_unreachable"


@pytest.mark.parametrize(("outcome", "reason"), [("succeeded", None), ("failed", "do_not_honor")])
async def test_a_processing_payment_waits_for_stripes_final_answer(
    store: Store,
    stripe: FakeStripe,
    provider: StripePaymentProvider,
    outcome: str,
    reason: str | None,
) -> None:
    _method(store, "pm_fake_processing")
    key = f"k-processing-{outcome}"
    for _ in range(2):  # processing is asked again as often as needed, never declined for it
        with pytest.raises(PaymentUnavailable) as unknown:
            await provider.charge(ACCOUNT, 2 * USD, key)
        assert unknown.value.reason == "processing"
    intent_id = next(
        i for i, v in stripe.intents.items() if v["metadata"]["idempotency_key"] == key
    )

    stripe.settle(intent_id, "succeeded" if outcome == "succeeded" else "requires_payment_method")

    result = await provider.charge(ACCOUNT, 2 * USD, key)
    assert result == (Charged(key, 2 * USD) if reason is None else Declined(key, reason))
    assert sum(1 for v in stripe.intents.values() if v["metadata"]["idempotency_key"] == key) == 1


async def test_amounts_must_be_whole_cents(
    store: Store, stripe: FakeStripe, provider: StripePaymentProvider
) -> None:
    _method(store, "pm_card_visa")
    requests = len(stripe.requests)
    assert await provider.charge(ACCOUNT, 1_005_000, "k-mills") == Declined(
        "k-mills", "amount_not_whole_cents"
    )
    assert len(stripe.requests) == requests
    assert await provider.charge(ACCOUNT, 1_010_000, "k-cents") == Charged("k-cents", 1_010_000)
    assert stripe.charged_cents()[-1] == 101
    assert reload_amount_problem(1_010_000) is None
    assert "whole number of cents" in (reload_amount_problem(1_000_001) or "")
    assert "at least 0.50" in (reload_amount_problem(490_000) or "")


async def test_concurrent_asks_of_one_key_charge_once(
    store: Store, stripe: FakeStripe, provider: StripePaymentProvider
) -> None:
    _method(store, "pm_card_visa")
    executed = len(stripe.executed)
    results = await asyncio.gather(*(provider.charge(ACCOUNT, USD, "k-same") for _ in range(5)))
    assert set(results) == {Charged("k-same", USD)}
    assert len(stripe.executed) == executed + 1


async def test_an_intent_awaiting_authentication_is_declined_and_cancelled(
    store: Store, stripe: FakeStripe, provider: StripePaymentProvider
) -> None:
    _method(store, "pm_fake_requires_action")
    result = await provider.charge(ACCOUNT, 5 * USD, "k-action")
    assert result == Declined("k-action", "authentication_required")
    intent = stripe.intents[f"pi_fake{len(stripe.intents)}"]
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "abandoned")


async def test_a_failed_cancellation_leaves_the_decline_standing(
    store: Store,
    stripe: FakeStripe,
    provider: StripePaymentProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _method(store, "pm_card_chargeDeclined")
    stripe.cancel_failures = 1
    result = await provider.charge(ACCOUNT, 5 * USD, "k-cancel-fails")
    assert result == Declined("k-cancel-fails", "generic_decline")
    intent_id = f"pi_fake{len(stripe.intents)}"
    assert stripe.intents[intent_id]["status"] == "requires_payment_method"
    logged = [record.getMessage() for record in caplog.records]
    assert any(intent_id in line and "dashboard" in line for line in logged)


async def test_a_retry_sends_the_method_its_charge_was_first_sent_with(
    store: Store, stripe: FakeStripe, provider: StripePaymentProvider
) -> None:
    """The answer to a charge is lost; the operator then changes the account's card. Asking
    again under the charge's key sends the first card again (Stripe replays its answer: paid),
    where the new one would be refused as another request under the same key."""
    payment.begin_charge(store.engine, "k-pinned", ACCOUNT, 5 * USD, 1, 0)
    _method(store, "pm_card_visa")
    stripe.hang_s = 2.0
    stripe.fail("lost")
    executed = len(stripe.executed)
    with pytest.raises(PaymentUnavailable):
        await provider.charge(ACCOUNT, 5 * USD, "k-pinned")
    _method(store, "pm_card_chargeDeclined")

    assert await provider.charge(ACCOUNT, 5 * USD, "k-pinned") == Charged("k-pinned", 5 * USD)
    assert len(stripe.executed) == executed + 1
    sent = [form["payment_method"] for _, path, form, key in stripe.requests if key == "k-pinned"]
    assert sent == ["pm_card_visa", "pm_card_visa"]
    record = payment.get_charge(store.engine, "k-pinned")
    assert record is not None
    assert (record.stripe_customer_id, record.stripe_payment_method_id) == (
        CUSTOMER,
        "pm_card_visa",
    )
    # A new charge takes the account's method as it is now.
    assert await provider.charge(ACCOUNT, 5 * USD, "k-next") == Declined(
        "k-next", "generic_decline"
    )
