"""Outbound calls measured where the core makes them: every public method of a connector
is timed per system and operation, and a failure counted by its kind, whatever protocol the
connector speaks (REST, SOAP) — so the console and /metrics see all of them alike."""
from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

from hub import tracing
from hub.logs import log_context
from hub.metrics import METRICS, HubMetrics

# Methods that read what a system sent us or answer it, with no call out: a forged callback is not
# the system failing, and a local parse is not call latency.
LOCAL = ("parse_", "verify", "echo", "callback_reply", "push_reply", "company_code", "close", "from_config")


class Metered:
    """A connector seen through its metrics; everything else passes through."""

    def __init__(self, system: str, connector: Any, metrics: HubMetrics = METRICS):
        object.__setattr__(self, "_system", system)
        object.__setattr__(self, "_connector", connector)
        object.__setattr__(self, "_metrics", metrics)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._connector, name)
        if name.startswith(("_", *LOCAL)) or not callable(value):
            return value
        return _timed(self._system, name, value, self._metrics)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connector, name, value)

    @property
    def unwrapped(self) -> Any:
        return self._connector


def _timed(system: str, operation: str, fn: Any, metrics: HubMetrics) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            with log_context(system=system), _client_span(system, operation):
                result = fn(*args, **kwargs)
        except Exception as exc:
            metrics.connector_seconds.labels(system, operation).observe(time.perf_counter() - started)
            metrics.connector_errors.labels(system, operation, type(exc).__name__).inc()
            metrics.connector_last_failure.labels(system).set(time.time())
            raise
        metrics.connector_seconds.labels(system, operation).observe(time.perf_counter() - started)
        metrics.connector_last_success.labels(system).set(time.time())
        return result

    call.__name__ = operation
    return call


def _client_span(system: str, operation: str) -> AbstractContextManager[Any]:
    """A client span per call, named by system and method (an exception it raises is recorded on it)."""
    if not tracing.enabled():
        return tracing.OFF
    return tracing.span(f"{system}.{operation}", tracing.CLIENT,
                        attributes={"peer.service": system, "rpc.method": operation})
