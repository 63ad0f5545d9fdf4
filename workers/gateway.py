"""Gateway: the public HTTP API (hub/api) served by nameko's HTTP entrypoint."""
from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from werkzeug import Request, Response

from .dependencies import context_from_config


class HubApi(DependencyProvider):
    """Builds the WSGI API once per container; workers get its `handle(request)`."""

    def setup(self) -> None:
        from hub import consumers
        from hub.api.app import build_api, build_deps

        ctx = context_from_config(self.container.config)
        self.app = build_api(ctx, build_deps(ctx, replay_dead_letter=lambda i: consumers.replay(ctx, i)))

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.app


class GatewayService:
    name = "gateway"
    api = HubApi()

    @http("GET,POST,PUT,DELETE", "/")
    def root(self, request: Request) -> Response:
        return self.api.handle(request)

    @http("GET,POST,PUT,DELETE", "/<path:path>")
    def any_path(self, request: Request, path: str) -> Response:
        return self.api.handle(request)
