"""Supplier endpoints from configuration: `--supplier` (repeatable) and `GRIDMARKET_SUPPLIERS`.

One entry names an OpenAI-compatible server that serves an instrument:

    INSTRUMENT=BASE_URL[;model=M][;key_env=VAR][;account=ACCT][;name=LABEL]

    text-prime=http://10.0.0.5:8000/v1;model=Qwen/Qwen2.5-72B-Instruct;account=acme
    text-standard=http://127.0.0.1:11434/v1;model=llama3.1:8b;key_env=OLLAMA_KEY;account=bob

`BASE_URL` is http(s) and ends with the API's version prefix (`.../v1`); `model` is what the
server expects in `model` (default: the instrument id); `key_env` names the environment
variable holding its API key (read at start-up; the key itself never goes on a command line);
`account` is the supplier account whose units the endpoint delivers (its receipts and
routing: calls drawing on that supplier's lots go to its endpoints first; when it delivers
another supplier's lot, that supplier pays it, see `core.substitution`). Without `account`
the endpoint is the operator's own: it serves any call, after the funding suppliers'
endpoints, its receipts name the supplier `operator`, and the operator is paid for the lots
it delivers. The account must be a supplier account when the server starts
(`gridmarket admin create-account --supplier ...`, or `POST /v1/admin/accounts` with
`"supplier": true`): an unknown or non-supplier account stops the start-up with an error.

`GRIDMARKET_SUPPLIERS` holds the same entries separated by commas or newlines; flags and the
variable add up. A malformed entry is refused at start-up, naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gridmarket.gateway.contract import SupplierDirectory, SupplierEndpoint

SUPPLIERS_ENV = "GRIDMARKET_SUPPLIERS"
MAX_SUPPLIERS = 256
_OPTIONS = frozenset({"model", "key_env", "account", "name"})
_INSTRUMENT = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def parse_supplier(entry: str, env: Mapping[str, str]) -> SupplierEndpoint:
    """One `INSTRUMENT=BASE_URL[;k=v...]` entry; ValueError naming what is wrong."""
    shown = entry.strip()[:200]
    instrument, sep, rest = entry.strip().partition("=")
    instrument = instrument.strip().lower()
    if not sep or _INSTRUMENT.fullmatch(instrument) is None:
        raise ValueError(f"supplier {shown!r}: expected INSTRUMENT=BASE_URL[;model=M]...")
    base_url, *options = [part.strip() for part in rest.split(";")]
    if re.fullmatch(r"https?://[^\s;]+", base_url) is None:
        raise ValueError(f"supplier {shown!r}: the base URL must be http(s)://...")
    values: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or name not in _OPTIONS or not value.strip():
            raise ValueError(f"supplier {shown!r}: unknown or empty option {option!r}")
        values[name] = value.strip()
    api_key = None
    if "key_env" in values:
        variable = values["key_env"]
        if _ENV_NAME.fullmatch(variable) is None or not env.get(variable):
            raise ValueError(f"supplier {shown!r}: the variable {variable} is not set")
        api_key = env[variable]
    return SupplierEndpoint(
        supplier_id=values.get("account", ""),
        instrument_id=instrument,
        base_url=base_url.rstrip("/"),
        model=values.get("model", instrument),
        api_key=api_key,
        name=values.get("name", f"{instrument}@{base_url}"),
    )


def parse_suppliers(
    flags: Iterable[str], env: Mapping[str, str] | None = None
) -> tuple[SupplierEndpoint, ...]:
    """The endpoints of the `--supplier` flags and then of `GRIDMARKET_SUPPLIERS`."""
    environ = os.environ if env is None else env
    entries = [entry for entry in flags if entry.strip()]
    entries += [e for e in re.split(r"[,\n]", environ.get(SUPPLIERS_ENV, "")) if e.strip()]
    if len(entries) > MAX_SUPPLIERS:
        raise ValueError(f"at most {MAX_SUPPLIERS} supplier endpoints")
    return tuple(parse_supplier(entry, environ) for entry in entries)


def directory_from_settings(settings: Any) -> SupplierDirectory:
    """A directory holding the configured endpoints (`settings.suppliers`)."""
    directory = SupplierDirectory()
    for endpoint in getattr(settings, "suppliers", ()):
        directory.add(endpoint)
    return directory


def add_configured(directory: SupplierDirectory, settings: Any) -> None:
    """Add the configured endpoints (`settings.suppliers`) to `directory`."""
    for endpoint in getattr(settings, "suppliers", ()):
        directory.add(endpoint)


def check_supplier_accounts(market: Any, directory: SupplierDirectory) -> None:
    """Refuse to start when an endpoint names an unknown instrument, or an account that is
    not a supplier's (it could not be paid for what it delivers)."""
    state = market.sequencer.exchange.state
    for endpoint in configured_endpoints(directory):
        if endpoint.instrument_id not in state.instruments:
            raise RuntimeError(
                f"supplier endpoint {endpoint.name}: unknown instrument {endpoint.instrument_id!r}"
            )
        if not endpoint.supplier_id:
            continue
        account = state.accounts.get(endpoint.supplier_id)
        if account is None or not account.is_supplier:
            what = "no account" if account is None else "not a supplier account:"
            raise RuntimeError(
                f"supplier endpoint {endpoint.name}: {what} {endpoint.supplier_id!r} "
                "(a supplier account is made with: gridmarket admin create-account NAME --supplier)"
            )


def configured_endpoints(directory: SupplierDirectory) -> list[SupplierEndpoint]:
    """Every endpoint of the directory, instrument by instrument."""
    endpoints: list[SupplierEndpoint] = []
    for instrument_id in sorted(directory._endpoints):  # the directory has no listing of its own
        endpoints.extend(directory.for_instrument(instrument_id))
    return endpoints
