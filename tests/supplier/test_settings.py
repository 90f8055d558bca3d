"""The built-in supplier's settings: flags, then the environment, then defaults (on)."""

from __future__ import annotations

import pytest

from gridmarket.settings import BuiltinSupplier, Settings


def _resolve(env: dict[str, str], **flags: object) -> BuiltinSupplier:
    given = {"enabled": None, "price_usd": None, "resting_units": None}
    given |= {"capacity_tokens_per_min": None}
    return BuiltinSupplier.resolve(**(given | flags), env=env)  # type: ignore[arg-type]


def test_on_by_default_for_serve_and_off_for_assembled_settings() -> None:
    assert _resolve({}) == BuiltinSupplier(True, 10_000, 2, None)
    assert Settings.resolve(environ={}).builtin_supplier.enabled is False


def test_flags_win_over_the_environment() -> None:
    env = {
        "GRIDMARKET_BUILTIN_SUPPLIER": "0",
        "GRIDMARKET_BUILTIN_PRICE_USD": "0.5",
        "GRIDMARKET_BUILTIN_RESTING_UNITS": "4",
        "GRIDMARKET_BUILTIN_CAPACITY": "9000",
    }
    assert _resolve(env) == BuiltinSupplier(False, 500_000, 4, 9_000)
    flagged = _resolve(
        env, enabled=True, price_usd="0.002", resting_units=1, capacity_tokens_per_min=5000
    )
    assert flagged == BuiltinSupplier(True, 2_000, 1, 5_000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRIDMARKET_BUILTIN_SUPPLIER", "maybe"),
        ("GRIDMARKET_BUILTIN_PRICE_USD", "-1"),
        ("GRIDMARKET_BUILTIN_PRICE_USD", "0.0000001"),
        ("GRIDMARKET_BUILTIN_PRICE_USD", "0.0105"),
        ("GRIDMARKET_BUILTIN_RESTING_UNITS", "0"),
        ("GRIDMARKET_BUILTIN_RESTING_UNITS", "two"),
        ("GRIDMARKET_BUILTIN_CAPACITY", "1e6"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        _resolve({name: value})
