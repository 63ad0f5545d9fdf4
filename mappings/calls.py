"""The `calls:` section of a SOAP system's mapping: how each job is asked of that system.

    calls:
      product_master:
        wsdl: Page/Item                 # relative to the configured WSDL URL, or absolute
        operation: ReadMultiple
        args: {filter: [], setSize: "${page_size}", bookmarkKey: "${bookmark}"}
        paging: {size: 100, bookmark: Key}   # or {size: 50} with "${page}" in args
        items: ReadMultiple_Result.Item      # where the records sit in the answer
      warehouse_stock:
        operation: GetItemInventory
        args: {itemNo: "${item}", locationCode: "${plant}"}   # one call per item and plant
      create_sales_order:
        operation: BAPI_SALESORDER_CREATEFROMDAT2
        args: {ORDER_HEADER_IN: {DOC_TYPE: TA}}   # fixed values; `entity` adds the order's
        entity: sales_order
        result: sales_order_result
        lookup: find_sales_order             # asked first: a found order is not created again
        dedupes: false                       # true: the ERP refuses or ignores a repeat, so a resend is safe
        errors: {table: RETURN.item, type: TYPE, fail_on: [E, A], id: [ID, NUMBER],
                 text: MESSAGE, kinds: message_kind}

Placeholders in `args`: `${plants}` (the ERP's codes of the warehouses asked, as a list),
`${plant}` and `${item}` (one call per plant / per item number: a fan-out), `${page}`,
`${page_size}`, `${bookmark}` (paging; an argument whose value is absent is left out) and
`${order.<field>}` (a field of the order being pushed). A string that is exactly one
placeholder takes the value as is (a list, a number); otherwise it is text.

`per_line: true` makes one call per order line (a NAV codeunit's flat CreateSalesLine): the
`entity` is mapped per line, its `^.` fields from the order and its `position` (the line
number rule) from the line's index; the push is applied only when every line was.

A create that can neither be looked up (`lookup`) nor safely repeated (`dedupes`) is never
re-sent after an answer that may have been lost: it is parked as "unknown outcome".
Faults and message ids mapped to `done` (in `fault_kind` / the `errors.kinds` map) mean
"already there" (a duplicate-key refusal after a lost answer) and count as applied.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_VARIABLES = {"plants", "plant", "item", "page", "page_size", "bookmark"}
FAN_OUT = ("item", "plant")          # the variables that make one call per value
_CALL_KEYS = {"operation", "wsdl", "endpoint", "args", "entity", "items", "result", "paging", "errors", "lookup",
              "per_line", "dedupes"}


@dataclass(frozen=True)
class Paging:
    size: int
    bookmark: str | None = None      # the record field that carries the bookmark for the next page
    first_page: int = 1


@dataclass(frozen=True)
class ErrorTable:
    """A message table inside a 200 answer (SAP's BAPIRET2): rows of type `fail_on` are errors."""

    table: str
    type: str
    fail_on: tuple[str, ...]
    id: tuple[str, ...]
    text: str | None = None
    kinds: str | None = None         # value map: message id ("V1 042") -> transient | permanent


@dataclass(frozen=True)
class CallSpec:
    name: str
    operation: str
    wsdl: str | None = None
    endpoint: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    entity: str | None = None
    items: str | None = None
    result: str | None = None
    paging: Paging | None = None
    errors: ErrorTable | None = None
    lookup: str | None = None
    variables: frozenset[str] = frozenset()
    per_line: bool = False           # one call per order line, the entity mapped per line
    dedupes: bool = False            # the ERP itself refuses or ignores a repeat: resending is safe

    @property
    def fan_out(self) -> tuple[str, ...]:
        return tuple(v for v in FAN_OUT if v in self.variables)


def render(template: Any, variables: Mapping[str, Any]) -> Any:
    """The arguments with placeholders filled; an argument whose value is None is left out."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            rendered = render(value, variables)
            if rendered is not None:
                out[key] = rendered
        return out
    if isinstance(template, list):
        return [render(v, variables) for v in template]
    if not isinstance(template, str):
        return template
    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return _lookup(variables, whole.group(1))
    return _PLACEHOLDER.sub(lambda m: str(_lookup(variables, m.group(1)) or ""), template)


def _lookup(variables: Mapping[str, Any], name: str) -> Any:
    head, _, rest = name.partition(".")
    node = variables.get(head)
    for part in filter(None, rest.split(".")):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def _placeholders(template: Any) -> set[str]:
    if isinstance(template, dict):
        return set().union(*(_placeholders(v) for v in template.values())) if template else set()
    if isinstance(template, list):
        return set().union(*(_placeholders(v) for v in template)) if template else set()
    return set(_PLACEHOLDER.findall(template)) if isinstance(template, str) else set()


def parse_calls(raw: Any, source: str, entities: Mapping[str, Any], values: Mapping[str, Any],
                error: Callable[[str, str, str], Exception]) -> dict[str, CallSpec]:
    """Validate `calls:`; `error(file, key, problem)` builds the exception raised."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise error(source, "calls", "must be a mapping of job -> call")
    calls = {}
    for name, spec in raw.items():
        key = f"calls.{name}"
        if not isinstance(spec, dict):
            raise error(source, key, "must be a mapping with at least `operation`")
        unknown = set(spec) - _CALL_KEYS
        if unknown:
            raise error(source, key, f"unknown keys {sorted(unknown)}; allowed: {sorted(_CALL_KEYS)}")
        for text_key in ("operation", "wsdl", "endpoint", "items", "lookup"):
            if text_key in spec and not (isinstance(spec[text_key], str) and spec[text_key]):
                raise error(source, f"{key}.{text_key}", "must be a non-empty string")
        if "operation" not in spec:
            raise error(source, f"{key}.operation", "required: the SOAP operation's name")
        for flag in ("per_line", "dedupes"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise error(source, f"{key}.{flag}", "must be true or false")
        if spec.get("per_line") and not spec.get("entity"):
            raise error(source, f"{key}.per_line", "needs an `entity` mapped per order line")
        args = spec.get("args", {})
        if not isinstance(args, dict):
            raise error(source, f"{key}.args", "must be a mapping of argument -> value or placeholder")
        names = _placeholders(args)
        for var in names:
            if var.split(".")[0] not in _VARIABLES | {"order"}:
                raise error(source, f"{key}.args", f"unknown placeholder ${{{var}}}; known: "
                                                   f"{sorted(_VARIABLES)} and order.<field>")
        for ref in ("entity", "result"):
            if spec.get(ref) is not None and spec[ref] not in entities:
                raise error(source, f"{key}.{ref}", f"no entity {spec[ref]!r} under entities")
        calls[str(name)] = CallSpec(
            name=str(name), operation=spec["operation"], wsdl=spec.get("wsdl"), endpoint=spec.get("endpoint"),
            args=args, entity=spec.get("entity"), items=spec.get("items"), result=spec.get("result"),
            paging=_paging(spec.get("paging"), names, source, f"{key}.paging", error),
            errors=_errors(spec.get("errors"), values, source, f"{key}.errors", error),
            lookup=spec.get("lookup"), variables=frozenset(n.split(".")[0] for n in names),
            per_line=bool(spec.get("per_line", False)), dedupes=bool(spec.get("dedupes", False)))
    for name, call in calls.items():
        if call.lookup is not None and call.lookup not in calls:
            raise error(source, f"calls.{name}.lookup", f"no call {call.lookup!r} under calls")
    return calls


def _paging(raw: Any, names: set[str], source: str, key: str,
            error: Callable[[str, str, str], Exception]) -> Paging | None:
    if raw is None:
        if names & {"page", "bookmark"}:
            raise error(source, key, "${page} or ${bookmark} in args needs a paging block")
        return None
    if not isinstance(raw, dict) or set(raw) - {"size", "bookmark", "first_page"}:
        raise error(source, key, "must be {size: N} (page numbers) or {size: N, bookmark: <record field>}")
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise error(source, f"{key}.size", "required, a whole number of records per page")
    bookmark = raw.get("bookmark")
    wanted = "bookmark" if bookmark else "page"
    if wanted not in names:
        raise error(source, key, f"paging by {wanted} needs ${{{wanted}}} in args")
    return Paging(size=size, bookmark=bookmark, first_page=int(raw.get("first_page", 1)))


def _errors(raw: Any, values: Mapping[str, Any], source: str, key: str,
            error: Callable[[str, str, str], Exception]) -> ErrorTable | None:
    if raw is None:
        return None
    allowed = {"table", "type", "fail_on", "id", "text", "kinds"}
    if not isinstance(raw, dict) or set(raw) - allowed or not {"table", "type", "id"} <= set(raw):
        raise error(source, key, f"must be a mapping with table, type and id (allowed: {sorted(allowed)})")
    ids = raw["id"] if isinstance(raw["id"], list) else [raw["id"]]
    fail_on = raw.get("fail_on", ["E", "A"])
    if not isinstance(fail_on, list) or not fail_on:
        raise error(source, f"{key}.fail_on", "must be a list of message types, e.g. [E, A]")
    kinds = raw.get("kinds")
    if kinds is not None and kinds not in values:
        raise error(source, f"{key}.kinds", f"no value map {kinds!r} under values")
    return ErrorTable(table=str(raw["table"]), type=str(raw["type"]), fail_on=tuple(str(t) for t in fail_on),
                      id=tuple(str(i) for i in ids), text=raw.get("text"), kinds=kinds)
