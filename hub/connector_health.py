"""Connector health over the last hour, read from the metrics every process records.

The counters are totals since each process started (added up across replicas in multiprocess mode);
the window keeps one snapshot a minute and answers "over the last hour" as now minus the snapshot
taken about an hour ago — or since the console's process started, if that is more recent. The
differences between neighbouring snapshots are the console's per-minute charts (`series`). On the
real clock a daemon thread takes the snapshots, started by the first look, so the hour fills in
whether or not anyone watches; a test's clock takes them only when asked.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.metrics import METRICS, HubMetrics

WINDOW_S = 3600
SNAPSHOT_EVERY_S = 60


@dataclass(frozen=True)
class Totals:
    calls: float = 0
    errors: float = 0
    seconds: float = 0


class ConnectorHealth:
    def __init__(self, metrics: HubMetrics = METRICS, clock: Callable[[], float] = time.time):
        self.metrics, self.clock = metrics, clock
        self._snapshots: deque[tuple[float, dict[str, Totals]]] = deque()
        self._lock = threading.Lock()
        self._sampler: threading.Thread | None = None
        # Counters start at zero with their processes (the launcher empties the multiprocess directory).
        self._snapshots.append((self.clock(), {}))

    def _totals(self) -> dict[str, Totals]:
        out: dict[str, dict[str, float]] = {}
        for labels, value in self.metrics.samples("hub_connector_call_duration_seconds_count"):
            out.setdefault(labels["system"], {}).setdefault("calls", 0)
            out[labels["system"]]["calls"] += value
        for labels, value in self.metrics.samples("hub_connector_call_duration_seconds_sum"):
            out.setdefault(labels["system"], {}).setdefault("seconds", 0)
            out[labels["system"]]["seconds"] += value
        for labels, value in self.metrics.samples("hub_connector_errors_total"):
            out.setdefault(labels["system"], {}).setdefault("errors", 0)
            out[labels["system"]]["errors"] += value
        return {system: Totals(**v) for system, v in out.items()}

    def _take(self, now: float) -> dict[str, Totals]:
        totals = self._totals()
        with self._lock:
            if not self._snapshots or now - self._snapshots[-1][0] >= SNAPSHOT_EVERY_S:
                self._snapshots.append((now, totals))
            while len(self._snapshots) > 1 and now - self._snapshots[1][0] >= WINDOW_S:
                self._snapshots.popleft()
        return totals

    def _sample_in_background(self) -> None:
        """One snapshot a minute from now on (real clock only; idempotent). A green thread under eventlet."""
        if self.clock is not time.time or self._sampler is not None:
            return
        with self._lock:
            if self._sampler is not None:
                return
            self._sampler = threading.Thread(target=self._sample_forever, name="connector-health", daemon=True)
        self._sampler.start()

    def _sample_forever(self) -> None:
        while True:
            time.sleep(SNAPSHOT_EVERY_S)
            try:
                self._take(self.clock())
            except Exception:  # noqa: BLE001 - a failed read skips one minute; the next one tries again
                continue

    def series(self, systems: Iterable[str]) -> list[dict[str, Any]]:
        """Per system, one point per snapshot interval of the window (the last one ends now): calls and
        errors per minute, error rate and mean latency over that interval, at the interval's end."""
        now = self.clock()
        current = self._take(now)
        self._sample_in_background()
        with self._lock:
            marks = list(self._snapshots)
        if now - marks[-1][0] >= 1:               # the minute under way, so far
            marks.append((now, current))
        out = []
        for system in systems:
            points = []
            for (t0, a), (t1, b) in itertools.pairwise(marks):
                old, new = a.get(system, Totals()), b.get(system, Totals())
                calls, errors, seconds = new.calls - old.calls, new.errors - old.errors, new.seconds - old.seconds
                per_min = 60 / max(t1 - t0, 1)
                points.append({"at": _when(t1), "calls_per_min": round(calls * per_min, 2),
                               "errors_per_min": round(errors * per_min, 2),
                               "error_rate": round(errors / calls, 4) if calls > 0 else None,
                               "latency_ms_avg": round(seconds / calls * 1000, 1) if calls > 0 else None})
            out.append({"system": system, "points": points})
        return out

    def _last(self, name: str) -> dict[str, float]:
        return {labels["system"]: value for labels, value in self.metrics.samples(name)}

    def report(self, systems: Iterable[str]) -> list[dict[str, Any]]:
        """Per system: calls, errors, error rate and mean latency in the window; last success and failure
        (datetimes, or None)."""
        now = self.clock()
        current = self._take(now)
        self._sample_in_background()
        with self._lock:
            since, base = self._snapshots[0]
        ok = self._last("hub_connector_last_success_timestamp_seconds")
        failed = self._last("hub_connector_last_failure_timestamp_seconds")
        rows = []
        for system in systems:
            cur, old = current.get(system, Totals()), base.get(system, Totals())
            calls, errors, seconds = cur.calls - old.calls, cur.errors - old.errors, cur.seconds - old.seconds
            rows.append({
                "system": system, "window_s": round(now - since), "calls": int(calls), "errors": int(errors),
                "error_rate": round(errors / calls, 4) if calls else None,
                "latency_ms_avg": round(seconds / calls * 1000, 1) if calls else None,
                "last_success_at": _when(ok.get(system)), "last_failure_at": _when(failed.get(system)),
            })
        return rows


def _when(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None
