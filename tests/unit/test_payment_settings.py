"""Auto-Reload's payment provider settings: the flag, then the environment, then `ledger`;
Stripe needs its secret key, which never shows in a repr."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gridmarket.adapters.payment import LedgerPaymentProvider
from gridmarket.adapters.stripe_payment import StripePaymentProvider
from gridmarket.bootstrap import payment_factory
from gridmarket.settings import PaymentSettings, Settings

KEY = "sk_test_51Abcdefghijkl"


def test_ledger_by_default_and_for_assembled_settings() -> None:
    assert PaymentSettings.resolve(provider=None, env={}) == PaymentSettings()
    assert Settings.resolve(environ={"GRIDMARKET_PAYMENT_PROVIDER": "stripe"}).payment == (
        PaymentSettings()  # only `gridmarket serve` reads the provider
    )


def test_stripe_from_the_environment_or_the_flag() -> None:
    env = {"GRIDMARKET_STRIPE_SECRET_KEY": KEY}
    by_flag = PaymentSettings.resolve(provider="stripe", env=env)
    assert by_flag == PaymentSettings("stripe", KEY, "https://api.stripe.com")
    by_env = PaymentSettings.resolve(
        provider=None,
        env=env
        | {
            "GRIDMARKET_PAYMENT_PROVIDER": "Stripe",
            "GRIDMARKET_STRIPE_API_BASE": "http://127.0.0.1:12111/",
        },
    )
    assert by_env == PaymentSettings("stripe", KEY, "http://127.0.0.1:12111")
    assert KEY not in repr(by_env) and KEY not in repr(Settings.resolve(environ={}, payment=by_env))
    flag_wins = PaymentSettings.resolve(
        provider="ledger", env=env | {"GRIDMARKET_PAYMENT_PROVIDER": "stripe"}
    )
    assert flag_wins.provider == "ledger"


@pytest.mark.parametrize(
    ("provider", "env", "named"),
    [
        ("paypal", {}, "GRIDMARKET_PAYMENT_PROVIDER"),
        ("stripe", {}, "GRIDMARKET_STRIPE_SECRET_KEY"),
        ("stripe", {"GRIDMARKET_STRIPE_SECRET_KEY": "sk live key"}, "GRIDMARKET_STRIPE_SECRET_KEY"),
        (
            "stripe",
            {"GRIDMARKET_STRIPE_SECRET_KEY": KEY, "GRIDMARKET_STRIPE_API_BASE": "api.stripe.com"},
            "GRIDMARKET_STRIPE_API_BASE",
        ),
    ],
)
def test_bad_payment_settings_are_refused_naming_the_variable(
    provider: str, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ValueError, match=named) as refused:
        PaymentSettings.resolve(provider=provider, env=env)
    assert "sk live key" not in str(refused.value)


async def test_the_composition_root_picks_the_configured_provider() -> None:
    engine = sa.create_engine("sqlite://")
    assert isinstance(payment_factory(PaymentSettings())(engine), LedgerPaymentProvider)
    made = payment_factory(PaymentSettings("stripe", KEY, "http://127.0.0.1:1"))(engine)
    assert isinstance(made, StripePaymentProvider)
    assert KEY not in repr(made)
    await made.aclose()
