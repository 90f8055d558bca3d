"""Every operation of the API, fuzzed from the server's own /openapi.json: no 5xx, and each
response matches the schema declared for its status.

A real `gridmarket serve` runs with its default settings; schemathesis reads its OpenAPI
document, so a route added later is fuzzed without touching this file. Requests are signed as
The Grid's client signs them (Ed25519 over timestamp + METHOD + path + body, the exact bytes
sent) with a funded Advanced Mode account's key; /v1/admin routes carry the operator token
instead. Each operation gets a few examples (positive and negative, `MAX_EXAMPLES`), from a
fixed seed, so a run is repeatable and bounded. For a deeper run:

    GRIDMARKET_FUZZ_EXAMPLES=200 pytest tests/fuzz

Checks: `not_a_server_error` (any 5xx fails), `response_schema_conformance` (a body that does
not match the schema declared for its status fails; an undeclared status or a response
without a schema is not checked) and `content_type_conformance`.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from live_server import Server
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from gridmarket.auth.signing import Signer
from gridmarket.bootstrap import build_app
from gridmarket.settings import Settings

MAX_EXAMPLES = int(os.environ.get("GRIDMARKET_FUZZ_EXAMPLES") or 20)
SEED = 20261125
ANSWERS: dict[str, Counter[int]] = {}  # "METHOD /path" -> status -> how many times
RATE_LIMIT_HEADERS = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

pytestmark = pytest.mark.timeout(600)


class GridAuth(requests.auth.AuthBase):
    """Signs each prepared request as The Grid's client does; admin paths get the token."""

    def __init__(self, signer: Signer, operator_token: str, account_id: str) -> None:
        self.signer = signer
        self.operator_token = operator_token
        self.account_id = account_id

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        path = urlsplit(request.url or "").path
        if path.startswith("/v1/admin"):
            request.headers["Authorization"] = f"Bearer {self.operator_token}"
            return request
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        method = (request.method or "GET").upper()
        request.headers.update(self.signer.sign_request(method, path, raw, int(time.time())))
        return request


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("fuzz") / "home")
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def grid_auth(fuzz_server: Server) -> GridAuth:
    # A supplier with capacity, so the supply routes answer more than 403 `not_a_supplier`.
    body = {"name": "fuzzer", "mode": "advanced", "deposit_usd": "100000", "supplier": True}
    response = fuzz_server.admin("POST", "/v1/admin/accounts", json=body)
    assert response.status_code == 201, response.text
    account_id = response.json()["data"]["account_id"]
    key = response.json()["data"]["signing_key"]
    capacity = {"instrument_id": "text-prime", "capacity_tokens_per_min": 10**9}
    path = f"/v1/admin/accounts/{account_id}/capacity"
    assert fuzz_server.admin("POST", path, json=capacity).status_code == 200
    return GridAuth(Signer(base64.b64decode(key["private_key"])), fuzz_server.token, account_id)


def _openapi_document() -> dict[str, Any]:
    """The document the server serves at /openapi.json, built from the composition root.

    Built at collection time (the routes, not a running server, make it), so each operation
    is a test of its own; `test_the_server_serves_this_document` checks it is the served one.
    """
    with tempfile.TemporaryDirectory() as home:
        document: dict[str, Any] = build_app(Settings.resolve(data_dir=home, environ={})).openapi()
    return document


DOCUMENT = _openapi_document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_fails_or_breaks_its_schema(
    case: schemathesis.Case, grid_auth: GridAuth, fuzz_server: Server
) -> None:
    response = case.call(base_url=fuzz_server.url, auth=grid_auth, timeout=10)
    ANSWERS.setdefault(f"{case.method} {case.path}", Counter())[response.status_code] += 1
    if case.path.endswith("/account-mode") and response.status_code == 204:
        # A generated body may switch the fuzzer to Auto Mode; later order writes need Advanced.
        path = f"/v1/admin/accounts/{grid_auth.account_id}/settings"
        assert fuzz_server.admin("PATCH", path, json={"mode": "advanced"}).status_code == 200
    case.validate_response(response, checks=CHECKS)
    declared = DOCUMENT["paths"][case.operation.path][case.operation.method.lower()]["responses"]
    signed = "429" in declared and not case.path.startswith("/v1/admin")
    same_method = case.method.upper() == case.operation.method.upper()
    if signed and same_method and response.status_code != 401:
        # Every answer to an authenticated request tells the key its budget.
        assert set(response.headers) >= RATE_LIMIT_HEADERS, (case.path, response.headers)


def test_the_server_serves_this_document(fuzz_server: Server) -> None:
    served = requests.get(f"{fuzz_server.url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


def test_signed_routes_declare_their_401_and_429() -> None:
    me = DOCUMENT["paths"]["/v1/me"]["get"]["responses"]
    assert {"200", "401", "429"} <= set(me)
    assert "Retry-After" in me["429"]["headers"]


def test_the_fuzzer_reached_every_operation_and_got_past_authentication() -> None:
    """Runs after the fuzzing: every operation was called, and signing and the operator token
    worked (some 2xx on signed and on admin routes), so the checks above saw real answers."""
    operations = {
        f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item
    }
    assert operations <= set(ANSWERS), sorted(operations - set(ANSWERS))
    print({operation: dict(statuses) for operation, statuses in sorted(ANSWERS.items())})

    def succeeded(prefix: str) -> bool:
        return any(
            operation.split(" ")[1].startswith(prefix) and any(200 <= s < 300 for s in statuses)
            for operation, statuses in ANSWERS.items()
        )

    assert succeeded("/v1/me")
    assert succeeded("/v1/admin/")
