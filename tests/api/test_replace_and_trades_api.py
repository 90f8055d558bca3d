"""PUT /v1/orders/{id} (cancel-replace), GET /v1/orders/count, order filters, and the caller's
own fills (GET /v1/trades[/{id}]) on a real server: happy paths, refusals, isolation, restart.

A supplier needs units in its trading account to sell, and no HTTP route issues them yet: the
fixture stops the server, submits the supply commands to the same store in process, and starts
the server again (which also shows the log replays).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import Server
from test_orders_api import MARKET, Trader, _buy, _error, _trader

from gridmarket.auth.signing import Signer
from gridmarket.core.commands import IssueUnits, SetSupplierCapacity, TransferIssuanceToTrading
from gridmarket.core.events import OrderRejected, Rejected
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

SUPPLY_UNITS = 200


def _seed_units(data_dir: Path, account_id: str, units: int) -> None:
    """Issue `units` of MARKET to a supplier and move them to its trading account (offline)."""

    async def seed() -> None:
        url = Settings.resolve(data_dir=data_dir, environ={}).database_url
        async with MarketService.from_url(url, tune_gc=False) as market:
            account, instrument = AccountId(account_id), InstrumentId(MARKET)
            for command in (
                SetSupplierCapacity(account, instrument, 10**9),
                IssueUnits(account, instrument, units),
                TransferIssuanceToTrading(account, instrument, units),
            ):
                outcome = await market.submit(command)
                assert not any(isinstance(e, Rejected | OrderRejected) for e in outcome.events)

    asyncio.run(seed())


class World:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.server = Server(home)
        supplier = self.server.admin(
            "POST", "/v1/admin/accounts", json={"name": "s", "supplier": True, "mode": "advanced"}
        )
        assert supplier.status_code == 201, supplier.text
        self.seller = _trader_from(self.server, supplier.json()["data"])
        self.alice = _trader(self.server)
        self.bob = _trader(self.server)
        self.server.stop()
        _seed_units(home, self.seller.account_id, SUPPLY_UNITS)
        self.restart(already_stopped=True)

    @property
    def traders(self) -> tuple[Trader, ...]:
        return (self.seller, self.alice, self.bob)

    def restart(self, *, already_stopped: bool = False) -> None:
        if not already_stopped:
            self.server.stop()
        self.server = Server(self.home)
        for trader in self.traders:
            trader.server = self.server


def _trader_from(server: Server, data: dict[str, Any]) -> Trader:
    private_key = base64.b64decode(data["signing_key"]["private_key"])
    return Trader(server, data["account_id"], Signer(private_key))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("trades") / "home")
    try:
        yield made
    finally:
        made.server.kill()


def _place(trader: Trader, body: dict[str, Any]) -> dict[str, Any]:
    response = trader.call("POST", "/v1/orders", body)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()["data"]
    return order


def _sell(price: str, quantity: str) -> dict[str, Any]:
    return _buy(price=price, quantity=quantity) | {"side": "sell"}


def _get(trader: Trader, path: str, query: str = "") -> Any:
    response = trader.call("GET", path, query=query)
    assert response.status_code == 200, (path, query, response.text)
    return response.json()


# -- PUT /v1/orders/{id} ------------------------------------------------------------------------


def test_put_replaces_the_order_and_answers_the_new_one(world: World) -> None:
    alice = world.alice
    old = _place(alice, _buy(price="1.500", quantity="2", client_order_id="rep-1"))
    response = alice.call("PUT", f"/v1/orders/{old['order_id']}", {"price": "1.600"})
    assert response.status_code == 200, response.text
    new = response.json()["data"]
    assert new["order_id"] != old["order_id"]
    assert (new["price"], new["quantity"], new["status"]) == ("1.600", "2", "active")
    assert (new["side"], new["type"], new["time_in_force"]) == ("buy", "limit", "gtc")
    assert new["client_order_id"] == "rep-1" and new["filled_quantity"] == 0
    assert _get(alice, f"/v1/orders/{new['order_id']}")["data"] == new
    replaced = _get(alice, f"/v1/orders/{old['order_id']}")["data"]
    assert (replaced["status"], replaced["closure_reason"]) == ("cancelled", "replaced")

    # quantity is the new remaining quantity; the price stays.
    again = alice.call("PUT", f"/v1/orders/{new['order_id']}", {"quantity": "5"}).json()["data"]
    assert (again["price"], again["quantity"], again["remaining_quantity"]) == ("1.600", "5", "5")
    both = alice.call(
        "PUT", f"/v1/orders/{again['order_id']}", {"price": "1.550", "quantity": 3}
    ).json()["data"]
    assert (both["price"], both["quantity"]) == ("1.550", "3")
    # The time in force may be repeated, not changed.
    same_tif = alice.call(
        "PUT", f"/v1/orders/{both['order_id']}", {"price": "1.560", "time_in_force": "gtc"}
    )
    assert same_tif.status_code == 200, same_tif.text
    last = same_tif.json()["data"]["order_id"]
    assert alice.call("DELETE", f"/v1/orders/{last}").status_code == 204


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_error"),
        ({"price": None, "quantity": None}, "validation_error"),
        ({"time_in_force": "gtc"}, "validation_error"),
        ({"price": "1.500", "size": "2"}, "validation_error"),
        ({"price": 1.5}, "validation_error"),
        ({"quantity": "0"}, "validation_error"),
        ({"quantity": "1.5"}, "validation_error"),
        ({"stop_price": "1.000", "price": "1.500"}, "unsupported_order_type"),
        ({"price": "1.500", "time_in_force": "ioc"}, "unsupported_time_in_force"),
        ({"price": "1.5005"}, "price_off_tick"),
        ({"quantity": "100000"}, "insufficient_funds"),
        ([1, 2], "validation_error"),
    ],
)
def test_a_refused_put_is_422_and_changes_nothing(world: World, body: Any, code: str) -> None:
    alice = world.alice
    order = _place(alice, _buy(price="1.500", quantity="1"))
    path = f"/v1/orders/{order['order_id']}"
    response = alice.call("PUT", path, body)
    assert response.status_code == 422, response.text
    assert _error(response)["code"] == code
    assert _get(alice, path)["data"] == order
    assert alice.call("DELETE", path).status_code == 204


def test_put_on_unknown_foreign_and_closed_orders(world: World) -> None:
    alice, bob = world.alice, world.bob
    order = _place(alice, _buy(price="1.500", quantity="1"))
    path = f"/v1/orders/{order['order_id']}"
    foreign = bob.call("PUT", path, {"price": "1.600"})
    assert foreign.status_code == 404 and _error(foreign)["code"] == "order_not_found"
    assert _get(alice, path)["data"] == order  # bob changed nothing
    for unknown in ("999999999", "abc", "0"):
        response = alice.call("PUT", f"/v1/orders/{unknown}", {"price": "1.600"})
        assert response.status_code == 404, unknown
    assert alice.call("DELETE", path).status_code == 204
    closed = alice.call("PUT", path, {"price": "1.600"})
    assert closed.status_code == 409 and _error(closed)["code"] == "order_not_open"


def test_auto_mode_accounts_cannot_replace(world: World) -> None:
    easy = _trader(world.server, mode="easy")
    response = easy.call("PUT", "/v1/orders/1", {"price": "1.600"})
    assert response.status_code == 403
    assert _error(response)["detail"] == "auto_mode_trading_restricted"


# -- count ---------------------------------------------------------------------------------------


def test_count_is_the_callers_open_orders_by_market(world: World) -> None:
    carol = _trader(world.server)
    assert _get(carol, "/v1/orders/count") == {"data": {"count": 0, "by_market": []}}
    ids = [_place(carol, _buy(price="1.500", quantity="1"))["order_id"] for _ in range(2)]
    _place(carol, _buy(price="1.000", quantity="1", market_id="code-max"))
    assert carol.call("DELETE", f"/v1/orders/{ids[0]}").status_code == 204
    counted = _get(carol, "/v1/orders/count")["data"]
    assert counted == {
        "count": 2,
        "by_market": [{"market_id": "code-max", "count": 1}, {"market_id": MARKET, "count": 1}],
    }
    assert _get(world.bob, "/v1/orders/count")["data"]["count"] == 0  # not carol's
    assert carol.call("DELETE", "/v1/orders").json() == {"data": {"cancelled": 2}}
    assert _get(carol, "/v1/orders/count")["data"]["count"] == 0


# -- trades --------------------------------------------------------------------------------------


def test_a_replace_that_crosses_trades_and_both_sides_see_their_fill(world: World) -> None:
    alice, seller, bob = world.alice, world.seller, world.bob
    ask = _place(seller, _sell("2.000", "3"))
    bid = _place(alice, _buy(price="1.500", quantity="3"))
    response = alice.call("PUT", f"/v1/orders/{bid['order_id']}", {"price": "2.000"})
    assert response.status_code == 200, response.text
    new = response.json()["data"]
    assert (new["status"], new["filled_quantity"], new["average_price"]) == ("filled", 3, "2.000")

    mine = _get(alice, "/v1/trades", f"?order_id={new['order_id']}")["data"]
    assert len(mine) == 1
    fill = mine[0]
    assert fill["side"] == "buy" and fill["liquidity"] == "taker"
    assert (fill["price"], fill["quantity"], fill["total_value"]) == ("2.000", "3", "6.000")
    assert fill["fee"] == "0.000" and fill["status"] == "executed"
    assert fill["market_id"] == MARKET and fill["order_id"] == new["order_id"]
    assert fill["trading_account_id"] == alice.account_id
    assert fill["execution_timestamp"].endswith("Z")
    for field in ("trade_id", "price", "total_value", "fee", "quantity", "execution_timestamp"):
        assert isinstance(fill[field], str), field

    theirs = _get(seller, "/v1/trades", f"?order_id={ask['order_id']}")["data"]
    assert [t["trade_id"] for t in theirs] == [fill["trade_id"]]
    assert (theirs[0]["side"], theirs[0]["liquidity"]) == ("sell", "maker")

    one = _get(alice, f"/v1/trades/{fill['trade_id']}")["data"]
    assert one == fill
    # Bob can neither read it nor find it in his list.
    foreign = bob.call("GET", f"/v1/trades/{fill['trade_id']}")
    assert foreign.status_code == 404 and _error(foreign)["code"] == "trade_not_found"
    assert fill["trade_id"] not in {t["trade_id"] for t in _get(bob, "/v1/trades")["data"]}
    for unknown in ("999999", "x", "0"):
        assert alice.call("GET", f"/v1/trades/{unknown}").status_code == 404


def test_trades_filter_and_page_both_ways(world: World) -> None:
    dan = _trader(world.server)
    start_s = int(time.time()) - 1
    for price in ("2.010", "2.020", "2.030", "2.040"):
        _place(world.seller, _sell(price, "1"))
    market_buy = {"market_id": MARKET, "side": "buy", "type": "market", "quantity": "4"}
    bought = _place(dan, market_buy)
    assert bought["filled_quantity"] == 4, bought

    listed = _get(dan, "/v1/trades")
    prices = [t["price"] for t in listed["data"]]
    assert prices == ["2.010", "2.020", "2.030", "2.040"]  # oldest first
    ids = [t["trade_id"] for t in listed["data"]]
    assert listed["paging"] == {"has_more": False, "next_cursor": None, "prev_cursor": None}
    newest_first = _get(dan, "/v1/trades", "?order_direction=desc")["data"]
    assert [t["trade_id"] for t in newest_first] == ids[::-1]

    first = _get(dan, "/v1/trades", "?limit=3")
    assert [t["trade_id"] for t in first["data"]] == ids[:3]
    assert first["paging"]["has_more"] is True and first["paging"]["prev_cursor"] is None
    second = _get(dan, "/v1/trades", f"?limit=3&next={first['paging']['next_cursor']}")
    assert [t["trade_id"] for t in second["data"]] == ids[3:]
    assert second["paging"]["next_cursor"] is None
    back = _get(dan, "/v1/trades", f"?limit=3&prev={second['paging']['prev_cursor']}")
    assert [t["trade_id"] for t in back["data"]] == ids[:3]

    flop = (
        "?flop%5Bfilters%5D%5B0%5D%5Bfield%5D=market_id"
        f"&flop%5Bfilters%5D%5B0%5D%5Bvalue%5D={MARKET}"
        "&flop%5Bfilters%5D%5B1%5D%5Bfield%5D=from_date"
        f"&flop%5Bfilters%5D%5B1%5D%5Bvalue%5D={start_s}"
    )
    assert [t["trade_id"] for t in _get(dan, "/v1/trades", flop)["data"]] == ids
    assert _get(dan, "/v1/trades", "?market_id=code-max")["data"] == []
    assert _get(dan, "/v1/trades", "?start_datetime=2099-01-01T00:00:00Z")["data"] == []
    assert _get(dan, "/v1/trades", "?end_datetime=2000-01-01")["data"] == []
    by_order = _get(dan, "/v1/trades", f"?order_id={bought['order_id']}")["data"]
    assert [t["trade_id"] for t in by_order] == ids

    for query in (
        "?limit=0",
        "?limit=101",
        "?next=bad!",
        "?order_direction=up",
        "?start_datetime=yesterday",
        "?next=x&prev=y",
    ):
        response = dan.call("GET", "/v1/trades", query=query)
        assert response.status_code == 422, query


def test_orders_filter_by_side_status_type_time_and_page(world: World) -> None:
    erin = _trader(world.server)
    placed = [
        _place(erin, _buy(price="1.500", quantity="1")),
        _place(erin, _buy(price="1.510", quantity="1", market_id="code-max")),
        _place(erin, {"market_id": MARKET, "side": "buy", "type": "market", "quantity": "1"}),
        _place(erin, _buy(price="1.520", quantity="1")),
    ]
    ids = [o["order_id"] for o in placed]
    assert erin.call("DELETE", f"/v1/orders/{ids[3]}").status_code == 204

    def listed(query: str = "") -> list[str]:
        return [o["order_id"] for o in _get(erin, "/v1/orders", query)["data"]]

    assert listed() == ids  # oldest first by default
    assert listed("?order_direction=desc") == ids[::-1]
    assert listed("?type=market") == [ids[2]]
    assert listed("?status=active") == [ids[0], ids[1]]
    assert listed("?status=cancelled,closed") == [ids[2], ids[3]]
    assert listed("?status=cancelled&status=active") == [ids[0], ids[1], ids[3]]
    assert listed(f"?instrument_id={MARKET}&side=buy") == [ids[0], ids[2], ids[3]]
    assert listed("?side=sell") == []
    assert listed("?start_datetime=2099-01-01T00:00:00Z") == []
    assert listed(f"?end_datetime={int(time.time()) + 60}") == ids
    flop = (
        "?filters%5B0%5D%5Bfield%5D=status&filters%5B0%5D%5Bop%5D=in"
        "&filters%5B0%5D%5Bvalue%5D%5B%5D=active&filters%5B0%5D%5Bvalue%5D%5B%5D=cancelled"
        "&filters%5B1%5D%5Bfield%5D=submitted_at&filters%5B1%5D%5Bop%5D=%3E%3D"
        "&filters%5B1%5D%5Bvalue%5D=2020-01-01T00:00:00Z"
    )
    assert listed(flop) == [ids[0], ids[1], ids[3]]

    first = _get(erin, "/v1/orders", "?limit=2&order_direction=desc")
    assert [o["order_id"] for o in first["data"]] == [ids[3], ids[2]]
    cursor = first["paging"]["next_cursor"]
    rest = _get(erin, "/v1/orders", f"?limit=2&order_direction=desc&next={cursor}")
    assert [o["order_id"] for o in rest["data"]] == [ids[1], ids[0]]
    assert rest["paging"]["has_more"] is False
    prev = rest["paging"]["prev_cursor"]
    back = _get(erin, "/v1/orders", f"?limit=2&order_direction=desc&prev={prev}")
    assert [o["order_id"] for o in back["data"]] == [ids[3], ids[2]]

    for query in (
        "?side=buy&filters%5B0%5D%5Bfield%5D=side&filters%5B0%5D%5Bop%5D=%3E"
        "&filters%5B0%5D%5Bvalue%5D=buy",
        "?end_datetime=13/13/2020",
        "?prev=!!",
    ):
        assert erin.call("GET", "/v1/orders", query=query).status_code == 422, query
    assert erin.call("DELETE", "/v1/orders").status_code == 200


def test_trades_are_still_listed_after_a_restart(world: World) -> None:
    frank = _trader(world.server)
    _place(world.seller, _sell("2.000", "2"))
    _place(frank, {"market_id": MARKET, "side": "buy", "type": "market", "quantity": "2"})
    before = {t.account_id: _get(t, "/v1/trades")["data"] for t in (*world.traders, frank)}
    assert before[frank.account_id]
    world.restart()
    frank.server = world.server
    after = {t.account_id: _get(t, "/v1/trades")["data"] for t in (*world.traders, frank)}
    assert after == before
    one = before[frank.account_id][0]
    assert _get(frank, f"/v1/trades/{one['trade_id']}")["data"] == one
