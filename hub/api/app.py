"""The WSGI application: the route table, each request through the pipeline (`api/pipeline.py`: the body's
limit, unstorable characters, the caller's key, errors as answers) to its handler.

    app = build_api(ctx, build_deps(ctx))
    werkzeug.serving.make_server(host, port, app)    # or: app.handle(request) from nameko
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug import Request, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule

from hub import privacy, tracing
from hub.api import (
    callbacks,
    console,
    erp,
    flash_sales,
    openapi,
    ops,
    payment_reconciliation,
    refunds,
    shop,
    store,
    store_orders,
)
from hub.api.http import ApiError, Call, Route, json_response, log
from hub.api.pipeline import all_secrets, authenticate, error_body, limit_body, refuse_unstorable
from hub.api.store_screen import ROUTES as STORE_SCREEN_ROUTES
from hub.bootstrap import HubContext
from hub.connector_health import ConnectorHealth
from hub.domain.errors import IllegalTransition
from hub.logs import log_context
from hub.metrics import METRICS, HubMetrics
from hub.ports import CallbackConnectors
from hub.storage.tables import utcnow

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class ApiDeps:
    """What the API needs beyond the database."""

    # system name -> connector, for the callbacks (each looked up typed by its use case)
    connectors: CallbackConnectors = field(default_factory=CallbackConnectors)
    replay_dead_letter: Callable[..., bool] | None = None    # (id[, resend=]); None: this process's own flows
    now: Callable[[], datetime] = utcnow
    metrics: HubMetrics = field(default_factory=lambda: METRICS)
    queue_depths: Callable[[], dict[str, int]] | None = None     # broker queue -> messages ready (the gateway's)
    health: ConnectorHealth = field(init=False)       # over `metrics` (a test may set its own, with a clock)

    def __post_init__(self) -> None:
        self.health = ConnectorHealth(self.metrics)


def build_deps(ctx: HubContext, *, replay_dead_letter: Callable[..., bool] | None = None,
               now: Callable[[], datetime] = utcnow, metrics: HubMetrics | None = None,
               queue_depths: Callable[[], dict[str, int]] | None = None) -> ApiDeps:
    """Build the connectors the callbacks use from config.yaml; one that cannot be built is left out
    (its callback answers 404) and logged, so a missing module never stops the API."""
    built = CallbackConnectors()
    for name, system in ctx.config.systems.items():
        try:
            declared = ctx.connectors.declared(name)
            if declared is None or declared.callback not in callbacks.HANDLERS:
                continue                          # callbacks need only these; the others are the workers' business
            built[name] = ctx.connectors[name]
        except Exception as exc:  # not landed yet, or misconfigured: serve everything else
            log.warning("connector %s (%s) not available to the API: %s", name, system.kind, exc)
    return ApiDeps(connectors=built, replay_dead_letter=replay_dead_letter, now=now,
                   metrics=metrics or METRICS, queue_depths=queue_depths)


ROUTES: list[Route] = [*shop.ROUTES, *refunds.ROUTES, *store.ROUTES, *store_orders.ROUTES, *flash_sales.ROUTES,
                       *erp.ROUTES, *ops.ROUTES,
                       *console.ROUTES, *STORE_SCREEN_ROUTES, *payment_reconciliation.ROUTES,
                       *callbacks.ROUTES]
# The document of the table it is part of: served from here, so openapi.py needs no route table.
ROUTES.append(Route("GET", "/openapi.json", lambda call: openapi.document(ROUTES), "public", "This document",
                    responses={200: "OpenAPI 3.1"}))

class ApiApp:
    """A WSGI callable; `handle(request)` serves an already-built werkzeug Request."""

    def __init__(self, ctx: HubContext, deps: ApiDeps, routes: list[Route]):
        self.ctx, self.deps, self.routes = ctx, deps, routes
        self.url_map = Map([Rule(r.werkzeug_rule, endpoint=i, methods=[r.method]) for i, r in enumerate(routes)],
                           strict_slashes=False, merge_slashes=False)
        # Bound once: no route matches on host or script name, so a request needs only its path and method
        # (binding to each request's environ was a few per cent of a cheap request's CPU).
        self._routes = self.url_map.bind("hub")
        secrets = all_secrets(ctx.config)
        for name in ("hub.api", "werkzeug", "hub.services.tracking", "hub.services.orders"):
            privacy.install(name, secrets)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = self.handle(Request(environ))
        if response.is_streamed:
            return response(environ, start_response)
        # A body held in memory goes back as a list: a server can send it in one write (granian does) instead
        # of iterating werkzeug's closing iterator chunk by chunk.
        app_iter, status, headers = response.get_wsgi_response(environ)
        start_response(status, headers)
        try:
            return list(app_iter)
        finally:
            response.close()

    def handle(self, request: Request) -> Response:
        if not tracing.enabled():
            return self._handle(request)
        # A server span per request, continuing a caller's W3C `traceparent`; named by its route once matched.
        with tracing.span(f"{request.method} unmatched", tracing.SERVER, parent=request.headers.get(tracing.HEADER),
                          attributes={"http.request.method": request.method}):
            response = self._handle(request)
            tracing.annotate({"http.response.status_code": response.status_code})
            return response

    def _handle(self, request: Request) -> Response:
        label, status, started = "unmatched", 500, time.perf_counter()
        try:
            limit_body(request, self.ctx.config.hub.http.max_body_bytes)   # before routing: every path
            try:
                index, matched = self._routes.match(request.path, request.method)
                params: dict[str, str] = dict(matched)          # every converter of the table gives a str
            except MethodNotAllowed as exc:
                allowed = sorted(exc.valid_methods or [])
                raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed here", allowed=allowed,
                               _headers={"Allow": ", ".join(allowed)}) from None
            except RouteNotFound:
                raise ApiError(404, "not_found", f"no such path: {request.path}") from None
            route = self.routes[index]
            label = route.path
            tracing.name_span(request.method, label)
            refuse_unstorable(request, params)
            with log_context(route=label, order_id=params.get("order_id")):
                caller = authenticate(self.ctx.config, request, route, params)
                response = _as_response(route.handler(Call(self.ctx, self.deps, request, route, caller, params)))
        except HTTPException as exc:                  # werkzeug's own (a bad request line...): JSON like the rest
            code = exc.code or 500
            response = json_response({"error": (exc.name or "error").lower().replace(" ", "_"),
                                      "message": exc.description or exc.name}, code)
        except Exception as exc:  # noqa: BLE001 - every error answers in the same shape
            status, body, headers = error_body(exc)
            if status == 503:
                log.warning("%s %s: %s", request.method, label, body["message"])
            elif status >= 500:
                log.exception("%s %s failed", request.method, label)
            elif status in (401, 403):
                log.warning("%s %s refused: %s", request.method, label, body["message"])
            elif isinstance(exc, IllegalTransition):
                log.warning("%s %s refused an illegal transition: %s", request.method, label, exc)
            response = json_response(body, status, headers)
            if request.path.startswith("/callbacks/"):
                response = callbacks.error_reply(self.ctx, request, body, status, headers)
        method = request.method if request.method in KNOWN_METHODS else "other"   # bound the label's values
        self.deps.metrics.requests.labels(label, method, str(response.status_code)).inc()
        self.deps.metrics.request_seconds.labels(label, method).observe(time.perf_counter() - started)
        return response


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        status, body = result
        return json_response(body, status)
    return json_response(result)


def build_api(ctx: HubContext, deps: ApiDeps | None = None) -> ApiApp:
    """The API over `ctx`; without deps, the connectors are built from config.yaml."""
    return ApiApp(ctx, deps if deps is not None else build_deps(ctx), ROUTES)


