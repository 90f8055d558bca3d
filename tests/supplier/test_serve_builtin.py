"""`gridmarket serve` with the built-in supplier on, over real HTTP: health says `starting`
until the built-in asks rest on text-local, then `ok`; an account buys text-local units over
the signed Trading API, gets tokens in its consumption account, and the asks are topped up;
the model process stops with the server."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from live_server import GRIDMARKET, clean_env, free_port

from gridmarket.auth.signing import Signer

STARTUP_TIMEOUT_S = 90


class BuiltinServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = data_dir.parent / "server.log"
        self._log = self.log_path.open("a")
        port = self.url.rsplit(":", 1)[1]
        env = clean_env() | {
            "GRIDMARKET_BUILTIN_SUPPLIER": "1",
            # 30,000 tokens/min x 240 min: 7 units of capacity, no measuring run.
            "GRIDMARKET_BUILTIN_CAPACITY": "30000",
        }
        command = [str(GRIDMARKET), "serve", "--port", port, "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(
            [*command, "--builtin-resting-units", "2", "--builtin-price-usd", "0.020"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        #: Every distinct health answer seen while starting, in order.
        self.health_states: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                answer = httpx.get(f"{self.url}/v1/health", timeout=2)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            state = (answer.status_code, answer.json()["data"])
            if not self.health_states or self.health_states[-1] != state:
                self.health_states.append(state)
            if answer.status_code == 200:
                return
            time.sleep(0.05)
        self.process.kill()
        pytest.fail(f"not ready: {self.health_states} {self.log_path.read_text()}")

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = (self.data_dir / "operator-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        self._log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltinServer]:
    running = BuiltinServer(tmp_path_factory.mktemp("builtin") / "home")
    yield running
    running.stop()


def _signed(server: BuiltinServer, signer: Signer, method: str, path: str, body: Any = None) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = signer.sign_request(method, path, raw, int(time.time()))
    headers |= {"Content-Type": "application/json"}
    answer = httpx.request(method, f"{server.url}{path}", content=raw, headers=headers, timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json()


def _asks(server: BuiltinServer) -> list[Any]:
    book = httpx.get(f"{server.url}/v1/markets/text-local/orderbook", timeout=10).json()["data"]
    return list(book["asks"])


def test_health_says_starting_until_the_built_in_asks_rest(server: BuiltinServer) -> None:
    (first_status, first), *_, (last_status, last) = server.health_states
    assert first_status == 503
    assert first["status"] == "starting"
    assert first["reason"]
    assert (last_status, last["status"]) == (200, "ok")
    assert _asks(server), "ready, yet no ask rests on text-local"


def test_an_account_buys_text_local_and_gets_tokens(server: BuiltinServer) -> None:
    created = server.admin(
        "POST", "/v1/admin/accounts", json={"name": "t", "mode": "advanced", "deposit_usd": "1"}
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    signer = Signer(base64.b64decode(data["signing_key"]["private_key"]))
    order = {"market_id": "text-local", "side": "buy", "type": "market", "quantity": "1"}
    placed = _signed(server, signer, "POST", "/v1/orders", order)
    assert placed["data"]["status"] == "filled", placed
    move = {"instrument_id": "text-local", "quantity": 1}
    _signed(server, signer, "POST", "/v1/transfers/trading-to-consumption", move)
    [row] = _signed(server, signer, "GET", "/v1/consumption-accounts")["data"]
    assert row["available_balance"] == "1000000"
    balances = _signed(server, signer, "GET", "/v1/currency-trading-accounts")["data"]
    assert balances[0]["available_balance"].startswith("0.98")  # 1 USD less 0.020 per unit
    # The agent tops the book back up to two units.
    deadline = time.monotonic() + 10
    while sum(int(a["quantity"]) for a in _asks(server)) < 2:
        assert time.monotonic() < deadline, _asks(server)
        time.sleep(0.1)


def test_the_model_process_stops_with_the_server(tmp_path: Path) -> None:
    running = BuiltinServer(tmp_path / "home")
    children = subprocess.run(
        ["pgrep", "-P", str(running.process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert children, "no model process under the server"
    running.process.send_signal(signal.SIGKILL)
    running.process.wait()
    running.stop()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        status = [Path(f"/proc/{p}/status") for p in children if Path(f"/proc/{p}").exists()]
        if all("\nState:\tZ" in s.read_text() for s in status if s.exists()):
            break
        assert time.monotonic() < deadline, "the model process outlived the server"
        time.sleep(0.05)


def test_an_auto_mode_account_with_only_usd_gets_generated_text_through_both_sdks(
    server: BuiltinServer,
) -> None:
    """Issue 4's 'done means': a newcomer in Auto Mode, holding USD and nothing else, calls
    text-local through the official OpenAI and Anthropic SDKs; the gateway buys a unit on the
    book (the built-in supplier's ask), moves it to consumption, and the built-in model, a
    separate process reached over HTTP, writes the answer."""
    created = server.admin(
        "POST", "/v1/admin/accounts", json={"name": "newcomer", "mode": "easy", "deposit_usd": "1"}
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    signer = Signer(base64.b64decode(data["signing_key"]["private_key"]))
    key = data["consumption_key"]

    chat = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)
    answer = chat.chat.completions.create(
        model="text-local",
        messages=[{"role": "user", "content": "Name one colour."}],
        max_tokens=12,
    )
    text = answer.choices[0].message.content or ""
    assert text.strip(), answer
    assert answer.model == "text-local"
    assert answer.usage is not None and answer.usage.completion_tokens > 0

    claude = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0, timeout=120)
    message = claude.messages.create(
        model="text-local",
        max_tokens=12,
        messages=[{"role": "user", "content": "Name one animal."}],
    )
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.usage.output_tokens > 0

    # Paid by a market buy on the book: one filled buy of the built-in supplier's units, moved
    # straight to consumption; what the two calls used is gone from it.
    orders = _signed(server, signer, "GET", "/v1/orders")["data"]
    assert [(o["side"], o["type"], o["status"]) for o in orders] == [("buy", "market", "filled")]
    deadline = time.monotonic() + 10
    while True:
        [row] = _signed(server, signer, "GET", "/v1/consumption-accounts")["data"]
        if row["committed_balance"] in ("0", 0) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    used = answer.usage.total_tokens + message.usage.input_tokens + message.usage.output_tokens
    assert int(row["available_balance"]) == 1_000_000 * int(orders[0]["quantity"]) - used
