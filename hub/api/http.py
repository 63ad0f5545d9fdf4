"""What every endpoint module shares: the route record, the call a handler receives,
the error it raises, and the one logger (with secrets redacted) the API writes to."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug import Request, Response

from ..bootstrap import HubContext
from .body import DECODED
from .errors import ApiError
from .schemas import Field, parse_json, parse_query

if TYPE_CHECKING:
    from .app import ApiDeps  # the type only: app.py builds the deps and imports this module

__all__ = ["ApiError", "Call", "Caller", "Param", "Route", "json_response", "log"]

log = logging.getLogger("hub.api")   # app.py installs the redacting filter on it


@dataclass(frozen=True)
class Caller:
    kind: str                  # channel | store | erp | ops | anonymous
    id: str = ""
    via_basic: bool = False    # the browser console sends the ops key as a basic password


@dataclass(frozen=True)
class Param:
    """A query or header parameter: `spec` both validates it (422 naming it) and documents it."""

    name: str
    spec: Field
    description: str = ""

    @property
    def required(self) -> bool:
        return self.spec.required


@dataclass(frozen=True)
class Route:
    """One served path: the handler, who may call it, and what /openapi.json says of it."""

    method: str
    path: str                  # OpenAPI style: /api/v1/orders/{order_id}
    handler: Callable[[Call], Any]
    audience: str              # channel | channel_or_ops | store | erp | ops | admin | public | callback
    summary: str
    query: tuple[Param, ...] = ()
    body: Field | None = None
    responses: dict[int, str] = field(default_factory=lambda: {200: "OK"})
    headers: tuple[Param, ...] = ()

    @property
    def werkzeug_rule(self) -> str:
        return self.path.replace("{", "<").replace("}", ">")


@dataclass
class Call:
    """A matched request: what a handler works with."""

    ctx: HubContext
    deps: ApiDeps
    request: Request
    route: Route
    caller: Caller
    params: dict[str, str]

    def body(self) -> Any:
        """The JSON body parsed and validated against the route's schema (400/422 otherwise)."""
        return parse_json(self.request.get_data(cache=True), self.route.body, self.request.environ.get(DECODED))

    def query(self, name: str) -> Any:
        """A declared query parameter, parsed and checked by its spec; None when absent."""
        raw = self.request.args.get(name)
        spec = next((p.spec for p in self.route.query if p.name == name), None)
        if raw is None or spec is None:
            return raw or None
        return parse_query(raw, name, spec)      # an empty value is a value: its spec says if it may be


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return Response(payload, status=status, headers=headers, content_type="application/json; charset=utf-8")
