"""What every endpoint module shares: the route record, the call a handler receives, the error it raises
(`ApiError`), the declared fields a body or query is parsed by, and the one logger (with secrets redacted) the API
writes to.

Request bodies: one declaration per body (`api/schemas.py`, built of the fields here), used both to validate what
arrives (400 for malformed JSON, 422 naming the field and the reason) and to document it in /openapi.json, so the
two cannot disagree."""
from __future__ import annotations

import functools
import json
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from werkzeug import Request, Response

from hub.domain.limits import INT_MAX, INT_MIN, in_range, is_utf8

from ..bootstrap import HubContext

if TYPE_CHECKING:
    from .app import ApiDeps  # the type only: app.py builds the deps and imports this module

log = logging.getLogger("hub.api")   # app.py installs the redacting filter on it
DECODED = "hub.decoded_json"         # environ key: the body as `pipeline.refuse_unstorable` decoded it


class ApiError(Exception):
    """An HTTP error with its code and reason; `extra` goes into the body beside them."""

    def __init__(self, status: int, error: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra


# -- declared fields: parse, validate, document ------------------------------------------------------------

NO_NUL = "^[^\\u0000]*$"                       # JSON Schema (ECMA) and Python both read \u0000 as NUL
YEARS = "^(19[7-9][0-9]|2[0-9]{3})-"            # hub/domain/limits.py: 1970 to 2999


def invalid(path: str, reason: str) -> ApiError:
    return ApiError(422, "validation_failed", f"{path or 'body'}: {reason}", field=path or "body", reason=reason)


# Compiled once: `re.fullmatch(pattern, ...)` looks its pattern up in re's cache through Python code on every call
# (2-3 % of a flash-sale attempt's gateway CPU).
_compiled = functools.cache(re.compile)
_INTEGER = re.compile(r"-?[0-9]{1,19}")


@dataclass(frozen=True)
class Field(ABC):
    """One field of a request body: parses and validates a value, and documents itself."""

    required: bool = True
    description: str = ""

    @abstractmethod
    def parse(self, value: Any, path: str) -> Any: ...

    @abstractmethod
    def schema(self) -> dict[str, Any]: ...

    def _doc(self, s: dict[str, Any]) -> dict[str, Any]:
        return {**s, "description": self.description} if self.description else s


@dataclass(frozen=True)
class Str(Field):
    max_len: int = 200
    min_len: int = 1
    enum: tuple[str, ...] = ()
    pattern: str = ""          # a regular expression the whole value matches

    def parse(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise invalid(path, "must be a string")
        if "\x00" in value:                     # the database cannot hold it
            raise invalid(path, "must not contain a NUL character")
        if not is_utf8(value):                  # a lone surrogate: no database or system can store it
            raise invalid(path, "must be valid Unicode (no lone surrogate)")
        if not self.min_len <= len(value) <= self.max_len:
            raise invalid(path, f"must be {self.min_len} to {self.max_len} characters")
        if self.enum and value not in self.enum:
            raise invalid(path, f"must be one of {', '.join(self.enum)}")
        if self.pattern and not _compiled(self.pattern).fullmatch(value):
            raise invalid(path, f"must match {self.pattern}")
        return value

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string", "minLength": self.min_len, "maxLength": self.max_len}
        if self.enum:
            s["enum"] = list(self.enum)
        # no NUL (api/pipeline.py refuses one anywhere); a declared pattern already leaves it out
        s["pattern"] = f"^{self.pattern}$" if self.pattern else NO_NUL
        return self._doc(s)


@dataclass(frozen=True)
class Int(Field):
    """An integer; whatever the declared bounds, never beyond what an INTEGER column holds (32 bits)."""

    minimum: int | None = None
    maximum: int | None = None

    @property
    def low(self) -> int:
        return INT_MIN if self.minimum is None else max(self.minimum, INT_MIN)

    @property
    def high(self) -> int:
        return INT_MAX if self.maximum is None else min(self.maximum, INT_MAX)

    def parse(self, value: Any, path: str) -> int:
        # JSON has one number type: 2.0 and true are not the integer 2 here.
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(path, "must be an integer")
        if value < self.low:
            raise invalid(path, "must be positive" if self.low == 1 else f"must be at least {self.low}")
        if value > self.high:
            raise invalid(path, f"must be at most {self.high}")
        return value

    def schema(self) -> dict[str, Any]:
        return self._doc({"type": "integer", "minimum": self.low, "maximum": self.high})


@dataclass(frozen=True)
class Bool(Field):
    def parse(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise invalid(path, "must be true or false")
        return value

    def schema(self) -> dict[str, Any]:
        return self._doc({"type": "boolean"})


@dataclass(frozen=True)
class Num(Field):
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise invalid(path, "must be a number")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise invalid(path, f"must be between {self.minimum} and {self.maximum}")
        return float(value)

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "number"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return self._doc(s)


@dataclass(frozen=True)
class Time(Field):
    """ISO-8601 with an offset; a time without one is ambiguous across stores and servers."""

    def parse(self, value: Any, path: str) -> datetime:
        return parse_time(value, path)

    def schema(self) -> dict[str, Any]:
        return self._doc({"type": "string", "format": "date-time", "pattern": YEARS})


@dataclass(frozen=True)
class Arr(Field):
    item: Field = field(default_factory=Str)
    min_items: int = 0
    max_items: int = 200

    def parse(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(path, "must be an array")
        if not self.min_items <= len(value) <= self.max_items:
            raise invalid(path, f"must have {self.min_items} to {self.max_items} items")
        return [self.item.parse(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def schema(self) -> dict[str, Any]:
        return self._doc({"type": "array", "items": self.item.schema(), "minItems": self.min_items,
                          "maxItems": self.max_items})


@dataclass(frozen=True)
class Obj(Field):
    fields: dict[str, Field] = field(default_factory=dict)

    def parse(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(path, "must be an object")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            raise invalid(where, "unknown field")
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            where = f"{path}.{name}" if path else name
            if value.get(name) is None:
                if spec.required:
                    raise invalid(where, "is required")
                out[name] = None
                continue
            out[name] = spec.parse(value[name], where)
        return out

    def schema(self) -> dict[str, Any]:
        return self._doc({"type": "object", "additionalProperties": False,
                          "properties": {n: f.schema() if f.required else _nullable(f.schema())
                                         for n, f in self.fields.items()},
                          "required": [n for n, f in self.fields.items() if f.required]})


def _nullable(s: dict[str, Any]) -> dict[str, Any]:
    """An optional field may also be sent as null (read as absent): the document says so."""
    s = dict(s)
    if "type" in s:
        s["type"] = [s["type"], "null"]
    if "enum" in s:
        s["enum"] = [*s["enum"], None]
    return s


def parse_time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise invalid(path, "must be an ISO-8601 time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(path, "is not an ISO-8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise invalid(path, "needs a UTC offset, e.g. 2026-11-25T10:00:00+08:00")
    if not in_range(parsed):         # 0001-01-01T00:00:00+14:00 has no UTC time at all
        raise invalid(path, "must be between 1970 and 2999")
    return parsed


def parse_json(raw: bytes, spec: Field | None, decoded: Any = None) -> Any:
    """Decode and validate a request body; an empty body is {} (bodies of actions are optional).
    Its size was checked while it was read (`api/pipeline.py`), which may have decoded it already (`decoded`)."""
    if decoded is not None:
        value: Any = decoded
    elif not raw.strip():
        value = {}
    else:
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if spec is None:
        return value
    if not isinstance(value, dict) and isinstance(spec, Obj):
        raise ApiError(400, "malformed_body", "the body must be a JSON object")
    return spec.parse(value, "")


def parse_query(raw: str, name: str, spec: Field) -> Any:
    """A query string value read as its spec's type, then checked by the spec like a body field."""
    value: Any = raw
    if isinstance(spec, Int):
        if not _INTEGER.fullmatch(raw):
            raise invalid(name, "must be an integer")
        value = int(raw)
    elif isinstance(spec, Num):
        try:
            value = float(raw)
        except ValueError:
            raise invalid(name, "must be a number") from None
    return spec.parse(value, name)


# -- routes and calls --------------------------------------------------------------------------------------

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
