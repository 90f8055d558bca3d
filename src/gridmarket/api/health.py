"""`GET /v1/health`: unsigned liveness, in the `{"data": ...}` envelope The Grid's CLI requires.

`grid verify` reports a bare `{"status": "ok"}` as offline, so the envelope is part of the
contract (reference/grid-client-contract.md, section 1.3). When the market's sequencer has
stopped (a failed commit or a core bug: it then refuses every command until the process is
restarted and replays its store), health answers 503 so that a supervisor or load balancer
restarts or drains this process instead of sending it traffic.

With the built-in supplier on (`app.state.builtin_supplier`), the server is ready only once
its asks rest on the `text-local` book: until then 503 with `{"data": {"status": "starting",
"reason": ...}}`, so that whoever waits for health can make a first call at once.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gridmarket.api.errors import error_response

SERVICE_NAME = "gridmarket"

router = APIRouter()


@router.get("/v1/health", response_model=None)
async def health(request: Request) -> Response:
    """Answers while the server is up and its market accepts commands."""
    market = getattr(request.app.state, "market", None)
    failure = getattr(getattr(market, "sequencer", None), "failure", None)
    if failure is not None:
        return error_response(
            503, f"the market stopped and must be restarted: {failure}", "market_stopped"
        )
    supplier = getattr(request.app.state, "builtin_supplier", None)
    reason = None if supplier is None else supplier.not_ready_reason()
    if reason is not None:
        return JSONResponse(
            {"data": {"status": "starting", "service": SERVICE_NAME, "reason": reason}},
            status_code=503,
        )
    return JSONResponse({"data": {"status": "ok", "service": SERVICE_NAME}})
