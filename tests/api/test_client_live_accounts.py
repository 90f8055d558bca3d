"""`gridmarket.client` against a real `gridmarket serve` for the endpoints beyond the order
lifecycle: a supplier issues and sells over HTTP, a buyer's fills make real trades, then own
trades, order updates and counts, balances, transfers, issuance, liability, candles and
account limits are read back through `Client` (and `AsyncClient`), parsed from what the
server really answers, with the figures checked against what happened."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from live_server import Server

from gridmarket.client import (
    AsyncClient,
    Client,
    Forbidden,
    IssuanceTransfer,
    NotFound,
    Order,
    SupplyIssuance,
    ValidationError,
)

MARKET = "text-prime"
TOKENS_PER_UNIT = 1_000_000
CAPACITY_TOKENS_PER_MIN = 1_000_000  # x the 240-minute horizon: up to 240 units outstanding


@dataclass(frozen=True)
class World:
    server: Server
    supplier_file: Path
    buyer_file: Path
    supplier_id: str
    buyer_id: str


def _account(server: Server, where: Path, name: str, *, supplier: bool = False) -> Path:
    return server.key_file(where / f"{name}.json", name, deposit_usd="1000", supplier=supplier)


def _account_id(path: Path) -> str:
    account_id: str = json.loads(path.read_text())["account_id"]
    return account_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = Server(tmp_path_factory.mktemp("client-accounts") / "home")
    try:
        keys = tmp_path_factory.mktemp("keys")
        supplier = _account(server, keys, "supplier", supplier=True)
        buyer = _account(server, keys, "buyer")
        capacity = {"instrument_id": MARKET, "capacity_tokens_per_min": CAPACITY_TOKENS_PER_MIN}
        path = f"/v1/admin/accounts/{_account_id(supplier)}/capacity"
        response = server.admin("POST", path, json=capacity)
        assert response.status_code == 200, response.text
        yield World(server, supplier, buyer, _account_id(supplier), _account_id(buyer))
    finally:
        server.kill()


@dataclass(frozen=True)
class Traded:
    issuance: SupplyIssuance
    moved: IssuanceTransfer
    bid: Order


@pytest.fixture(scope="module")
def traded(world: World) -> Traded:
    """The supplier issues 50 units, moves 30 to trading and offers 20 at 2.500; the buyer
    takes 8 with one limit order (two fills: 5 then 3 from two asks)."""
    with (
        Client(world.server.url, key_file=world.supplier_file) as supplier,
        Client(world.server.url, key_file=world.buyer_file) as buyer,
    ):
        issuance = supplier.issue_supply(MARKET, 50)
        moved = supplier.transfer_from_issuance(MARKET, 30)
        supplier.place_order(MARKET, "sell", 5, price="2.500")
        supplier.place_order(MARKET, "sell", 15, price="2.600")
        bid = buyer.place_order(MARKET, "buy", 8, price="2.600")
        return Traded(issuance, moved, bid)


def test_supplier_issues_and_moves_units_to_trading(world: World, traded: Traded) -> None:
    issuance, moved = traded.issuance, traded.moved
    with Client(world.server.url, key_file=world.supplier_file) as supplier:
        assert issuance.quantity == 50 and issuance.instrument_id == MARKET
        assert issuance.issuance_id.startswith("iss_")
        assert moved.quantity == 30 and moved.instrument_id == MARKET
        assert moved.trading_account_id == f"{world.supplier_id}:trading:{MARKET}"

        (account,) = supplier.issuance_accounts()
        assert (account.instrument_id, account.total_issued) == (MARKET, 50)
        assert (account.total_transferred, account.available_balance) == (30, 20)

        page = supplier.supply_issuances(instrument_id=MARKET, limit=10)
        assert [i.issuance_id for i in page.items] == [issuance.issuance_id]
        assert page.items[0].quantity == 50 and not page.has_more

        (summary,) = supplier.supply_summary()
        assert (summary.instrument_id, summary.total_issued) == (MARKET, 50)
        assert (summary.units_available, summary.units_transferred_to_trading) == (20, 30)


def test_issuance_is_bounded_and_only_for_suppliers(world: World, traded: Traded) -> None:
    with Client(world.server.url, key_file=world.supplier_file) as supplier:
        with pytest.raises(ValidationError) as caught:
            supplier.issue_supply(MARKET, 10_000)
        assert caught.value.code == "capacity_exceeded"
        with pytest.raises(ValidationError):
            supplier.transfer_from_issuance(MARKET, 1_000)
        assert supplier.issuance_accounts()[0].total_issued == 50  # nothing changed
    with Client(world.server.url, key_file=world.buyer_file) as buyer:
        with pytest.raises(Forbidden) as refused:
            buyer.issue_supply(MARKET, 1)
        assert refused.value.code == "not_a_supplier"
        with pytest.raises(Forbidden):
            buyer.supplier_liability()


def test_fills_are_own_trades_for_both_sides(world: World, traded: Traded) -> None:
    with (
        Client(world.server.url, key_file=world.buyer_file) as buyer,
        Client(world.server.url, key_file=world.supplier_file) as supplier,
    ):
        order = buyer.get_order(traded.bid.order_id)
        assert (order.status, order.filled_quantity) == ("filled", 8)
        mine = buyer.trades(market_id=MARKET)
        fills = sorted((t.price, t.quantity, t.side) for t in mine.items)
        assert fills == [(Decimal("2.5"), 5, "buy"), (Decimal("2.6"), 3, "buy")]
        assert all(t.order_id == order.order_id for t in mine.items)
        assert buyer.trade(mine.items[0].trade_id) == mine.items[0]
        walked = [t.trade_id for t in buyer.iter_trades(page_size=1)]
        assert walked == [t.trade_id for t in mine.items]
        assert buyer.trades(order_id=order.order_id).items == mine.items

        sold = supplier.trades(market_id=MARKET).items
        assert sorted((t.quantity, t.side) for t in sold) == [(3, "sell"), (5, "sell")]
        with pytest.raises(NotFound):
            supplier.trade(mine.items[0].trade_id + "x")
    # Each party sees its own side of a fill; a third account sees neither.
    third = _account(world.server, world.supplier_file.parent, "third")
    with Client(world.server.url, key_file=third) as stranger:
        assert stranger.trades().items == ()
        for trade in (*sold, *mine.items):
            with pytest.raises(NotFound):
                stranger.trade(trade.trade_id)


def test_balances_after_the_fills(world: World, traded: Traded) -> None:
    spent = Decimal("2.5") * 5 + Decimal("2.6") * 3
    with Client(world.server.url, key_file=world.buyer_file) as buyer:
        rows = {row.instrument_id: row for row in buyer.trading_accounts()}
        assert rows["USD"].currency == "USD"
        assert rows["USD"].total_balance == Decimal(1000) - spent
        assert rows["USD"].owner_id == world.buyer_id
        assert rows[MARKET].total_balance == 8 and rows[MARKET].available_balance == 8
        assert buyer.trading_account(rows[MARKET].account_id) == rows[MARKET]
        (usd,) = buyer.currency_accounts()
        assert usd.account_id == rows["USD"].account_id
        assert buyer.currency_account(usd.account_id).available_balance == usd.available_balance
    with Client(world.server.url, key_file=world.supplier_file) as supplier:
        rows = {row.instrument_id: row for row in supplier.trading_accounts()}
        assert rows["USD"].total_balance == Decimal(1000) + spent
        # 30 moved in, 8 sold, 12 still locked in the resting ask.
        assert rows[MARKET].total_balance == 22
        assert rows[MARKET].locked_balance == 12 and rows[MARKET].available_balance == 10
        with pytest.raises(NotFound):
            supplier.trading_account(f"{world.buyer_id}:trading:{MARKET}")


def test_transfer_to_consumption_and_its_history(world: World, traded: Traded) -> None:
    with Client(world.server.url, key_file=world.buyer_file) as buyer:
        result = buyer.transfer_to_consumption(MARKET, 3)
        assert result.status == "success" and result.transfer_id
        assert result.quantity == 3 and result.instrument_id == MARKET
        (consumption,) = buyer.consumption_accounts()
        assert consumption.instrument_id == MARKET
        assert consumption.available_balance == 3 * TOKENS_PER_UNIT
        assert consumption.balance_unit == "tokens"
        assert consumption.available_tokens == 3 * TOKENS_PER_UNIT
        one = buyer.consumption_account(consumption.account_id)
        assert one.total_balance == 3 * TOKENS_PER_UNIT
        rows = {row.instrument_id: row for row in buyer.trading_accounts()}
        assert rows[MARKET].total_balance == 5

        history = buyer.transfer_histories(instrument_id=MARKET, limit=10)
        assert [h.transfer_id for h in history.items] == [result.transfer_id]
        record = history.items[0]
        assert (record.quantity, record.from_account_type, record.to_account_type) == (
            3,
            "trading",
            "consumption",
        )
        with pytest.raises(ValidationError):
            buyer.transfer_to_consumption(MARKET, 1_000)
        assert buyer.transfer_histories().items == history.items  # the refusal left no record
    with Client(world.server.url, key_file=world.supplier_file) as supplier:
        kinds = {
            (h.from_account_type, h.to_account_type) for h in supplier.transfer_histories().items
        }
        assert kinds == {("issuance", "trading")}
        with pytest.raises(NotFound):
            supplier.consumption_account(f"{world.buyer_id}:consumption:{MARKET}")


def test_supplier_liability_counts_sold_tokens(world: World, traded: Traded) -> None:
    with Client(world.server.url, key_file=world.supplier_file) as supplier:
        (row,) = supplier.supplier_liability()
        assert row.instrument_id == MARKET
        assert row.total_liability == 8 * TOKENS_PER_UNIT
        assert (row.fulfilled, row.outstanding) == (0, 8 * TOKENS_PER_UNIT)
        assert supplier.supplier_liability_for(MARKET) == row
        with pytest.raises(NotFound):
            supplier.supplier_liability_for("no-such-instrument")


def test_update_and_count_orders(world: World, traded: Traded) -> None:
    with Client(world.server.url, key_file=world.buyer_file) as buyer:
        order = buyer.place_order(MARKET, "buy", 4, price="2.300")
        assert buyer.count_orders().count == 1
        replaced = buyer.update_order(order.order_id, price="2.350", quantity=6)
        assert replaced.order_id != order.order_id  # cancel-replace: a new order
        assert (replaced.price, replaced.quantity, replaced.status) == (
            Decimal("2.35"),
            6,
            "active",
        )
        assert buyer.get_order(order.order_id).status == "cancelled"
        count = buyer.count_orders()
        assert count.count == 1
        assert dict(count.by_market).get(MARKET, 1) == 1
        with pytest.raises(NotFound):
            Client(world.server.url, key_file=world.supplier_file).update_order(
                replaced.order_id, price="2.400"
            )
        assert buyer.cancel_all_orders() == 1
        assert buyer.count_orders().count == 0


def test_candles_from_the_live_trades(world: World, traded: Traded) -> None:
    with Client(world.server.url) as public:
        now = int(time.time())
        candles = public.price_history(MARKET, "1m", from_s=now - 600, to_s=now + 60)
        assert len(candles) == 1
        (candle,) = candles
        assert (candle.open, candle.high, candle.low, candle.close) == (
            Decimal("2.5"),
            Decimal("2.6"),
            Decimal("2.5"),
            Decimal("2.6"),
        )
        assert candle.volume == 8 and candle.num_trades == 2
        assert candle.market_id == MARKET and candle.resolution == "1m"
        assert public.price_history(MARKET, "1w")[0].volume == 8
        with pytest.raises(NotFound):
            public.price_history("no-such-market", "1h")


def test_account_limits(world: World) -> None:
    with Client(world.server.url, key_file=world.buyer_file) as buyer:
        limits = buyer.account_limits(MARKET)
        assert limits.market_id == MARKET
        assert limits.max_orders_per_second is not None and limits.max_orders_per_second > 0
        with pytest.raises(NotFound):
            buyer.account_limits("no-such-market")


async def test_the_async_client_reads_the_same(world: World, traded: Traded) -> None:
    with Client(world.server.url, key_file=world.supplier_file) as sync_supplier:
        expected_liability = sync_supplier.supplier_liability()
        expected_issuance = sync_supplier.issuance_accounts()
        expected_trades = sync_supplier.trades().items
    async with AsyncClient(world.server.url, key_file=world.supplier_file) as supplier:
        assert await supplier.supplier_liability() == expected_liability
        assert await supplier.supplier_liability_for(MARKET) == expected_liability[0]
        assert await supplier.issuance_accounts() == expected_issuance
        assert (await supplier.trades()).items == expected_trades
        assert await supplier.trade(expected_trades[0].trade_id) == expected_trades[0]
        assert (await supplier.supply_issuances()).items[0].quantity == 50
        assert (await supplier.supply_summary())[0].total_issued == 50
        rows = await supplier.trading_accounts()
        assert {r.instrument_id for r in rows} == {"USD", MARKET}
        assert (await supplier.currency_accounts())[0].currency == "USD"
        issued = await supplier.issue_supply(MARKET, 2)
        moved = await supplier.transfer_from_issuance(MARKET, 2)
        assert (issued.quantity, moved.quantity) == (2, 2)
        assert (await supplier.count_orders()).count == 1  # the resting ask
        assert (await supplier.account_limits(MARKET)).market_id == MARKET
        assert len(await supplier.price_history(MARKET, "1h")) == 1
    async with AsyncClient(world.server.url, key_file=world.buyer_file) as buyer:
        result = await buyer.transfer_to_consumption(MARKET, 1)
        assert result.quantity == 1
        assert (await buyer.transfer_histories()).items[0].transfer_id == result.transfer_id
        (consumption,) = await buyer.consumption_accounts()
        assert (await buyer.consumption_account(consumption.account_id)) == consumption
        order = await buyer.place_order(MARKET, "buy", 1, price="2.300")
        replaced = await buyer.update_order(order.order_id, quantity=2)
        assert replaced.quantity == 2
        assert await buyer.cancel_all_orders(MARKET) == 1
