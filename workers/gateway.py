"""Gateway: the public HTTP API (hub/api) served by nameko's HTTP entrypoint (embedded, or
`hub.http.server: nameko`); workers/http_server.py serves the same API on gunicorn."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from eventlet import wsgi
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer
from werkzeug import Request, Response
from werkzeug.routing import PathConverter, Rule

from .gateway_api import build_gateway_api

METHODS = "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS,TRACE"
REQUEST_LINE_LIMIT = 65536      # bytes; eventlet's 8 kB answered a longer path with an empty 414, not the API's JSON
log = logging.getLogger(__name__)


class HubApi(DependencyProvider):
    """Builds the WSGI API once per container; workers get its `handle(request)`."""

    def setup(self) -> None:
        self.app = build_gateway_api(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.app


class _AnyPath(PathConverter):
    """Every path, control characters included: werkzeug's `path` (`[^/].*?`) stops at a newline, and a
    path nameko's own map does not match is answered by werkzeug's HTML 404 page, never reaching the API
    (which answers every path in JSON)."""

    regex = r"[\s\S]*?"
    part_isolating = False          # it spans slashes (werkzeug would infer True: no "/" in the regex)


class _EveryPathRule(Rule):
    def get_converter(self, variable_name: str, converter_name: str, args: tuple[Any, ...],
                      kwargs: Mapping[str, Any]) -> Any:
        if converter_name == "everything":
            return _AnyPath(self.map, *args, **kwargs)
        return super().get_converter(variable_name, converter_name, args, kwargs)


class _GatewayServer(WebServer):
    """nameko's web server taking request lines up to REQUEST_LINE_LIMIT (werkzeug's and http.server's
    figure): a long path is the API's to answer, in JSON. Longer still is eventlet's bare 414."""

    def get_wsgi_server(self, sock: Any, wsgi_app: Any, protocol: Any = HttpOnlyProtocol, debug: bool = False) -> Any:
        return wsgi.Server(sock, sock.getsockname(), wsgi_app, protocol=protocol, debug=debug,
                           log=logging.getLogger("nameko.web.server"), url_length_limit=REQUEST_LINE_LIMIT)


class ApiEntrypoint(HttpRequestHandler):
    """nameko's HTTP entrypoint without its per-request signature check (`inspect.getcallargs`, a
    twentieth of a flash-sale attempt's CPU): both methods below take exactly what nameko passes. Its rule
    leaves slashes as sent (no redirect page for `//`): the API's own routing decides about every path."""

    server = _GatewayServer()

    def check_signature(self, args: tuple, kwargs: dict) -> None:
        return None

    def get_url_rule(self) -> Rule:
        return _EveryPathRule(self.url, methods=self.method.split(","), merge_slashes=False, strict_slashes=False)


http = ApiEntrypoint.decorator


class GatewayService:
    name = "gateway"
    api = HubApi()

    # Every method and every path reach the API, so an unsupported method is its JSON 405 with Allow and an
    # odd path its JSON 404 or 400, not nameko's HTML page.
    @http(METHODS, "/")
    def root(self, request: Request) -> Response:
        return self.api.handle(request)

    @http(METHODS, "/<everything:path>")
    def any_path(self, request: Request, path: str) -> Response:
        return self.api.handle(request)
