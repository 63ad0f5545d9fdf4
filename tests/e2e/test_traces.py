"""One trace across the processes of production mode: every service its own process on RabbitMQ and
PostgreSQL, each appending its finished spans to one file (`HUB_TRACE_FILE`), read back here."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from workers.launcher import wait_for

from .conftest import start_hub
from .test_flows import count, pay, place

TRACE_FILE: Path | None = None


@pytest.fixture(scope="module")
def running_hub(tmp_path_factory):
    """The e2e hub, tracing on: the file exporter, shared by all its processes."""
    global TRACE_FILE
    TRACE_FILE = tmp_path_factory.mktemp("traces") / "spans.jsonl"
    yield from start_hub(tmp_path_factory, {"HUB_TRACE_FILE": str(TRACE_FILE)})


def spans() -> list[dict[str, Any]]:
    assert TRACE_FILE is not None
    if not TRACE_FILE.exists():
        return []
    return [json.loads(line) for line in TRACE_FILE.read_text().splitlines()]   # every line whole JSON


def trace_of(name: str) -> str:
    """The trace of the (last) span named `name`."""
    return [s for s in spans() if s["name"] == name][-1]["context"]["trace_id"]


def in_trace(trace_id: str) -> list[dict[str, Any]]:
    return [s for s in spans() if s["context"]["trace_id"] == trace_id]


def chain(trace_id: str, *steps: str) -> list[dict[str, Any]]:
    """The spans of `trace_id` named `steps`, each the child of the one before, each begun after it: read from the
    last step's span up through its parents."""
    found = in_trace(trace_id)
    by_id = {s["context"]["span_id"]: s for s in found}
    for last in (s for s in found if s["name"] == steps[-1]):
        path = [last]
        while len(path) < len(steps) and path[-1]["parent_id"] in by_id:
            path.append(by_id[path[-1]["parent_id"]])
        path.reverse()
        if [s["name"] for s in path] == list(steps):
            starts = [_time(s["start_time"]) for s in path]
            assert starts == sorted(starts)
            return path
    raise AssertionError(f"no path {steps} in {sorted((s['name'], s['parent_id']) for s in found)}")


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def service_of(span: dict[str, Any]) -> str:
    return span["resource"]["attributes"]["service.name"]


def test_a_pos_sale_is_one_trace_from_the_request_to_the_shops_push(hub):
    count(hub, "S001", "TEA-001", 10)
    wait_for(lambda: hub.sandbox.wechat_shop.stock_of("TEA-001", "S001") == 9, 30, "the counted figure at the shop")
    sold_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    sale = {"receipt_id": f"R-{uuid.uuid4().hex[:8]}", "sold_at": sold_at,
            "lines": [{"sku": "TEA-001", "qty": 3}]}
    r = hub.call("POST", "/api/v1/stores/S001/sales", key="S001", json=sale)
    assert r.status_code == 201, r.text
    wait_for(lambda: hub.sandbox.wechat_shop.stock_of("TEA-001", "S001") == 6, 30, "the sale at the shop")
    trace_id = trace_of("POST /api/v1/stores/{store_id}/sales")
    steps = ("POST /api/v1/stores/{store_id}/sales", "outbox write", "publish stock.changed",
             "consume stock_to_shop", "wechat_shop.update_store_stock")
    wait_for(lambda: set(steps) <= {s["name"] for s in in_trace(trace_id)}, 10, "every step's span")
    path = chain(trace_id, *steps)
    assert [s["kind"] for s in path] == ["SpanKind.SERVER", "SpanKind.INTERNAL", "SpanKind.PRODUCER",
                                         "SpanKind.CONSUMER", "SpanKind.CLIENT"]
    # Across processes: the gateway wrote the row, the relay published it, channel sync pushed it.
    assert [service_of(s) for s in path] == ["hub-gateway", "hub-gateway", "hub-relay", "hub-channel_sync",
                                             "hub-channel_sync"]
    # The outbox row itself carries the request's trace.
    with hub.ctx.engine.connect() as conn:
        payloads = conn.execute(text("select payload from outbox where event_type = 'stock.changed'")).scalars()
        carried = {p.get("traceparent", "").split("-")[1] for p in payloads if p.get("traceparent")}
    assert trace_id.removeprefix("0x") in carried


def test_a_paid_pickup_orders_trace_reaches_the_pos(hub):
    count(hub, "S001", "TEA-001", 5)
    r = place(hub, [{"sku": "TEA-001", "qty": 1}], {"type": "pickup", "store_id": "S001"})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    pay(hub, order_id)
    wait_for(lambda: hub.sandbox.pos.order_for(order_id) is not None, 30, "the order at the store's POS")
    trace_id = trace_of("POST /callbacks/{connector}")
    steps = ("POST /callbacks/{connector}", "outbox write", "publish order.status_changed",
             "consume store_order_to_pos", "pos.push_order")
    wait_for(lambda: set(steps) <= {s["name"] for s in in_trace(trace_id)}, 10, "every step's span")
    path = chain(trace_id, *steps)
    assert [service_of(s) for s in path] == ["hub-gateway", "hub-gateway", "hub-relay", "hub-fulfilment",
                                             "hub-fulfilment"]
