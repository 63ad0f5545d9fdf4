"""The OpenAPI 3.1 document, generated from the route table that serves the requests —
paths, methods, parameters, bodies (from the same schemas that validate them) and who
may call each — so the document and the API cannot drift apart."""
from __future__ import annotations

import re
from typing import Any

from .http import Call, Route

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "channel": [{"channelKey": []}], "store": [{"storeKey": []}], "erp": [{"erpKey": []}],
    "ops": [{"opsKey": []}], "admin": [{"opsKey": []}, {"opsBasic": []}], "public": [], "callback": [],
}
ERROR = {"type": "object", "required": ["error", "message"],
         "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}


def _operation(route: Route) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)]
    params += [{"name": p.name, "in": "query", "required": p.required, "schema": {"type": p.type},
                **({"description": p.description} if p.description else {})} for p in route.query]
    params += [{"name": p.name, "in": "header", "required": p.required, "schema": {"type": "string"}}
               for p in route.headers]
    op: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
        "summary": route.summary, "tags": [route.audience], "security": SECURITY[route.audience],
        "parameters": params,
        "responses": {str(code): ({"description": text, "content": {"application/json": {"schema": ERROR}}}
                                  if code >= 400 else {"description": text})
                      for code, text in sorted(route.responses.items())},
    }
    if route.audience not in ("public", "callback"):
        op["responses"].setdefault("401", {"description": "missing or wrong key"})
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body.schema()}}}
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


def serve(call: Call) -> dict[str, Any]:
    from .app import ROUTES  # the table this module is part of
    return document(ROUTES)


ROUTES = [Route("GET", "/openapi.json", serve, "public", "This document", responses={200: "OpenAPI 3.1"})]
