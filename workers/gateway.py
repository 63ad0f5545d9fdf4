"""Gateway: the public HTTP API (hub/api) served by nameko's HTTP entrypoint."""
from __future__ import annotations

import logging
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from werkzeug import Request, Response

from .dependencies import context_from_config

METHODS = "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS,TRACE"
WARM_CONNECTIONS = 64           # Redis connections a gateway opens at start: its busiest concurrency
log = logging.getLogger(__name__)


class HubApi(DependencyProvider):
    """Builds the WSGI API once per container; workers get its `handle(request)`."""

    def setup(self) -> None:
        from hub import consumers
        from hub.api.app import build_api, build_deps
        from hub.services import flash_sales
        from hub.storage.db import warm_pool

        from .broker import queue_depths
        from .embedded import transport_options
        from .runner import all_service_classes

        config = self.container.config
        ctx = context_from_config(config)
        # A rush's first attempts find their connections open (each greenthread uses its own).
        warm_pool(ctx.engine, prepare=flash_sales.prepare_connection)
        warm_gate = getattr(ctx.gate, "warm", None)
        if warm_gate is not None:
            try:
                warm_gate(WARM_CONNECTIONS)
            except Exception as exc:         # Redis away: the gate's own errors answer the first attempts
                log.warning("could not open the flash-sale gate's connections ahead of time: %s", exc)
        url, options = config["AMQP_URI"], transport_options(config)

        def replay(i: int, resend: bool = False) -> bool:
            return consumers.replay(ctx, i, resend=resend)

        self.app = build_api(ctx, build_deps(ctx, replay_dead_letter=replay,
                                             queue_depths=lambda: queue_depths(url, all_service_classes(), options)))

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.app


class ApiEntrypoint(HttpRequestHandler):
    """nameko's HTTP entrypoint without its per-request signature check (`inspect.getcallargs`, a
    twentieth of a flash-sale attempt's CPU): both methods below take exactly what nameko passes."""

    def check_signature(self, args: tuple, kwargs: dict) -> None:
        return None


http = ApiEntrypoint.decorator


class GatewayService:
    name = "gateway"
    api = HubApi()

    # Every method reaches the API, so an unsupported one is its JSON 405 with Allow, not nameko's HTML page.
    @http(METHODS, "/")
    def root(self, request: Request) -> Response:
        return self.api.handle(request)

    @http(METHODS, "/<path:path>")
    def any_path(self, request: Request, path: str) -> Response:
        return self.api.handle(request)
