"""A tiny thread-safe metrics registry rendered in the Prometheus text format (0.0.4).

Counters only live in this process; gauges that describe the database (outbox backlog,
dead letters) are read at scrape time and passed to `render`."""
from __future__ import annotations

import threading
from collections.abc import Iterable


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)) + "}"


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help_text, labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = tuple(str(labels[n]) for n in self.label_names)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, **labels: str) -> float:
        key = tuple(str(labels[n]) for n in self.label_names)
        with self._lock:
            return self._values.get(key, 0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        out += [f"{self.name}{_labels(self.label_names, k)} {v:g}" for k, v in items]
        return out


class Registry:
    def __init__(self) -> None:
        self._counters: dict[str, Counter] = {}
        self._lock = threading.Lock()
        self.requests = self.counter("hub_http_requests_total", "HTTP requests by route, method and status",
                                     ("route", "method", "status"))
        self.orders_placed = self.counter("hub_orders_placed_total", "Orders placed by fulfilment type",
                                          ("fulfillment",))
        self.stock_events = self.counter("hub_stock_events_applied_total",
                                         "Stock deltas and counts applied to the ledger", ("source", "kind"))

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        with self._lock:
            if name not in self._counters:
                self._counters[name] = Counter(name, help_text, labels)
            return self._counters[name]

    def render(self, gauges: Iterable[tuple[str, str, float]] = ()) -> str:
        """The exposition text; `gauges` are (name, help, value) read just now."""
        with self._lock:
            counters = list(self._counters.values())
        lines: list[str] = []
        for c in counters:
            lines += c.lines()
        for name, help_text, value in gauges:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


REGISTRY = Registry()   # the process-wide default
