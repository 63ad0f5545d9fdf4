"""Request bodies: one declaration per body, used both to validate what arrives (400 for
malformed JSON, 422 naming the field and the reason) and to document it in /openapi.json,
so the two cannot disagree."""
from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.domain.limits import INT_MAX, INT_MIN, in_range, is_utf8

from .errors import ApiError

NO_NUL = "^[^\\u0000]*$"                       # JSON Schema (ECMA) and Python both read \u0000 as NUL
YEARS = "^(19[7-9][0-9]|2[0-9]{3})-"            # hub/domain/limits.py: 1970 to 2999


def invalid(path: str, reason: str) -> ApiError:
    return ApiError(422, "validation_failed", f"{path or 'body'}: {reason}", field=path or "body", reason=reason)


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
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise invalid(path, f"must match {self.pattern}")
        return value

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string", "minLength": self.min_len, "maxLength": self.max_len}
        if self.enum:
            s["enum"] = list(self.enum)
        # no NUL (api/body.py refuses one anywhere); a declared pattern already leaves it out
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
    Its size was checked while it was read (`api/body.py`), which may have decoded it already (`decoded`)."""
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
        if not re.fullmatch(r"-?[0-9]{1,19}", raw):
            raise invalid(name, "must be an integer")
        value = int(raw)
    elif isinstance(spec, Num):
        try:
            value = float(raw)
        except ValueError:
            raise invalid(name, "must be a number") from None
    return spec.parse(value, name)


# -- query parameters and headers ------------------------------------------------------------------

LAT = Num(required=False, minimum=-90, maximum=90)
LNG = Num(required=False, minimum=-180, maximum=180)
# The system a client's coordinates are in: the hub's are GCJ-02; WeChat's getLocation answers WGS-84 by default.
COORDS = Str(required=False, enum=("gcj02", "wgs84", "bd09"),
             description="the coordinates' system (default gcj02); others are converted to GCJ-02")
QTY = Int(required=False, minimum=1, maximum=9999)
# Visible ASCII only: an HTTP header carries no more, and a key must survive proxies unchanged.
IDEMPOTENCY_KEY = Str(max_len=128, pattern=r"[!-~]+", description="the client's key for this request")

# -- the bodies ----------------------------------------------------------------------------------

SKU = Str(max_len=64, description="SKU code from the product master")
ADDRESS = Obj(required=False, fields={"text": Str(max_len=300), "lat": Num(minimum=-90, maximum=90),
                      "lng": Num(minimum=-180, maximum=180), "name": Str(required=False, min_len=0, max_len=64),
                      "phone": Str(required=False, min_len=0, max_len=32), "coords": COORDS})
PLACE_ORDER = Obj(fields={
    "lines": Arr(item=Obj(fields={"sku": SKU, "qty": Int(minimum=1, maximum=9999)}), min_items=1,
                 max_items=100),
    "buyer": Obj(fields={"id": Str(max_len=64), "name": Str(required=False, min_len=0, max_len=64),
                         "phone": Str(required=False, min_len=0, max_len=32), "coords": COORDS}),
    "fulfillment": Obj(fields={"type": Str(enum=("pickup", "delivery", "express")),
                               "store_id": Str(required=False, max_len=32), "address": ADDRESS}),
    "coupon_code": Str(required=False, max_len=64, pattern=r"[0-9A-Za-z_-]+",
                       description="the buyer's coupon at the CRM: locked at order, used at payment"),
    "points": Int(required=False, minimum=1, maximum=10**7, description="points to spend (100 = 1 yuan)"),
    "note": Str(required=False, min_len=0, max_len=200, description="the buyer's note to the store"),
})
PAY_ORDER = Obj(fields={"payment_ref": Str(max_len=64, description="the payment's id at the payment backend"),
                        "amount_fen": Int(required=False, minimum=0, description="checked against the total")})
CANCEL_ORDER = Obj(fields={"reason": Str(required=False, max_len=200)})
REFUND = Obj(fields={
    "amount_fen": Int(required=False, minimum=1,
                      description="fen to refund; omitted: everything not yet refunded"),
    "reason": Str(required=False, max_len=80, description="shown to the buyer by the payment platform")})
# ASCII digits only: a full-width "１２３４５６" is not the code, and `[0-9]` (unlike `\d`) says so.
COLLECT = Obj(fields={"pickup_code": Str(max_len=12, pattern="[0-9]+", description="the code the buyer shows")})
EMPTY = Obj(fields={})
STORE_RETURN = Obj(fields={"reason": Str(max_len=200, description="why the buyer handed the goods back")})
SALE = Obj(fields={
    "receipt_id": Str(max_len=100, description="the POS receipt number: a receipt applies once"),
    "sold_at": Time(),
    "lines": Arr(item=Obj(fields={"sku": SKU, "qty": Int(minimum=1, maximum=100000)}), min_items=1, max_items=500),
})
SALE_BATCH = Obj(fields={"receipts": Arr(item=SALE, min_items=1, max_items=500,
                                         description="receipts a till sends at once, each applied once")})
COUNT = Obj(fields={
    "counted_at": Time(),
    "count_id": Str(required=False, max_len=100, description="the POS's id of the count, if it has one"),
    "lines": Arr(item=Obj(fields={"sku": SKU, "on_hand": Int(minimum=0, maximum=10_000_000)}), min_items=1,
                 max_items=5000),
})
ERP_ACK = Obj(fields={"order_ids": Arr(item=Str(max_len=40), min_items=1, max_items=500)})
PICKING = Obj(fields={"staff": Str(required=False, max_len=40, description="who picks (shown on the order)")})
PICKED = Obj(fields={
    "lines": Arr(item=Obj(fields={"sku": SKU, "qty_picked": Int(minimum=0, maximum=9999)}), min_items=0,
                 max_items=100, description="what was on the shelf per line; a line not named is picked in full"),
    "staff": Str(required=False, max_len=40, description="who picked"),
})
STORE_PAUSE = Obj(fields={
    "paused": Bool(),
    "until": Time(required=False),
    "reason": Str(required=False, min_len=0, max_len=200, description="busy, closed now, ..."),
})
