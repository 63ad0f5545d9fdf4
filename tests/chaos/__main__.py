"""`make chaos` (`python -m tests.chaos`): production mode — `hub up` with two replicas of gateway,
relay, channel_sync and fulfilment on RabbitMQ + PostgreSQL, the simulators alongside — under POS
sales, paid pickup orders and paid delivery orders, while each service is killed with SIGKILL, the database
refuses connections for 6 s and RabbitMQ is stopped for 12 s. Then it checks and prints what must hold.

The delivery orders go to addresses next to each of the three stores, whose courier lists and rule (COURIERS,
`preference`) put each store's first booking with another courier — Dada, SF 同城, 闪送 — all booked at payment;
the check asks each courier's simulator what it holds: one live booking per order, at its store's courier, the
one the hub recorded (none lost, none doubled). Riders are not moved (the Dada simulator's rides are off), so a
delivery's units stay reserved and the stock check stays exact.

Runs against its own database and vhost: HUB_CHAOS_DATABASE_URL, HUB_CHAOS_BROKER_URL (default
hub_chaos on the local servers). `rabbitmqctl stop_app` stops RabbitMQ for the whole machine:
`--no-broker-stop` leaves it out.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select, text

from connectors.registry import build_connector
from hub.bootstrap import build_context, sync_locations
from hub.config import DEFAULT_CONFIG_PATH, load_config
from hub.domain.stock import channel_available
from hub.flows.erp_pull import pull_products
from hub.services import inventory
from hub.storage.bindings import SqlBinder
from hub.storage.tables import Base, DeadLetter, OutboxMessage, Shipment
from sandbox.bindings import bind_sandbox
from sandbox.credentials import sandbox_env
from sandbox.runner import start_sandbox
from tests.backbone.harness import purge_hub_queues
from tests.faults import allow_connections, child_pids, command_line, refuse_connections
from tests.support import always_open, count
from workers.launcher import ROOT, wait_for

from .load import Tally, run_load

STORES = ["S001", "S002", "S003"]
PICKUP_STORES = ["S001", "S002"]           # S003 takes no pickup orders
# each store's couriers, first asked first (rule `preference`): every courier is some store's first
COURIERS = {"S001": ["local_delivery", "sf_same_city"], "S002": ["sf_same_city", "shansong"],
            "S003": ["shansong", "local_delivery"]}
SKUS = ["TEA-001", "CUP-002", "POT-003", "SET-004"]
START_ON_HAND = 5000
REPLICAS = {"gateway": 2, "relay": 2, "channel_sync": 2, "fulfilment": 2, "erp_sync": 1, "scheduler": 1}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def several_couriers(config_text: str) -> str:
    """The config with each store's COURIERS under rule `preference`, every store booking its rider at payment."""
    text = re.sub(r"\n\s*dispatch: \{[^}]*\}", "", config_text)
    for store, couriers in COURIERS.items():
        key = f"    pos_key: ${{HUB_POS_{store}_KEY}}\n"
        assert key in text, store
        text = text.replace(key, key + f"    couriers: [{', '.join(couriers)}]\n    courier_rule: preference\n"
                                       "    dispatch: {book: at_payment}\n")
    return text


def live_bookings(sandbox: Any) -> dict[str, list[tuple[str, str]]]:
    """Order id -> the (courier, its booking number) each courier's simulator holds live for it."""
    held: dict[str, list[tuple[str, str]]] = {}
    for order_id, d in list(sandbox.local_delivery.deliveries.items()):
        if d.booked and d.status not in (4, 5, 7, 10):
            held.setdefault(order_id, []).append(("local_delivery", d.delivery_no))
    for order_id, o in list(sandbox.sf_same_city.orders.items()):
        if o.status not in (2, 22):
            held.setdefault(order_id, []).append(("sf_same_city", o.sf_order_id))
    for o in list(sandbox.shansong.orders.values()):
        if o.placed and o.status not in (50, 60):
            held.setdefault(o.order_no, []).append(("shansong", o.iss_order_no))
    return held


def check_bookings(ctx: Any, sandbox: Any, tally: Tally) -> tuple[bool, str, int, int]:
    """Each paid delivery order: one live booking at its store's first courier, the one the hub holds active.
    (ok, detail, lost, doubled)."""
    held = live_bookings(sandbox)
    with ctx.reader() as uow:
        recorded = {(oid, carrier): ref for oid, carrier, ref in uow.session.execute(
            select(Shipment.order_id, Shipment.carrier, Shipment.shipment_ref).where(
                Shipment.active.is_(True), Shipment.order_id.in_(list(tally.deliveries) or [""])))}
    per_courier: Counter = Counter()
    missing, twice, elsewhere = [], [], []
    for order_id, store in tally.deliveries.items():
        mine = held.get(order_id, [])
        if len(mine) > 1:
            twice.append(order_id)
        elif not mine or recorded.get((order_id, mine[0][0])) != mine[0][1]:
            missing.append(order_id)                       # nobody holds it, or not the booking the hub recorded
        elif mine[0][0] != COURIERS[store][0]:
            elsewhere.append(f"{order_id}@{mine[0][0]}")
        else:
            per_courier[mine[0][0]] += 1
    every = len(tally.deliveries) < len(COURIERS) or set(per_courier) == {c[0] for c in COURIERS.values()}
    detail = (", ".join(f"{c} {n}" for c, n in sorted(per_courier.items())) or "none booked") + \
        f"; {len(missing)} missing, {len(twice)} twice, {len(elsewhere)} at another courier"
    return not missing and not twice and not elsewhere and every, detail, len(missing), len(twice)


def prepare(ctx: Any, sandbox: Any) -> None:
    """An empty database with the sandbox's catalogue, bindings and START_ON_HAND of each SKU per store."""
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with ctx.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    sync_locations(ctx)
    bind_sandbox(SqlBinder(ctx.session_factory), sandbox, SKUS)
    pull_products(ctx)
    with ctx.uow() as uow:
        for store in STORES:
            for sku in SKUS:
                inventory.apply_count(uow, count(sku, store, START_ON_HAND, minutes=-600, ext=f"start-{sku}-{store}"))
        uow.commit()


class Hub:
    """`hub up` as a child process."""

    def __init__(self, env: dict[str, str], workdir: Path):
        self.logs = workdir / "logs"
        self.out = open(workdir / "up.log", "wb")
        args = ",".join(f"{k}={v}" for k, v in REPLICAS.items())
        self.proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "up", "--replicas", args,
                                      "--log-dir", str(self.logs)], cwd=ROOT, env=env, stdout=self.out,
                                     stderr=subprocess.STDOUT)

    def children(self, service: str | None = None) -> list[int]:
        return [c for c in child_pids(self.proc.pid) if service is None or command_line(c)[-1:] == [service]]

    def restarts(self) -> int:
        return (Path(self.out.name).read_text()).count("restarting in")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.out.close()


class Faults:
    def __init__(self) -> None:
        self.done: list[tuple[str, float, float]] = []      # (what, started, ended) in monotonic time

    def kill(self, hub: Hub, service: str) -> None:
        victims = hub.children(service)
        if victims:
            os.kill(victims[0], signal.SIGKILL)
            now = time.monotonic()
            self.done.append((f"kill -9 {service} (pid {victims[0]})", now, now))

    def database_down(self, database_url: str, seconds: float) -> None:
        start = time.monotonic()
        refuse_connections(database_url)
        try:
            time.sleep(seconds)
        finally:
            allow_connections(database_url)
        self.done.append((f"database refusing connections {seconds:.0f}s", start, time.monotonic()))

    def broker_down(self, seconds: float) -> None:
        start = time.monotonic()
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
        try:
            time.sleep(seconds)
        finally:
            subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True)
        self.done.append((f"RabbitMQ stopped {seconds:.0f}s", start, time.monotonic()))


def check(ctx: Any, cfg: Any, sandbox: Any, tally: Tally, hub: Hub) -> dict[str, Any]:
    """Everything that must hold once the hub has converged; each entry (ok, detail)."""
    safety = cfg.channel("wechat_shop").safety_stock           # what the shop is shown
    off, shop_off, oversold = [], [], []
    lost = doubled = 0
    with ctx.reader() as uow:
        for store in STORES:
            for sku in SKUS:
                level = inventory.stock_at(uow.session, cfg, sku, store)
                want_on_hand = START_ON_HAND - tally.sold[(sku, store)]
                if level.on_hand != want_on_hand or level.reserved != tally.reserved[(sku, store)]:
                    off.append(f"{sku}@{store} on_hand {level.on_hand} (want {want_on_hand}) reserved "
                               f"{level.reserved} (want {tally.reserved[(sku, store)]})")
                    lost += max(0, level.on_hand - want_on_hand)
                    doubled += max(0, want_on_hand - level.on_hand)
                if level.available < 0:
                    oversold.append(f"{sku}@{store} {level.available}")
                shown = sandbox.wechat_shop.stock_of(sku, store)
                if shown != channel_available(level.available, safety):
                    shop_off.append(f"{sku}@{store} shop {shown} hub {channel_available(level.available, safety)}")
        parked = uow.session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
        unsent = uow.session.execute(select(func.count()).where(OutboxMessage.sent_at.is_(None))).scalar_one()
    at_pos = Counter(o["reference_id"] for o in list(sandbox.pos.orders.values()))
    missing = [o for o in tally.paid_orders if at_pos[o] == 0]
    twice = [o for o, n in at_pos.items() if n > 1]
    lost += len(missing)
    doubled += len(twice)
    booked_ok, booked, unbooked, booked_twice = check_bookings(ctx, sandbox, tally)
    lost += unbooked
    doubled += booked_twice
    alive = {s: len(hub.children(s)) for s in REPLICAS}
    return {
        "every request answered": (not tally.unanswered and not tally.refused,
                                   f"{tally.requests} requests, {tally.retries} retries, "
                                   f"{len(tally.unanswered)} unanswered, {len(tally.refused)} refused"),
        "hub stock = start - sales": (not off, "; ".join(off[:4]) or "exact for every SKU and store"),
        "shop shows the hub's figure": (not shop_off, "; ".join(shop_off[:4]) or "every SKU and store"),
        "nothing oversold": (not oversold, ", ".join(oversold) or "no negative availability"),
        "every paid order at the POS once": (not missing and not twice,
                                             f"{len(tally.paid_orders)} paid, {len(missing)} missing, "
                                             f"{len(twice)} twice"),
        f"every paid delivery booked once ({len(tally.deliveries)})": (booked_ok, booked),
        "zero dead letters": (parked == 0, f"{parked} dead letter(s)"),
        "outbox drained": (unsent == 0, f"{unsent} unsent"),
        "every service alive or restarted": (alive == REPLICAS, f"{alive}, {hub.restarts()} restart(s)"),
        "_lost": lost, "_doubled": doubled, "_parked": parked,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sales", type=int, default=1500)
    ap.add_argument("--orders", type=int, default=150)
    ap.add_argument("--deliveries", type=int, default=60, help="delivery orders, spread over the three stores")
    ap.add_argument("--duration", type=float, default=50.0, help="seconds the load is spread over")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--db-outage", type=float, default=6.0)
    ap.add_argument("--broker-stop", type=float, default=12.0)
    ap.add_argument("--no-broker-stop", action="store_true")
    ap.add_argument("--converge-timeout", type=float, default=180.0)
    args = ap.parse_args(argv)
    db_url = os.environ.get("HUB_CHAOS_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/hub_chaos")
    broker_url = os.environ.get("HUB_CHAOS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/hub_chaos")
    workdir = Path(tempfile.mkdtemp(prefix="hub-chaos-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config_file = workdir / "config.yaml"
    config_file.write_text(several_couriers(always_open(DEFAULT_CONFIG_PATH.read_text())))

    sandbox = start_sandbox(callback_base=base)
    sandbox.local_delivery.step_s = None          # no rides: the bookings are what is checked (module docstring)
    env = {**os.environ, **sandbox_env(), **sandbox.env(), "HUB_CONFIG": str(config_file),
           "HUB_DATABASE_URL": db_url, "HUB_BROKER_URL": broker_url, "HUB_HTTP_PORT": str(port),
           "HUB_LOG_LEVEL": os.environ.get("HUB_LOG_LEVEL", "WARNING"), "PYTHONUNBUFFERED": "1"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("HUB_")})
    cfg = load_config(config_file)
    ctx = build_context(cfg, db_url, connectors=build_connector)
    hub = None
    faults = Faults()
    try:
        prepare(ctx, sandbox)
        purge_hub_queues(broker_url)
        hub = Hub(env, workdir)
        wait_for(lambda: sum(len(hub.children(s)) for s in REPLICAS) == sum(REPLICAS.values())
                 and len(list(hub.logs.glob("*.log"))) == sum(REPLICAS.values())
                 and all(b"hub: running" in p.read_bytes() for p in hub.logs.glob("*.log")), 120,
                 "every service to start")
        wait_for(lambda: _healthy(base), 60, "the gateway")
        print(f"chaos: hub up on {base}; logs in {workdir}", flush=True)
        keys = {"channel": cfg.channel("miniprogram").key, **{s.id: s.pos_key for s in cfg.stores}}
        tally = Tally()
        started = time.monotonic()
        near = {s: (cfg.location(s).lat, cfg.location(s).lng) for s in COURIERS}
        threads = run_load(base, keys, STORES, SKUS, sandbox.wechat_pay, sales=args.sales, orders=args.orders,
                           clients=args.clients, duration_s=args.duration, tally=tally, pickup_stores=PICKUP_STORES,
                           deliveries=args.deliveries, delivery_from=near)
        time.sleep(3)
        for service in REPLICAS:
            faults.kill(hub, service)
            time.sleep(2)
        faults.database_down(db_url, args.db_outage)
        if not args.no_broker_stop:
            time.sleep(3)
            faults.broker_down(args.broker_stop)
        for t in threads:
            t.join()
        load_done = time.monotonic()
        last_fault = max(end for _, _, end in faults.done)
        result: dict[str, Any] = {}

        def converged() -> bool:
            result.update(check(ctx, cfg, sandbox, tally, hub))
            return all(ok for k, (ok, _) in ((k, v) for k, v in result.items() if not k.startswith("_")))

        try:
            wait_for(converged, args.converge_timeout, "convergence", interval=0.5)
            ok = True
        except AssertionError:
            ok = False
        done = time.monotonic()
    finally:
        if hub is not None:
            hub.stop()
        sandbox.stop()
        allow_connections(db_url)
        ctx.engine.dispose()

    events = sum(tally.sold.values()) + 2 * len(tally.paid_orders) + 2 * len(tally.deliveries)
    print(f"\nevents: {sum(tally.sold.values())} POS sales, {len(tally.paid_orders)} pickup orders and "
          f"{len(tally.deliveries)} delivery orders placed and paid ({events} in all) over {load_done - started:.0f}s")
    print(f"faults ({len(faults.done)}): " + "; ".join(what for what, _, _ in faults.done))
    for name, value in result.items():
        if not name.startswith("_"):
            print(f"  [{'ok' if value[0] else 'FAIL'}] {name}: {value[1]}")
    print(f"lost: {result.get('_lost')}  doubled: {result.get('_doubled')}  dead letters: {result.get('_parked')}")
    if ok:
        print(f"converged {done - last_fault:.1f}s after the last fault ({max(0.0, done - load_done):.1f}s after "
              "the last request)")
    else:
        print(f"NOT converged within {args.converge_timeout:.0f}s; logs in {workdir}")
    return 0 if ok else 1


def _healthy(base: str) -> bool:
    try:
        return requests.get(base + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"chaos: stopped by signal {signum}")     # runs the clean-up: hub down, database allowed


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    threading.excepthook = lambda a: print(f"chaos: a thread failed: {a.exc_value!r}", file=sys.stderr)
    sys.exit(main())
