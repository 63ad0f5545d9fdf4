"""`python -m bench --only quotes`: quotes from three couriers (Dada, SF 同城, 闪送) for 50 delivery orders a second.

Each order's quote round is the one `flows/delivery.py` runs before booking: `services/courier_quotes.ask` over
the store's couriers from the registry (the real connectors, metered, signing each request), all three asked in
parallel within `hub.courier_quote_deadline_s`. Orders start on the clock (open loop: a slow round does not slow
the pace), each on its own green thread, as the fulfilment worker's do; the driver is a child process patched by
eventlet like a worker, so its CPU per order is the hub side's alone — the simulators run in the bench process.

Figures: the share of orders with all three quotes within the deadline, the rounds' p50/p99, the couriers that
missed (late or failed), CPU ms per order (the driver's user + system time over the run).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RATE_PER_S = 50
SECONDS = 20
COURIERS = ("local_delivery", "sf_same_city", "shansong")
STORES = ("S001", "S002", "S003")          # orders spread over the stores, each served by the three couriers
TARGET_SHARE = 0.99                         # of orders with every courier's quote within the deadline
TARGET_P99_MS = 250.0                       # a quote round, well inside the deadline
BUDGET_CPU_MS = 5.0                         # the hub side's CPU per order's round (three signed HTTP calls)


@dataclass(frozen=True)
class Round:
    """One order's quote round: how long `ask` took and which couriers quoted within the deadline."""

    seconds: float
    quoted: frozenset[str]
    missed: tuple[str, ...] = ()            # couriers that failed or were late, with why ("sf_same_city: ...")


def schedule(rate_per_s: float, seconds: float) -> list[float]:
    """The start offsets (s) of the orders: evenly paced, `rate_per_s` for `seconds`."""
    return [i / rate_per_s for i in range(int(rate_per_s * seconds))]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(rounds: Iterable[Round], *, couriers: Iterable[str], cpu_s: float, wall_s: float,
              asked: int) -> dict[str, Any]:
    """The part's figures from the rounds: share with all quotes, p50/p99 ms, CPU ms per order, misses."""
    rounds = list(rounds)
    wanted = frozenset(couriers)
    full = sum(1 for r in rounds if wanted <= r.quoted)
    ms = [r.seconds * 1000 for r in rounds]
    missed = Counter(m.split(":", 1)[0] for r in rounds for m in r.missed)
    return {"quotes_orders": len(rounds), "quotes_asked": asked,
            "quotes_share_all": full / asked if asked else 0.0,
            "quotes_p50_ms": percentile(ms, 50), "quotes_p99_ms": percentile(ms, 99),
            "quotes_max_ms": max(ms, default=0.0),
            "quotes_cpu_ms_per_order": cpu_s * 1000 / len(rounds) if rounds else 0.0,
            "quotes_orders_per_s": len(rounds) / wall_s if wall_s else 0.0,
            "quotes_missed": dict(sorted(missed.items()))}


# -- the driver (a child process: `python -m bench.quotes DATABASE_URL`) --------------------------------------

def drive(database_url: str, rate_per_s: float, seconds: float) -> dict[str, Any]:
    import eventlet
    eventlet.monkey_patch()                  # as the fulfilment worker (workers/cli.py) runs the quote round

    from connectors.registry import build_connector
    from hub.bootstrap import build_context
    from hub.config import load_config
    from hub.domain.model import Address, Buyer, Fulfillment, FulfillmentType, OrderLine, OrderSnapshot
    from hub.flows import callback_url
    from hub.services import courier_quotes

    ctx = build_context(load_config(), database_url, connectors=build_connector)
    deadline = ctx.config.hub.courier_quote_deadline_s
    stores = [s for s in ctx.config.stores if s.id in STORES]
    couriers = {s.id: ctx.connectors.couriers(s.id) for s in stores}
    assert all({c.name for c in cs} >= set(COURIERS) for cs in couriers.values()), couriers
    rounds: list[Round] = []
    run = f"Q{int(time.time())}"

    def one(i: int) -> None:
        store = stores[i % len(stores)]
        near = Address(f"next to {store.name}", store.lat + 0.004, store.lng + 0.003, "Bench Buyer", "13900001111")
        order = OrderSnapshot(f"{run}-{i:05d}", "miniprogram", "paid", Fulfillment(FulfillmentType.DELIVERY,
                                                                                     store.id, near),
                              (OrderLine("POT-003", 1, 36000),), Buyer(f"b{i}", "Bench Buyer", "13900001111"),
                              36000, store.id, datetime.now(UTC), datetime.now(UTC), weight_g=1200)
        started = time.perf_counter()
        asked = courier_quotes.ask(couriers[store.id], order, store, lambda n: callback_url(ctx.config, n), deadline)
        took = time.perf_counter() - started
        rounds.append(Round(took, frozenset(q.carrier for q in asked.quotes),
                            tuple(f"{k}: {v}"[:120] for k, v in sorted(asked.failures.items()))))

    for i in range(3):                       # connections and tokens warmed, outside the figures
        one(-1 - i)
    rounds.clear()
    pool = eventlet.GreenPool(10_000)
    due = schedule(rate_per_s, seconds)
    cpu0, start = os.times(), time.monotonic()
    for i, at in enumerate(due):
        eventlet.sleep(max(0.0, start + at - time.monotonic()))
        pool.spawn_n(one, i)
    pool.waitall()
    wall, cpu1 = time.monotonic() - start, os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    out = summarize(rounds, couriers=COURIERS, cpu_s=cpu, wall_s=wall, asked=len(due))
    out["quotes_deadline_ms"] = deadline * 1000
    out["quotes_rate_asked"] = rate_per_s
    ctx.engine.dispose()
    return out


# -- the part, as bench/__main__.py runs it ------------------------------------------------------------------

def run(database_url: str, workdir: Path, rate_per_s: float = RATE_PER_S, seconds: float = SECONDS
        ) -> dict[str, Any]:
    """The three courier simulators here, their bindings in the bench database, the driver in a child process."""
    from bench.pgbench import ensure_pg_database
    from connectors.registry import build_connector
    from hub.bootstrap import build_context
    from hub.config import load_config
    from hub.storage.bindings import SqlBinder
    from sandbox.bindings import bind_sandbox
    from sandbox.runner import start_sandbox

    sandbox = start_sandbox(only=list(COURIERS))
    try:
        sandbox.local_delivery.step_s = None          # no rides: only quotes are asked
        env = {**os.environ, **sandbox.env(), "HUB_LOG_LEVEL": "WARNING"}
        os.environ.update(sandbox.env())
        if database_url.startswith("postgresql"):
            ensure_pg_database(database_url)
        ctx = build_context(load_config(), database_url, connectors=build_connector)
        bind_sandbox(SqlBinder(ctx.session_factory), sandbox, ["POT-003"])
        ctx.engine.dispose()
        print(f"[quotes] {rate_per_s:.0f} delivery orders/s for {seconds:.0f}s, quotes from {', '.join(COURIERS)} "
              "...", flush=True)
        log = workdir / "quotes-driver.log"
        before = os.times()
        with open(log, "wb") as err:
            done = subprocess.run([sys.executable, "-m", "bench.quotes", database_url, str(rate_per_s), str(seconds)],
                                  env=env, stdout=subprocess.PIPE, stderr=err, timeout=seconds * 10 + 120)
        if done.returncode != 0:
            raise RuntimeError(f"the quote driver failed (rc {done.returncode}); see {log}")
        after = os.times()
        out: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        # The simulators' side (this process, the three servers' threads; warm-up included): when it nears a
        # core's worth, their queue — not the hub — sets the rounds' tail.
        sims_s = (after.user - before.user) + (after.system - before.system)
        out["quotes_sim_cpu_ms_per_order"] = sims_s * 1000 / max(out["quotes_orders"], 1)
        return out
    finally:
        sandbox.stop()


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The part's lines of the bench table: figure, value, conditions, target."""
    if "quotes_orders" not in r:
        return []
    share = r["quotes_share_all"]
    missed = ", ".join(f"{k} {v}" for k, v in r.get("quotes_missed", {}).items()) or "none"
    return [
        ("orders with all 3 courier quotes in time", f"{share * 100:.2f}%",
         f"{r['quotes_orders']} of {r['quotes_asked']} orders at {r['quotes_rate_asked']:.0f}/s asked "
         f"({r['quotes_orders_per_s']:.1f}/s done), deadline {r['quotes_deadline_ms']:.0f} ms",
         f">= {TARGET_SHARE * 100:.0f}% ({'ok' if share >= TARGET_SHARE else 'BELOW'})"),
        ("  quote round p50 / p99 / max ms", f"{r['quotes_p50_ms']:.1f} / {r['quotes_p99_ms']:.1f} / "
         f"{r['quotes_max_ms']:.0f}", f"couriers missing a quote: {missed}",
         f"p99 < {TARGET_P99_MS:.0f} ({'ok' if r['quotes_p99_ms'] < TARGET_P99_MS else 'OVER'})"),
        ("  hub CPU ms per order's round", f"{r['quotes_cpu_ms_per_order']:.2f}",
         "the driver process (eventlet, as a worker); simulators' "
         f"{r.get('quotes_sim_cpu_ms_per_order', 0):.2f}",
         f"<= {BUDGET_CPU_MS} ms ({'ok' if r['quotes_cpu_ms_per_order'] <= BUDGET_CPU_MS else 'OVER'})"),
    ]


if __name__ == "__main__":
    url, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(drive(url, rate, secs)), flush=True)
