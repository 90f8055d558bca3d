"""`gridmarket serve` starts a real server that answers /v1/health and stops cleanly on signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 10
GRIDMARKET = Path(sys.executable).with_name("gridmarket")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("GRIDMARKET_HOME", "GRIDMARKET_DATABASE_URL")
        }
        command = [str(GRIDMARKET), "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"server not ready after {STARTUP_TIMEOUT_S}s")

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        try:
            returncode = self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server still running {SHUTDOWN_TIMEOUT_S}s after signal {signum}")
        return returncode, self.output()

    def output(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.read()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "home")
    try:
        running.wait_ready()
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def test_the_console_script_is_installed() -> None:
    assert GRIDMARKET.is_file(), f"{GRIDMARKET} missing: is the project installed?"


def test_health_answers_in_the_data_envelope(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": {"status": "ok", "service": "gridmarket"}}


def test_an_unknown_path_is_a_404_in_the_error_envelope(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/no-such-thing")

    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"errors"}
    assert body["errors"]["code"] == "not_found"
    assert isinstance(body["errors"]["detail"], str)


def test_serve_creates_a_private_data_dir(server: Server, tmp_path: Path) -> None:
    assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_shuts_the_server_down_cleanly(server: Server, signum: int) -> None:
    returncode, output = server.stop(signum)

    assert returncode == 0, output
    assert "gridmarket stopped" in output
    assert "Application shutdown complete" in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/v1/health", timeout=1)
