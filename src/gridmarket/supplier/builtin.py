"""The built-in supplier as `gridmarket serve` runs it: model process, capacity, supply agent.

    async with run_builtin_supplier(market, directory, settings.builtin_supplier) as supplier:
        supplier.not_ready_reason()    # None once its asks rest on text-local (/v1/health)

Entering returns at once: the model starts in the background (the server answers meanwhile,
its health `starting`). Once the model answers, its capacity is measured (one typical call,
prompt and output tokens per minute, at least one unit over the issuance horizon; a configured
capacity skips this), and the supply agent starts quoting. Leaving stops the agent, then
the model process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from gridmarket.api.app import ServiceFactory
from gridmarket.gateway.contract import SupplierDirectory
from gridmarket.service.market import MarketService
from gridmarket.settings import BuiltinSupplier, Settings
from gridmarket.supplier.agent import AgentConfig, BuiltinSupplyAgent
from gridmarket.supplier.local_server import MODEL_NAME
from gridmarket.supplier.process import LocalSupplierProcess

log = logging.getLogger(__name__)

#: A prompt of a few hundred tokens and a short answer: a typical small call.
_MEASURE_PROMPT = "Summarize in one sentence: " + "The market matches buyers and sellers. " * 40
_MEASURE_OUTPUT_TOKENS = 64
#: One unit over the issuance horizon (1,000,000 tokens / 240 min, rounded up): a machine too
#: busy to measure that much still quotes one unit, or a newcomer could never buy a first call.
MIN_CAPACITY_TOKENS_PER_MIN = 4_167


async def warm_up(base_url: str) -> None:
    """One tiny generation: llama.cpp's first one pays for setting up its compute graphs (about
    a second), which would otherwise land on the first caller's time to first token. A prompt
    unlike the measuring one: llama.cpp reuses a cached prompt prefix, skipping its prefill."""
    body = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 4,
    }
    async with httpx.AsyncClient(timeout=120) as client:
        (await client.post(f"{base_url}/chat/completions", json=body)).raise_for_status()


async def measure_capacity_tokens_per_min(base_url: str) -> int:
    """Prompt plus output tokens per minute of one typical call (the first one warms up)."""
    body = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": _MEASURE_PROMPT}],
        "max_tokens": _MEASURE_OUTPUT_TOKENS,
        "temperature": 0,
    }
    await warm_up(base_url)
    async with httpx.AsyncClient(timeout=120) as client:
        started_ns = time.monotonic_ns()
        answer = await client.post(f"{base_url}/chat/completions", json=body)
        elapsed_ns = max(time.monotonic_ns() - started_ns, 1)
    answer.raise_for_status()
    tokens: int = answer.json()["usage"]["total_tokens"]
    return tokens * 60 * 1_000_000_000 // elapsed_ns


class BuiltinSupplierRun:
    """What `/v1/health` asks: is the built-in supply on the book yet?"""

    def __init__(self) -> None:
        self.agent: BuiltinSupplyAgent | None = None
        self.process: LocalSupplierProcess | None = None
        self.problem: str | None = None

    def not_ready_reason(self) -> str | None:
        if self.problem is not None:
            return self.problem
        if self.process is not None and self.process.failed is not None:
            return f"the built-in model stopped: {self.process.failed}"
        if self.agent is None:
            return "the built-in model is loading"
        return self.agent.not_ready_reason()


@asynccontextmanager
async def run_builtin_supplier(
    market: MarketService, directory: SupplierDirectory, settings: BuiltinSupplier
) -> AsyncIterator[BuiltinSupplierRun]:
    run = BuiltinSupplierRun()
    run.process = LocalSupplierProcess()

    async def start() -> None:
        assert run.process is not None
        try:
            base_url = await run.process.start()
            capacity = settings.capacity_tokens_per_min
            if capacity is not None:
                await warm_up(base_url)
            else:
                measured = await measure_capacity_tokens_per_min(base_url)
                capacity = max(measured, MIN_CAPACITY_TOKENS_PER_MIN)
                log.info(
                    "built-in supplier: measured %d tokens/min, quoting %d", measured, capacity
                )
            agent = BuiltinSupplyAgent(
                market,
                directory,
                base_url,
                AgentConfig(
                    price_usd_micros=settings.price_usd_micros,
                    resting_units=settings.resting_units,
                    capacity_tokens_per_min=capacity,
                ),
                serving=run.process.serving,
            )
            await agent.start()
            run.agent = agent
        except Exception as problem:
            log.exception("built-in supplier: start failed")
            run.problem = f"the built-in supplier failed to start: {problem}"

    starting = asyncio.create_task(start(), name="builtin-supplier-start")
    try:
        yield run
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        if run.agent is not None:
            await run.agent.stop()
        await run.process.stop()


def with_builtin_supplier(app: FastAPI, service_factory: ServiceFactory) -> ServiceFactory:
    """`service_factory`, plus the built-in supplier when the settings turn it on: its run is
    `app.state.builtin_supplier` (None when off), its endpoint goes to
    `app.state.supplier_directory`."""

    @asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[object]:
        async with service_factory(settings) as market:
            if not settings.builtin_supplier.enabled or not isinstance(market, MarketService):
                yield market
                return
            directory = app.state.supplier_directory
            async with run_builtin_supplier(market, directory, settings.builtin_supplier) as run:
                app.state.builtin_supplier = run
                try:
                    yield market
                finally:
                    app.state.builtin_supplier = None

    return factory
