"""The trading commands as a user runs them: `gridmarket order|book|trades` in a subprocess
against a real server, `--json` output parsed back, failures one line and a non-zero exit."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import GRIDMARKET, Server, clean_env

MARKET = "text-prime"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("cli-trade") / "home")
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def key(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-keys") / "cli.json"
    return server.key_file(path, "cli", deposit_usd="500")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRIDMARKET), *args],
        env=clean_env() | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_json(server: Server, key: Path, *args: str) -> Any:
    done = run(*args, "--server", server.url, "--key-file", str(key), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # the whole of stdout is one JSON document


def test_place_list_cancel_round_trip(server: Server, key: Path) -> None:
    placed = run_json(
        server, key, "order", "place", MARKET, "buy", "4", "--price", "1.75",
        "--client-order-id", "cli-1",
    )  # fmt: skip
    assert (placed["status"], placed["price"], placed["quantity"]) == ("active", "1.750", 4)
    assert placed["client_order_id"] == "cli-1" and placed["type"] == "limit"

    listed = run_json(server, key, "order", "list", "--status", "active", "--market", MARKET)
    assert [o["order_id"] for o in listed] == [placed["order_id"]]
    assert listed[0]["filled_quantity"] == 0

    book = run_json(server, key, "book", MARKET, "--once", "--depth", "3")
    assert book["bids"][0] == {"price": "1.750", "quantity": 4, "order_count": 1}
    assert book["asks"] == []

    cancelled = run_json(server, key, "order", "cancel", placed["order_id"])
    assert cancelled == {"order_id": placed["order_id"], "cancelled": True}
    assert run_json(server, key, "order", "list", "--status", "active") == []
    everything = run_json(server, key, "order", "list")
    assert everything[0]["status"] == "cancelled"


def test_cancel_all_in_one_market(server: Server, key: Path) -> None:
    for price in ("1.10", "1.20"):
        run_json(server, key, "order", "place", MARKET, "buy", "1", "--price", price)
    assert run_json(server, key, "order", "cancel", "--all", "--market", MARKET) == {"cancelled": 2}


def test_the_human_book_and_the_public_tape(server: Server, key: Path) -> None:
    run_json(server, key, "order", "place", MARKET, "buy", "2", "--price", "1.333")
    try:
        done = run("book", MARKET, "--once", "--server", server.url)
        assert done.returncode == 0, done.stderr
        assert "1.333" in done.stdout and "order book" in done.stdout
        assert run_json(server, key, "trades", "--public", "--market", MARKET) == []
    finally:
        run_json(server, key, "order", "cancel", "--all")


def test_the_live_ladder_runs_until_interrupted(server: Server, key: Path) -> None:
    run_json(server, key, "order", "place", MARKET, "buy", "1", "--price", "1.444")
    process = subprocess.Popen(
        [str(GRIDMARKET), "book", MARKET, "--interval", "0.2", "--server", server.url],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test runner may start children with SIGINT ignored; Ctrl-C must reach this one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Rich renders a non-terminal Live only when it stops, so there is nothing to wait for
        # but time: long enough for a loaded machine to import the CLI and poll a few times.
        time.sleep(6)
        assert process.poll() is None  # still following the book
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        run_json(server, key, "order", "cancel", "--all")
    assert process.returncode == 0, err
    assert "1.444" in out and "Traceback" not in err


def test_the_environment_supplies_server_and_key(server: Server, key: Path) -> None:
    env = {"GRIDMARKET_SERVER": server.url, "GRIDMARKET_KEY_FILE": str(key)}
    done = run("order", "list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("order", "cancel", "999999"), "order '999999' not found (order_not_found, HTTP 404)"),
        (("order", "place", MARKET, "buy", "1", "--price", "abc"), "not a decimal number"),
        (("order", "place", MARKET, "buy", "1", "--type", "limit"), "needs a price"),
        (("order", "place", MARKET, "hold", "1", "--price", "1"), "side must be one of"),
        (("order", "cancel"), "give either an order id or --all"),
        (("book", "no-such-market", "--once"), "market 'no-such-market' not found"),
    ],
)
def test_failures_are_one_line_and_exit_1(
    server: Server, key: Path, args: tuple[str, ...], message: str
) -> None:
    done = run(*args, "--server", server.url, "--key-file", str(key), "--json")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert message in done.stderr


def test_no_key_and_no_server_are_clear_errors(server: Server, tmp_path: Path) -> None:
    done = run("order", "list", "--server", server.url)
    assert done.returncode == 1 and "needs a signing key" in done.stderr
    done = run("book", MARKET, "--once", "--server", "http://127.0.0.1:9")
    assert done.returncode == 1 and done.stderr.startswith("error: cannot reach")
    assert "Traceback" not in done.stderr
    done = run("order", "list", "--server", server.url, "--key-file", str(tmp_path / "no.json"))
    assert done.returncode != 0 and "Traceback" not in done.stderr
