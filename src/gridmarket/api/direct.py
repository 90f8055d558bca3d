"""Direct dispatch of the hot routes: the same endpoints, without FastAPI's machinery.

A signed order costs a few hundred microseconds of Python, and FastAPI's per-request work
around the endpoint (matching the path against the route list, the request-response wrapper,
resolving the `Request` and `Signed` parameters through its dependency solver, the exit stack)
was about a third of it. For the routes where that work is known in advance, this layer does
it by hand. A route qualifies when it has a fixed path (no path parameters), no router-level
dependencies, and an endpoint that returns a `Response` (nothing for FastAPI to serialise)
and takes nothing FastAPI would have to parse, validate or inject beyond:
- `request: Request`, for a plain `APIRoute` (the consumption surfaces, health), or
- `request: Request` and `signed: Signed` (at least the latter), for a `SignedRoute`.
Any other route class is left alone (the operator's does its own checks around the endpoint),
and so is every other route: FastAPI handles them unchanged, and would handle these the same
way without this layer (`create_app(direct_routes=False)`; a test compares the two).

What FastAPI does for such a route, done here in the same order: `scope["route"]` and
`scope["endpoint"]` set (the rate limiter reads the route's path); for a signed route,
`signed_account` run (its `Refusal` or `RateLimited` answered as `SignedRoute` answers them)
and the `x-ratelimit-*` headers put on the response (`ratelimit.add_headers`, as
`ratelimit.with_headers` does on the way out); the endpoint called and its `Response` sent.

It wraps the whole app, outside FastAPI's own middleware (`install`), because each of those
layers costs a signed order a few percent of its CPU for nothing these routes need (the
OpenTelemetry hooks, off; FastAPI's body limit, unset; the send wrappers). What the layers
outside would have done for these routes, it does itself:
- the body size limit (`api.limits`): a declared `content-length` over the limit, or a body
  that passes it, is answered 413 in the surface's shape, as `BodySizeLimit` answers it;
- errors: an exception the app has a handler for (other than the catch-all) is answered by
  that handler, as Starlette's exception middleware would; any other by the catch-all handler
  (a 500 in the surface's shape), then raised again for the server to log, as Starlette's
  server-error middleware does.

The table is built on the first request, from the app's routes as they are then (flat:
routes added with `api.app.include_flat`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import PlainTextResponse, Response
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gridmarket.api import limits, ratelimit
from gridmarket.api.signed import Refusal, SignedAccount, SignedRoute, signed_account

Endpoint = Callable[..., Awaitable[Response]]


class _Direct:
    __slots__ = ("endpoint", "route", "wants_request", "wants_signed")

    def __init__(self, route: APIRoute, wants_request: bool, wants_signed: bool) -> None:
        self.route = route
        self.endpoint: Endpoint = route.endpoint
        self.wants_request = wants_request
        self.wants_signed = wants_signed


def _direct(route: object) -> _Direct | None:
    """The route as a `_Direct` if it qualifies (see the module docstring), else None."""
    signed_route = isinstance(route, SignedRoute)
    # A route class of its own (the operator's, say) may do anything around the endpoint.
    if not (signed_route or type(route) is APIRoute):
        return None
    assert isinstance(route, APIRoute)
    if route.param_convertors or not inspect.iscoroutinefunction(route.endpoint):
        return None
    if route.dependencies:  # router-level dependencies: FastAPI would run them
        return None
    signature = inspect.signature(route.endpoint, eval_str=True)
    answer = signature.return_annotation
    if not (isinstance(answer, type) and issubclass(answer, Response)):
        return None  # FastAPI would serialise it (a response model, a status code)
    wants_request = wants_signed = False
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if name == "request" and annotation is Request:
            wants_request = True
        elif signed_route and name == "signed" and _is_signed(annotation):
            wants_signed = True
        else:
            return None
    # FastAPI authenticates only through the `Signed` parameter: a signed route without it
    # is left to FastAPI (whatever it does, this layer must not do differently).
    if signed_route and not wants_signed:
        return None
    return _Direct(route, wants_request, wants_signed)


def _shadowed(earlier: list[Any], method: str, path: str) -> bool:
    """Whether one of the `earlier` routes would fully match an HTTP `method` `path`."""
    for route in earlier:
        if isinstance(route, WebSocketRoute):
            continue  # matches WebSocket scopes only
        pattern = getattr(route, "path_regex", None)
        if pattern is None or not pattern.match(path):
            continue
        methods = getattr(route, "methods", None)
        if methods is None or method in methods:  # a mount, or a route for this method
            return True
    return False


def _is_signed(annotation: object) -> bool:
    return getattr(annotation, "__origin__", None) is SignedAccount


class DirectRoutes:
    """ASGI middleware: the qualifying routes of `routes_of()` dispatched directly."""

    def __init__(
        self,
        app: ASGIApp,
        routes_of: Callable[[], list[Any]],
        handlers_of: Callable[[], dict[Any, Callable[..., Any]]],
        max_body_bytes: int = limits.DEFAULT_MAX_BODY_BYTES,
        consumption_max_body_bytes: int = limits.CONSUMPTION_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.consumption_max_body_bytes = consumption_max_body_bytes
        self._routes_of = routes_of
        self._handlers_of = handlers_of
        self._table: dict[tuple[str, str], _Direct] | None = None

    def _handler_for(self, exc: Exception) -> Callable[..., Any] | None:
        """The app's handler for `exc`, as Starlette's exception middleware would pick it;
        None for the catch-all (`Exception`), which the server-error middleware outside
        answers, as it does for FastAPI's own routes."""
        handlers = self._handlers_of()
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None
            if kind in handlers:
                return handlers[kind]
        return None

    def _build(self) -> dict[tuple[str, str], _Direct]:
        table: dict[tuple[str, str], _Direct] = {}
        routes = self._routes_of()
        for index, route in enumerate(routes):
            direct = _direct(route)
            if direct is None:
                continue
            for method in route.methods or ():
                # FastAPI takes the first route that matches, patterns included: a route an
                # earlier one would answer (`/x/{id}` before `/x/count`) is left to it.
                if not _shadowed(routes[:index], method, route.path):
                    table.setdefault((method, route.path), direct)
        return table

    def _catch_all(self) -> Callable[..., Any] | None:
        handlers = self._handlers_of()
        return handlers.get(Exception) or handlers.get(500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        table = self._table
        if table is None:  # built on the first request: every route is declared by then
            table = self._table = self._build()
        direct = table.get((scope["method"], scope["path"]))
        if direct is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = limits.limit_for(path, self.max_body_bytes, self.consumption_max_body_bytes)
        if limits.declared_over(scope, limit):
            await limits.refuse(send, path, limit)
            return
        scope["route"] = direct.route
        scope["endpoint"] = direct.endpoint
        scope.setdefault("path_params", {})
        receive = limits.counting(receive, limit)
        request = Request(scope, receive, send)
        try:
            response = await self._answer(direct, request)
        except limits.BodyTooLarge:
            await limits.refuse(send, path, limit)
            return
        except Exception as exc:
            handler = self._catch_all()
            if handler is None:
                response = PlainTextResponse("Internal Server Error", status_code=500)
            else:
                response = await _handled(handler, request, exc)
            await response(scope, receive, send)
            raise  # for the server to log, as the server-error middleware does
        await response(scope, receive, send)

    async def _answer(self, direct: _Direct, request: Request) -> Response:
        """The route's response: the endpoint's, a refusal's, or an app handler's."""
        scope = request.scope
        try:
            arguments: dict[str, Any] = {}
            if direct.wants_signed:
                arguments["signed"] = await signed_account(request)
            if direct.wants_request:
                arguments["request"] = request
            response = await direct.endpoint(**arguments)
        except (Refusal, ratelimit.RateLimited) as refusal:
            response = refusal.response()
        except limits.BodyTooLarge:
            raise
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await _handled(handler, request, exc)
        if direct.wants_signed:
            # After the handlers, as on the way out: a 429 carries the headers too.
            ratelimit.add_headers(response, scope)
        return response


async def _handled(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    """An app exception handler's response (handlers may be plain functions or coroutines)."""
    answered = handler(request, exc)
    response: Response = await answered if inspect.isawaitable(answered) else answered
    return response


def install(app: FastAPI) -> None:
    """Wrap `app`'s whole middleware stack in `DirectRoutes`, when Starlette builds it."""
    build = app.build_middleware_stack

    def build_with_direct_routes() -> ASGIApp:
        return DirectRoutes(
            build(),
            routes_of=lambda: app.router.routes,
            handlers_of=lambda: app.exception_handlers,
        )

    app.build_middleware_stack = build_with_direct_routes  # type: ignore[method-assign]
