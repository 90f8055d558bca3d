"""Every client test here runs twice: through `Client` and through `AsyncClient`."""

from __future__ import annotations

import pytest
from fake_grid import Api, FakeGrid, async_api, sync_api

from gridmarket.client import core


@pytest.fixture
def grid() -> FakeGrid:
    return FakeGrid()


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, grid: FakeGrid) -> Api:
    _, run = sync_api(grid) if request.param == "sync" else async_api(grid)
    return run


@pytest.fixture(autouse=True)
def fresh_write_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no memory of earlier tests' signed writes."""
    monkeypatch.setattr(core, "WRITE_CLOCK", core._WriteClock())
