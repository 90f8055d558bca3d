"""`gridmarket usage`: one's own consumption receipts and daily totals, from a running server.

    gridmarket usage                          # the newest 50 receipts
    gridmarket usage --key ck_... --instrument text-local --limit 200
    gridmarket usage --daily                  # totals per UTC day, key and instrument
    gridmarket usage --json                   # machine-readable: decimals as strings

Signed with the account's key like the trading commands (`--server`, `--key-file`, see
`gridmarket.cli_trade`); the command only translates flags into `gridmarket.client.Client`
calls (`usage`, `key_usage`, `usage_daily`) and prints Rich tables.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gridmarket.cli_trade import (
    JsonOption,
    KeyFileOption,
    ServerOption,
    _client,
    _print_json,
    _text,
)
from gridmarket.client import DailyUsage, UsageReceipt

DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
MAX_DAILY_LIMIT = 1_000


def register(app: typer.Typer) -> None:
    """Add `gridmarket usage` to the `gridmarket` command."""
    app.command("usage")(usage)


def usage(
    key: Annotated[str | None, typer.Option("--key", help="Only this consumption key id.")] = None,
    instrument: Annotated[
        str | None, typer.Option("--instrument", help="Only this instrument (the model).")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only calls that ended ok, failed or cancelled.")
    ] = None,
    daily: Annotated[
        bool, typer.Option("--daily", help="Totals per UTC day, key and instrument instead.")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many rows.")
    ] = DEFAULT_LIMIT,
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your usage receipts, newest first (or daily totals with --daily)."""
    with _client(server, key_file) as client:
        if daily:
            rows: list[Any] = client.usage_daily(
                key_id=key, instrument_id=instrument, limit=min(limit, MAX_DAILY_LIMIT)
            )
        else:
            found = client.iter_usage(key_id=key, instrument_id=instrument, status=status)
            rows = list(islice(found, limit))
    if as_json:
        _print_json(rows)
        return
    Console().print(_daily_table(rows) if daily else _receipts_table(rows))


def _receipts_table(rows: list[UsageReceipt]) -> Table:
    table = Table(
        "settled", "request", "key", "instrument", "supplier", "in", "out", "billed", "usd"
    )
    table.add_column("ttft ms")
    table.add_column("tok/s")
    table.add_column("status")
    for r in rows:
        table.add_row(
            r.settled_at,
            r.request_id or r.call_id,
            _text(r.key_id),
            r.instrument_id,
            _text(r.supplier_id),
            str(r.prompt_tokens),
            str(r.completion_tokens),
            str(r.billed_tokens),
            _text(r.billed_value_usd),
            _text(r.ttft_ms),
            _text(r.tokens_per_second),
            r.status + (" (estimated)" if r.usage_estimated else ""),
        )
    return table


def _daily_table(rows: list[DailyUsage]) -> Table:
    table = Table("date", "key", "instrument", "calls", "failed", "in", "out", "billed", "usd")
    for d in rows:
        table.add_row(
            d.date,
            _text(d.key_id),
            d.instrument_id,
            str(d.calls),
            str(d.failed_calls + d.cancelled_calls),
            str(d.prompt_tokens),
            str(d.completion_tokens),
            str(d.billed_tokens),
            _text(d.billed_value_usd),
        )
    return table
