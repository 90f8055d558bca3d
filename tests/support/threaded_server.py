"""An ASGI app served by uvicorn in a daemon thread on a free loopback port, for the fakes.

class FakeThing(ThreadedServer):
    def __init__(self) -> None:
        super().__init__(Starlette(routes=[...]), "the fake thing")

with FakeThing() as thing:     # serving at thing.port once entered
    ...
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

STARTUP_TIMEOUT_S = 10


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ThreadedServer:
    def __init__(self, app: Any, label: str) -> None:
        self.label = label
        self.port = free_loopback_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
