"""Traces across the event path, as the core sees them: the one module of `hub/` that touches OpenTelemetry.

Off unless a process installs a tracer (`workers/telemetry.py`, where processes start): then every call here
is one None check and does nothing — no span, no context, no `traceparent` in an outbox envelope.
On, a span's context travels as the W3C `traceparent` string: in an outbox envelope (written in the same
transaction as the change), in the broker message's headers (the relay's publish), and back out of them in
the consumer, so one trace runs from the HTTP request to the connector call a queue or two later.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = (SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER,
                                                SpanKind.CONSUMER, SpanKind.INTERNAL)
HEADER = "traceparent"           # W3C Trace Context: the outbox envelope's key and the AMQP header alike

_tracer: Tracer | None = None
_propagator = TraceContextTextMapPropagator()
OFF: AbstractContextManager[None] = nullcontext()


def install(tracer: Tracer | None) -> None:
    """Turn tracing on with `tracer` (None: off again). Called once where a process starts."""
    global _tracer
    _tracer = tracer


def enabled() -> bool:
    return _tracer is not None


def span(name: str, kind: SpanKind = INTERNAL, *, parent: str | None = None, links: Iterable[str | None] = (),
         attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Span | None]:
    """A span around the block, current inside it; a child of `parent` (a `traceparent`) when given, else of
    the current span. `links`: other contexts it continues (a batch's messages). Off: a shared no-op."""
    if _tracer is None:
        return OFF
    return _started(_tracer, name, kind, parent, links, attributes)


@contextmanager
def _started(tracer: Tracer, name: str, kind: SpanKind, parent: str | None, links: Iterable[str | None],
             attributes: Mapping[str, Any] | None) -> Iterator[Span]:
    context = _propagator.extract({HEADER: parent}) if parent else None
    linked = [Link(c) for c in (_span_context(tp) for tp in links) if c is not None]
    with tracer.start_as_current_span(name, context=context, kind=kind, links=linked,
                                      attributes=dict(attributes or {})) as current:
        yield current


def start(name: str, kind: SpanKind = INTERNAL, *, parent: str | None = None,
          attributes: Mapping[str, Any] | None = None) -> Span | None:
    """A span not made current (the caller ends it: `finish`), e.g. one per message published in a batch."""
    if _tracer is None:
        return None
    context = _propagator.extract({HEADER: parent}) if parent else None
    return _tracer.start_span(name, context=context, kind=kind, attributes=dict(attributes or {}))


def finish(span_: Span | None, error: BaseException | None = None) -> None:
    if span_ is None:
        return
    if error is not None:
        span_.record_exception(error)
        span_.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
    span_.end()


def annotate(attributes: Mapping[str, Any]) -> None:
    """Attributes on the current span (a no-op when off)."""
    if _tracer is not None:
        trace.get_current_span().set_attributes(attributes)


def name_span(method: str, route: str) -> None:
    """Name the current (server) span by the request's route, once it is known."""
    if _tracer is not None:
        current = trace.get_current_span()
        current.update_name(f"{method} {route}")
        current.set_attribute("http.route", route)


def traceparent(span_: Span | None = None) -> str | None:
    """The W3C `traceparent` of `span_` (default: the current span); None when off or outside any span."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    context = trace.set_span_in_context(span_) if span_ is not None else None
    _propagator.inject(carrier, context=context)
    return carrier.get(HEADER)


def trace_id() -> str | None:
    """The current trace's id (32 hex digits), for log lines; None when off or outside any span."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _span_context(tp: str | None) -> trace.SpanContext | None:
    if not tp:
        return None
    context = trace.get_current_span(_propagator.extract({HEADER: tp})).get_span_context()
    return context if context.is_valid else None
