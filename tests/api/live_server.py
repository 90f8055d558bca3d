"""A real `gridmarket serve` process for API tests: started on a free port, killed after.

Its output goes to a file beside the data dir, never to an unread pipe: access logs would
fill a pipe and stall the server after a few hundred requests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

STARTUP_TIMEOUT_S = 30
GRIDMARKET = Path(sys.executable).with_name("gridmarket")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    dropped = ("GRIDMARKET_HOME", "GRIDMARKET_DATABASE_URL", "GRIDMARKET_SERVER")
    kept = {k: v for k, v in os.environ.items() if k not in dropped}
    # The built-in model takes seconds to start; only its own tests turn it on.
    return kept | {"GRIDMARKET_BUILTIN_SUPPLIER": "0"}


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self._log = self.log_path.open("a")
        command = [str(GRIDMARKET), "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(
            command, env=clean_env(), stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"server not ready after {STARTUP_TIMEOUT_S}s: {self.log_path.read_text()}")

    @property
    def token(self) -> str:
        return (self.data_dir / "operator-token").read_text().strip()

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def key_file(
        self,
        path: Path,
        name: str,
        *,
        deposit_usd: str,
        mode: str = "advanced",
        supplier: bool = False,
    ) -> Path:
        """A new account's key file at `path`: exactly what `gridmarket admin create-account
        --json` prints (the client and the CLI read it with `--key-file`)."""
        body = {"name": name, "mode": mode, "deposit_usd": deposit_usd, "supplier": supplier}
        response = self.admin("POST", "/v1/admin/accounts", json=body)
        assert response.status_code == 201, response.text
        path.write_text(json.dumps(response.json()["data"]))
        return path

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=10) == 0
        self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
