"""The endpoints still being built, against bodies shaped as grid-client-contract.md §2-3 says:
the request each method sends, and the typed result it reads (Decimal amounts, int quantities,
unknown fields ignored, absent optional fields None). Also paging and the issuance shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fake_grid import Api, FakeGrid, async_api, sync_api

from gridmarket.client import (
    AccountLimits,
    ConsumptionAccount,
    Order,
    Trade,
    TradingAccount,
    TransferRecord,
)

ORDER: dict[str, Any] = {
    "order_id": "9",
    "market_id": "text-prime",
    "side": "sell",
    "type": "limit",
    "status": "partially_filled",
    "price": "2.750",
    "quantity": "10",
    "filled_quantity": 4,
    "remaining_quantity": "6",
    "average_price": 2.75,  # a JSON number: still read exactly
    "fee": "0.011",
    "time_in_force": "gtc",
    "client_order_id": None,
    "something_new": {"ignored": True},
}
TRADE: dict[str, Any] = {
    "trade_id": "t1",
    "market_id": "text-prime",
    "order_id": "9",
    "price": "2.750",
    "quantity": "4",
    "total_value": "11.000",
    "fee": "0.011",
    "side": "sell",
    "execution_timestamp": "2026-01-01T00:00:00.000Z",
}


def test_update_order_puts_the_changes_and_reads_the_full_order(grid: FakeGrid, api: Api) -> None:
    grid.on("PUT", "/v1/orders/9", body={"data": ORDER})
    order = api("update_order", "9", price=Decimal("2.75"), quantity=10)
    assert grid.last.method == "PUT" and grid.verified[-1] is not None
    assert grid.last_json() == {"price": "2.75", "quantity": "10"}
    assert isinstance(order, Order)
    assert order.price == Decimal("2.750") and type(order.price) is Decimal
    assert order.average_price == Decimal("2.75") and type(order.average_price) is Decimal
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (10, 4, 6)
    assert order.is_open and order.client_order_id is None and order.closed_at is None


def test_an_update_with_nothing_to_change_is_refused_locally(grid: FakeGrid, api: Api) -> None:
    with pytest.raises(ValueError, match="needs a price"):
        api("update_order", "9")
    assert grid.requests == []


def test_count_orders(grid: FakeGrid, api: Api) -> None:
    body = {"data": {"count": 3, "by_market": [{"market_id": "text-prime", "count": 3}]}}
    grid.on("GET", "/v1/orders/count", body=body)
    count = api("count_orders")
    assert (count.count, count.by_market) == (3, (("text-prime", 3),))


def test_own_trades_list_filters_and_one_trade(grid: FakeGrid, api: Api) -> None:
    paging = {"has_more": False, "next_cursor": None, "prev_cursor": None}
    grid.on("GET", "/v1/trades", body={"data": [TRADE], "paging": paging})
    grid.on("GET", "/v1/trades/t1", body={"data": TRADE})
    page = api("trades", market_id="text-prime", order_id="9", limit=10)
    assert grid.last.url.params.multi_items() == [
        ("market_id", "text-prime"),
        ("order_id", "9"),
        ("limit", "10"),
    ]
    assert page.has_more is False and len(page.items) == 1
    trade = api("trade", "t1")
    assert isinstance(trade, Trade) and trade == page.items[0]
    assert (trade.price, trade.quantity, trade.total_value) == (Decimal("2.75"), 4, Decimal(11))
    assert trade.settlement_timestamp is None


def test_trading_and_currency_accounts(grid: FakeGrid, api: Api) -> None:
    usd = {
        "account_id": "ta_usd",
        "instrument_id": "USD",
        "currency": "USD",
        "total_balance": "100.000000",
        "available_balance": "87.500000",
        "locked_balance": "12.500000",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    units = {
        "account_id": "ta_tp",
        "instrument_id": "text-prime",
        "total_balance": 5,
        "available_balance": "5",
        "last_trade_price": None,
        "updated_at": "2026-01-01T00:00:00Z",
    }
    grid.on("GET", "/v1/trading-accounts", body={"data": [usd, units]})
    grid.on("GET", "/v1/trading-accounts/ta_tp", body={"data": units})
    grid.on("GET", "/v1/currency-trading-accounts", body={"data": [usd]})
    grid.on("GET", "/v1/currency-trading-accounts/ta_usd", body={"data": usd})
    rows = api("trading_accounts")
    assert [type(r) for r in rows] == [TradingAccount, TradingAccount]
    assert rows[0].currency == "USD" and rows[0].available_balance == Decimal("87.5")
    assert rows[1].currency is None and rows[1].total_balance == 5
    assert rows[1].locked_balance is None and rows[1].last_trade_price is None
    assert api("trading_account", "ta_tp") == rows[1]
    assert api("currency_accounts") == [rows[0]]
    assert api("currency_account", "ta_usd").locked_balance == Decimal("12.5")


def test_consumption_accounts(grid: FakeGrid, api: Api) -> None:
    row = {
        "account_id": "ca_1",
        "user_id": "acct_1",
        "instrument_id": "text-prime",
        "status": "active",
        "available_balance": "1.250000",
        "committed_balance": "0.000100",
        "total_balance": "1.250100",
        "available_tokens": 1_250_000,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    grid.on("GET", "/v1/consumption-accounts", body={"data": [row]})
    grid.on("GET", "/v1/consumption-accounts/ca_1", body={"data": row})
    (account,) = api("consumption_accounts")
    assert isinstance(account, ConsumptionAccount)
    assert account.available_balance == Decimal("1.25")
    assert account.committed_balance == Decimal("0.0001")
    assert account.available_tokens == 1_250_000
    assert api("consumption_account", "ca_1") == account


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "transfer_id": "tr_1"},  # the docs' bare shape
        {"data": {"transfer_id": "tr_1", "status": "success", "quantity": 2}},  # enveloped
    ],
)
def test_transfer_to_consumption_sends_an_integer_and_reads_both_shapes(
    grid: FakeGrid, api: Api, body: dict[str, Any]
) -> None:
    grid.on("POST", "/v1/transfers/trading-to-consumption", 202, body)
    result = api("transfer_to_consumption", "text-prime", 2)
    assert grid.last_json() == {"instrument_id": "text-prime", "quantity": 2}
    assert (result.transfer_id, result.status) == ("tr_1", "success")


def test_transfer_histories_page(grid: FakeGrid, api: Api) -> None:
    row = {
        "transfer_id": "tr_1",
        "from_account_type": "trading",
        "to_account_type": "consumption",
        "instrument_id": "text-prime",
        "quantity": "2",
        "status": "completed",
        "created_at": "2026-01-01T00:00:00Z",
    }
    paging = {"has_more": True, "next_cursor": "c2", "prev_cursor": None}
    grid.on("GET", "/v1/transfer-histories", body={"data": [row], "paging": paging})
    page = api("transfer_histories", instrument_id="text-prime")
    (record,) = page.items
    assert isinstance(record, TransferRecord)
    assert (record.quantity, record.to_account_type, record.completed_at) == (
        2,
        "consumption",
        None,
    )
    assert (page.has_more, page.next_cursor) == (True, "c2")


def test_supplier_issuance_calls(grid: FakeGrid, api: Api) -> None:
    account = {
        "account_id": "ia_1",
        "instrument_id": "text-prime",
        "instrument_symbol": "text-prime",
        "total_issued": "100",
        "total_transferred": "40",
        "available_balance": "60",
    }
    issuance = {"id": "iss_1", "instrument_id": "text-prime", "quantity": 100, "status": "done"}
    grid.on("GET", "/v1/issuance-accounts", body={"data": [account]})
    grid.on("POST", "/v1/supply-issuances", 201, {"data": issuance})
    grid.on("GET", "/v1/supply-issuances", body={"data": [issuance]})
    grid.on(
        "GET",
        "/v1/supply-issuances/summary",
        body={"data": [{"instrument_id": "text-prime", "total_issued": "100"}]},
    )
    grid.on(
        "POST",
        "/v1/issuance-accounts/transfer",
        body={"data": {"id": "itr_1", "trading_account_id": "ta_tp", "quantity": 40}},
    )
    (ia,) = api("issuance_accounts")
    assert (ia.total_issued, ia.total_transferred, ia.available_balance) == (100, 40, 60)
    issued = api("issue_supply", "text-prime", 100)
    assert grid.last_json() == {"instrument_id": "text-prime", "quantity": 100}
    assert (issued.issuance_id, issued.quantity) == ("iss_1", 100)
    assert api("supply_issuances", instrument_id="text-prime").items == (issued,)
    (summary,) = api("supply_summary")
    assert (summary.total_issued, summary.units_available) == (100, None)
    moved = api("transfer_from_issuance", "text-prime", 40)
    assert grid.last_json() == {"instrument_id": "text-prime", "quantity": 40}
    assert (moved.transfer_id, moved.trading_account_id) == ("itr_1", "ta_tp")
    api("transfer_from_issuance", "text-prime", 1, "ta_tp")
    assert grid.last_json()["trading_account_id"] == "ta_tp"


def test_the_summary_also_reads_a_single_object(grid: FakeGrid, api: Api) -> None:
    body = {"data": {"instrument_id": "text-prime", "quantity": 7}}
    grid.on("GET", "/v1/supply-issuances/summary", body=body)
    assert [s.total_issued for s in api("supply_summary")] == [7]


def test_supplier_liability(grid: FakeGrid, api: Api) -> None:
    row = {
        "instrument_id": "text-prime",
        "total_liability": "10.5",
        "fulfilled": "4",
        "outstanding": "6.5",
    }
    grid.on("GET", "/v1/supplier-liability", body={"data": [row]})
    grid.on("GET", "/v1/supplier-liability/text-prime", body={"data": row})
    (liability,) = api("supplier_liability")
    assert liability.outstanding == Decimal("6.5") and liability.instrument_symbol is None
    assert api("supplier_liability_for", "text-prime") == liability


def test_price_history_is_public_and_exact(grid: FakeGrid, api: Api) -> None:
    candle = {
        "market_id": "text-prime",
        "resolution": "1h",
        "period_start": "2026-01-01T00:00:00Z",
        "period_end": "2026-01-01T01:00:00Z",
        "open": "2.000",
        "high": "2.500",
        "low": "1.900",
        "close": "2.100",
        "volume": "40",
        "num_trades": 3,
    }
    grid.on("GET", "/v1/price-histories", body={"data": [candle]})
    (got,) = api("price_history", "text-prime", "1h", 1_700_000_000, 1_700_003_600)
    assert grid.last.url.params.multi_items() == [
        ("market_id", "text-prime"),
        ("resolution", "1h"),
        ("from", "1700000000"),
        ("to", "1700003600"),
    ]
    assert (got.open, got.high, got.close, got.volume) == (
        Decimal("2"),
        Decimal("2.5"),
        Decimal("2.1"),
        Decimal(40),
    )
    assert got.quote_volume is None and got.num_trades == 3
    with pytest.raises(ValueError, match="resolution"):
        api("price_history", "text-prime", "2h")


def test_account_limits(grid: FakeGrid, api: Api) -> None:
    body = {
        "data": {
            "market_id": "text-prime",
            "order_rate_limits": {
                "scope": "user_market",
                "max_orders_per_second": 10,
                "max_orders_per_minute": 300,
                "burst_capacity": 20,
                "window_seconds": 60,
            },
            "response_headers": {"limit": "300", "remaining": "299", "retry_after": "0"},
        }
    }
    grid.on("GET", "/v1/account/limits", body=body)
    limits = api("account_limits", "text-prime")
    assert grid.last.url.params["market_id"] == "text-prime"
    assert isinstance(limits, AccountLimits)
    assert (limits.max_orders_per_second, limits.burst_capacity, limits.remaining) == (
        10,
        20,
        "299",
    )


def _page_of(ids: list[str], next_cursor: str | None) -> dict[str, Any]:
    return {
        "data": [ORDER | {"order_id": i} for i in ids],
        "paging": {"has_more": next_cursor is not None, "next_cursor": next_cursor},
    }


def test_iter_orders_follows_cursors_until_the_last_page(grid: FakeGrid) -> None:
    grid.on("GET", "/v1/orders", body=_page_of(["5", "4"], "c1"))
    grid.on("GET", "/v1/orders", body=_page_of(["3", "2"], "c2"))
    grid.on("GET", "/v1/orders", body=_page_of(["1"], None))
    client, _ = sync_api(grid)
    ids = [o.order_id for o in client.iter_orders(status="active", page_size=2)]
    assert ids == ["5", "4", "3", "2", "1"]
    assert [r.url.params.get("next") for r in grid.requests] == [None, "c1", "c2"]
    assert all(r.url.params["limit"] == "2" for r in grid.requests)


def test_iter_orders_stops_at_max_pages(grid: FakeGrid) -> None:
    grid.on("GET", "/v1/orders", body=_page_of(["9"], "again"))  # a server that never ends
    client, _ = sync_api(grid)
    assert len(list(client.iter_orders(max_pages=3))) == 3
    assert len(grid.requests) == 3


async def test_async_iter_trades_follows_cursors(grid: FakeGrid) -> None:
    grid.on("GET", "/v1/trades", body={"data": [TRADE], "paging": {"next_cursor": "n"}})
    grid.on("GET", "/v1/trades", body={"data": [TRADE | {"trade_id": "t0"}], "paging": {}})
    client, _ = async_api(grid)
    ids = [t.trade_id async for t in client.iter_trades(market_id="text-prime")]
    assert ids == ["t1", "t0"]
    assert grid.requests[1].url.params["next"] == "n"
    await client.close()


def test_cancel_accepts_204_and_cancel_all_reads_the_count(grid: FakeGrid, api: Api) -> None:
    grid.on("DELETE", "/v1/orders/9", 204, None)
    grid.on("DELETE", "/v1/markets/text-prime/orders", body={"data": {"cancelled": 2}})
    assert api("cancel_order", "9") is None
    assert api("cancel_all_orders", "text-prime") == 2


def test_instruments_and_markets_read_every_page(grid: FakeGrid, api: Api) -> None:
    def market(market_id: str) -> dict[str, Any]:
        return {"market_id": market_id, "name": market_id, "status": "active"}

    first = {"data": [market("a")], "paging": {"has_more": True, "next_cursor": "n1"}}
    grid.on("GET", "/v1/markets", body=first)
    grid.on("GET", "/v1/markets", body={"data": [market("b")], "paging": {"has_more": False}})
    assert [m.market_id for m in api("markets")] == ["a", "b"]
    assert [r.url.params.get("next") for r in grid.requests] == [None, "n1"]
    # Public, yet signed when a key is loaded, as The Grid's client does.
    assert all(v is not None for v in grid.verified)
