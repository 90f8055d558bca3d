"""`GET /v1/health`: unsigned liveness, in the `{"data": ...}` envelope The Grid's CLI requires.

`grid verify` reports a bare `{"status": "ok"}` as offline, so the envelope is part of the
contract (reference/grid-client-contract.md, section 1.3).
"""

from __future__ import annotations

from fastapi import APIRouter

SERVICE_NAME = "gridmarket"

router = APIRouter()


@router.get("/v1/health")
async def health() -> dict[str, dict[str, str]]:
    """Answers while the server is up."""
    return {"data": {"status": "ok", "service": SERVICE_NAME}}
