"""The OpenAPI 3.1 document, generated from the route table that serves the requests —
paths, methods, parameters, bodies (from the same schemas that validate them) and who
may call each — so the document and the API cannot drift apart."""
from __future__ import annotations

import re
from typing import Any

from . import schemas
from .http import Route

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "channel": [{"channelKey": []}], "channel_or_ops": [{"channelKey": []}, {"opsKey": []}],
    "store": [{"storeKey": []}], "erp": [{"erpKey": []}],
    "ops": [{"opsKey": []}], "admin": [{"opsKey": []}, {"opsBasic": []}], "public": [], "callback": [],
}
ERROR = {"type": "object", "required": ["error", "message"],
         "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}


# What any route of a kind may answer besides its own statuses, so the document lists every status served.
AUDIENCE_STATUSES: dict[str, dict[int, str]] = {
    "channel": {401: "missing or wrong key"}, "channel_or_ops": {401: "missing or wrong key"},
    "erp": {401: "missing or wrong key"},
    "ops": {401: "missing or wrong key"}, "admin": {401: "missing or wrong key"},
    "store": {401: "missing or wrong key", 403: "another store's key"},
}
BODY_STATUSES = {400: "malformed JSON, or not an object", 413: "body too large", 422: "invalid field (named)"}


def statuses(route: Route) -> dict[int, str]:
    """Every status `route` can answer: its own, its audience's, and its inputs' validation."""
    out = dict(AUDIENCE_STATUSES.get(route.audience, {}))
    # Every route reads its body under the size limit (api/pipeline.py), whether it takes one or not.
    out[413] = "body too large (hub.http.max_body_bytes), or a malformed Content-Length: 400"
    out.setdefault(400, "malformed Content-Length, or a NUL character in the request")
    if route.body is not None:
        out |= BODY_STATUSES
    if route.query:
        out.setdefault(422, "invalid query parameter (named)")
    if any(p.required for p in route.headers):
        out.setdefault(400, "missing or malformed header")
    return out | route.responses


def _response(code: int, text: str) -> dict[str, Any]:
    if code >= 400:
        return {"description": text, "content": {"application/json": {"schema": ERROR}}}
    return {"description": text}


def _operation(route: Route) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "pattern": schemas.NO_NUL}}
        for name in re.findall(r"{(\w+)}", route.path)]
    params += [{"name": p.name, "in": "query", "required": p.required, "schema": p.spec.schema(),
                **({"description": p.description} if p.description else {})} for p in route.query]
    params += [{"name": p.name, "in": "header", "required": p.required, "schema": p.spec.schema()}
               for p in route.headers]
    op: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
        "summary": route.summary, "tags": [route.audience], "security": SECURITY[route.audience],
        "parameters": params,
        "responses": {str(code): _response(code, text) for code, text in sorted(statuses(route).items())},
    }
    if route.body is not None:
        schema = route.body.schema()
        # An empty body reads as {}: it may be left out when no field is required (an action's reason, say).
        op["requestBody"] = {"required": bool(schema.get("required")),
                             "content": {"application/json": {"schema": schema}}}
    return op


def document(routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "O2O Hub", "version": "1.0.0",
                 "description": "Stock and orders across the mini-program, stores' POS, the ERP and couriers. "
                                "Amounts are integers in fen, quantities integers, times ISO-8601 with offset."},
        "paths": paths,
        "components": {"securitySchemes": {
            "channelKey": {"type": "http", "scheme": "bearer", "description": "a sales channel's key"},
            "storeKey": {"type": "http", "scheme": "bearer", "description": "a store's POS key (that store only)"},
            "erpKey": {"type": "http", "scheme": "bearer", "description": "the ERP's feed key"},
            "opsKey": {"type": "http", "scheme": "bearer", "description": "the operations key"},
            "opsBasic": {"type": "http", "scheme": "basic", "description": "the operations key as password"},
        }},
    }
