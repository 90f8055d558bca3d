"""The model process belongs to the server: it answers once started, is restarted after a
crash, stops with the server, and dies with it even when the server is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from gridmarket.supplier.process import LocalSupplierProcess

PARENT = textwrap.dedent(
    """
    import asyncio
    from gridmarket.supplier.process import LocalSupplierProcess

    async def main():
        process = LocalSupplierProcess()
        await process.start()
        print(process.pid, flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited; only its parent's reaping remains


def _wait_gone(pid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_the_model_process_dies_when_its_parent_is_sigkilled() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone(child), "the model process outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


async def test_a_crashed_model_is_restarted_and_stopped_on_shutdown() -> None:
    process = LocalSupplierProcess(first_backoff_s=0.1)
    base_url = await process.start()
    try:
        first = process.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while process.pid == first or not await _answers(base_url):
            assert time.monotonic() < deadline, "the model was not restarted"
            await asyncio.sleep(0.1)
        assert process.restarts == 1
        assert process.failed is None
        second = process.pid
    finally:
        await process.stop()
    assert second is not None
    assert await asyncio.to_thread(_wait_gone, second)
    assert not await _answers(base_url)


async def _answers(base_url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{base_url}/models")).status_code == 200
    except httpx.TransportError:
        return False
