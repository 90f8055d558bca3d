"""Where Gridmarket keeps its state and where it listens, resolved once at start-up.

Each setting comes from, in order: a command-line flag, an environment variable, a default.

    data dir      --data-dir       GRIDMARKET_HOME          ~/.gridmarket
    database URL  --database-url   GRIDMARKET_DATABASE_URL  sqlite:///<data dir>/gridmarket.db
    host          --host                                    127.0.0.1
    port          --port                                    8000

Rate limits on the signed Trading API (see `api.ratelimit`), whole numbers >= 1:

    requests per key     --rate-limit-requests   GRIDMARKET_RATE_LIMIT_REQUESTS    6000
      ... per window     --rate-limit-window-s   GRIDMARKET_RATE_LIMIT_WINDOW_S    60
    orders per key and market, per second
                         --order-rate-per-second GRIDMARKET_ORDER_RATE_PER_SECOND  50
      ... per minute     --order-rate-per-minute GRIDMARKET_ORDER_RATE_PER_MINUTE  3000
      ... burst          --order-burst           GRIDMARKET_ORDER_BURST            100

The built-in supplier (a small CPU model quoted on `text-local`, see `gridmarket.supplier`):

    on/off               --builtin-supplier/--no-builtin-supplier
                                                 GRIDMARKET_BUILTIN_SUPPLIER        on
    ask price, USD/unit  --builtin-price-usd     GRIDMARKET_BUILTIN_PRICE_USD       0.010
    units kept resting   --builtin-resting-units GRIDMARKET_BUILTIN_RESTING_UNITS   2
    capacity, tokens/min --builtin-capacity      GRIDMARKET_BUILTIN_CAPACITY        measured
Calls per consumption key per minute on the consumption API (`gateway.service`), likewise:

    calls per key        --consumption-rate-limit GRIDMARKET_CONSUMPTION_RATE_LIMIT 6000

Supplier endpoints for the consumption gateway (`gateway.suppliers` has the format):

    endpoints            --supplier (repeatable)  GRIDMARKET_SUPPLIERS (comma/newline list)

Auto-Reload's payment provider (`PaymentSettings`; only `gridmarket serve` reads these):

    provider             --payment-provider       GRIDMARKET_PAYMENT_PROVIDER       ledger
                                                  (`ledger` or `stripe`)
    Stripe secret key                             GRIDMARKET_STRIPE_SECRET_KEY      none
    Stripe API base URL                           GRIDMARKET_STRIPE_API_BASE        https://api.stripe.com

The secret key has no flag (a flag shows in `ps`); `stripe` without it is refused at start-up.

The defaults are generous, for a self-hosted exchange: 100 requests a second per signing key
sustained, and orders at 50 a second per key and market with bursts of 100. A value that is
not a whole number from 1 to 1,000,000,000 is refused at start-up, naming the variable.

An empty environment variable counts as unset. `postgresql://` and `postgres://` URLs are
rewritten to `postgresql+psycopg://`, the only PostgreSQL driver Gridmarket ships with.
Resolving settings touches nothing on disk; `ensure_data_dir` creates the data dir.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

from gridmarket.gateway.contract import SupplierEndpoint
from gridmarket.gateway.suppliers import parse_suppliers

HOME_ENV = "GRIDMARKET_HOME"
DATABASE_URL_ENV = "GRIDMARKET_DATABASE_URL"
DEFAULT_DATA_DIR = "~/.gridmarket"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DATABASE_FILE_NAME = "gridmarket.db"
DATA_DIR_MODE = 0o700

RATE_LIMIT_REQUESTS_ENV = "GRIDMARKET_RATE_LIMIT_REQUESTS"
RATE_LIMIT_WINDOW_ENV = "GRIDMARKET_RATE_LIMIT_WINDOW_S"
ORDER_RATE_PER_SECOND_ENV = "GRIDMARKET_ORDER_RATE_PER_SECOND"
ORDER_RATE_PER_MINUTE_ENV = "GRIDMARKET_ORDER_RATE_PER_MINUTE"
ORDER_BURST_ENV = "GRIDMARKET_ORDER_BURST"
CONSUMPTION_RATE_ENV = "GRIDMARKET_CONSUMPTION_RATE_LIMIT"
DEFAULT_CONSUMPTION_CALLS_PER_MINUTE = 6000
MAX_RATE_SETTING = 1_000_000_000

PAYMENT_PROVIDER_ENV = "GRIDMARKET_PAYMENT_PROVIDER"
STRIPE_SECRET_KEY_ENV = "GRIDMARKET_STRIPE_SECRET_KEY"
STRIPE_API_BASE_ENV = "GRIDMARKET_STRIPE_API_BASE"
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
PAYMENT_PROVIDERS = ("ledger", "stripe")

BUILTIN_SUPPLIER_ENV = "GRIDMARKET_BUILTIN_SUPPLIER"
BUILTIN_PRICE_ENV = "GRIDMARKET_BUILTIN_PRICE_USD"
BUILTIN_RESTING_ENV = "GRIDMARKET_BUILTIN_RESTING_UNITS"
BUILTIN_CAPACITY_ENV = "GRIDMARKET_BUILTIN_CAPACITY"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_POSTGRES_DRIVER_SCHEME = "postgresql+psycopg://"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per signing key: `requests` per `window_s` (a token bucket of `requests` tokens); per
    signing key and market: order placements, `orders_per_second` with bursts of
    `order_burst`, and at most `orders_per_minute` a minute."""

    requests: int = 6000
    window_s: int = 60
    orders_per_second: int = 50
    orders_per_minute: int = 3000
    order_burst: int = 100

    @classmethod
    def resolve(cls, flags: Mapping[str, int | None], env: Mapping[str, str]) -> RateLimits:
        """From `flags` (field name -> value, None when not given), then `env`, then defaults."""
        defaults = cls()
        values = {}
        for name, env_name in _RATE_LIMIT_ENV.items():
            flag = flags.get(name)
            raw: int | str | None = flag if flag is not None else (env.get(env_name) or None)
            values[name] = getattr(defaults, name) if raw is None else _rate(env_name, raw)
        return cls(**values)


_RATE_LIMIT_ENV = {
    "requests": RATE_LIMIT_REQUESTS_ENV,
    "window_s": RATE_LIMIT_WINDOW_ENV,
    "orders_per_second": ORDER_RATE_PER_SECOND_ENV,
    "orders_per_minute": ORDER_RATE_PER_MINUTE_ENV,
    "order_burst": ORDER_BURST_ENV,
}


def _rate(name: str, raw: int | str) -> int:
    text = str(raw).strip()
    if re.fullmatch(r"[0-9]{1,10}", text) is None or not 1 <= int(text) <= MAX_RATE_SETTING:
        raise ValueError(f"{name}: must be a whole number from 1 to {MAX_RATE_SETTING}: {raw!r}")
    return int(text)


def _consumption_rate(flag: int | None, env: Mapping[str, str]) -> int:
    raw: int | str | None = flag if flag is not None else (env.get(CONSUMPTION_RATE_ENV) or None)
    return DEFAULT_CONSUMPTION_CALLS_PER_MINUTE if raw is None else _rate(CONSUMPTION_RATE_ENV, raw)


@dataclass(frozen=True, slots=True)
class BuiltinSupplier:
    """The built-in supplier's settings. Off unless resolved on (`gridmarket serve` resolves it
    on by default); `capacity_tokens_per_min` None means measured from the model at start."""

    enabled: bool = False
    price_usd_micros: int = 10_000
    resting_units: int = 2
    capacity_tokens_per_min: int | None = None

    @classmethod
    def resolve(
        cls,
        *,
        enabled: bool | None,
        price_usd: str | None,
        resting_units: int | None,
        capacity_tokens_per_min: int | None,
        env: Mapping[str, str],
    ) -> BuiltinSupplier:
        """From flags (None when not given), then `env`, then defaults (on)."""
        defaults = cls()
        if enabled is None:
            raw = (env.get(BUILTIN_SUPPLIER_ENV) or "1").strip().lower()
            if raw not in _TRUE | _FALSE:
                raise ValueError(f"{BUILTIN_SUPPLIER_ENV}: must be 1/0, true/false: {raw!r}")
            enabled = raw in _TRUE
        price_text = price_usd or env.get(BUILTIN_PRICE_ENV) or None
        price = defaults.price_usd_micros
        if price_text is not None:
            from gridmarket.api.money import parse_usd_micros

            try:
                price = parse_usd_micros(price_text)
            except ValueError as bad:
                raise ValueError(f"{BUILTIN_PRICE_ENV}: {bad}: {price_text!r}") from None
            from gridmarket.core.instruments import TEXT_LOCAL

            if price % TEXT_LOCAL.price_tick_usd_micros:
                raise ValueError(
                    f"{BUILTIN_PRICE_ENV}: must be on text-local's tick of "
                    f"{TEXT_LOCAL.price_tick_usd_micros} micro-USD: {price_text!r}"
                )
        resting: int | str | None = resting_units or env.get(BUILTIN_RESTING_ENV) or None
        capacity: int | str | None = (
            capacity_tokens_per_min or env.get(BUILTIN_CAPACITY_ENV) or None
        )
        return cls(
            enabled=enabled,
            price_usd_micros=price,
            resting_units=defaults.resting_units
            if resting is None
            else _bounded(BUILTIN_RESTING_ENV, resting, 1_000),
            capacity_tokens_per_min=None
            if capacity is None
            else _bounded(BUILTIN_CAPACITY_ENV, capacity, 10**9),
        )


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    """Which adapter Auto-Reload charges through: `ledger` (the operator's allowances, the
    default) or `stripe` (`adapters.stripe_payment`, with its secret key and API base URL)."""

    provider: Literal["ledger", "stripe"] = "ledger"
    stripe_secret_key: str | None = field(default=None, repr=False)  # never printed
    stripe_api_base: str = DEFAULT_STRIPE_API_BASE

    @classmethod
    def resolve(cls, *, provider: str | None, env: Mapping[str, str]) -> PaymentSettings:
        """From the `--payment-provider` flag (None when not given), then `env`, then ledger.

        ValueError, naming the variable, for an unknown provider, `stripe` without a secret
        key, or an API base that is not an http(s) URL."""
        name = (provider or env.get(PAYMENT_PROVIDER_ENV) or "ledger").strip().lower()
        if name not in PAYMENT_PROVIDERS:
            raise ValueError(f"{PAYMENT_PROVIDER_ENV}: must be ledger or stripe: {name!r}")
        if name == "ledger":
            return cls()
        key = (env.get(STRIPE_SECRET_KEY_ENV) or "").strip()
        if not key:
            raise ValueError(
                f"the stripe payment provider needs its secret key in {STRIPE_SECRET_KEY_ENV}"
            )
        if re.fullmatch(r"[A-Za-z0-9_]{8,255}", key) is None:
            raise ValueError(f"{STRIPE_SECRET_KEY_ENV}: not a Stripe secret key (sk_... or rk_...)")
        base = (env.get(STRIPE_API_BASE_ENV) or DEFAULT_STRIPE_API_BASE).strip().rstrip("/")
        if re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base) is None:
            raise ValueError(f"{STRIPE_API_BASE_ENV}: must be an http(s) URL: {base!r}")
        return cls("stripe", key, base)


def _bounded(name: str, raw: int | str, high: int) -> int:
    text = str(raw).strip()
    if re.fullmatch(r"[0-9]{1,10}", text) is None or not 1 <= int(text) <= high:
        raise ValueError(f"{name}: must be a whole number from 1 to {high}: {raw!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class Settings:
    """One server's configuration; build it with `Settings.resolve`."""

    data_dir: Path
    database_url: str = field(repr=False)  # may hold a password; see database_url_for_logs
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    rate_limits: RateLimits = field(default_factory=RateLimits)
    builtin_supplier: BuiltinSupplier = field(default_factory=BuiltinSupplier)
    #: The consumption gateway's supplier endpoints (they may hold API keys: not in repr).
    suppliers: tuple[SupplierEndpoint, ...] = field(default=(), repr=False)
    consumption_calls_per_minute: int = DEFAULT_CONSUMPTION_CALLS_PER_MINUTE
    payment: PaymentSettings = field(default_factory=PaymentSettings)

    @classmethod
    def resolve(
        cls,
        *,
        data_dir: str | Path | None = None,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        environ: Mapping[str, str] | None = None,
        rate_limits: Mapping[str, int | None] | None = None,
        builtin_supplier: BuiltinSupplier | None = None,
        suppliers: Sequence[str] | None = None,
        consumption_calls_per_minute: int | None = None,
        payment: PaymentSettings | None = None,
    ) -> Settings:
        """Settings from flags (arguments; None when not given), then `environ`, then defaults.

        `rate_limits` holds the rate-limit flags by `RateLimits` field name; `suppliers` the
        `--supplier` entries, read with `GRIDMARKET_SUPPLIERS` (ValueError for a malformed
        one). Only a command that serves passes them: with None (the default) no endpoint is
        configured and `GRIDMARKET_SUPPLIERS` is not read, so that a malformed one cannot
        stop `gridmarket audit` or the admin commands. The built-in supplier stays off unless
        `builtin_supplier` is given (`gridmarket serve` resolves it); likewise the payment
        provider is the ledger's unless `payment` is given.
        """
        env = os.environ if environ is None else environ
        home = data_dir or env.get(HOME_ENV) or DEFAULT_DATA_DIR
        resolved_dir = Path(home).expanduser().absolute()
        url = database_url or env.get(DATABASE_URL_ENV) or default_database_url(resolved_dir)
        return cls(
            data_dir=resolved_dir,
            database_url=_with_psycopg_driver(url),
            host=host or DEFAULT_HOST,
            port=DEFAULT_PORT if port is None else port,
            rate_limits=RateLimits.resolve(rate_limits or {}, env),
            builtin_supplier=builtin_supplier or BuiltinSupplier(),
            suppliers=() if suppliers is None else parse_suppliers(suppliers, env),
            consumption_calls_per_minute=_consumption_rate(consumption_calls_per_minute, env),
            payment=payment or PaymentSettings(),
        )

    def ensure_data_dir(self) -> None:
        """Create the data dir, readable by its owner only, if it does not exist yet.

        An existing directory keeps its permissions: the operator may have chosen them.
        """
        if self.data_dir.is_dir():
            return
        self.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        self.data_dir.chmod(DATA_DIR_MODE)  # mkdir's mode is filtered by the umask

    def database_url_for_logs(self) -> str:
        """The database URL with any password masked, safe to print."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file inside the data dir."""
    return f"sqlite:///{data_dir / DATABASE_FILE_NAME}"


def _with_psycopg_driver(url: str) -> str:
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return _POSTGRES_DRIVER_SCHEME + url.removeprefix(scheme)
    return url
