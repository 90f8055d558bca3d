"""The built-in model's process: started by `gridmarket serve`, dies with it, restarted if it
crashes.

    process = LocalSupplierProcess()
    base_url = await process.start()   # http://127.0.0.1:<free port>/v1, once the model answers
    ...
    await process.stop()               # SIGTERM, then SIGKILL after a grace period

Contract:
- The server runs `python -m gridmarket.supplier.local_server` on a free loopback port, with
  `--parent-pid` set to this process: the child sets the kernel's parent-death signal (Linux
  `PR_SET_PDEATHSIG`, SIGKILL) and also polls its parent pid, so it dies with the server even
  when the server is SIGKILLed.
- `start` returns once `/health` answers (the model is loaded), or raises `SupplierFailed`.
- A crash (the child exits while not stopping) is followed by a restart on the same port after
  a backoff (1 s, doubling, at most 30 s); after `max_restarts` crashes in a row without a
  healthy run in between, the supervisor gives up and `failed` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time

import httpx

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0
STOP_GRACE_S = 5.0
MAX_BACKOFF_S = 30.0


class SupplierFailed(Exception):
    """The model process could not be started (or restarted)."""


def free_loopback_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class LocalSupplierProcess:
    """One model process and its supervisor (a task on the running event loop)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        threads: int = 2,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        max_restarts: int = 5,
        first_backoff_s: float = 1.0,
        python: str = sys.executable,
    ) -> None:
        self.host = host
        self.port = port or free_loopback_port(host)
        self.threads = threads
        self.startup_timeout_s = startup_timeout_s
        self.max_restarts = max_restarts
        self.first_backoff_s = first_backoff_s
        self.python = python
        self.restarts = 0
        #: Why the supervisor gave up, or None while it has not.
        self.failed: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._healthy = False

    def serving(self) -> bool:
        """Whether the model process is up and answered its health check since it started."""
        process = self._process
        return self._healthy and process is not None and process.returncode is None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> str:
        """Start the model process and wait until it answers; its base URL (`.../v1`)."""
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="builtin-supplier")
        return self.base_url

    async def _spawn(self) -> None:
        command = [
            self.python,
            "-m",
            "gridmarket.supplier.local_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--threads",
            str(self.threads),
            "--parent-pid",
            str(os.getpid()),
        ]
        # Spawned from the event loop's thread, which lives as long as the server: the
        # parent-death signal fires when the spawning *thread* ends, not only the process.
        self._healthy = False
        self._process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL
        )
        log.info("built-in supplier: model process %d on %s", self._process.pid, self.base_url)
        await self._wait_healthy(self._process)
        self._healthy = True

    async def _wait_healthy(self, process: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if process.returncode is not None:
                    raise SupplierFailed(f"the model process exited with {process.returncode}")
                try:
                    answer = await client.get(f"http://{self.host}:{self.port}/health")
                    if answer.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        await self._terminate(process)
        raise SupplierFailed(f"the model did not answer within {self.startup_timeout_s:.0f} s")

    async def _supervise(self) -> None:
        crashes = 0
        while not self._stopping:
            process = self._process
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            crashes += 1
            self.restarts += 1
            if crashes > self.max_restarts:
                self.failed = (
                    f"the model process crashed {crashes} times in a row (last exit {code})"
                )
                log.error("built-in supplier: %s; giving up", self.failed)
                return
            backoff = min(self.first_backoff_s * 2 ** (crashes - 1), MAX_BACKOFF_S)
            log.warning("built-in supplier: model exited with %s; restart in %.1f s", code, backoff)
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            try:
                await self._spawn()
                crashes = 0
            except (SupplierFailed, OSError) as problem:
                log.warning("built-in supplier: restart failed: %s", problem)

    async def stop(self) -> None:
        """Stop the supervisor and the model process (SIGTERM, SIGKILL after a grace)."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._process is not None:
            await self._terminate(self._process)

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            process.kill()
            await process.wait()
