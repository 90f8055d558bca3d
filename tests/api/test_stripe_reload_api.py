"""Auto-Reload through Stripe end to end: a real `gridmarket serve --payment-provider stripe`
pointed at a fake Stripe (tests/support/fake_stripe.py), serving text-prime from a fake
upstream. An Auto Mode account holding no USD gets its call answered after a Stripe charge
funds the buy; a declined card answers 402 `payment_declined` until the operator sets the
method again; the self-settings API refuses reload amounts Stripe cannot charge."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fake_stripe import CUSTOMER, SECRET_KEY, FakeStripe
from gateway_harness import Party, ServerWithArgs, offer, open_party
from signed_client import error_of

from support.fake_upstream import FakeUpstream

PRIME = "text-prime"
SETTINGS = "/v1/self/system-settings"


class World:
    def __init__(self, server: ServerWithArgs, stripe: FakeStripe) -> None:
        self.server = server
        self.stripe = stripe

    def payer(self, payment_method: str) -> Party:
        """An Auto Mode account with no USD, Auto-Reload of 5 USD, and a Stripe method."""
        party = open_party(self.server, mode="easy")
        reload = {"enabled": True, "threshold": "1", "amount": "5", "monthly_limit": "50"}
        party.account.data("PATCH", f"{SETTINGS}/auto_reload", reload)
        self.set_method(party, payment_method)
        return party

    def set_method(self, party: Party, payment_method: str) -> dict[str, Any]:
        body = {"stripe_customer": CUSTOMER, "stripe_payment_method": payment_method}
        path = f"/v1/admin/accounts/{party.account_id}/payment-method"
        response = self.server.admin("POST", path, json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def chat(self, party: Party) -> httpx.Response:
        body = {"model": PRIME, "messages": [{"role": "user", "content": "reload me"}]}
        headers = {"Authorization": f"Bearer {party.consumption_key}"}
        url = f"{self.server.url}/v1/chat/completions"
        return httpx.post(url, json=body, headers=headers, timeout=30)

    def charges_of(self, party: Party) -> list[int]:
        """The cents Stripe took for the account."""
        return [
            int(intent["amount"])
            for intent_id, intent in self.stripe.intents.items()
            if intent["metadata"]["account_id"] == party.account_id
            and intent_id in self.stripe.executed
        ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("stripe") / "home"
    with FakeStripe() as stripe, FakeUpstream("a") as upstream:
        env = {
            "GRIDMARKET_PAYMENT_PROVIDER": "stripe",
            "GRIDMARKET_STRIPE_SECRET_KEY": SECRET_KEY,
            "GRIDMARKET_STRIPE_API_BASE": stripe.api_base,
        }
        endpoint = f"{PRIME}={upstream.base_url};model=fake-a;name=a"
        server = ServerWithArgs(home, ["--supplier", endpoint], env)
        try:
            supplier = open_party(server, supplier=True)
            offer(server, supplier, PRIME, 20, "1.000")
            yield World(server, stripe)
        finally:
            server.kill()


def test_a_stripe_reload_funds_an_auto_mode_call(world: World) -> None:
    party = world.payer("pm_card_visa")

    answer = world.chat(party)

    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "echo: reload me"
    assert world.charges_of(party) == [500]  # one 5 USD reload, in cents
    usd = party.account.data("GET", "/v1/currency-trading-accounts/USD")["available_balance"]
    assert Decimal("3.9") < Decimal(usd) <= Decimal("4.000")  # 5 charged, one unit bought


def test_a_declined_card_is_402_until_the_operator_sets_the_method_again(world: World) -> None:
    party = world.payer("pm_card_chargeDeclinedInsufficientFunds")

    refused = world.chat(party)
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "payment_declined"
    assert "insufficient_funds" in error["message"]
    asked = len(world.stripe.requests)
    again = world.chat(party)  # the decline stands: Stripe is not asked again
    assert (again.status_code, again.json()["error"]["code"]) == (402, "payment_declined")
    assert len(world.stripe.requests) == asked
    path = f"/v1/admin/accounts/{party.account_id}/payment-method"
    shown = world.server.admin("GET", path).json()["data"]
    assert (shown["declined"], shown["decline_reason"]) == (True, "insufficient_funds")

    fixed = world.set_method(party, "pm_card_visa")
    assert fixed["declined"] is False

    answered = world.chat(party)
    assert answered.status_code == 200, answered.text
    assert world.charges_of(party) == [500]


@pytest.mark.parametrize("amount", ["5.001", "0.49"])
def test_reload_amounts_stripe_cannot_charge_are_refused(world: World, amount: str) -> None:
    party = open_party(world.server, mode="easy")
    body = {"enabled": True, "threshold": "1", "amount": amount, "monthly_limit": "50"}

    refused = party.account.call("PATCH", f"{SETTINGS}/auto_reload", body)

    assert refused.status_code == 422, refused.text
    assert "Stripe" in error_of(refused)["detail"]
    stored = party.account.data("GET", SETTINGS)
    assert stored["auto_reload_enabled"] is False
