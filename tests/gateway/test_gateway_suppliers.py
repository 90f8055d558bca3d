"""Supplier endpoints from flags and the environment, and the accounts they must name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gridmarket.core.commands import CreateAccount
from gridmarket.core.exchange import Exchange
from gridmarket.core.ids import AccountId
from gridmarket.gateway.contract import SupplierDirectory, SupplierEndpoint
from gridmarket.gateway.suppliers import (
    SUPPLIERS_ENV,
    check_supplier_accounts,
    parse_supplier,
    parse_suppliers,
)
from gridmarket.settings import Settings


def test_entries_from_flags_and_the_environment() -> None:
    env = {
        "VLLM_KEY": "sk-secret",
        SUPPLIERS_ENV: "text-standard=http://h:11434/v1;model=llama3.1:8b,\n"
        "text-max=https://api.example/v1/;account=acme;name=hosted",
    }
    flags = ["Text-Prime=http://10.0.0.5:8000/v1;model=Qwen/Qwen2.5;key_env=VLLM_KEY;account=a1"]
    endpoints = parse_suppliers(flags, env)
    assert endpoints == (
        SupplierEndpoint(
            "a1",
            "text-prime",
            "http://10.0.0.5:8000/v1",
            "Qwen/Qwen2.5",
            "sk-secret",
            "text-prime@http://10.0.0.5:8000/v1",
        ),
        SupplierEndpoint(
            "",
            "text-standard",
            "http://h:11434/v1",
            "llama3.1:8b",
            None,
            "text-standard@http://h:11434/v1",
        ),
        SupplierEndpoint("acme", "text-max", "https://api.example/v1", "text-max", None, "hosted"),
    )


@pytest.mark.parametrize(
    "entry",
    [
        "text-prime",
        "text-prime=ftp://x/v1",
        "=http://x/v1",
        "text-prime=http://x/v1;colour=blue",
        "text-prime=http://x/v1;model=",
        "text-prime=http://x/v1;key_env=UNSET_VARIABLE_XYZ",
    ],
)
def test_a_malformed_entry_is_refused_at_start_up(entry: str) -> None:
    with pytest.raises(ValueError, match="supplier"):
        Settings.resolve(data_dir="/tmp/x", suppliers=[entry], environ={})


def test_settings_keep_api_keys_out_of_their_repr() -> None:
    settings = Settings.resolve(
        data_dir="/tmp/x",
        suppliers=["text-prime=http://x/v1;key_env=K"],
        environ={"K": "sk-very-secret"},
    )
    assert settings.suppliers[0].api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)


def test_the_consumption_rate_limit_setting() -> None:
    assert Settings.resolve(data_dir="/x", environ={}).consumption_calls_per_minute == 6000
    env = {"GRIDMARKET_CONSUMPTION_RATE_LIMIT": "12"}
    assert Settings.resolve(data_dir="/x", environ=env).consumption_calls_per_minute == 12
    with pytest.raises(ValueError, match="CONSUMPTION"):
        Settings.resolve(data_dir="/x", environ={"GRIDMARKET_CONSUMPTION_RATE_LIMIT": "0"})


def test_an_endpoint_must_name_a_supplier_account_or_none() -> None:
    """Its account is paid for the lots of others it delivers: a consumer account cannot be."""
    exchange = Exchange()
    exchange.apply(CreateAccount(AccountId("acme"), is_supplier=True), 1, 0)
    exchange.apply(CreateAccount(AccountId("bob")), 2, 0)
    market = SimpleNamespace(sequencer=SimpleNamespace(exchange=exchange))

    def check(*entries: str) -> None:
        directory = SupplierDirectory()
        for entry in entries:
            directory.add(parse_supplier(entry, {}))
        check_supplier_accounts(market, directory)

    check("text-prime=http://h/v1;account=acme", "text-prime=http://o/v1")
    for account, why in (("bob", "not a supplier account"), ("ghost", "no account")):
        with pytest.raises(RuntimeError, match=why):
            check(f"text-prime=http://h/v1;account={account}")
