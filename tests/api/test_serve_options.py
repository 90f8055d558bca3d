"""`gridmarket serve` hands uvicorn the fast event loop and parser, and the access-log switch.

uvicorn.run is replaced by a recorder: these check the options the CLI chooses, not uvicorn.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gridmarket import cli


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **options: seen.update(options))
    result = CliRunner().invoke(cli.app, ["serve", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    return seen


def test_serve_uses_uvloop_and_httptools_when_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = _serve(monkeypatch, tmp_path)
    assert importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools")
    assert (options["loop"], options["http"]) == ("uvloop", "httptools")
    assert options["access_log"] is False  # off unless asked for


def test_serve_falls_back_to_the_pure_python_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "_installed", lambda module: False)
    options = _serve(monkeypatch, tmp_path)
    assert (options["loop"], options["http"]) == ("asyncio", "h11")


def test_access_log_turns_uvicorns_access_log_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _serve(monkeypatch, tmp_path, "--access-log")["access_log"] is True
    assert _serve(monkeypatch, tmp_path, "--no-access-log")["access_log"] is False


def test_serve_refuses_stripe_without_its_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **options: None)
    monkeypatch.delenv("GRIDMARKET_STRIPE_SECRET_KEY", raising=False)
    result = CliRunner().invoke(
        cli.app, ["serve", "--data-dir", str(tmp_path), "--payment-provider", "stripe"]
    )
    assert result.exit_code == 2
    assert "GRIDMARKET_STRIPE_SECRET_KEY" in result.output
