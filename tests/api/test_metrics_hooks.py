"""The gateway's metric hooks (`app.state.gateway_metrics`) reach /metrics in the Prometheus
format from the app's own registry (two apps never share one), and who may read /metrics:
open on loopback by default, the operator token elsewhere or when GRIDMARKET_METRICS_AUTH
says `token`, and a bad setting refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gridmarket.api import metrics
from gridmarket.api.app import create_app
from gridmarket.settings import Settings

TOKEN = "operator-secret"


def _app(tmp_path: Path, host: str = "127.0.0.1") -> FastAPI:
    app = create_app(Settings.resolve(data_dir=tmp_path, host=host, environ={}))
    app.state.operator_token = TOKEN
    app.include_router(metrics.router)
    return app


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_hooks_are_exposed_per_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.METRICS_AUTH_ENV, raising=False)
    app, other = _app(tmp_path), _app(tmp_path)
    with TestClient(app) as client, TestClient(other) as other_client:
        hooks = app.state.gateway_metrics
        assert hooks is metrics.gateway_metrics(app)  # made once, at start
        hooks.observe_overhead("s1", 0.0015)
        hooks.observe_overhead("s1", 0.003)
        hooks.observe_ttft("s1", 0.2)
        hooks.request_started("text-local")
        hooks.request_started("text-local")
        hooks.request_finished("text-local", "ok")
        m = _samples(client.get("/metrics").text)
        untouched = _samples(other_client.get("/metrics").text)
    s1 = (("supplier", "s1"),)
    assert m[("gridmarket_gateway_overhead_seconds_count", s1)] == 2
    assert m[("gridmarket_gateway_overhead_seconds_bucket", (("le", "0.002"), *s1))] == 1
    assert m[("gridmarket_gateway_ttft_seconds_count", s1)] == 1
    where = (("instrument", "text-local"),)
    assert m[("gridmarket_gateway_requests_in_progress", where)] == 1
    finished = tuple(sorted((*where, ("outcome", "ok"))))
    assert m[("gridmarket_gateway_requests_total", finished)] == 1
    assert ("gridmarket_gateway_overhead_seconds_count", s1) not in untouched


@pytest.mark.parametrize(
    ("host", "mode", "needs_token"),
    [
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("0.0.0.0", None, True),
        ("0.0.0.0", "none", False),
        ("127.0.0.1", "token", True),
    ],
)
def test_who_may_read_metrics(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    mode: str | None,
    needs_token: bool,
) -> None:
    if mode is None:
        monkeypatch.delenv(metrics.METRICS_AUTH_ENV, raising=False)
    else:
        monkeypatch.setenv(metrics.METRICS_AUTH_ENV, mode)
    with TestClient(_app(tmp_path, host)) as client:
        plain = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert plain.status_code == (401 if needs_token else 200)
    assert wrong.status_code == (401 if needs_token else 200)
    assert right.status_code == 200
    if needs_token:
        assert plain.json()["errors"]["code"] == "unauthorized"


def test_a_bad_access_setting_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.METRICS_AUTH_ENV, "sometimes")
    with pytest.raises(ValueError, match="GRIDMARKET_METRICS_AUTH"), TestClient(_app(tmp_path)):
        pass
