"""A scripted Trading API for client tests: canned answers per route, every request recorded,
every signature checked the way the server checks it (`auth.signing.verify_request`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gridmarket.auth.outcomes import Verified
from gridmarket.auth.signing import Signer, verify_request
from gridmarket.client import AsyncClient, Client, Credentials

SEED = bytes(range(32))
NOW_S = 1_790_000_000
SERVER = "http://grid.test"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeGrid:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []
        self.verified: list[Verified | None] = []
        self.signer = Signer(SEED)

    def on(
        self, method: str, path: str, status: int = 200, body: Any = None, **headers: str
    ) -> None:
        """Answer `method path` (query ignored); several answers for one route play in turn."""
        self.routes.setdefault((method, path), []).append(Answer(status, body, headers))

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        self.verified.append(self._verify(request))
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            body = {"errors": {"detail": "no such route", "code": "not_found"}}
            return httpx.Response(404, json=body)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer.body is None:
            return httpx.Response(answer.status, headers=answer.headers)
        content = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body)
        headers = {"content-type": "application/json"} | answer.headers
        return httpx.Response(answer.status, content=content, headers=headers)

    def _verify(self, request: httpx.Request) -> Verified | None:
        if "x-thegrid-signature" not in request.headers:
            return None
        path = request.url.raw_path.decode().partition("?")[0]
        outcome = verify_request(
            request.headers,
            request.method,
            path,
            request.content,
            NOW_S,
            lambda fp: self.signer.public_key_raw if fp == self.signer.fingerprint else None,
        )
        assert isinstance(outcome, Verified), outcome
        return outcome

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


Api = Callable[..., Any]


def sync_api(grid: FakeGrid, signed: bool = True) -> tuple[Client, Api]:
    client = Client(
        SERVER,
        credentials=Credentials.from_private_key(SEED) if signed else None,
        transport=httpx.MockTransport(grid.handle),
        clock=lambda: NOW_S,
    )
    return client, lambda name, *a, **kw: getattr(client, name)(*a, **kw)


def async_api(grid: FakeGrid, signed: bool = True) -> tuple[AsyncClient, Api]:
    client = AsyncClient(
        SERVER,
        credentials=Credentials.from_private_key(SEED) if signed else None,
        transport=httpx.MockTransport(grid.handle),
        clock=lambda: NOW_S,
    )

    def run(name: str, *a: Any, **kw: Any) -> Any:
        return asyncio.run(getattr(client, name)(*a, **kw))

    return client, run
