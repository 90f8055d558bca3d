"""A signed Trading API client for live-server tests, and accounts made through the admin API."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
from live_server import Server

from gridmarket.auth.signing import Signer


class Account:
    """One account's signing key, sending signed requests the way The Grid's client does."""

    def __init__(self, server: Server, account_id: str, signer: Signer) -> None:
        self.server = server
        self.account_id = account_id
        self.signer = signer
        self._signed: set[tuple[str, str, bytes, int, str]] = set()

    def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> httpx.Response:
        content = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        when = int(time.time())
        # Ed25519 is deterministic: an identical write in the same second would be a replay.
        while (method, path, content, when, self.signer.fingerprint) in self._signed:
            when -= 1
        self._signed.add((method, path, content, when, self.signer.fingerprint))
        headers = self.signer.sign_request(method, path, content, when)
        headers["Content-Type"] = "application/json"
        url = f"{self.server.url}{path}"
        return httpx.request(method, url, content=content, headers=headers, timeout=10)

    def data(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == status, response.text
        return response.json()["data"]

    def with_signer(self, signer: Signer) -> Account:
        """The same account, signing with another of its keys."""
        return Account(self.server, self.account_id, signer)


def open_account(
    server: Server, *, mode: str = "easy", deposit: str | None = None, supplier: bool = False
) -> Account:
    body: dict[str, Any] = {"name": "t", "mode": mode, "supplier": supplier}
    if deposit is not None:
        body["deposit_usd"] = deposit
    response = server.admin("POST", "/v1/admin/accounts", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    signer = Signer(base64.b64decode(data["signing_key"]["private_key"]))
    return Account(server, data["account_id"], signer)


def error_of(response: httpx.Response) -> dict[str, Any]:
    errors: dict[str, Any] = response.json()["errors"]
    assert set(errors) == {"detail", "code", "message"}
    return errors
