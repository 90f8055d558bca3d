"""`gridmarket admin keys|signing-keys|settings|withdraw|payout`: one account's keys, settings
and money out, for the operator, over the admin API (`api.admin_keys`).

    gridmarket admin keys list ACCOUNT
    gridmarket admin keys create ACCOUNT --name laptop [--expires-at 2027-01-01T00:00:00Z]
                                         [--spend-cap-tokens 100000]
    gridmarket admin keys revoke ACCOUNT KEY_ID
    gridmarket admin signing-keys list ACCOUNT
    gridmarket admin signing-keys add ACCOUNT --label ci [--public-key BASE64]
    gridmarket admin signing-keys revoke ACCOUNT KEY_ID_OR_FINGERPRINT
    gridmarket admin settings show ACCOUNT
    gridmarket admin settings set ACCOUNT [--mode easy|advanced]
        [--auto-transfer/--no-auto-transfer] [--auto-buy/--no-auto-buy]
        [--auto-reload/--no-auto-reload] [--reload-threshold-usd X]
        [--reload-amount-usd X] [--reload-monthly-limit-usd X]
    gridmarket admin withdraw ACCOUNT USD
    gridmarket admin payout ACCOUNT USD

Every command takes `--json` (print the answer's `data` as JSON), `--server` and
`--data-dir`, as the other admin commands (`cli_admin`); a failure is one line on stderr, exit 1.
Secrets (a new consumption key, a generated private key) are printed once.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer

from gridmarket.cli_admin import DEFAULT_SERVER, ServerOption, _call, _fail
from gridmarket.cli_options import DataDirOption, JsonOption

keys_app = typer.Typer(name="keys", help="An account's consumption keys.", no_args_is_help=True)
signing_keys_app = typer.Typer(
    name="signing-keys", help="An account's Ed25519 signing keys.", no_args_is_help=True
)
settings_app = typer.Typer(name="settings", help="An account's settings.", no_args_is_help=True)

AccountArg = Annotated[str, typer.Argument(help="The account id.")]


def _path(account: str, *rest: str) -> str:
    return "/".join(["/v1/admin/accounts", quote(account, safe=""), *rest])


def _show(data: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for line in lines:
            typer.echo(line)


# -- consumption keys ---------------------------------------------------------------------------


def _api_key_line(key: dict[str, Any]) -> str:
    state = "active" if key["is_active"] else "inactive"
    return (
        f"{key['id']}  {key['key_prefix']}...  {state:<8}  name={key['name']!r}"
        f"  expires={key['expires_at']}  cap={key['spend_cap_tokens']}"
    )


@keys_app.command("list")
def list_keys(
    account: AccountArg,
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the account's unrevoked consumption keys."""
    data: Any = _call(server, data_dir, "GET", _path(account, "api-keys"))
    _show(data, as_json, [_api_key_line(key) for key in data] or ["no keys"])


@keys_app.command("create")
def create_key(
    account: AccountArg,
    name: Annotated[str, typer.Option(help="What the key is for.")],
    expires_at: Annotated[
        str | None, typer.Option(help="ISO 8601 time with a zone, e.g. 2027-01-01T00:00:00Z.")
    ] = None,
    spend_cap_tokens: Annotated[int | None, typer.Option(help="A cap on tokens spent.")] = None,
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a consumption key; the key itself is printed only now."""
    fields: dict[str, Any] = {"name": name}
    if expires_at is not None:
        fields["expires_at"] = expires_at
    if spend_cap_tokens is not None:
        fields["spend_cap_tokens"] = spend_cap_tokens
    data = _call(server, data_dir, "POST", _path(account, "api-keys"), {"api_key": fields})
    _show(data, as_json, [_api_key_line(data), f"key: {data['key']}", "Shown only now."])


@keys_app.command("revoke")
def revoke_key(
    account: AccountArg,
    key_id: Annotated[str, typer.Argument(help="The key's id (ck_...).")],
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a consumption key."""
    path = _path(account, "api-keys", quote(key_id, safe=""))
    data = _call(server, data_dir, "DELETE", path)
    _show(data, as_json, [f"revoked {data['id']}"])


# -- signing keys -------------------------------------------------------------------------------


def _signing_key_line(key: dict[str, Any]) -> str:
    return f"{key['key_id']}  fingerprint={key['fingerprint']}  label={key['label']!r}"


@signing_keys_app.command("list")
def list_signing_keys(
    account: AccountArg,
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the account's active signing keys."""
    data: Any = _call(server, data_dir, "GET", _path(account, "signing-keys"))
    _show(data, as_json, [_signing_key_line(key) for key in data] or ["no keys"])


@signing_keys_app.command("add")
def add_signing_key(
    account: AccountArg,
    label: Annotated[str, typer.Option(help="What the key is for.")],
    public_key: Annotated[
        str | None,
        typer.Option(help="Base64 raw 32-byte Ed25519 public key; without it, a new pair."),
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a signing key (or make a new pair: its private key is printed only now)."""
    fields: dict[str, Any] = {"label": label}
    if public_key is not None:
        fields["public_key"] = public_key
    body = {"signing_key": fields}
    data = _call(server, data_dir, "POST", _path(account, "signing-keys"), body)
    lines = [_signing_key_line(data), f"public key: {data['public_key']}"]
    if "private_key" in data:
        lines += [f"private key: {data['private_key']}", "Shown only now: store it safely."]
    _show(data, as_json, lines)


@signing_keys_app.command("revoke")
def revoke_signing_key(
    account: AccountArg,
    key: Annotated[str, typer.Argument(help="The key id (sk_...) or fingerprint.")],
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a signing key (the operator may revoke an account's last one)."""
    data = _call(server, data_dir, "DELETE", _path(account, "signing-keys", quote(key, safe="")))
    _show(data, as_json, [f"revoked {data['key_id']}"])


# -- settings -----------------------------------------------------------------------------------


def _settings_lines(data: dict[str, Any]) -> list[str]:
    return [f"{name}: {value}" for name, value in data.items()]


@settings_app.command("show")
def show_settings(
    account: AccountArg,
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the account's mode, auto-transfer, auto-buy and Auto-Reload settings."""
    data = _call(server, data_dir, "GET", _path(account, "settings"))
    _show(data, as_json, _settings_lines(data))


@settings_app.command("set")
def set_settings(
    account: AccountArg,
    mode: Annotated[str | None, typer.Option(help="easy (Auto Mode) or advanced.")] = None,
    auto_transfer: Annotated[
        bool | None, typer.Option("--auto-transfer/--no-auto-transfer", help="Advanced only.")
    ] = None,
    auto_buy: Annotated[
        bool | None, typer.Option("--auto-buy/--no-auto-buy", help="Advanced only.")
    ] = None,
    auto_reload: Annotated[bool | None, typer.Option("--auto-reload/--no-auto-reload")] = None,
    reload_threshold_usd: Annotated[
        str | None, typer.Option(help="Reload when USD falls below this.")
    ] = None,
    reload_amount_usd: Annotated[str | None, typer.Option(help="USD added per reload.")] = None,
    reload_monthly_limit_usd: Annotated[
        str | None, typer.Option(help="At most this much USD reloaded per month.")
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change settings; prints them as they now are."""
    body: dict[str, Any] = {}
    if mode is not None:
        body["mode"] = mode
    if auto_transfer is not None:
        body["auto_transfer_enabled"] = auto_transfer
    if auto_buy is not None:
        body["auto_buy_enabled"] = auto_buy
    reload = {
        name: value
        for name, value in (
            ("enabled", auto_reload),
            ("threshold", reload_threshold_usd),
            ("amount", reload_amount_usd),
            ("monthly_limit", reload_monthly_limit_usd),
        )
        if value is not None
    }
    if reload:
        body["auto_reload"] = reload
    if not body:
        _fail("nothing to set: give --mode, --auto-transfer, --auto-buy or --auto-reload options")
    data = _call(server, data_dir, "PATCH", _path(account, "settings"), body)
    _show(data, as_json, _settings_lines(data))


# -- money out ----------------------------------------------------------------------------------


def withdraw(
    account: AccountArg,
    usd: Annotated[str, typer.Argument(help="USD to withdraw, e.g. 12.50.")],
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw USD from an account's available credits."""
    data = _call(server, data_dir, "POST", _path(account, "withdrawals"), {"amount_usd": usd})
    _show(data, as_json, [f"withdrew {data['amount_usd']} USD; available {data['usd_available']}"])


def payout(
    account: AccountArg,
    usd: Annotated[str, typer.Argument(help="USD to pay out, e.g. 12.50.")],
    server: ServerOption = DEFAULT_SERVER,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pay a supplier out of its available USD."""
    data = _call(server, data_dir, "POST", _path(account, "payouts"), {"amount_usd": usd})
    _show(data, as_json, [f"paid out {data['amount_usd']} USD; available {data['usd_available']}"])


def add_account_commands(admin_app: typer.Typer) -> None:
    """Add these commands under `gridmarket admin`."""
    admin_app.add_typer(keys_app)
    admin_app.add_typer(signing_keys_app)
    admin_app.add_typer(settings_app)
    admin_app.command()(withdraw)
    admin_app.command()(payout)
