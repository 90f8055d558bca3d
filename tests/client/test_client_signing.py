"""The client signs exactly as The Grid verifies, loads keys from every documented source, and
never repeats a write's signature (which the replay guard would refuse)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from fake_grid import NOW_S, SEED, SERVER, Api, FakeGrid, sync_api

from gridmarket.auth.signing import Signer
from gridmarket.client import Client, Credentials, CredentialsError
from gridmarket.client.credentials import resolve_credentials

ORDER = {
    "order_id": "7",
    "market_id": "text-prime",
    "side": "buy",
    "type": "limit",
    "status": "active",
    "price": "2.500",
    "quantity": "5",
    "filled_quantity": 0,
    "time_in_force": "gtc",
}


def test_a_signed_get_signs_the_path_without_its_query(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/orders", body={"data": [], "paging": {"has_more": False}})
    api("list_orders", status="active", market_id="text-prime", limit=5)
    sent = grid.last
    assert sent.url.query == b"status=active&market_id=text-prime&limit=5"
    verified = grid.verified[-1]
    assert verified is not None and verified.timestamp_s == NOW_S
    assert sent.headers["x-thegrid-fingerprint"] == Signer(SEED).fingerprint
    assert sent.content == b""


def test_a_signed_post_signs_the_exact_body_bytes_sent(grid: FakeGrid, api: Api) -> None:
    grid.on("POST", "/v1/orders", 201, {"data": ORDER})
    api("place_order", "text-prime", "buy", 5, price="2.50", client_order_id="c1")
    assert grid.verified[-1] is not None
    # The Grid's key order, quantity and price as strings, absent keys left out.
    assert list(grid.last_json().items()) == [
        ("market_id", "text-prime"),
        ("side", "buy"),
        ("type", "limit"),
        ("quantity", "5"),
        ("price", "2.50"),
        ("client_order_id", "c1"),
    ]
    assert grid.last.headers["content-type"] == "application/json"


def test_ids_in_paths_are_percent_encoded_and_signed_as_sent(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/orders/a/b c", body={"data": ORDER})
    api("get_order", "a/b c")
    assert grid.last.url.raw_path == b"/v1/orders/a%2Fb%20c"
    assert grid.verified[-1] is not None  # verified over the encoded path


def test_health_is_never_signed_and_public_reads_work_without_a_key(grid: FakeGrid) -> None:
    grid.on("GET", "/v1/health", body={"data": {"status": "ok", "service": "gridmarket"}})
    grid.on("GET", "/v1/markets/text-prime/ticker", body={"data": {"volume_24h": "0"}})
    _, api = sync_api(grid, signed=False)
    assert api("health").status == "ok"
    assert api("ticker", "text-prime").volume_24h == 0
    assert grid.verified == [None, None]


def test_a_signed_call_without_a_key_fails_before_sending(grid: FakeGrid) -> None:
    _, api = sync_api(grid, signed=False)
    with pytest.raises(CredentialsError, match="needs a signing key"):
        api("me")
    assert grid.requests == []


def test_identical_writes_in_one_second_get_distinct_timestamps(grid: FakeGrid, api: Api) -> None:
    grid.on("DELETE", "/v1/orders", body={"data": {"cancelled": 0}})
    for _ in range(3):
        api("cancel_all_orders")
    stamps = [v.timestamp_s for v in grid.verified if v is not None]
    assert stamps == [NOW_S, NOW_S - 1, NOW_S - 2]
    assert len({r.headers["x-thegrid-signature"] for r in grid.requests}) == 3


def test_two_clients_with_one_key_share_the_memory(grid: FakeGrid) -> None:
    grid.on("DELETE", "/v1/orders", body={"data": {"cancelled": 0}})
    for _ in range(2):
        _, api = sync_api(grid)
        api("cancel_all_orders")
    assert [v.timestamp_s for v in grid.verified if v is not None] == [NOW_S, NOW_S - 1]


def test_a_replay_refusal_is_re_signed_and_retried(grid: FakeGrid, api: Api) -> None:
    # Another process with the same key used this second: the server refused before acting.
    refusal = {"errors": {"detail": "already used", "code": "replayed_request"}}
    grid.on("DELETE", "/v1/orders", 401, refusal)
    grid.on("DELETE", "/v1/orders", body={"data": {"cancelled": 1}})
    assert api("cancel_all_orders") == 1
    assert [v.timestamp_s for v in grid.verified if v is not None] == [NOW_S, NOW_S - 1]


def test_reads_keep_the_current_second(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/orders/count", body={"data": {"count": 0}})
    api("count_orders")
    api("count_orders")
    assert [v.timestamp_s for v in grid.verified if v is not None] == [NOW_S, NOW_S]


def _key_document() -> dict[str, object]:
    signer = Signer(SEED)
    return {
        "account_id": "acct_1",
        "consumption_key": "gm-x",
        "signing_key": {
            "private_key": base64.b64encode(SEED).decode(),
            "public_key": base64.b64encode(signer.public_key_raw).decode(),
            "fingerprint": signer.fingerprint,
        },
    }


def test_a_key_file_from_create_account_loads(tmp_path: Path) -> None:
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(_key_document()))
    credentials = Credentials.from_key_file(path)
    assert credentials.account_id == "acct_1"
    assert credentials.fingerprint == Signer(SEED).fingerprint
    assert "private" not in repr(credentials) and base64.b64encode(SEED).decode() not in repr(
        credentials
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"signing_key": {}}', "no signing_key.private_key"),
        ('{"private_key": "!!!"}', "not a base64"),
    ],
)
def test_a_bad_key_file_is_a_credentials_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CredentialsError, match=message):
        Credentials.from_key_file(path)


def test_a_key_file_whose_fingerprint_is_not_its_keys_is_refused(tmp_path: Path) -> None:
    document = _key_document()
    document["signing_key"]["fingerprint"] = "A" * 43  # type: ignore[index]
    path = tmp_path / "k.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CredentialsError, match="fingerprint"):
        Credentials.from_key_file(path)


def test_a_missing_key_file_is_a_credentials_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read key file"):
        Credentials.from_key_file(tmp_path / "absent.json")


def test_credentials_come_from_the_argument_then_the_environment(tmp_path: Path) -> None:
    other_seed = bytes(32)
    path = tmp_path / "k.json"
    path.write_text(json.dumps(_key_document()))
    env_key = {"GRIDMARKET_SIGNING_KEY": base64.urlsafe_b64encode(other_seed).decode()}
    env_file = {"GRIDMARKET_KEY_FILE": str(path)}
    assert resolve_credentials(environ={}) is None
    from_env_key = resolve_credentials(environ=env_key | env_file)
    assert from_env_key is not None and from_env_key.fingerprint == Signer(other_seed).fingerprint
    from_env_file = resolve_credentials(environ=env_file)
    assert from_env_file is not None and from_env_file.account_id == "acct_1"
    explicit = resolve_credentials(signing_key=SEED, environ=env_key)
    assert explicit is not None and explicit.fingerprint == Signer(SEED).fingerprint


def test_the_server_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRIDMARKET_SERVER", raising=False)
    assert Client().server == "http://127.0.0.1:8000"
    monkeypatch.setenv("GRIDMARKET_SERVER", "http://env.test:9/")
    assert Client().server == "http://env.test:9"
    assert Client("https://trading.test/v1/").server == "https://trading.test"
    with pytest.raises(ValueError, match="http"):
        Client("ftp://x")


def test_local_argument_errors_send_nothing(grid: FakeGrid, api: Api) -> None:
    with pytest.raises(TypeError, match="float"):
        api("place_order", "text-prime", "buy", 1, price=2.5)
    with pytest.raises(ValueError, match="needs a price"):
        api("place_order", "text-prime", "buy", 1, type="limit")
    with pytest.raises(ValueError, match="side"):
        api("place_order", "text-prime", "hold", 1, price="1")
    with pytest.raises(ValueError, match="quantity"):
        api("place_order", "text-prime", "buy", 0, price="1")
    with pytest.raises(ValueError, match="positive"):
        api("place_order", "text-prime", "buy", 1, price="-1")
    assert grid.requests == []


def test_a_market_order_sends_no_price(grid: FakeGrid, api: Api) -> None:
    grid.on("POST", "/v1/orders", 201, {"data": ORDER | {"type": "market", "price": None}})
    order = api("place_order", "text-prime", "sell", 2, time_in_force="ioc", post_only=False)
    assert grid.last_json() == {
        "market_id": "text-prime",
        "side": "sell",
        "type": "market",
        "quantity": "2",
        "time_in_force": "ioc",
    }
    assert order.price is None and order.type == "market"


def test_the_transport_is_real_httpx(grid: FakeGrid) -> None:
    # Sanity: the mock sees real httpx requests with the client's user agent.
    grid.on("GET", "/v1/health", body={"data": {"status": "ok"}})
    _, api = sync_api(grid)
    api("health")
    assert isinstance(grid.last, httpx.Request)
    assert grid.last.url.host == SERVER.removeprefix("http://")
    assert grid.last.headers["user-agent"].startswith("gridmarket-client/")
