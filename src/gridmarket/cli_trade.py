"""`gridmarket order|book|trades|balances|transfer`: trade on a running server from a terminal.

    gridmarket order place text-prime buy 5 --price 2.50 --client-order-id b1
    gridmarket order place text-prime sell 3 --type market
    gridmarket order list --status active --market text-prime
    gridmarket order cancel 42            gridmarket order cancel --all [--market text-prime]
    gridmarket book text-prime --depth 10 # a live ladder from the feed's book stream; Ctrl-C
    gridmarket book text-prime --once     # one snapshot (REST)
    gridmarket trades [--market M]        # one's own fills; --public --market M: the tape
    gridmarket balances                   # trading (USD and units) and consumption balances
    gridmarket transfer text-prime 2      # trading -> consumption, whole units

Every command takes `--server` (else `GRIDMARKET_SERVER`, else http://127.0.0.1:8000),
`--key-file` (the JSON `gridmarket admin create-account --json` prints; else
`GRIDMARKET_KEY_FILE`, or a base64 private key in `GRIDMARKET_SIGNING_KEY`) and `--json`
(machine-readable JSON only on stdout: decimals as strings, as on the wire). Any failure
prints one line, `error: ...`, on stderr and exits 1; no traceback. The commands only
translate flags into `gridmarket.client.Client` calls and print the results.

The live ladder follows the WebSocket feed's `market.book` stream (`client.book_feed`: a
snapshot, then sequenced changes, resubscribing on a gap), so it moves with every command
that changes the book. If the socket cannot be opened or fails, it says so (stderr) and polls
the REST book every `--interval` seconds instead; `--poll` polls from the start.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gridmarket.client import Client, GridmarketError, OrderBook
from gridmarket.client.book_feed import BookFeed, FeedError
from gridmarket.client.core import SERVER_ENV
from gridmarket.client.credentials import KEY_FILE_ENV

DEFAULT_BOOK_DEPTH = 10
MAX_BOOK_DEPTH = 100
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 10_000
MIN_INTERVAL_S = 0.1

order_app = typer.Typer(name="order", help="Place, list and cancel orders.", no_args_is_help=True)

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar=SERVER_ENV,
        help="Base URL of the Gridmarket server.",
        show_default="http://127.0.0.1:8000",
    ),
]
KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        envvar=KEY_FILE_ENV,
        help="JSON key file from `gridmarket admin create-account --json`.",
        dir_okay=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON only (decimals as strings).")
]
MarketFilter = Annotated[str | None, typer.Option("--market", help="Only this market.")]


def register(app: typer.Typer) -> None:
    """Add the trading commands to the `gridmarket` command."""
    app.add_typer(order_app)
    app.command("book")(book)
    app.command("trades")(trades)
    app.command("balances")(balances)
    app.command("transfer")(transfer)


# -- plumbing -----------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _client(server: str | None, key_file: Path | None) -> Iterator[Client]:
    """A client for the command; any client failure ends the command with one line."""
    try:
        with Client(server, key_file=key_file) as client:
            yield client
    except GridmarketError as exc:
        _fail(str(exc))
    except (ValueError, TypeError) as exc:
        _fail(str(exc))


def _plain(value: Any) -> Any:
    """A result as JSON-ready data: dataclasses as objects, Decimals as exact strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value)))


def _text(value: object) -> str:
    if value is None:
        return "-"
    return format(value, "f") if isinstance(value, Decimal) else str(value)


# -- orders -------------------------------------------------------------------------------------


@order_app.command("place")
def place(
    market: Annotated[str, typer.Argument(help="The market id, e.g. text-prime.")],
    side: Annotated[str, typer.Argument(help="buy or sell.")],
    quantity: Annotated[int, typer.Argument(min=1, help="Whole units (1 unit = 1M tokens).")],
    price: Annotated[
        str | None, typer.Option(help="USD per unit, e.g. 2.50; required for a limit order.")
    ] = None,
    order_type: Annotated[
        str | None,
        typer.Option("--type", help="limit or market.", show_default="limit with --price"),
    ] = None,
    tif: Annotated[str | None, typer.Option("--tif", help="gtc, ioc or fok.")] = None,
    post_only: Annotated[
        bool, typer.Option("--post-only", help="Refuse to take liquidity.")
    ] = False,
    client_order_id: Annotated[
        str | None, typer.Option(help="Your id for the order; repeating it is idempotent.")
    ] = None,
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Place an order: a limit order with --price, else a market order."""
    with _client(server, key_file) as client:
        order = client.place_order(
            market,
            side,
            quantity,
            price=price,
            type=order_type,
            time_in_force=tif,
            client_order_id=client_order_id,
            post_only=post_only,
        )
    if as_json:
        _print_json(order)
        return
    at = f" @ {_text(order.price)}" if order.price is not None else ""
    typer.echo(
        f"order {order.order_id}: {order.side} {order.quantity} {order.market_id}{at}"
        f" ({order.type} {order.time_in_force or ''}) {order.status},"
        f" filled {order.filled_quantity}"
    )


@order_app.command("list")
def list_orders(
    status: Annotated[
        str | None, typer.Option(help="active (open), filled, cancelled, closed...")
    ] = None,
    market: MarketFilter = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIST_LIMIT, help="At most this many orders.")
    ] = DEFAULT_LIST_LIMIT,
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your orders, newest first."""
    with _client(server, key_file) as client:
        orders = list(islice(client.iter_orders(status=status, market_id=market), limit))
    if as_json:
        _print_json(orders)
        return
    table = Table("order", "market", "side", "type", "price", "qty", "filled", "status", "created")
    for o in orders:
        table.add_row(
            o.order_id,
            o.market_id,
            o.side,
            o.type,
            _text(o.price),
            str(o.quantity),
            str(o.filled_quantity),
            o.status,
            _text(o.created_at),
        )
    Console().print(table)


@order_app.command("cancel")
def cancel(
    order_id: Annotated[str | None, typer.Argument(help="The order to cancel.")] = None,
    all_orders: Annotated[bool, typer.Option("--all", help="Cancel every open order.")] = False,
    market: Annotated[
        str | None, typer.Option("--market", help="With --all: only this market's.")
    ] = None,
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel one order by id, or all open orders with --all."""
    if (order_id is None) == (not all_orders):
        _fail("give either an order id or --all")
    if market is not None and not all_orders:
        _fail("--market goes with --all")
    with _client(server, key_file) as client:
        if order_id is not None:
            client.cancel_order(order_id)
            result: dict[str, Any] = {"order_id": order_id, "cancelled": True}
            message = f"order {order_id} cancelled"
        else:
            count = client.cancel_all_orders(market)
            result = {"cancelled": count}
            message = f"{count} order(s) cancelled"
    if as_json:
        _print_json(result)
    else:
        typer.echo(message)


# -- the book -----------------------------------------------------------------------------------


def _ladder(book: OrderBook, market: str, depth: int, note: str | None = None) -> Group:
    """Bids and asks side by side, best prices on the first row."""
    table = Table(title=f"{market} order book", title_justify="left")
    table.add_column("bid orders", justify="right", style="green")
    table.add_column("bid qty", justify="right", style="green")
    table.add_column("bid", justify="right", style="bold green")
    table.add_column("ask", justify="left", style="bold red")
    table.add_column("ask qty", justify="right", style="red")
    table.add_column("ask orders", justify="right", style="red")
    for i in range(min(depth, max(len(book.bids), len(book.asks)))):
        bid = book.bids[i] if i < len(book.bids) else None
        ask = book.asks[i] if i < len(book.asks) else None
        table.add_row(
            _text(bid.order_count) if bid else "",
            str(bid.quantity) if bid else "",
            _text(bid.price) if bid else "",
            _text(ask.price) if ask else "",
            str(ask.quantity) if ask else "",
            _text(ask.order_count) if ask else "",
        )
    spread = (
        _text(book.best_ask - book.best_bid)
        if book.best_ask is not None and book.best_bid is not None
        else "-"
    )
    footer = f"spread {spread}  sequence {_text(book.sequence)}  at {_text(book.timestamp)}"
    parts: list[Any] = [table, Text(footer, style="dim")]
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)


def book(
    market: Annotated[str, typer.Argument(help="The market id, e.g. text-prime.")],
    depth: Annotated[
        int, typer.Option(min=1, max=MAX_BOOK_DEPTH, help="Price levels a side.")
    ] = DEFAULT_BOOK_DEPTH,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    poll: Annotated[
        bool, typer.Option("--poll", help="Poll the REST book instead of the live feed.")
    ] = False,
    interval_s: Annotated[
        float,
        typer.Option("--interval", min=MIN_INTERVAL_S, help="Seconds between polls (--poll)."),
    ] = 0.5,
    feed_url: Annotated[
        str | None,
        typer.Option("--feed-url", hidden=True, help="The feed's WebSocket URL (tests)."),
    ] = None,
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """The order book as a live ladder from the live feed; --once for one REST snapshot.

    With --json: one JSON object with --once, else one JSON line per book change (per poll
    when polling). Without the feed (unreachable, or --poll) the REST book is polled.
    """
    with _client(server, key_file) as client:
        snapshot = client.orderbook(market, depth)  # also: an unknown market fails here
        if once:
            if as_json:
                _print_json(snapshot)
            else:
                Console().print(_ladder(snapshot, market, depth))
            return
        show = _json_lines() if as_json else _live_ladder(market, depth, snapshot)
        next(show)
        try:
            if not poll:
                try:
                    for view in BookFeed(client.server, market, depth=depth, url=feed_url).books():
                        show.send((view, None))
                except FeedError as exc:
                    typer.echo(f"note: {exc}; polling the REST book instead", err=True)
            while True:
                try:
                    snapshot = client.orderbook(market, depth)
                    show.send((snapshot, None))
                except GridmarketError as exc:  # keep the last book, say why it is stale
                    show.send((snapshot, f"stale: {exc}"))
                time.sleep(interval_s)
        except KeyboardInterrupt:
            return
        finally:
            show.close()


Shown = tuple[OrderBook, str | None]


def _json_lines() -> Generator[None, Shown, None]:
    while True:
        view, _ = yield
        _print_json(view)


def _live_ladder(market: str, depth: int, first: OrderBook) -> Generator[None, Shown, None]:
    with Live(_ladder(first, market, depth), refresh_per_second=4) as live:
        while True:
            view, note = yield
            live.update(_ladder(view, market, depth, note))


# -- trades, balances, transfers ----------------------------------------------------------------


def trades(
    market: MarketFilter = None,
    public: Annotated[
        bool, typer.Option("--public", help="The market's public trades (needs --market).")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIST_LIMIT, help="At most this many trades.")
    ] = DEFAULT_LIST_LIMIT,
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your own fills, newest first; with --public, a market's recent trades."""
    if public and market is None:
        _fail("--public needs --market")
    with _client(server, key_file) as client:
        if public:
            assert market is not None
            rows: list[Any] = list(client.public_trades(market, min(limit, 100)).items)
        else:
            rows = list(islice(client.iter_trades(market_id=market), limit))
    if as_json:
        _print_json(rows)
        return
    table = Table("trade", "market", "side", "price", "qty", "executed")
    for t in rows:
        table.add_row(
            t.trade_id,
            t.market_id,
            _text(t.side),
            _text(t.price),
            str(t.quantity),
            _text(t.execution_timestamp),
        )
    Console().print(table)


def balances(
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trading balances (USD and units) and consumption balances."""
    with _client(server, key_file) as client:
        trading = client.trading_accounts()
        consumption = client.consumption_accounts()
    if as_json:
        _print_json({"trading_accounts": trading, "consumption_accounts": consumption})
        return
    table = Table("account", "instrument", "total", "available", "locked", title="trading")
    for a in trading:
        table.add_row(
            a.account_id,
            a.currency or a.instrument_id,
            _text(a.total_balance),
            _text(a.available_balance),
            _text(a.locked_balance),
        )
    used = Table("account", "instrument", "total", "available", "committed", title="consumption")
    for c in consumption:
        used.add_row(
            c.account_id,
            c.instrument_id,
            _text(c.total_balance),
            _text(c.available_balance),
            _text(c.committed_balance),
        )
    Console().print(Group(table, used))


def transfer(
    instrument: Annotated[str, typer.Argument(help="The instrument id, e.g. text-prime.")],
    quantity: Annotated[int, typer.Argument(min=1, help="Whole units to move.")],
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move units from your trading account to your consumption account (one way)."""
    with _client(server, key_file) as client:
        result = client.transfer_to_consumption(instrument, quantity)
    if as_json:
        _print_json(result)
        return
    typer.echo(f"transfer {result.transfer_id}: {quantity} {instrument} {result.status or ''}")
