"""The `gridmarket` command: run the market server, audit its ledger, print the version.

    gridmarket serve                      # http://127.0.0.1:8000, state in ~/.gridmarket
    gridmarket serve --port 9000 --data-dir /var/lib/gridmarket
    gridmarket serve --supplier 'text-prime=http://10.0.0.5:8000/v1;model=M;account=acme'
    GRIDMARKET_STRIPE_SECRET_KEY=sk_live_... gridmarket serve --payment-provider stripe
    gridmarket audit [--json]             # replay the store; every asset must sum to zero
    gridmarket admin --help               # operator commands over a running server's admin API
    gridmarket order|book|trades|balances|transfer --help   # trading (gridmarket.cli_trade)
    gridmarket usage [--daily] --help     # one's consumption receipts (gridmarket.cli_usage)
    gridmarket version

The CLI only translates flags into `Settings` and hands them to the composition root
(`gridmarket.bootstrap.build_app`).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from gridmarket import __version__
from gridmarket.cli_admin import admin_app
from gridmarket.cli_admin_keys import add_account_commands
from gridmarket.cli_options import DatabaseUrlOption, DataDirOption, JsonOption
from gridmarket.cli_rate_options import (
    OrderBurstOption,
    OrderRatePerMinuteOption,
    OrderRatePerSecondOption,
    RateLimitRequestsOption,
    RateLimitWindowOption,
)
from gridmarket.cli_trade import register as register_trading
from gridmarket.cli_usage import register as register_usage
from gridmarket.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    BuiltinSupplier,
    PaymentSettings,
    Settings,
)

app = typer.Typer(
    name="gridmarket",
    help="Gridmarket: a self-hostable spot market for AI inference.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(admin_app)
add_account_commands(admin_app)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on.", show_default=DEFAULT_HOST)
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port to listen on.", show_default=str(DEFAULT_PORT)),
    ] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    rate_limit_requests: RateLimitRequestsOption = None,
    rate_limit_window_s: RateLimitWindowOption = None,
    order_rate_per_second: OrderRatePerSecondOption = None,
    order_rate_per_minute: OrderRatePerMinuteOption = None,
    order_burst: OrderBurstOption = None,
    access_log: Annotated[
        bool,
        typer.Option(
            help="Log every HTTP request. Off by default: it costs about a tenth of an order's "
            "CPU, and every write is in the command log anyway.",
        ),
    ] = False,
    builtin_supplier: Annotated[
        bool | None,
        typer.Option(
            "--builtin-supplier/--no-builtin-supplier",
            help="Run the built-in CPU model and quote it on text-local "
            "(env GRIDMARKET_BUILTIN_SUPPLIER).",
            show_default="on",
        ),
    ] = None,
    builtin_price_usd: Annotated[
        str | None,
        typer.Option(
            help="The built-in supplier's ask, USD per unit (env GRIDMARKET_BUILTIN_PRICE_USD).",
            show_default="0.010",
        ),
    ] = None,
    builtin_resting_units: Annotated[
        int | None,
        typer.Option(
            help="Units the built-in supplier keeps resting on the book "
            "(env GRIDMARKET_BUILTIN_RESTING_UNITS).",
            show_default="2",
        ),
    ] = None,
    builtin_capacity: Annotated[
        int | None,
        typer.Option(
            help="The built-in model's capacity in tokens/min (env GRIDMARKET_BUILTIN_CAPACITY).",
            show_default="measured at start",
        ),
    ] = None,
    supplier: Annotated[
        list[str] | None,
        typer.Option(
            help="A supplier endpoint, repeatable: "
            "INSTRUMENT=BASE_URL[;model=M][;key_env=VAR][;account=ACCT] "
            "(also GRIDMARKET_SUPPLIERS, comma-separated).",
        ),
    ] = None,
    consumption_rate_limit: Annotated[
        int | None,
        typer.Option(
            help="Consumption API calls per key per minute "
            "[env GRIDMARKET_CONSUMPTION_RATE_LIMIT; default 6000].",
        ),
    ] = None,
    payment_provider: Annotated[
        str | None,
        typer.Option(
            help="What Auto-Reload charges: ledger (the operator's allowances) or stripe "
            "(needs GRIDMARKET_STRIPE_SECRET_KEY) [env GRIDMARKET_PAYMENT_PROVIDER; "
            "default ledger].",
        ),
    ] = None,
) -> None:
    """Run the market server until SIGINT (Ctrl-C) or SIGTERM, then shut down cleanly."""
    rate_limits = {
        "requests": rate_limit_requests,
        "window_s": rate_limit_window_s,
        "orders_per_second": order_rate_per_second,
        "orders_per_minute": order_rate_per_minute,
        "order_burst": order_burst,
    }
    try:
        settings = Settings.resolve(
            data_dir=data_dir,
            database_url=database_url,
            host=host,
            port=port,
            rate_limits=rate_limits,
            builtin_supplier=BuiltinSupplier.resolve(
                enabled=builtin_supplier,
                price_usd=builtin_price_usd,
                resting_units=builtin_resting_units,
                capacity_tokens_per_min=builtin_capacity,
                env=os.environ,
            ),
            suppliers=supplier or (),
            consumption_calls_per_minute=consumption_rate_limit,
            payment=PaymentSettings.resolve(provider=payment_provider, env=os.environ),
        )
    except ValueError as bad:
        raise typer.BadParameter(str(bad)) from None
    settings.ensure_data_dir()
    # Imported here: the app (FastAPI, every route, the gateway) takes over a second to
    # import, which every other `gridmarket` command would otherwise pay before it starts.
    from gridmarket.bootstrap import build_app

    with _sigterm_as_keyboard_interrupt():
        uvicorn.run(
            build_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=_log_config(),
            access_log=access_log,
            loop="uvloop" if _installed("uvloop") else "asyncio",
            http="httptools" if _installed("httptools") else "h11",
        )


@app.command()
def audit(
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the ledger from the store and check it: exit 1 unless it balances."""
    from gridmarket.service.audit import audit_store

    settings = Settings.resolve(data_dir=data_dir, database_url=database_url)
    report = audit_store(settings.database_url)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "balanced": report.balanced,
                    "last_seq": report.last_seq,
                    "sums_by_asset": report.sums_by_asset,
                    "negative_accounts": report.negative_accounts,
                    "journal_mismatches": report.journal_mismatches,
                }
            )
        )
    else:
        typer.echo(f"commands replayed: {report.last_seq}")
        for asset, total in sorted(report.sums_by_asset.items()):
            typer.echo(f"  {asset:<20} sum over all accounts: {total}")
        for key in report.negative_accounts:
            typer.echo(f"  NEGATIVE: {key}")
        for key, (replayed, journal) in sorted(report.journal_mismatches.items()):
            typer.echo(f"  MISMATCH: {key}: replayed {replayed}, postings {journal}")
        typer.echo("balanced" if report.balanced else "NOT BALANCED")
    if not report.balanced:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the installed Gridmarket version."""
    typer.echo(f"gridmarket {__version__}")


@contextmanager
def _sigterm_as_keyboard_interrupt() -> Iterator[None]:
    # uvicorn catches SIGINT and SIGTERM, shuts down gracefully, then raises the signal again
    # with the previous handler. SIGINT then ends as a KeyboardInterrupt that uvicorn.run
    # swallows (exit 0), but the default SIGTERM handler would kill the process (exit 143)
    # after a clean shutdown. Treating SIGTERM like SIGINT makes both exit 0.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _installed(module: str) -> bool:
    """uvloop's event loop and httptools' parser serve when installed (pinned dependencies,
    about half the CPU per request of asyncio and h11); without them, the pure-Python stack."""
    return importlib.util.find_spec(module) is not None


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with Gridmarket's own loggers printed the same way."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["gridmarket"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


register_trading(app)  # after the commands above, so `--help` lists serve first
register_usage(app)
