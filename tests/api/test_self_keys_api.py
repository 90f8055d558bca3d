"""Self-service keys on a real server: consumption keys and signing keys, signed by the account."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from live_server import Server
from signed_client import Account, error_of, open_account

from gridmarket.api.key_ops import MAX_ACTIVE_CONSUMPTION_KEYS, MAX_ACTIVE_SIGNING_KEYS
from gridmarket.auth.keys import hash_consumption_key
from gridmarket.auth.signing import Signer, generate_keypair


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("selfkeys") / "home")
    try:
        yield running
    finally:
        running.kill()


def _new_signer() -> Signer:
    seed, _ = generate_keypair()
    return Signer(seed)


def _public(signer: Signer) -> str:
    return base64.b64encode(signer.public_key_raw).decode()


def _key_ids(account: Account) -> list[str]:
    return [key["id"] for key in account.data("GET", "/v1/api-keys")]


# -- consumption keys ---------------------------------------------------------------------------


def test_a_new_consumption_key_is_shown_once_and_stored_hashed(server: Server) -> None:
    alice = open_account(server)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    body = {"api_key": {"name": "laptop", "expires_at": expires.isoformat()}}
    made = alice.data("POST", "/v1/api-keys", body, status=201)
    key = made["key"]
    assert key.startswith("gm-") and made["key_prefix"] == key[: len(made["key_prefix"])]
    assert made["name"] == "laptop" and made["is_active"] is True
    assert made["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert made["spend_cap_tokens"] is None
    listed = {k["id"]: k for k in alice.data("GET", "/v1/api-keys")}
    assert made["id"] in listed and "key" not in listed[made["id"]]
    assert listed[made["id"]]["key_prefix"] == made["key_prefix"]
    with sqlite3.connect(server.data_dir / "gridmarket.db") as connection:
        rows = connection.execute(
            "SELECT key_hash, name FROM consumption_keys WHERE key_id = ?", (made["id"],)
        ).fetchall()
        everything = connection.execute("SELECT * FROM consumption_keys").fetchall()
    assert rows == [(hash_consumption_key(key), "laptop")]
    assert not any(key in str(value) or key[3:] in str(value) for r in everything for value in r)


def test_revoking_a_key_removes_it_and_a_second_revoke_is_404(server: Server) -> None:
    alice = open_account(server)
    body = {"api_key": {"name": "x", "spend_cap_tokens": 5}}
    made = alice.data("POST", "/v1/api-keys", body, 201)
    assert made["spend_cap_tokens"] == 5
    assert made["id"] in _key_ids(alice)
    assert alice.call("DELETE", f"/v1/api-keys/{made['id']}").status_code == 204
    assert made["id"] not in _key_ids(alice)
    again = alice.call("DELETE", f"/v1/api-keys/{made['id']}")
    assert again.status_code == 404 and error_of(again)["code"] == "api_key_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"api_key": "x"},
        {"api_key": {}},
        {"api_key": {"name": ""}},
        {"api_key": {"name": "   "}},
        {"api_key": {"name": "n" * 101}},
        {"api_key": {"name": "bad\nname"}},
        {"api_key": {"name": 5}},
        {"api_key": {"name": "n", "expires_at": "2001-01-01T00:00:00Z"}},
        {"api_key": {"name": "n", "expires_at": "2030-01-01T00:00:00"}},
        {"api_key": {"name": "n", "expires_at": "tomorrow"}},
        {"api_key": {"name": "n", "expires_at": "9999-01-01T00:00:00Z"}},
        {"api_key": {"name": "n", "spend_cap_tokens": 0}},
        {"api_key": {"name": "n", "spend_cap_tokens": -3}},
        {"api_key": {"name": "n", "spend_cap_tokens": 1.5}},
        {"api_key": {"name": "n", "spend_cap_tokens": True}},
        {"api_key": {"name": "n", "spend_cap_tokens": 10**16}},
        {"api_key": {"name": "n", "scope": "all"}},
        {"api_key": {"name": "n"}, "extra": 1},
        [],
    ],
)
def test_bad_consumption_key_bodies_are_422_and_create_nothing(server: Server, body: Any) -> None:
    alice = open_account(server)
    before = _key_ids(alice)
    response = alice.call("POST", "/v1/api-keys", body)
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "validation_error"
    assert _key_ids(alice) == before


def test_a_body_that_is_not_json_is_422(server: Server) -> None:
    alice = open_account(server)
    response = alice.call("POST", "/v1/api-keys", raw=b"{not json")
    assert response.status_code == 422 and error_of(response)["code"] == "validation_error"


def test_keys_per_account_are_capped(server: Server) -> None:
    alice = open_account(server)
    while len(_key_ids(alice)) < MAX_ACTIVE_CONSUMPTION_KEYS:
        alice.data("POST", "/v1/api-keys", {"api_key": {"name": "k"}}, 201)
    refused = alice.call("POST", "/v1/api-keys", {"api_key": {"name": "one more"}})
    assert refused.status_code == 409 and error_of(refused)["code"] == "key_limit_reached"
    assert len(_key_ids(alice)) == MAX_ACTIVE_CONSUMPTION_KEYS
    alice.call("DELETE", f"/v1/api-keys/{_key_ids(alice)[0]}")
    alice.data("POST", "/v1/api-keys", {"api_key": {"name": "room again"}}, 201)


def test_an_account_cannot_see_or_revoke_another_accounts_keys(server: Server) -> None:
    alice, bob = open_account(server), open_account(server)
    made = alice.data("POST", "/v1/api-keys", {"api_key": {"name": "alice's"}}, 201)
    assert made["id"] not in _key_ids(bob)
    refused = bob.call("DELETE", f"/v1/api-keys/{made['id']}")
    assert refused.status_code == 404 and error_of(refused)["code"] == "api_key_not_found"
    assert made["id"] in _key_ids(alice)
    alice_keys = {k["fingerprint"] for k in alice.data("GET", "/v1/signing-keys")}
    bob_keys = {k["fingerprint"] for k in bob.data("GET", "/v1/signing-keys")}
    assert alice_keys == {alice.signer.fingerprint} and bob_keys == {bob.signer.fingerprint}
    fingerprint = quote(alice.signer.fingerprint, safe="")
    refused = bob.call("DELETE", f"/v1/signing-keys/{fingerprint}")
    assert refused.status_code == 404 and error_of(refused)["code"] == "signing_key_not_found"
    assert alice.call("GET", "/v1/me").status_code == 200


# -- signing keys -------------------------------------------------------------------------------


def test_a_registered_key_signs_and_a_revoked_one_is_refused_at_once(server: Server) -> None:
    alice = open_account(server)
    old_fingerprint = alice.signer.fingerprint
    assert alice.call("GET", "/v1/me").status_code == 200  # the old key is now cached
    signer = _new_signer()
    body = {"signing_key": {"label": "ci", "public_key": _public(signer)}}
    made = alice.data("POST", "/v1/signing-keys", body, 201)
    assert made["fingerprint"] == signer.fingerprint and made["label"] == "ci"
    assert made["is_active"] is True and made["key_id"].startswith("sk_")
    assert "/" not in made["key_id"] and "+" not in made["key_id"]
    fresh = alice.with_signer(signer)
    assert fresh.data("GET", "/v1/me")["account_id"] == alice.account_id
    # Revoked by the new key, by key id; refused at once, well inside the cache's 5 s.
    old_id = next(k["key_id"] for k in fresh.data("GET", "/v1/signing-keys") if k["label"] is None)
    assert fresh.call("DELETE", f"/v1/signing-keys/{old_id}").status_code == 204
    refused = alice.call("GET", "/v1/me")
    assert refused.status_code == 401, refused.text
    listed = [k["fingerprint"] for k in fresh.data("GET", "/v1/signing-keys")]
    assert listed == [signer.fingerprint] and old_fingerprint not in listed


def test_the_last_active_signing_key_cannot_be_revoked(server: Server) -> None:
    alice = open_account(server)
    response = alice.call("DELETE", f"/v1/signing-keys/{quote(alice.signer.fingerprint, safe='')}")
    assert response.status_code == 409 and error_of(response)["code"] == "last_signing_key"
    assert alice.call("GET", "/v1/me").status_code == 200


def test_a_key_can_revoke_itself_when_another_remains(server: Server) -> None:
    alice = open_account(server)
    signer = _new_signer()
    body = {"signing_key": {"label": "next", "public_key": _public(signer)}}
    alice.data("POST", "/v1/signing-keys", body, 201)
    raw_path = f"/v1/signing-keys/{alice.signer.fingerprint}"  # an unencoded `/` works too
    assert alice.call("DELETE", raw_path).status_code == 204
    assert alice.call("GET", "/v1/me").status_code == 401
    assert alice.with_signer(signer).call("GET", "/v1/me").status_code == 200


def test_a_public_key_registered_twice_is_409(server: Server) -> None:
    alice, bob = open_account(server), open_account(server)
    body = {"signing_key": {"label": "mine", "public_key": _public(alice.signer)}}
    for who in (alice, bob):
        response = who.call("POST", "/v1/signing-keys", body)
        assert response.status_code == 409 and error_of(response)["code"] == "signing_key_exists"


def test_signing_keys_per_account_are_capped(server: Server) -> None:
    alice = open_account(server)
    for _ in range(MAX_ACTIVE_SIGNING_KEYS - 1):
        body = {"signing_key": {"label": "k", "public_key": _public(_new_signer())}}
        alice.data("POST", "/v1/signing-keys", body, 201)
    body = {"signing_key": {"label": "k", "public_key": _public(_new_signer())}}
    refused = alice.call("POST", "/v1/signing-keys", body)
    assert refused.status_code == 409 and error_of(refused)["code"] == "key_limit_reached"


@pytest.mark.parametrize(
    "signing_key",
    [
        None,
        {"label": "x"},
        {"label": "x", "public_key": "not base64!"},
        {"label": "x", "public_key": base64.b64encode(b"short").decode()},
        {"label": "x", "public_key": base64.b64encode(b"k" * 64).decode()},
        {"label": "", "public_key": base64.b64encode(b"k" * 32).decode()},
        {"label": "x", "public_key": base64.b64encode(b"k" * 32).decode(), "id": "x"},
        {"label": "x", "public_key": 32},
    ],
)
def test_bad_signing_keys_are_422(server: Server, signing_key: Any) -> None:
    alice = open_account(server)
    response = alice.call("POST", "/v1/signing-keys", {"signing_key": signing_key})
    assert response.status_code == 422 and error_of(response)["code"] == "validation_error"
    assert len(alice.data("GET", "/v1/signing-keys")) == 1


def test_unsigned_self_service_requests_are_401(server: Server) -> None:
    for method, path in (("GET", "/v1/api-keys"), ("POST", "/v1/signing-keys")):
        response = httpx.request(method, f"{server.url}{path}", json={}, timeout=10)
        assert response.status_code == 401, (path, response.text)
