"""Log lines, as text or as JSON (`HUB_LOG_FORMAT=json`), carrying what the hub is working on.

`log_context(order_id=…, message_id=…, consumer=…, system=…)` marks the work in hand; every record
logged inside it carries those fields (a context variable: each green thread and each thread has its
own), and the trace's id (`trace_id`) when tracing is on (`hub/tracing.py`). Masking: the redacting filter of
`hub/privacy.py` sits on the root handler (`configure`), so it
rewrites every logger's records — urllib3's URLs with tokens, SQLAlchemy's, nameko's — before any formatter
sees them; the context holds ids only — never a phone, an address or a key.
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from hub import privacy, tracing

CONTEXT_FIELDS = ("order_id", "message_id", "consumer", "system", "route")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("hub_log_context", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` (None values ignored) to every record logged inside the block."""
    added = {k: str(v) for k, v in fields.items() if v is not None and v != ""}
    token = _context.set({**(_context.get() or {}), **added})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, str]:
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the work's context, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        entry.update(_context.get() or {})
        trace = tracing.trace_id()
        if trace is not None:
            entry["trace_id"] = trace
        for name in CONTEXT_FIELDS:                  # `extra={"order_id": ...}` on a single call
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        if record.exc_text:                           # already redacted by the privacy filter
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, and ` trace_id=…` at the end of a line logged inside a traced span."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace = tracing.trace_id()
        return line if trace is None else f"{line} trace_id={trace}"


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """The process's root handler: HUB_LOG_LEVEL (INFO) and HUB_LOG_FORMAT (text | json)."""
    fmt = (fmt or os.environ.get("HUB_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("HUB_LOG_LEVEL", "INFO"))
    privacy.protect_root()          # every logger's records are cleaned here, the libraries' too
