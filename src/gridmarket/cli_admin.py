"""`gridmarket admin ...`: the operator's commands, calling a running server's admin API.

    gridmarket admin create-account alice --deposit-usd 100 --json
    gridmarket admin create-account acme --supplier --mode advanced
    gridmarket admin deposit acct_0123456789abcdef01234567 25.50
    gridmarket admin audit [--json]
    gridmarket admin set-capacity acct_0123456789abcdef01234567 text-prime 50000 [--json]
    gridmarket admin payment-method acct_0123456789abcdef01234567 --allowance-usd 50 [--show]
    gridmarket admin payment-method acct_0123456789abcdef01234567 \
        --stripe-customer cus_NffrFeUfNV2Hib --stripe-payment-method pm_1MqLiJLkdIwHu7ix
    gridmarket admin receivables [--json]
    gridmarket admin settle-receivable acct_0123456789abcdef01234567 [--json]

The server comes from `--server`, else `GRIDMARKET_SERVER`, else http://127.0.0.1:8000. The
operator token is read from the data dir (`--data-dir`, else `GRIDMARKET_HOME`, else
~/.gridmarket), where the server wrote it on its first start: run these as the server's user.
Every failure prints one line on stderr and exits 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn, cast
from urllib.parse import quote

import httpx
import typer

from gridmarket.api.money import format_usd_micros
from gridmarket.auth.operator import OperatorTokenError, read_operator_token, token_path
from gridmarket.cli_options import DataDirOption, JsonOption
from gridmarket.settings import Settings

SERVER_ENV = "GRIDMARKET_SERVER"
DEFAULT_SERVER = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0

admin_app = typer.Typer(
    name="admin",
    help="Operator administration over the admin API of a running server.",
    no_args_is_help=True,
)

ServerOption = Annotated[
    str,
    typer.Option("--server", envvar=SERVER_ENV, help="Base URL of the Gridmarket server."),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _call(
    server: str, data_dir: Path | None, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `data` of a successful admin call; any failure ends the command with one line."""
    settings = Settings.resolve(data_dir=data_dir)
    try:
        token = read_operator_token(settings.data_dir)
    except FileNotFoundError:
        _fail(
            f"no operator token at {token_path(settings.data_dir)}: start the server once with"
            " this data dir, or pass the server's --data-dir"
        )
    except (OSError, OperatorTokenError, UnicodeDecodeError) as exc:
        _fail(f"cannot read the operator token: {exc}")
    url = server.rstrip("/") + path
    try:
        response = httpx.request(
            method,
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {server}: {exc}")
    try:
        payload = response.json()
    except ValueError:
        _fail(f"{method} {path}: HTTP {response.status_code}, not a JSON answer")
    if response.is_success and isinstance(payload, dict) and "data" in payload:
        data: dict[str, Any] = payload["data"]
        return data
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, dict):
        _fail(f"{errors.get('detail')} ({errors.get('code')}, HTTP {response.status_code})")
    _fail(f"{method} {path}: unexpected HTTP {response.status_code} answer")


@admin_app.command("create-account")
def create_account(
    name: Annotated[str, typer.Argument(help="A display name for the account.")],
    supplier: Annotated[bool, typer.Option("--supplier", help="A supplier account.")] = False,
    deposit_usd: Annotated[
        str | None, typer.Option(help="USD to deposit at once, e.g. 100 or 25.50.")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="easy (Auto Mode: the market buys for it) or advanced.")
    ] = "easy",
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open an account with a signing key and a consumption key (printed once, keep them)."""
    body: dict[str, Any] = {"name": name, "supplier": supplier, "mode": mode}
    if deposit_usd is not None:
        body["deposit_usd"] = deposit_usd
    data = _call(server, data_dir, "POST", "/v1/admin/accounts", body)
    if as_json:
        typer.echo(json.dumps(data))
        return
    signing_key = data["signing_key"]
    typer.echo(f"account_id:       {data['account_id']}")
    typer.echo(f"consumption_key:  {data['consumption_key']}")
    typer.echo(f"signing key fingerprint: {signing_key['fingerprint']}")
    typer.echo(f"signing key public:      {signing_key['public_key']}")
    typer.echo(f"signing key private:     {signing_key['private_key']}")
    typer.echo("The keys are shown only now: store them safely.")


@admin_app.command()
def deposit(
    account: Annotated[str, typer.Argument(help="The account id.")],
    usd: Annotated[str, typer.Argument(help="USD to credit, e.g. 100 or 25.50.")],
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Credit USD to an account."""
    data = _call(
        server,
        data_dir,
        "POST",
        f"/v1/admin/accounts/{quote(account, safe='')}/deposits",
        {"amount_usd": usd},
    )
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"deposited {data['amount_usd']} USD to {data['account_id']};"
        f" available {data['usd_available']} USD"
    )


@admin_app.command()
def audit(
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Audit the live ledger: every asset must sum to zero. Exit 1 unless it balances."""
    data = _call(server, data_dir, "GET", "/v1/admin/audit")
    if as_json:
        typer.echo(json.dumps(data))
    else:
        typer.echo(f"commands applied: {data['last_seq']}")
        for asset, total in data["sums_by_asset"].items():
            typer.echo(f"  {asset:<20} sum over all accounts: {total}")
        for key in data["negative_accounts"]:
            typer.echo(f"  NEGATIVE: {key}")
        typer.echo("balanced" if data["balanced"] else "NOT BALANCED")
    if not data["balanced"]:
        raise typer.Exit(1)


@admin_app.command("set-capacity")
def set_capacity(
    account: Annotated[str, typer.Argument(help="The supplier's account id.")],
    instrument: Annotated[str, typer.Argument(help="The instrument id, e.g. text-prime.")],
    tokens_per_min: Annotated[
        int, typer.Argument(min=0, help="Capacity in tokens per minute (0 stops issuance).")
    ],
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a supplier's capacity on one instrument: it bounds how many units it may issue."""
    data = _call(
        server,
        data_dir,
        "POST",
        f"/v1/admin/accounts/{quote(account, safe='')}/capacity",
        {"instrument_id": instrument, "capacity_tokens_per_min": tokens_per_min},
    )
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"capacity of {data['account_id']} on {data['instrument_id']}:"
        f" {data['capacity_tokens_per_min']} tokens/min"
        f" (at most {data['max_outstanding_tokens']} tokens outstanding)"
    )


@admin_app.command()
def receivables(
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the suppliers that owe the operator for substitutions (DESIGN section 9)."""
    rows = cast(list[dict[str, Any]], _call(server, data_dir, "GET", "/v1/admin/receivables"))
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no receivables: no supplier owes anything")
        return
    for row in rows:
        typer.echo(f"{row['account_id']}  owes {row['receivable_usd']} USD")
    total = sum(int(row["receivable_usd_micros"]) for row in rows)
    typer.echo(f"total owed: {format_usd_micros(total)} USD")


@admin_app.command("settle-receivable")
def settle_receivable(
    account: Annotated[str, typer.Argument(help="The supplier's account id.")],
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pay a supplier's receivable from the USD it holds: all of it, or as much as it has."""
    data = _call(
        server,
        data_dir,
        "POST",
        f"/v1/admin/accounts/{quote(account, safe='')}/receivable/settle",
    )
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"{data['account_id']} paid {data['paid_usd']} USD;"
        f" still owes {data['receivable_usd']} USD, has {data['usd_available']} USD available"
    )


@admin_app.command("payment-method")
def payment_method(
    account: Annotated[str, typer.Argument(help="The account id.")],
    allowance_usd: Annotated[
        str | None,
        typer.Option(help="What Auto-Reload may still charge, e.g. 50 (0 empties it)."),
    ] = None,
    stripe_customer: Annotated[
        str | None,
        typer.Option(help="The account's Stripe customer, cus_... (with a Stripe server)."),
    ] = None,
    stripe_payment_method: Annotated[
        str | None,
        typer.Option(help="The customer's saved payment method that Auto-Reload charges, pm_..."),
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Only show the method.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set an account's payment method (the ledger-only allowance, or the Stripe customer and
    payment method) and clear a decline."""
    path = f"/v1/admin/accounts/{quote(account, safe='')}/payment-method"
    if show:
        data = _call(server, data_dir, "GET", path)
    else:
        given = {
            "allowance_usd": allowance_usd,
            "stripe_customer": stripe_customer,
            "stripe_payment_method": stripe_payment_method,
        }
        body = {name: value for name, value in given.items() if value is not None}
        data = _call(server, data_dir, "POST", path, body)
    if as_json:
        typer.echo(json.dumps(data))
        return
    allowance = data["allowance_usd"]
    stripe = (
        f"; stripe {data['stripe_customer']} {data['stripe_payment_method']}"
        if data.get("stripe_customer")
        else ""
    )
    typer.echo(
        f"payment method of {data['account_id']}: allowance "
        + ("none" if allowance is None else f"{allowance} USD")
        + stripe
        + (f"; DECLINED ({data['decline_reason']})" if data["declined"] else "; not declined")
    )
