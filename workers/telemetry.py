"""The tracer provider, set up where a process starts (`hub run`): off by default.

- `OTEL_EXPORTER_OTLP_ENDPOINT` set (the standard variable, and the exporter's other `OTEL_EXPORTER_OTLP_*`):
  spans go over OTLP/HTTP, in batches from a background thread;
- `HUB_TRACE_FILE=path`: every finished span appended to `path` as one JSON line (the SDK's own span JSON),
  exported as it ends, for the demo and tests; several processes may share one file.
Both may be on. `OTEL_SERVICE_NAME` names the process; by default `hub-<its services>`.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping, Sequence
from typing import Any

from nameko.events import EventHandler
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from hub import tracing


class JsonLinesExporter(SpanExporter):
    """One finished span a line, appended. Each export is one write(2) on an O_APPEND descriptor under an
    exclusive lock, so lines of several processes never interleave, however long a line is."""

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(s.to_json(indent=None) + "\n" for s in spans).encode()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            os.write(self._fd, data)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        os.close(self._fd)


def setup_tracing(services: Sequence[str], env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Install a tracer for the core (`hub.tracing`) if the environment asks for one; None: tracing stays off."""
    env = os.environ if env is None else env
    endpoint, path = env.get("OTEL_EXPORTER_OTLP_ENDPOINT"), env.get("HUB_TRACE_FILE")
    if not endpoint and not path:
        return None
    name = env.get("OTEL_SERVICE_NAME") or "hub-" + "+".join(services or ["all"])
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if path:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(path)))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))   # reads OTEL_EXPORTER_OTLP_*
    tracing.install(provider.get_tracer("o2o-hub"))
    return provider


def carry_header(body: Any, message: Any) -> Any:
    """The publish's context, from the AMQP message's headers, into the envelope the consumer reads (over the
    outbox's own `traceparent`): the consumer's span is then the relay publish's child. Off: the body as is."""
    if not tracing.enabled() or not isinstance(body, dict):
        return body
    context = (message.headers or {}).get(tracing.HEADER)
    return {**body, tracing.HEADER: context} if context else body


class TracedEventHandler(EventHandler):
    """nameko's event handler, the message's trace context carried into the envelope."""

    def handle_message(self, body: Any, message: Any) -> None:
        super().handle_message(carry_header(body, message), message)


traced_event_handler = TracedEventHandler.decorator
