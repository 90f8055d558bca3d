"""The app runs the market service for its lifetime and answers every error in one envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from gridmarket.api.app import ServiceFactory, create_app
from gridmarket.api.errors import code_for_status
from gridmarket.settings import Settings


class FakeMarket:
    def __init__(self) -> None:
        self.running = False


def make_app(tmp_path: Path, service_factory: ServiceFactory | None = None) -> FastAPI:
    settings = Settings.resolve(data_dir=tmp_path, environ={})
    return create_app(settings, service_factory=service_factory)


def test_the_market_service_runs_exactly_while_the_app_does(tmp_path: Path) -> None:
    market = FakeMarket()
    seen: list[Settings] = []

    @asynccontextmanager
    async def open_market(settings: Settings) -> AsyncIterator[FakeMarket]:
        seen.append(settings)
        market.running = True
        yield market
        market.running = False

    app = make_app(tmp_path, service_factory=open_market)
    assert not market.running

    with TestClient(app) as client:
        assert market.running
        assert app.state.market is market
        assert seen == [app.state.settings]
        assert client.get("/v1/health").status_code == 200

    assert not market.running
    assert app.state.market is None


def test_without_a_service_factory_nothing_is_started(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    with TestClient(app) as client:
        assert app.state.market is None
        body = client.get("/v1/health").json()

    assert body == {"data": {"status": "ok", "service": "gridmarket"}}


def test_an_unexpected_exception_is_a_500_that_leaks_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")

    assert response.status_code == 500
    detail = "internal error"
    assert response.json() == {
        "errors": {"detail": detail, "code": "internal_error", "message": detail}
    }


def test_an_http_error_keeps_its_status_and_detail(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    async def conflict() -> None:
        raise HTTPException(409, detail="client_order_id already used")

    app.add_api_route("/conflict", conflict)
    with TestClient(app) as client:
        response = client.get("/conflict")
        wrong_method = client.delete("/v1/health")

    assert response.status_code == 409
    assert response.json() == {
        "errors": {
            "detail": "client_order_id already used",
            "code": "conflict",
            "message": "client_order_id already used",
        }
    }
    assert wrong_method.status_code == 405
    assert wrong_method.json()["errors"]["code"] == "method_not_allowed"


def test_a_request_that_fails_validation_names_the_field(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    async def limited(limit: int) -> dict[str, int]:
        return {"data": limit}

    app.add_api_route("/limited", limited)
    with TestClient(app) as client:
        response = client.get("/limited", params={"limit": "many"})

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["code"] == "validation_error"
    assert "limit" in errors["detail"]


@pytest.mark.parametrize(
    ("status_code", "code"),
    [
        (404, "not_found"),
        (405, "method_not_allowed"),
        (409, "conflict"),
        (413, "request_too_large"),
        (422, "validation_error"),
        (429, "rate_limited"),
        (418, "http_418"),
    ],
)
def test_each_status_has_one_stable_code(status_code: int, code: str) -> None:
    assert code_for_status(status_code) == code
