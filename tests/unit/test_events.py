"""The event catalogue is the one truth: what the core emits, and who consumes each event."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

from nameko.events import EventHandler

from hub import events
from hub.consumers import HANDLERS
from workers.runner import all_service_classes

CORE = Path(__file__).resolve().parents[2] / "hub"
CATALOGUED = {(e.name, c) for e in events.CATALOGUE for c in e.consumers}


def _subscriptions() -> set[tuple[str, str]]:
    found = set()
    for cls in all_service_classes():
        for _, method in inspect.getmembers(cls, inspect.isfunction):
            for entrypoint in getattr(method, "nameko_entrypoints", ()):
                if isinstance(entrypoint, EventHandler):
                    found.add((entrypoint.event_type, getattr(method, "consumer", method.__qualname__)))
    return found


def test_workers_subscribe_exactly_the_catalogue():
    assert _subscriptions() == CATALOGUED


def test_every_catalogued_consumer_is_registered():
    all_service_classes()
    missing = {c for _, c in CATALOGUED} - set(HANDLERS)
    assert missing == set()


def test_every_event_has_a_consumer():
    assert [e.name for e in events.CATALOGUE if not e.consumers] == []


def test_the_core_emits_only_catalogued_events_by_name():
    """`uow.emit(events.X, ...)` everywhere in the core; a string literal or an unknown name fails."""
    bad = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit" \
                    and node.args:
                first = node.args[0]
                name = first.attr if isinstance(first, ast.Attribute) else None
                if name is None or getattr(events, name, None) not in events.EVENTS:
                    bad.append(f"{path.relative_to(CORE.parent)}:{node.lineno}")
    assert bad == []


def test_event_of_names_the_event_and_refuses_an_unknown_consumer():
    assert events.event_of("channel_sync.publish_stock") == events.STOCK_CHANGED
    try:
        events.event_of("nobody.home")
    except KeyError:
        return
    raise AssertionError("an unknown consumer must not map to an event")
