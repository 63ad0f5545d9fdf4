"""Apply a declarative YAML mapping between one external system and the canonical model.

A mapping file (mappings/<system>.yaml) looks like this::

    system: wechat_shop
    operations:                 # endpoint paths, SOAP operation / element names ...
      order_get: /channels/ec/order/get
    values:                     # value maps: system code -> canonical value
      order_status: {10: pending_payment, 20: paid}
    entities:
      order:
        external_id: {path: order_id, convert: str, required: true}
        status: {path: order.status, map: order_status, required: true}
        lines:
          path: order.order_detail.product_infos[]
          children:
            sku: {path: sku_id, xref: sku, required: true}
            qty: {path: sku_cnt, convert: int}

Keys under an entity are canonical field names (dotted for nesting: `buyer.phone`);
`path` is where the system keeps the value (dotted, `name[0]` indexes a list, `name[]`
marks a list of children). A field may carry `convert` (a unit or type conversion,
system -> canonical; the reverse is applied outbound), `map` (a value map), `xref`
(a binder kind: `sku`, `store`), `required`, `default`, `const` (outbound only: a
fixed value to send) and `direction` (`in`, `out` or `both`).

Outbound extras: `path` may be a list (one canonical value written to several system
fields; inbound reads the first); `canonical: name` lets a second entry read a field
another entry already maps (e.g. `lines` feeding both SAP's items and schedule lines;
such an entry is outbound only, the field's own entry reads it back);
inside `children`, a canonical name `^.location_id` reads the enclosing order's field
(the plant on every line); `position: {start: 10, step: 10, format: "{:06d}"}` writes the
line's position (SAP item numbers 000010, 000020). The YAML is read with YAML 1.2 scalars
(mappings/yaml_text.py): `No`, `On`, `000010` stay text.

`calls:` (mappings/calls.py) describes a SOAP system's operations: WSDL, argument
templates, paging, fan-out and error tables.

Inbound applies convert, then map, then xref; outbound the reverse. Anything that
does not map raises MappingError naming the system, the field and the value.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from hub.domain.limits import in_range
from hub.ports import Binder, MappingError

from . import yaml_text
from .calls import CallSpec, parse_calls

MAPPINGS_DIR = Path(__file__).resolve().parent
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-@:]*)(?:\[(\d*)\])?$")
_FIELD_KEYS = {"path", "convert", "map", "xref", "required", "default", "const", "direction",
               "children", "format", "tz", "canonical", "position"}
_PARENT = "^."                  # a child field's canonical name that reads the enclosing record
_MISSING = object()


class MappingConfigError(Exception):
    """A mapping file is broken: names the file, the key and the problem."""

    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


# -- conversions: (system -> canonical, canonical -> system) ----------------------------

MAX_DIGITS = 15          # an amount or weight beyond 10^16 is no system's real value (and overflows a BIGINT)
LIMIT = 10 ** (MAX_DIGITS + 1)


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(v, (float, Decimal)):
        if not abs(v) < LIMIT:            # inf and nan too; int(Decimal("1e999999999")) never ends
            raise ValueError("too large a number")
        if v != int(v):
            raise ValueError("not a whole number")
    if isinstance(v, str):
        v = v.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,30}", v):      # ASCII digits: "１２３" is not a number here
            raise ValueError("not a whole number")
    n = int(v)
    if abs(n) >= LIMIT:
        raise ValueError("too large a number")
    return n


COLUMN_MAX = 2**31 - 1     # what the hub reads in lands in INTEGER columns (hub/domain/limits.py): 32 bits


def _column(convert: Callable[[Any], int]) -> Callable[[Any], int]:
    """`convert` refusing what no INTEGER column holds: a count of 3e9 is a mapping error naming its field,
    not a database error that stops every pull after it."""
    def bounded(v: Any) -> int:
        n = convert(v)
        if not -COLUMN_MAX - 1 <= n <= COLUMN_MAX:
            raise ValueError(f"out of range (at most {COLUMN_MAX} in magnitude)")
        return n
    return bounded


def _decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise ValueError("a boolean is not an amount")
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not d.is_finite():
        raise ValueError("not a finite number")
    if d.adjusted() > MAX_DIGITS:          # "1e999999999" would otherwise become a billion-digit integer
        raise ValueError("too large a number")
    return d


def _scaled_in(factor: int) -> Callable[[Any], int]:
    def convert(v: Any) -> int:
        scaled = _decimal(v) * factor
        if scaled != scaled.to_integral_value():
            raise ValueError(f"more precision than 1/{factor}")
        return int(scaled)
    return convert


def _yuan_out(fen: Any) -> float:
    return float((Decimal(_to_int(fen)) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _yuan_str_out(fen: Any) -> str:
    return str((Decimal(_to_int(fen)) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _kg_out(grams: Any) -> float:
    return float(Decimal(_to_int(grams)) / 1000)


def _aware(v: Any) -> datetime:
    if not isinstance(v, datetime):
        raise ValueError("not a datetime")
    if v.tzinfo is None or v.utcoffset() is None:
        raise ValueError("a naive datetime (no UTC offset)")
    return v


def _sane(v: datetime) -> datetime:
    """A system's time between 1970 and 2999: 0001-01-01T00:00:00+14:00 has no UTC time at all."""
    if not in_range(v):
        raise ValueError("a time outside 1970..2999")
    return v


def _from_timestamp(seconds: float) -> datetime:
    try:
        return _sane(datetime.fromtimestamp(seconds, tz=UTC))
    except OSError:                       # out of the platform's range
        raise ValueError("a time outside 1970..2999") from None


def _unix_in(v: Any) -> datetime:
    return _from_timestamp(_to_int(v))


def _unix_out(v: Any) -> int:
    return int(_aware(v).timestamp())


def _unix_ms_in(v: Any) -> datetime:
    return _from_timestamp(_to_int(v) / 1000)


def _unix_ms_out(v: Any) -> int:
    return int(round(_aware(v).timestamp() * 1000))


def _iso_in(v: Any) -> datetime:
    if not isinstance(v, str):
        raise ValueError("not an ISO-8601 string")
    text = v.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO-8601 time") from None
    return _sane(_aware(parsed))


def _iso_out(v: Any) -> str:
    return _aware(v).isoformat()


def _bool_int_in(v: Any) -> bool:
    if _to_int(v) not in (0, 1):
        raise ValueError("not 0 or 1")
    return bool(_to_int(v))


def _str_in(v: Any) -> str:
    if isinstance(v, (dict, list)):
        raise ValueError("not a scalar")
    return str(v)


def _float_in(v: Any) -> float:
    return float(_decimal(v))


CONVERSIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "str": (_str_in, _str_in),
    "int": (_column(_to_int), _to_int),
    "float": (_float_in, _float_in),
    "int_str": (_column(_to_int), lambda v: str(_to_int(v))),        # quantities sent as strings
    "bool_int": (_bool_int_in, lambda v: 1 if v else 0),
    "yuan_fen": (_column(_scaled_in(100)), _yuan_out),               # system yuan (number) <-> fen
    "yuan_str_fen": (_column(_scaled_in(100)), _yuan_str_out),       # system yuan ("12.30") <-> fen
    "kg_g": (_column(_scaled_in(1000)), _kg_out),                    # system kg <-> grams
    "unix_datetime": (_unix_in, _unix_out),                 # seconds since epoch <-> aware datetime
    "unix_ms_datetime": (_unix_ms_in, _unix_ms_out),
    "iso_datetime": (_iso_in, _iso_out),
}
# Wall-clock text in a fixed offset, e.g. Kuaidi100's "2024-05-01 12:00:00" (+08:00).
_LOCAL = "local_datetime"


def _parse_tz(text: str) -> timezone:
    m = re.fullmatch(r"([+-])(\d\d):(\d\d)", text)
    if not m:
        raise ValueError("must be an offset like +08:00")
    sign = 1 if m.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


# -- paths --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Seg:
    name: str
    index: int | None = None   # name[3]
    is_list: bool = False      # name[] (children)


def _parse_path(path: str) -> tuple[_Seg, ...]:
    segs = []
    for part in path.split("."):
        m = _SEGMENT.match(part)
        if not m:
            raise ValueError(f"bad path segment {part!r}")
        name, idx = m.group(1), m.group(2)
        if idx is None:
            segs.append(_Seg(name))
        elif idx == "":
            segs.append(_Seg(name, is_list=True))
        else:
            segs.append(_Seg(name, index=int(idx)))
    if any(s.is_list for s in segs[:-1]):
        raise ValueError("only the last segment may be a list of children ([])")
    return tuple(segs)


def _child(node: Any, name: str) -> Any:
    if isinstance(node, dict):
        return node.get(name, _MISSING)
    return getattr(node, name, _MISSING) if node is not None else _MISSING


def _get(node: Any, segs: tuple[_Seg, ...]) -> Any:
    for seg in segs:
        node = _child(node, seg.name)
        if node is _MISSING or node is None:
            return _MISSING
        if seg.index is not None:
            if not isinstance(node, (list, tuple)) or seg.index >= len(node):
                return _MISSING
            node = node[seg.index]
    return node


def _set(target: dict, segs: tuple[_Seg, ...], value: Any) -> None:
    node: Any = target
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg.index is None:
            if last:
                node[seg.name] = value
                return
            node = node.setdefault(seg.name, {})
            continue
        items = node.setdefault(seg.name, [])
        while len(items) <= seg.index:
            items.append({})
        if last:
            items[seg.index] = value
            return
        node = items[seg.index]


def _fmt(segs: tuple[_Seg, ...]) -> str:
    return ".".join(s.name + (f"[{s.index}]" if s.index is not None else "") for s in segs)


# -- the mapping ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    canonical: tuple[_Seg, ...]
    path: tuple[_Seg, ...] | None
    convert: str | None = None
    value_map: str | None = None
    xref: str | None = None
    required: bool = False
    default: Any = _MISSING
    const: Any = _MISSING
    direction: str = "both"
    children: tuple[_Field, ...] | None = None
    fmt: str | None = None
    tz: timezone | None = None
    also: tuple[tuple[_Seg, ...], ...] = ()          # further system paths fed the same value (outbound)
    from_parent: bool = False                        # canonical is the enclosing record's field
    position: tuple[int, int, str] | None = None     # (start, step, format): the line's number


@dataclass
class _ValueMap:
    inbound: dict[str, Any] = field(default_factory=dict)    # str(code) -> canonical
    outbound: dict[str, Any] = field(default_factory=dict)   # str(canonical) -> code (first wins)


class Mapping:
    """One system's mapping. Build it with `load_mapping(system)`."""

    def __init__(self, system: str, operations: dict[str, str], values: dict[str, _ValueMap],
                 entities: dict[str, tuple[_Field, ...]], source: str,
                 calls: dict[str, CallSpec] | None = None):
        self.system, self.source = system, source
        self._operations, self._values, self._entities = operations, values, entities
        self._calls = calls or {}

    @property
    def entities(self) -> list[str]:
        return sorted(self._entities)

    def operation(self, name: str) -> str:
        """A named operation / endpoint / element name the connector uses."""
        try:
            return self._operations[name]
        except KeyError:
            raise MappingConfigError(self.source, f"operations.{name}", "not defined") from None

    def call(self, name: str) -> CallSpec:
        """A described SOAP call (`calls:`)."""
        try:
            return self._calls[name]
        except KeyError:
            raise MappingConfigError(self.source, f"calls.{name}", "not defined") from None

    def has_call(self, name: str) -> bool:
        return name in self._calls

    def value(self, map_name: str, code: Any, direction: str = "in") -> Any:
        """Look a code up in a value map: 'in' system code -> canonical, 'out' the reverse."""
        vm = self._values.get(map_name)
        if vm is None:
            raise MappingConfigError(self.source, f"values.{map_name}", "no such value map")
        if direction not in ("in", "out"):
            raise ValueError("direction must be 'in' or 'out'")
        table = vm.inbound if direction == "in" else vm.outbound
        key = _code_key(code)
        if key not in table:
            what = "code" if direction == "in" else "canonical value"
            raise MappingError(self.system, map_name, code, f"unknown {what} in value map {map_name!r}")
        return table[key]

    def _entity(self, entity: str) -> tuple[_Field, ...]:
        try:
            return self._entities[entity]
        except KeyError:
            raise MappingConfigError(self.source, f"entities.{entity}", "no such entity") from None

    # -- inbound: system payload -> canonical ------------------------------------------------
    def inbound(self, entity: str, payload: dict, binder: Binder | None = None) -> dict:
        """Map a system payload to a dict of canonical field values (absent optional -> None)."""
        if not isinstance(payload, dict):
            raise MappingError(self.system, entity, type(payload).__name__, "payload is not an object")
        return self._in_fields(self._entity(entity), payload, binder, "")

    def _in_fields(self, fields: tuple[_Field, ...], payload: Any, binder: Binder | None,
                   prefix: str) -> dict:
        out: dict = {}
        for f in fields:
            if f.direction == "out" or f.path is None or f.from_parent or f.position:
                continue
            where = prefix + _fmt(f.path)
            raw = _get(payload, f.path)
            if raw is _MISSING or (isinstance(raw, str) and raw == "" and f.required):
                if f.required:
                    raise MappingError(self.system, where, None, "missing required field")
                value = None if f.default is _MISSING else f.default
            elif f.children is not None:
                if not isinstance(raw, list):
                    raise MappingError(self.system, where, type(raw).__name__, "expected a list")
                if f.required and not raw:
                    raise MappingError(self.system, where, raw, "required list is empty")
                value = [self._in_fields(f.children, item, binder, f"{where}[{i}].")
                         for i, item in enumerate(raw)]
            else:
                value = self._in_value(f, raw, binder, where)
            _set(out, f.canonical, value)
        return out

    def _in_value(self, f: _Field, raw: Any, binder: Binder | None, where: str) -> Any:
        value = raw
        if f.convert:
            try:
                value = self._convert(f, value, inbound=True)
            except (ValueError, TypeError, OverflowError) as exc:
                raise MappingError(self.system, where, raw, f"cannot convert ({f.convert}): {exc}") from None
        if f.value_map:
            value = self._lookup(f.value_map, value, "in", where)
        if f.xref:
            value = self._xref(f.xref, value, binder, where, inbound=True)
        return value

    # -- outbound: canonical -> system payload -----------------------------------------------
    def outbound(self, entity: str, canonical: Any, binder: Binder | None = None) -> dict:
        """Map canonical values (a dict, or an object with attributes) to a system payload."""
        return self._out_fields(self._entity(entity), canonical, binder, "", None, 0)

    def outbound_line(self, entity: str, line: Any, order: Any, index: int, binder: Binder | None = None) -> dict:
        """Map one line of an order on its own (a call per line): the line's fields, the order's
        as `order.<field>`, and a `position` field numbering the line by its index."""
        canonical = {"order": order, "location_id": getattr(order, "location_id", None),
                     **{k: getattr(line, k) for k in getattr(line, "__dataclass_fields__", {})}}
        return self._out_fields(self._entity(entity), canonical, binder, "", order, index)

    def _out_fields(self, fields: tuple[_Field, ...], canonical: Any, binder: Binder | None,
                    prefix: str, parent: Any, index: int) -> dict:
        out: dict = {}
        for f in fields:
            if f.direction == "in" or f.path is None:
                continue
            where = prefix + ("^." if f.from_parent else "") + _fmt(f.canonical)
            if f.const is not _MISSING:
                self._put(out, f, f.const)
                continue
            if f.position is not None:
                start, step, fmt = f.position
                self._put(out, f, fmt.format(start + step * index))
                continue
            value = _get(parent if f.from_parent else canonical, f.canonical)
            if value is _MISSING:
                if f.default is not _MISSING:
                    self._put(out, f, f.default)
                    continue
                if f.required:
                    raise MappingError(self.system, where, None, "missing required field")
                continue
            if f.children is not None:
                if not isinstance(value, (list, tuple)):
                    raise MappingError(self.system, where, type(value).__name__, "expected a list")
                self._put(out, f, [self._out_fields(f.children, item, binder, f"{where}[{i}].", canonical, i)
                                   for i, item in enumerate(value)])
                continue
            self._put(out, f, self._out_value(f, value, binder, where))
        return out

    @staticmethod
    def _put(out: dict, f: _Field, value: Any) -> None:
        for path in (f.path, *f.also) if f.path is not None else f.also:   # an outbound field has its path
            _set(out, path, value)

    def _out_value(self, f: _Field, value: Any, binder: Binder | None, where: str) -> Any:
        original = value
        if f.xref:
            value = self._xref(f.xref, value, binder, where, inbound=False)
        if f.value_map:
            value = self._lookup(f.value_map, value, "out", where)
        if f.convert:
            try:
                value = self._convert(f, value, inbound=False)
            except (ValueError, TypeError, OverflowError) as exc:
                raise MappingError(self.system, where, original,
                                   f"cannot convert ({f.convert}): {exc}") from None
        return value

    # -- helpers ------------------------------------------------------------------------------
    def _convert(self, f: _Field, value: Any, inbound: bool) -> Any:
        if f.convert == _LOCAL:
            fmt, tz = f.fmt or "%Y-%m-%d %H:%M:%S", f.tz or UTC
            if inbound:
                if not isinstance(value, str):
                    raise ValueError("not a time string")
                return _sane(datetime.strptime(value.strip(), fmt).replace(tzinfo=tz))
            return _aware(value).astimezone(tz).strftime(fmt)
        to_canonical, to_system = CONVERSIONS[f.convert or "str"]
        return to_canonical(value) if inbound else to_system(value)

    def _lookup(self, map_name: str, value: Any, direction: str, where: str) -> Any:
        table = self._values[map_name].inbound if direction == "in" else self._values[map_name].outbound
        key = _code_key(value)
        if key not in table:
            what = "status code" if direction == "in" else "canonical value"
            raise MappingError(self.system, where, value, f"unknown {what} (value map {map_name!r})")
        return table[key]

    def _xref(self, kind: str, value: Any, binder: Binder | None, where: str, inbound: bool) -> str:
        if binder is None:
            raise MappingError(self.system, where, value, f"no binder given to cross-reference {kind}")
        key = str(value)
        found = (binder.to_internal(self.system, kind, key) if inbound
                 else binder.to_external(self.system, kind, key))
        if found is None:
            raise MappingError(self.system, where, value, f"unmapped {kind} (no binding for {self.system})")
        return found


def _code_key(code: Any) -> str:
    # YAML keys may be ints or strings; systems send either. Compare as text.
    if isinstance(code, bool):
        return "true" if code else "false"
    return str(code)


def _position(spec: Any, source: str, key: str) -> tuple[int, int, str]:
    if not isinstance(spec, dict) or set(spec) - {"start", "step", "format"}:
        raise MappingConfigError(source, key, "must be {start: N, step: N, format: '{:06d}'}")
    start, step, fmt = spec.get("start", 1), spec.get("step", 1), spec.get("format", "{}")
    if not isinstance(start, int) or not isinstance(step, int) or isinstance(start, bool):
        raise MappingConfigError(source, key, "start and step must be whole numbers")
    try:
        str(fmt).format(start)
    except (ValueError, IndexError, KeyError) as exc:
        raise MappingConfigError(source, f"{key}.format", f"not a format for a number: {exc}") from None
    return start, step, str(fmt)


# -- loading and validation ---------------------------------------------------------------

def _build_fields(spec: Any, source: str, key: str, values: dict[str, _ValueMap],
                  nested: bool = False) -> tuple[_Field, ...]:
    if not isinstance(spec, dict) or not spec:
        raise MappingConfigError(source, key, "must be a non-empty mapping of canonical field -> spec")
    fields = []
    for name, fspec in spec.items():
        fkey = f"{key}.{name}"
        if isinstance(fspec, str):          # shorthand: `name: path.to.value`
            fspec = {"path": fspec}
        if not isinstance(fspec, dict):
            raise MappingConfigError(source, fkey, "must be a path string or a field spec mapping")
        unknown = set(fspec) - _FIELD_KEYS
        if unknown:
            raise MappingConfigError(source, fkey, f"unknown keys {sorted(unknown)}; "
                                                   f"allowed: {sorted(_FIELD_KEYS)}")
        canonical_text = str(fspec.get("canonical", name))
        from_parent = canonical_text.startswith(_PARENT)
        if from_parent and not nested:
            raise MappingConfigError(source, fkey, f"{_PARENT}name reads the enclosing record: only under children")
        try:
            canonical = _parse_path(canonical_text.removeprefix(_PARENT))
        except ValueError as exc:
            raise MappingConfigError(source, fkey, f"bad canonical name: {exc}") from None
        path_spec = fspec.get("path")
        path_texts = path_spec if isinstance(path_spec, list) else [path_spec]
        texts = [p for p in path_texts if isinstance(p, str) and p]
        if not texts or len(texts) != len(path_texts):
            raise MappingConfigError(source, f"{fkey}.path", "required, a dotted path string (or a list of them)")
        try:
            path, *also = [_parse_path(p) for p in texts]
        except ValueError as exc:
            raise MappingConfigError(source, f"{fkey}.path", str(exc)) from None
        position = _position(fspec["position"], source, f"{fkey}.position") if "position" in fspec else None
        convert = fspec.get("convert")
        if convert is not None and convert not in CONVERSIONS and convert != _LOCAL:
            raise MappingConfigError(source, f"{fkey}.convert",
                                     f"unknown conversion {convert!r}; known: "
                                     f"{sorted([*CONVERSIONS, _LOCAL])}")
        vmap = fspec.get("map")
        if vmap is not None and vmap not in values:
            raise MappingConfigError(source, f"{fkey}.map", f"no value map {vmap!r} under values")
        xref = fspec.get("xref")
        if xref is not None and not (isinstance(xref, str) and xref):
            raise MappingConfigError(source, f"{fkey}.xref", "must be a binder kind such as sku or store")
        required = fspec.get("required", False)
        if not isinstance(required, bool):
            raise MappingConfigError(source, f"{fkey}.required",
                                     "must be true or false" + yaml_text.bool_hint(required))
        direction = fspec.get("direction", "both")
        if direction not in ("in", "out", "both"):
            raise MappingConfigError(source, f"{fkey}.direction", "must be in, out or both")
        tz = None
        if "tz" in fspec:
            try:
                tz = _parse_tz(str(fspec["tz"]))
            except ValueError as exc:
                raise MappingConfigError(source, f"{fkey}.tz", str(exc)) from None
        children = None
        if "children" in fspec:
            if not path[-1].is_list:
                raise MappingConfigError(source, f"{fkey}.path", "a field with children needs a path "
                                                                 "ending in [] (a list)")
            children = _build_fields(fspec["children"], source, f"{fkey}.children", values, nested=True)
            if convert or vmap or xref:
                raise MappingConfigError(source, fkey, "a list of children takes no convert/map/xref")
        elif path[-1].is_list:
            raise MappingConfigError(source, f"{fkey}.path", "a path ending in [] needs children")
        if any(p[-1].is_list != path[-1].is_list for p in also):
            raise MappingConfigError(source, f"{fkey}.path", "every path of a list field ends in []")
        path, *also = [p[:-1] + (_Seg(p[-1].name),) if p[-1].is_list else p for p in (path, *also)]
        if (from_parent or position or "canonical" in fspec) and direction == "both":
            direction = "out"          # none can be read back: a line has no parent, a second feed no owner
        fields.append(_Field(
            canonical=canonical, path=path, convert=convert, value_map=vmap, xref=xref,
            required=required, default=fspec.get("default", _MISSING),
            const=fspec.get("const", _MISSING), direction=direction, children=children,
            fmt=fspec.get("format"), tz=tz, also=tuple(also), from_parent=from_parent, position=position))
    return tuple(fields)


def _build_values(spec: Any, source: str) -> dict[str, _ValueMap]:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise MappingConfigError(source, "values", "must be a mapping of map name -> {code: value}")
    values: dict[str, _ValueMap] = {}
    for name, table in spec.items():
        if not isinstance(table, dict) or not table:
            raise MappingConfigError(source, f"values.{name}", "must be a non-empty {code: value} mapping")
        vm = _ValueMap()
        for code, canonical in table.items():
            if isinstance(canonical, (dict, list)) or canonical is None:
                raise MappingConfigError(source, f"values.{name}.{code}", "value must be a scalar")
            if _code_key(code) in vm.inbound:
                raise MappingConfigError(source, f"values.{name}.{code}", "duplicate code")
            vm.inbound[_code_key(code)] = canonical
            vm.outbound.setdefault(_code_key(canonical), code)   # first code wins outbound
        values[str(name)] = vm
    return values


def parse_mapping(text: str, system: str, source: str = "<mapping>") -> Mapping:
    """Parse and validate mapping YAML text."""
    try:
        raw = yaml_text.load(text)
    except yaml.YAMLError as exc:
        raise MappingConfigError(source, "(file)", f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise MappingConfigError(source, "(file)", "must be a mapping with system, operations, values, "
                                                   "entities")
    unknown = set(raw) - {"system", "operations", "values", "entities", "description", "calls"}
    if unknown:
        raise MappingConfigError(source, "(top level)", f"unknown keys {sorted(unknown)}")
    declared = raw.get("system", system)
    if declared != system:
        raise MappingConfigError(source, "system", f"says {declared!r} but the file is for {system!r}")
    operations = raw.get("operations") or {}
    if not isinstance(operations, dict):
        raise MappingConfigError(source, "operations", "must be a mapping of name -> string")
    for name, op in operations.items():
        if not isinstance(op, str) or not op:
            raise MappingConfigError(source, f"operations.{name}", "must be a non-empty string")
    values = _build_values(raw.get("values"), source)
    entities_raw = raw.get("entities") or {}
    if not isinstance(entities_raw, dict):
        raise MappingConfigError(source, "entities", "must be a mapping of entity -> fields")
    entities = {str(name): _build_fields(spec, source, f"entities.{name}", values)
                for name, spec in entities_raw.items()}
    calls = parse_calls(raw.get("calls"), source, entities, values, MappingConfigError)
    return Mapping(system, dict(operations), values, entities, source, calls)


def load_mapping(system: str, directory: str | Path | None = None) -> Mapping:
    """Read and validate mappings/<system>.yaml."""
    path = Path(directory or MAPPINGS_DIR) / f"{system}.yaml"
    try:
        text = path.read_text()
    except OSError as exc:
        raise MappingConfigError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
    return parse_mapping(text, system, source=str(path))


def validate_all(directory: str | Path | None = None) -> list[str]:
    """Load every mappings/*.yaml; return one line per problem (empty when all are valid)."""
    problems = []
    for path in sorted(Path(directory or MAPPINGS_DIR).glob("*.yaml")):
        try:
            load_mapping(path.stem, path.parent)
        except MappingConfigError as exc:
            problems.append(str(exc))
    return problems
