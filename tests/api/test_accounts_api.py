"""Accounts, transfers and supply on a real server: balances, transfers, issuance, isolation."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import GRIDMARKET, Server, clean_env

from gridmarket.auth.signing import Signer

MARKET = "text-prime"
TOKENS_PER_UNIT = 1_000_000
#: 25,000 tokens/min x the 240-minute horizon: at most 6 units outstanding.
CAPACITY_TOKENS_PER_MIN = 25_000


class Client:
    """One account's signing key, signing requests the way The Grid's client does."""

    def __init__(self, server: Server, account_id: str, signer: Signer) -> None:
        self.server = server
        self.account_id = account_id
        self.signer = signer
        self._signed: set[tuple[str, str, bytes, int]] = set()

    def call(self, method: str, path: str, body: Any = None, query: str = "") -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        when = int(time.time())
        while (method, path, raw, when) in self._signed:  # identical writes: a fresh signature
            when -= 1
        self._signed.add((method, path, raw, when))
        headers = self.signer.sign_request(method, path, raw, when)
        headers["Content-Type"] = "application/json"
        url = f"{self.server.url}{path}{query}"
        return httpx.request(method, url, content=raw, headers=headers, timeout=10)

    def data(self, method: str, path: str, body: Any = None, query: str = "") -> Any:
        response = self.call(method, path, body, query)
        assert response.is_success, response.text
        return response.json()["data"]


def open_client(server: Server, *, supplier: bool = False, deposit: str = "1000") -> Client:
    body = {"name": "n", "mode": "advanced", "supplier": supplier, "deposit_usd": deposit}
    response = server.admin("POST", "/v1/admin/accounts", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    signer = Signer(base64.b64decode(data["signing_key"]["private_key"]))
    return Client(server, data["account_id"], signer)


def set_capacity(server: Server, account_id: str, tokens_per_min: int) -> httpx.Response:
    body = {"instrument_id": MARKET, "capacity_tokens_per_min": tokens_per_min}
    return server.admin("POST", f"/v1/admin/accounts/{account_id}/capacity", json=body)


def error(response: httpx.Response) -> dict[str, Any]:
    errors: dict[str, Any] = response.json()["errors"]
    assert set(errors) == {"detail", "code", "message"}
    return errors


def by_instrument(rows: list[dict[str, Any]], instrument_id: str) -> dict[str, Any]:
    found = [row for row in rows if row["instrument_id"] == instrument_id]
    assert len(found) == 1, rows
    return found[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("accounts") / "home")
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def market(server: Server) -> dict[str, Client]:
    """A supplier (room for 12 units) that issued 5 and sold 3 of them to a buyer."""
    supplier = open_client(server, supplier=True)
    buyer = open_client(server)
    assert set_capacity(server, supplier.account_id, 2 * CAPACITY_TOKENS_PER_MIN).status_code == 200
    supplier.data("POST", "/v1/supply-issuances", {"instrument_id": MARKET, "quantity": 5})
    supplier.data(
        "POST", "/v1/issuance-accounts/transfer", {"instrument_id": MARKET, "quantity": 4}
    )
    sell = {"market_id": MARKET, "side": "sell", "type": "limit", "quantity": "4"}
    supplier.data("POST", "/v1/orders", sell | {"price": "1.000", "time_in_force": "gtc"})
    buy = {"market_id": MARKET, "side": "buy", "type": "limit", "quantity": "3"}
    buyer.data("POST", "/v1/orders", buy | {"price": "1.000", "time_in_force": "gtc"})
    return {"supplier": supplier, "buyer": buyer}


# -- balances -----------------------------------------------------------------------------------


def test_a_new_account_has_the_usd_row_grid_verify_looks_for(server: Server) -> None:
    client = open_client(server, deposit="12.5")
    rows = client.data("GET", "/v1/trading-accounts")
    assert isinstance(rows, list) and len(rows) == 1
    usd = rows[0]
    assert usd["currency"] == "USD" and usd["instrument_id"] == "USD"
    assert (usd["available_balance"], usd["locked_balance"], usd["total_balance"]) == (
        "12.500",
        "0.000",
        "12.500",
    )
    assert usd["account_id"] == client.account_id
    for field in ("id", "user_id", "status", "created_at", "updated_at"):
        assert isinstance(usd[field], str) and usd[field], field
    assert client.data("GET", f"/v1/trading-accounts/{usd['id']}") == usd

    currency = client.data("GET", "/v1/currency-trading-accounts")
    assert currency == [usd]
    assert client.data("GET", f"/v1/currency-trading-accounts/{usd['id']}") == usd
    assert client.data("GET", "/v1/currency-trading-accounts/usd") == usd
    assert client.data("GET", "/v1/consumption-accounts") == []


def test_trading_balances_show_available_and_locked_units(market: dict[str, Client]) -> None:
    supplier, buyer = market["supplier"], market["buyer"]
    rows = supplier.data("GET", "/v1/trading-accounts")
    prime = by_instrument(rows, MARKET)
    # 4 units offered, 3 sold: 1 still locked in the open ask, none free.
    assert (prime["available_balance"], prime["locked_balance"], prime["total_balance"]) == (
        "0",
        "1",
        "1",
    )
    assert prime["last_trade_price"] == "1.000"
    assert prime["id"] == f"{supplier.account_id}:trading:{MARKET}"
    assert by_instrument(rows, "USD")["available_balance"] == "1003.000"

    bought = by_instrument(buyer.data("GET", "/v1/trading-accounts"), MARKET)
    assert (bought["available_balance"], bought["locked_balance"]) == ("3", "0")
    single = buyer.data("GET", f"/v1/trading-accounts/{bought['id']}")
    assert single["instrument_id"] == MARKET and single["market_id"] == MARKET
    assert single["last_trading_activity_at"].endswith("Z")


# -- transfers ----------------------------------------------------------------------------------


def test_trading_to_consumption_moves_units_into_tokens(market: dict[str, Client]) -> None:
    buyer = market["buyer"]
    before = by_instrument(buyer.data("GET", "/v1/trading-accounts"), MARKET)
    response = buyer.call(
        "POST", "/v1/transfers/trading-to-consumption", {"instrument_id": MARKET, "quantity": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    transfer_id = body["transfer_id"]
    assert isinstance(transfer_id, str) and body["data"]["transfer_id"] == transfer_id
    assert body["data"]["from_account_type"] == "trading"
    assert body["data"]["to_account_type"] == "consumption"
    assert body["data"]["quantity"] == "2"

    after = by_instrument(buyer.data("GET", "/v1/trading-accounts"), MARKET)
    assert int(after["available_balance"]) == int(before["available_balance"]) - 2
    consumption = by_instrument(buyer.data("GET", "/v1/consumption-accounts"), MARKET)
    assert consumption["available_balance"] == str(2 * TOKENS_PER_UNIT)
    assert consumption["committed_balance"] == "0"
    assert consumption["total_transfers_in"] == str(2 * TOKENS_PER_UNIT)
    assert consumption["lot_count"] == 1
    detail = buyer.data("GET", f"/v1/consumption-accounts/{consumption['id']}")
    assert [lot["remaining_tokens"] for lot in detail["lots"]] == [str(2 * TOKENS_PER_UNIT)]
    assert detail["lots"][0]["price"] == "1.000"

    history = buyer.data("GET", "/v1/transfer-histories")
    assert history[0]["transfer_id"] == transfer_id
    assert history[0]["status"] == "completed" and history[0]["trigger"] == "transfer"
    assert buyer.data("GET", "/v1/transfers/histories") == history


def test_consumption_to_trading_is_refused_and_changes_nothing(market: dict[str, Client]) -> None:
    buyer = market["buyer"]
    before = buyer.data("GET", "/v1/consumption-accounts")
    response = buyer.call(
        "POST", "/v1/transfers/consumption-to-trading", {"instrument_id": MARKET, "quantity": 1}
    )
    assert response.status_code == 422
    assert error(response)["code"] == "consumption_to_trading_refused"
    assert "refused" in error(response)["message"]
    assert buyer.data("GET", "/v1/consumption-accounts") == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"instrument_id": MARKET, "quantity": 0}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": -1}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": 1.5}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": True}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": "x"}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": 10**13}, "validation_error"),
        ({"instrument_id": MARKET}, "validation_error"),
        ({"quantity": 1}, "validation_error"),
        ({"instrument_id": 7, "quantity": 1}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": 1, "extra": 1}, "validation_error"),
        ([1, 2], "validation_error"),
        ({"instrument_id": "no-such-thing", "quantity": 1}, "unknown_instrument"),
        ({"instrument_id": MARKET, "quantity": 999}, "insufficient_units"),
    ],
)
def test_bad_transfers_are_422_and_change_nothing(
    market: dict[str, Client], body: Any, code: str
) -> None:
    buyer = market["buyer"]
    before = buyer.data("GET", "/v1/trading-accounts")
    response = buyer.call("POST", "/v1/transfers/trading-to-consumption", body)
    assert response.status_code == 422, response.text
    assert error(response)["code"] == code
    assert buyer.data("GET", "/v1/trading-accounts") == before


def test_a_body_that_is_not_json_is_422(market: dict[str, Client]) -> None:
    buyer = market["buyer"]
    path = "/v1/transfers/trading-to-consumption"
    headers = buyer.signer.sign_request("POST", path, b"{nope", int(time.time()))
    response = httpx.post(f"{buyer.server.url}{path}", content=b"{nope", headers=headers)
    assert response.status_code == 422
    assert error(response)["code"] == "validation_error"


def test_history_filters_and_pages(market: dict[str, Client]) -> None:
    supplier = market["supplier"]
    for _ in range(2):  # two more issuance -> trading transfers of 1 unit (4 were moved before)
        supplier.data("POST", "/v1/supply-issuances", {"instrument_id": MARKET, "quantity": 1})
        supplier.data(
            "POST", "/v1/issuance-accounts/transfer", {"instrument_id": MARKET, "quantity": 1}
        )
    everything = supplier.data("GET", "/v1/transfer-histories")
    assert [t["quantity"] for t in everything] == ["1", "1", "4"]
    assert all(t["from_account_type"] == "issuance" for t in everything)
    assert all(t["trigger"] == "issuance" for t in everything)

    first = supplier.call("GET", "/v1/transfer-histories", query="?limit=2").json()
    assert [t["transfer_id"] for t in first["data"]] == [t["transfer_id"] for t in everything[:2]]
    assert first["paging"]["has_more"] is True
    cursor = first["paging"]["next_cursor"]
    second = supplier.call("GET", "/v1/transfer-histories", query=f"?limit=2&next={cursor}")
    page_two = second.json()
    assert [t["transfer_id"] for t in page_two["data"]] == [everything[2]["transfer_id"]]
    assert page_two["paging"]["has_more"] is False
    back = page_two["paging"]["prev_cursor"]
    newer = supplier.call("GET", "/v1/transfer-histories", query=f"?limit=5&prev={back}").json()
    assert [t["transfer_id"] for t in newer["data"]] == [t["transfer_id"] for t in everything[:2]]

    flop = "?flop%5Bfilters%5D%5B0%5D%5Bfield%5D=market_id&flop%5Bfilters%5D%5B0%5D%5Bvalue%5D="
    assert supplier.data("GET", "/v1/transfer-histories", query=flop + MARKET) == everything
    assert supplier.data("GET", "/v1/transfer-histories", query=flop + "code-max") == []
    assert supplier.data("GET", "/v1/transfer-histories", query="?instrument_id=x") == []
    for bad in ("?limit=0", "?limit=101", "?limit=x", "?next=%21%21", "?next=YQ&prev=YQ"):
        response = supplier.call("GET", "/v1/transfer-histories", query=bad)
        assert response.status_code == 422, bad
        assert error(response)["code"] == "validation_error"


# -- supply -------------------------------------------------------------------------------------


def test_issuance_is_bounded_by_capacity(server: Server) -> None:
    supplier = open_client(server, supplier=True)
    issue = {"instrument_id": MARKET, "quantity": 5}
    without = supplier.call("POST", "/v1/supply-issuances", issue)
    assert without.status_code == 422
    assert error(without)["code"] == "capacity_exceeded"
    assert "operator" in error(without)["message"]

    assert set_capacity(server, supplier.account_id, CAPACITY_TOKENS_PER_MIN).status_code == 200
    issued = supplier.call("POST", "/v1/supply-issuances", issue)
    assert issued.status_code == 201, issued.text
    data = issued.json()["data"]
    assert data["quantity"] == 5 and data["instrument_id"] == MARKET
    assert data["issuance_account_id"] == f"{supplier.account_id}:issuance:{MARKET}"

    over = supplier.call("POST", "/v1/supply-issuances", {"instrument_id": MARKET, "quantity": 2})
    assert over.status_code == 422
    assert error(over)["code"] == "capacity_exceeded"
    assert "at most 1 more units" in error(over)["message"]

    [account] = supplier.data("GET", "/v1/issuance-accounts")
    assert (account["total_issued"], account["total_transferred"]) == ("5", "0")
    assert account["available_balance"] == "5" and account["issuable_units"] == 1
    assert account["instrument_symbol"] == MARKET


def test_issuance_to_trading_and_its_refusals(server: Server) -> None:
    supplier = open_client(server, supplier=True)
    assert set_capacity(server, supplier.account_id, CAPACITY_TOKENS_PER_MIN).status_code == 200
    supplier.data("POST", "/v1/supply-issuances", {"instrument_id": MARKET, "quantity": 3})
    path = "/v1/issuance-accounts/transfer"
    trading_id = f"{supplier.account_id}:trading:{MARKET}"
    body = {"instrument_id": MARKET, "quantity": 2, "trading_account_id": trading_id}
    moved = supplier.call("POST", path, body)
    assert moved.status_code == 200, moved.text
    data = moved.json()["data"]
    assert data["trading_account_id"] == trading_id and data["quantity"] == "2"
    assert moved.json()["transfer_id"] == data["transfer_id"]

    too_many = supplier.call("POST", path, {"instrument_id": MARKET, "quantity": 2})
    assert too_many.status_code == 422 and error(too_many)["code"] == "insufficient_units"
    wrong = {"instrument_id": MARKET, "quantity": 1, "trading_account_id": "someone:trading:x"}
    assert error(supplier.call("POST", path, wrong))["code"] == "validation_error"

    [account] = supplier.data("GET", "/v1/issuance-accounts")
    assert (account["total_issued"], account["total_transferred"]) == ("3", "2")
    assert account["available_balance"] == "1"
    trading = by_instrument(supplier.data("GET", "/v1/trading-accounts"), MARKET)
    assert trading["available_balance"] == "2"

    [summary] = supplier.data("GET", "/v1/supply-issuances/summary")
    assert summary["instrument_id"] == MARKET
    assert (summary["total_issued"], summary["units_transferred_to_trading"]) == ("3", "2")
    assert summary["units_available"] == "1"


def test_issuance_history_filters_and_pages(server: Server) -> None:
    supplier = open_client(server, supplier=True)
    assert set_capacity(server, supplier.account_id, CAPACITY_TOKENS_PER_MIN).status_code == 200
    ids = [
        supplier.data("POST", "/v1/supply-issuances", {"instrument_id": MARKET, "quantity": 1})[
            "id"
        ]
        for _ in range(3)
    ]
    listed = supplier.data("GET", "/v1/supply-issuances")
    assert [row["id"] for row in listed] == list(reversed(ids))
    assert all(row["quantity"] == 1 and row["issued_at"].endswith("Z") for row in listed)
    # `grid supply list` sends instrument_id, then limit, as flop filters.
    flop = (
        "?flop%5Bfilters%5D%5B0%5D%5Bfield%5D=instrument_id"
        f"&flop%5Bfilters%5D%5B0%5D%5Bvalue%5D={MARKET}"
        "&flop%5Bfilters%5D%5B1%5D%5Bfield%5D=limit&flop%5Bfilters%5D%5B1%5D%5Bvalue%5D=2"
    )
    page = supplier.call("GET", "/v1/supply-issuances", query=flop).json()
    assert [row["id"] for row in page["data"]] == list(reversed(ids))[:2]
    assert page["paging"]["has_more"] is True
    assert supplier.data("GET", "/v1/supply-issuances", query="?instrument_id=code-max") == []


def test_liability_is_sold_less_delivered(market: dict[str, Client]) -> None:
    supplier = market["supplier"]
    [row] = supplier.data("GET", "/v1/supplier-liability")
    assert row["instrument_id"] == MARKET
    assert row["total_liability"] == str(3 * TOKENS_PER_UNIT)
    assert (row["fulfilled"], row["outstanding"]) == ("0", str(3 * TOKENS_PER_UNIT))
    assert supplier.data("GET", f"/v1/supplier-liability/{MARKET}") == row
    empty = supplier.data("GET", "/v1/supplier-liability/code-max")
    assert (empty["total_liability"], empty["outstanding"]) == ("0", "0")
    missing = supplier.call("GET", "/v1/supplier-liability/no-such-thing")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/issuance-accounts", None),
        ("POST", "/v1/supply-issuances", {"instrument_id": MARKET, "quantity": 1}),
        ("GET", "/v1/supply-issuances", None),
        ("GET", "/v1/supply-issuances/summary", None),
        ("POST", "/v1/issuance-accounts/transfer", {"instrument_id": MARKET, "quantity": 1}),
        ("GET", "/v1/supplier-liability", None),
        ("GET", f"/v1/supplier-liability/{MARKET}", None),
    ],
)
def test_supply_endpoints_are_403_for_non_suppliers(
    market: dict[str, Client], method: str, path: str, body: Any
) -> None:
    response = market["buyer"].call(method, path, body)
    assert response.status_code == 403
    assert error(response)["code"] == "not_a_supplier"


def test_bad_issuances_are_422(market: dict[str, Client]) -> None:
    supplier = market["supplier"]
    for body, code in [
        ({"instrument_id": MARKET, "quantity": 0}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": "1.5"}, "validation_error"),
        ({"instrument_id": MARKET, "quantity": 1, "note": "x"}, "validation_error"),
        ({"instrument_id": "no-such-thing", "quantity": 1}, "unknown_instrument"),
    ]:
        response = supplier.call("POST", "/v1/supply-issuances", body)
        assert response.status_code == 422, body
        assert error(response)["code"] == code


# -- isolation ----------------------------------------------------------------------------------


def test_one_account_cannot_see_anothers_accounts_or_transfers(
    server: Server, market: dict[str, Client]
) -> None:
    stranger = open_client(server)
    buyer = market["buyer"]
    own_ids = [row["id"] for row in buyer.data("GET", "/v1/trading-accounts")]
    own_ids.append(f"{buyer.account_id}:consumption:{MARKET}")
    assert len(own_ids) == 3
    for account_id in own_ids:
        kind = "consumption-accounts" if ":consumption:" in account_id else "trading-accounts"
        assert buyer.call("GET", f"/v1/{kind}/{account_id}").status_code == 200, account_id
    for account_id in own_ids:
        for kind in ("trading-accounts", "consumption-accounts", "currency-trading-accounts"):
            response = stranger.call("GET", f"/v1/{kind}/{account_id}")
            assert response.status_code == 404, (kind, account_id)
    assert [row["account_id"] for row in stranger.data("GET", "/v1/trading-accounts")] == [
        stranger.account_id
    ]
    assert stranger.data("GET", "/v1/consumption-accounts") == []
    assert stranger.data("GET", "/v1/transfer-histories") == []
    for unknown in ("nonsense", f"{stranger.account_id}:trading:no-such-thing"):
        assert stranger.call("GET", f"/v1/trading-accounts/{unknown}").status_code == 404


def test_an_unsigned_request_is_401(server: Server) -> None:
    for path in ("/v1/trading-accounts", "/v1/transfer-histories", "/v1/issuance-accounts"):
        assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 401


# -- capacity, as the operator sets it ------------------------------------------------------------


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    environment = clean_env() | {
        "GRIDMARKET_SERVER": server.url,
        "GRIDMARKET_HOME": str(server.data_dir),
    }
    return subprocess.run(
        [str(GRIDMARKET), "admin", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_set_capacity_through_the_cli(server: Server) -> None:
    supplier = open_client(server, supplier=True)
    done = cli(server, "set-capacity", supplier.account_id, "code-max", "50000", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["capacity_tokens_per_min"] == 50_000
    assert data["max_outstanding_tokens"] == 50_000 * 240
    [account] = supplier.data("GET", "/v1/issuance-accounts")
    assert account["instrument_id"] == "code-max" and account["issuable_units"] == 12
    human = cli(server, "set-capacity", supplier.account_id, "code-max", "0")
    assert human.returncode == 0 and "0 tokens/min" in human.stdout
    refused = cli(server, "set-capacity", supplier.account_id, "no-such-thing", "1")
    assert refused.returncode == 1 and "unknown_instrument" in refused.stderr


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"instrument_id": MARKET, "capacity_tokens_per_min": -1}, 422, "validation_error"),
        ({"instrument_id": MARKET, "capacity_tokens_per_min": 1.5}, 422, "validation_error"),
        ({"instrument_id": MARKET, "capacity_tokens_per_min": "5"}, 422, "validation_error"),
        ({"instrument_id": MARKET}, 422, "validation_error"),
        ({"instrument_id": "no-such-thing", "capacity_tokens_per_min": 1}, 422,
         "unknown_instrument"),
    ],
)  # fmt: skip
def test_bad_capacity_bodies(
    server: Server, market: dict[str, Client], body: Any, status: int, code: str
) -> None:
    account_id = market["supplier"].account_id
    response = server.admin("POST", f"/v1/admin/accounts/{account_id}/capacity", json=body)
    assert response.status_code == status, response.text
    assert error(response)["code"] == code


def test_capacity_for_unknown_or_non_supplier_accounts(
    server: Server, market: dict[str, Client]
) -> None:
    body = {"instrument_id": MARKET, "capacity_tokens_per_min": 1}
    unknown = server.admin("POST", "/v1/admin/accounts/acct_nobody/capacity", json=body)
    assert unknown.status_code == 404
    buyer = market["buyer"].account_id
    refused = server.admin("POST", f"/v1/admin/accounts/{buyer}/capacity", json=body)
    assert refused.status_code == 422 and error(refused)["code"] == "not_a_supplier"
    anonymous = httpx.post(
        f"{server.url}/v1/admin/accounts/{buyer}/capacity", json=body, timeout=10
    )
    assert anonymous.status_code == 401


def test_the_ledger_still_balances(server: Server, market: dict[str, Client]) -> None:
    audit = server.admin("GET", "/v1/admin/audit").json()["data"]
    assert audit["balanced"] is True
    assert MARKET in audit["sums_by_asset"]  # units were issued, traded and consumed


# -- restart ------------------------------------------------------------------------------------


def test_history_survives_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Server(home)
    try:
        supplier = open_client(first, supplier=True)
        assert set_capacity(first, supplier.account_id, CAPACITY_TOKENS_PER_MIN).status_code == 200
        supplier.data("POST", "/v1/supply-issuances", {"instrument_id": MARKET, "quantity": 2})
        supplier.data(
            "POST", "/v1/issuance-accounts/transfer", {"instrument_id": MARKET, "quantity": 2}
        )
        transfers = supplier.data("GET", "/v1/transfer-histories")
        issuances = supplier.data("GET", "/v1/supply-issuances")
        balances = supplier.data("GET", "/v1/trading-accounts")
        assert len(transfers) == 1 and len(issuances) == 1
        first.stop()
    finally:
        first.kill()
    second = Server(home)
    try:
        again = Client(second, supplier.account_id, supplier.signer)
        assert again.data("GET", "/v1/transfer-histories") == transfers
        assert again.data("GET", "/v1/supply-issuances") == issuances
        assert again.data("GET", "/v1/trading-accounts") == balances
    finally:
        second.kill()
