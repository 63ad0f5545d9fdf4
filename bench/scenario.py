"""The measured work, against a hub that is already running (either mode)."""
from __future__ import annotations

import itertools
import os
import random
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import create_engine, text

from hub.handlers import STOCK_TO_SHOP
from workers.launcher import wait_for

from . import wrk
from .profile import Profiler


@dataclass
class Figures:
    ingest_per_s: float
    sync_ms: list[float]
    orders_per_s: float
    refused: int

    def pct(self, q: float) -> float:
        data = sorted(self.sync_ms)
        return data[min(len(data) - 1, int(round(q / 100 * (len(data) - 1))))]


_receipts = itertools.count()


def _sale(session: requests.Session, base: str, store_key: str, store: str, sku: str) -> None:
    body = {"receipt_id": f"B{uuid.uuid4().hex[:12]}-{next(_receipts)}", "sold_at": _now(),
            "lines": [{"sku": sku, "qty": 1}]}
    r = session.post(f"{base}/api/v1/stores/{store}/sales", json=body, headers={"Authorization": f"Bearer {store_key}"},
                     timeout=30)
    r.raise_for_status()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def now_iso() -> str:
    return _now()


def synced(database_url: str) -> bool:
    """Every stock change so far has been relayed and handled by channel sync."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            changes = conn.execute(text("select count(*) from outbox where event_type = 'stock.changed'")).scalar()
            handled = conn.execute(text("select count(*) from processed_messages where consumer = :name"),
                                   {"name": STOCK_TO_SHOP.name}).scalar()
            parked = conn.execute(text("select count(*) from dead_letters")).scalar()
        return handled + parked >= changes
    finally:
        engine.dispose()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the hub's processes have used so far, their live descendants included (a
    gateway on granian serves from a worker it forks): a cost that a busy machine does not inflate the way it
    inflates latency."""
    total = 0
    for pid in _with_descendants(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:          # a descendant that ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])           # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _with_descendants(pids: list[int]) -> list[int]:
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def role_cpu(roles: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each process role (gateway, relay, channel_sync, ...)."""
    return {role: cpu_seconds(pids) for role, pids in roles.items()}


def thread_cpu() -> float:
    """CPU seconds so far of this (the bench's) process: the shop simulator answering the pushes lives here."""
    return time.process_time()


def receipts(base: str, store_key: str, store: str, sku_count: int, seconds: int, db: str,
             mode: str, pids: list[int], all_pids: list[int] | None = None,
             roles: dict[str, list[int]] | None = None, profiler: Profiler | None = None) -> dict[str, float]:
    """Stock events/s through the API, one receipt per request and 100 per request (wrk), and the batched
    figure end to end: from the first request until channel sync has handled every stock event.

    Per process role too (`roles`: gateway, relay, channel_sync): CPU ms per event from /proc over the same
    window, and the push's other end (the shop simulator, in this process), so a regression shows where it is."""
    out: dict[str, float] = {}
    roles = roles or {}
    for label, batch, conns in (("single", 0, 8), ("batched", 100, 4)):
        print(f"[{mode}] stock events, {label} receipts, wrk {seconds}s x {conns} connections ...", flush=True)
        with (profiler or Profiler(None)).part(label, roles):
            started, cpu, hub_cpu = time.perf_counter(), cpu_seconds(pids), cpu_seconds(all_pids or pids)
            per_role, shop_cpu = role_cpu(roles), thread_cpu()
            r = wrk.run(base, "sales.lua", [store, store_key, str(sku_count), str(batch),
                                            f"{label}{uuid.uuid4().hex[:6]}", _now()], seconds=seconds,
                        connections=conns)
            ok = r.statuses.get("201" if batch == 0 else "200", 0)
            events = ok * max(batch, 1)
            out[f"{label}_events_per_s"] = events / r.seconds
            out[f"{label}_p99_ms"] = r.p99_ms
            out[f"{label}_failed"] = r.requests - ok + r.errors
            wait_for(lambda: synced(db), 600, "channel sync to catch up", interval=0.2)
        out[f"{label}_e2e_events_per_s"] = events / (time.perf_counter() - started)
        out[f"{label}_cpu_ms_per_event"] = (cpu_seconds(pids) - cpu) * 1000 / max(events, 1)
        # every hub process (gateways, relay, channel sync) until the shop holds every figure
        out[f"{label}_hub_cpu_ms_per_event"] = (cpu_seconds(all_pids or pids) - hub_cpu) * 1000 / max(events, 1)
        for role, before in per_role.items():
            out[f"{label}_step_ms_{role}"] = (cpu_seconds(roles[role]) - before) * 1000 / max(events, 1)
        # the bench process's own CPU over the window: the shop simulator taking the pushes (and the bench's polls)
        out[f"{label}_step_ms_shop"] = (thread_cpu() - shop_cpu) * 1000 / max(events, 1)
    return out


def rush(base: str, ops_key: str, channel_key: str, sku: str, attempts: int, db: str, pids: list[int],
         quota: int = 100) -> dict[str, float]:
    """A flash sale of `quota` units and `attempts` attempts from wrk, each its own buyer and key."""
    start = datetime.now(UTC)
    sale = requests.post(f"{base}/admin/api/flash-sales", timeout=30, headers={"Authorization": f"Bearer {ops_key}"},
                         json={"sku": sku, "location_id": "S001", "quota": quota, "per_buyer_limit": 1,
                               "min_interval_ms": 0, "starts_at": (start - timedelta(seconds=5)).isoformat(),
                               "ends_at": (start + timedelta(hours=1)).isoformat()})
    sale.raise_for_status()
    sale_id = sale.json()["sale_id"]
    threads, cpu = 2, cpu_seconds(pids)
    r = wrk.run(base, "rush.lua", [sale_id, channel_key, str(attempts // threads), uuid.uuid4().hex[:6]],
                seconds=300, connections=64, threads=threads)
    cpu_ms = (cpu_seconds(pids) - cpu) * 1000 / max(r.requests, 1)
    ended = requests.post(f"{base}/admin/api/flash-sales/{sale_id}/end", json={}, timeout=60,
                          headers={"Authorization": f"Bearer {ops_key}"})
    ended.raise_for_status()
    result = ended.json()["result"]
    engine = create_engine(db)
    with engine.connect() as conn:
        orders = conn.execute(text("select count(*) from orders where flash_sale_id = :s"), {"s": sale_id}).scalar()
    engine.dispose()
    admitted = r.statuses.get("201", 0)
    return {"rush_attempts": r.requests, "rush_per_s": r.per_s, "rush_p50_ms": r.p50_ms, "rush_p99_ms": r.p99_ms,
            "rush_admitted": admitted, "rush_orders": orders, "rush_sold_out": r.statuses.get("409", 0),
            "rush_other": r.requests - admitted - r.statuses.get("409", 0) + r.errors,
            "rush_oversold": max(result["sold_in_ledger"] - quota, 0, orders - quota, admitted - quota),
            "rush_gate_agrees": float(bool(result["agree"])), "rush_cpu_ms_per_attempt": cpu_ms}


def plain_rush(base: str, channel_key: str, sku: str, store: str, attempts: int, db: str, pids: list[int],
               units: int = 100) -> dict[str, float]:
    """An ordinary order rush on one SKU, no flash sale: `attempts` pickups of one unit on `units` units, each its own
    key and buyer. Oversold from the ledger: orders holding the SKU there beyond the units it had."""
    threads, cpu = 2, cpu_seconds(pids)
    r = wrk.run(base, "plain_rush.lua", [channel_key, sku, store, str(attempts // threads), uuid.uuid4().hex[:6]],
                seconds=300, connections=64, threads=threads)
    cpu_ms = (cpu_seconds(pids) - cpu) * 1000 / max(r.requests, 1)
    engine = create_engine(db)
    with engine.connect() as conn:
        held = conn.execute(text("select coalesce(sum(qty), 0) from reservations where sku = :s and location_id = :l"),
                            {"s": sku, "l": store}).scalar()
        on_hand, reserved = conn.execute(text("select on_hand, reserved from stock_levels where sku = :s and "
                                              "location_id = :l"), {"s": sku, "l": store}).one()
    engine.dispose()
    admitted = r.statuses.get("201", 0)
    return {"plain_attempts": r.requests, "plain_per_s": r.per_s, "plain_p50_ms": r.p50_ms, "plain_p99_ms": r.p99_ms,
            "plain_admitted": admitted, "plain_sold_out": r.statuses.get("409", 0),
            "plain_other": r.requests - admitted - r.statuses.get("409", 0) + r.errors,
            "plain_oversold": max(held - units, admitted - units, reserved - on_hand, 0),
            "plain_cpu_ms_per_attempt": cpu_ms}


def ingest(base: str, store_keys: dict[str, str], skus: list[str], n: int, clients: int = 8) -> float:
    """POS sales through the API into the ledger: requests per second (each is one stock event)."""
    def worker(count: int) -> None:
        session, rng = requests.Session(), random.Random()
        for _ in range(count):
            store = rng.choice(sorted(store_keys))
            _sale(session, base, store_keys[store], store, rng.choice(skus))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [n // clients] * clients))
    return (n // clients * clients) / (time.perf_counter() - started)


def sync_latency(base: str, store_key: str, store: str, sku: str, shop: object, start_figure: int,
                 channel_safety: int, samples: int, budget_s: float = 90) -> list[float]:
    """POS sale -> the shop simulator holds the new figure, one sale at a time (milliseconds); fewer samples
    when a hub that lags seconds behind its load would make `samples` of them take many minutes."""
    session = requests.Session()
    out: list[float] = []
    figure = start_figure
    deadline = time.monotonic() + budget_s
    for _ in range(samples):
        if out and time.monotonic() > deadline:
            print(f"  {len(out)} samples in the {budget_s:.0f} s budget", flush=True)
            break
        figure -= 1
        expected = max(figure - channel_safety, 0)
        started = time.perf_counter()
        _sale(session, base, store_key, store, sku)
        # The shop simulator answers from this process: a tighter poll would take its GIL from the simulator.
        try:
            wait_for(lambda e=expected: shop.stock_of(sku, store) == e, 30, "the shop figure", interval=0.002)
        except AssertionError:        # a hub that falls behind its load: the sample counts as 30 s, the run goes on
            print(f"  the shop did not show {expected} within 30 s", flush=True)
        out.append((time.perf_counter() - started) * 1000)
    return out


def orders(base: str, channel_key: str, skus: list[str], store: str, n: int, clients: int = 8) -> tuple[float, int]:
    """Pickup orders through routing and reservation: accepted orders per second, and refusals."""
    refused = [0]

    def worker(count: int) -> None:
        session, rng = requests.Session(), random.Random()
        for _ in range(count):
            body = {"lines": [{"sku": rng.choice(skus), "qty": 1}],
                    "buyer": {"id": f"bench-{uuid.uuid4().hex[:6]}", "name": "Bench", "phone": "13800000000"},
                    "fulfillment": {"type": "pickup", "store_id": store}}
            r = session.post(f"{base}/api/v1/orders", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {channel_key}", "Idempotency-Key": uuid.uuid4().hex})
            if r.status_code == 409:
                refused[0] += 1
            else:
                r.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [n // clients] * clients))
    return (n // clients * clients - refused[0]) / (time.perf_counter() - started), refused[0]


def summary(fig: Figures) -> dict[str, float]:
    if not fig.sync_ms:                     # the sync figure was not asked for (--only)
        return {"orders_per_s": fig.orders_per_s} if fig.orders_per_s else {}
    out = {"ingest_per_s": fig.ingest_per_s, "p50": fig.pct(50), "p95": fig.pct(95), "p99": fig.pct(99),
           "mean": statistics.fmean(fig.sync_ms), "samples": len(fig.sync_ms)}
    # the orders figure only where it was run: a run without it printed "0 pickup orders/s"
    return out | ({"orders_per_s": fig.orders_per_s} if fig.orders_per_s else {})
