"""Traces in one process: off, nothing is written and an envelope is as ever; on, the request's trace reaches
the outbox row, the published message's headers and the log lines."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange
from sqlalchemy import select

from hub import tracing
from hub.logs import JsonFormatter, TextFormatter
from hub.storage.tables import OutboxMessage
from workers import EVENT_SOURCE
from workers.relay import OutboxPublisher, relay_once
from workers.telemetry import setup_tracing

from .conftest import POS_KEYS

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"       # a caller's W3C traceparent


@pytest.fixture
def broker():
    """An in-process broker (kombu's memory transport) and a queue bound to every hub event."""
    with Connection("memory://") as conn:
        queue = Queue("tracing-test", exchange=get_event_exchange(EVENT_SOURCE, {}), routing_key="#")
        queue = queue(conn.default_channel)
        queue.declare()
        queue.purge()
        yield queue


def sell(api, receipt: str):
    sale = {"receipt_id": receipt, "sold_at": (api.clock.now - timedelta(minutes=1)).isoformat(),
            "lines": [{"sku": "TEA-001", "qty": 1}, {"sku": "CUP-002", "qty": 1}]}
    r = api.post("/api/v1/stores/S001/sales", sale, key=POS_KEYS["S001"], headers={"traceparent": CALLER})
    assert r.status_code == 201, r.text


def payloads(api) -> list[dict]:
    with api.ctx.reader() as uow:
        return list(uow.session.execute(select(OutboxMessage.payload).order_by(OutboxMessage.id)).scalars())


def published(api, queue) -> list:
    publisher = OutboxPublisher("memory://")
    try:
        while relay_once(api.ctx, publisher):
            pass
    finally:
        publisher.close()
    messages = []
    while (message := queue.get(no_ack=True)) is not None:
        messages.append(message)
    return messages


def record() -> logging.LogRecord:
    return logging.LogRecord("hub.test", logging.WARNING, __file__, 1, "a line", None, None)


def test_tracing_off_writes_nothing_and_adds_no_key_to_the_outbox(api, broker, tmp_path, monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("HUB_TRACE_FILE", raising=False)
    assert setup_tracing(["gateway"]) is None and not tracing.enabled()
    assert tracing.span("anything") is tracing.OFF and tracing.traceparent() is None
    api.stock(10)
    sell(api, "R-off-1")                      # a caller's traceparent is not carried either
    envelopes = payloads(api)
    assert envelopes and all(set(e) == {"id", "type", "occurred_at", "data"} for e in envelopes)
    messages = published(api, broker)
    assert len(messages) == len(envelopes)
    assert all(set(m.headers) == {"hub.message_id"} for m in messages)
    assert "trace_id" not in json.loads(JsonFormatter().format(record()))
    assert "trace_id" not in TextFormatter().format(record())
    assert not any(p.suffix == ".jsonl" for p in tmp_path.rglob("*"))


def test_tracing_on_carries_the_requests_trace_to_the_outbox_the_headers_and_the_logs(api, broker, tmp_path):
    path = tmp_path / "spans.jsonl"
    provider = setup_tracing(["gateway"], env={"HUB_TRACE_FILE": str(path)})
    try:
        api.stock(10)
        sell(api, "R-on-1")
        envelopes = payloads(api)
        # Work begun outside any span (the seeding count) starts a trace of its own at the outbox write.
        assert all(e.get("traceparent") for e in envelopes)
        sale_events = [e for e in envelopes if e["traceparent"].split("-")[1] == CALLER_TRACE]
        assert {e["type"] for e in sale_events} == {"stock.changed"} and len(sale_events) == 2
        messages = published(api, broker)
        assert all("traceparent" in m.headers for m in messages)
        carried = [m.headers["traceparent"] for m in messages if m.headers["traceparent"].split("-")[1] == CALLER_TRACE]
        assert len(carried) == 2
        # The header is the publish span's context, not the outbox row's: the consumer is the publish's child.
        assert not {c.split("-")[2] for c in carried} & {e["traceparent"].split("-")[2] for e in sale_events}
        with tracing.span("a step"):
            assert json.loads(JsonFormatter().format(record()))["trace_id"] == tracing.trace_id()
            assert TextFormatter().format(record()).endswith(f"trace_id={tracing.trace_id()}")
    finally:
        tracing.install(None)
        provider.shutdown()
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    server = next(s for s in spans if s["name"] == "POST /api/v1/stores/{store_id}/sales")
    assert server["kind"] == "SpanKind.SERVER" and server["parent_id"] == "0x00f067aa0ba902b7"
    assert server["attributes"]["http.response.status_code"] == 201
    outbox = next(s for s in spans if s["name"] == "outbox write" and s["context"]["trace_id"] == "0x" + CALLER_TRACE)
    assert outbox["parent_id"] == server["context"]["span_id"] and outbox["attributes"]["hub.events"] == 2
    publishes = [s for s in spans if s["name"] == "publish stock.changed"
                 and s["parent_id"] == outbox["context"]["span_id"]]
    assert len(publishes) == 2 and all(s["kind"] == "SpanKind.PRODUCER" for s in publishes)
