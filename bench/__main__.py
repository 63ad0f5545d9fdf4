"""`python -m bench` (make bench): the hub's throughput and sync latency in production mode
(RabbitMQ + PostgreSQL, one process per service) and embedded mode (SQLite + in-memory broker,
one process), each beside the broker's own publish -> consume rate measured in the same run."""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from connectors.registry import build_connector
from hub.bootstrap import build_context, upsert_skus
from hub.config import load_config
from hub.domain.model import Sku, StockCount
from hub.services import inventory
from hub.storage.bindings import SqlBinder
from hub.storage.tables import Base, utcnow
from sandbox import meituan
from sandbox.runner import start_sandbox
from sandbox.wechat_shop import seed_binder
from workers.launcher import HubProcess, wait_for

from . import backbone, quotes, report, scale, scenario
from .alt_gateway import AltGateway
from .broker_raw import raw_rate
from .load import PacedLoad
from .pgbench import ensure_pg_database, sale_tps
from .profile import Profiler

PG_URL = os.environ.get("HUB_BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/hub_bench")
AMQP_URL = os.environ.get("HUB_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/hub_bench")
SCALE_URL = os.environ.get("HUB_BENCH_SCALE_DATABASE_URL", PG_URL + "_scale")
REDIS_URL = os.environ.get("HUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SKUS = [f"BENCH-{i:03d}" for i in range(40)]
LATENCY_SKU = "BENCH-LAT"
RUSH_SKU = "BENCH-RUSH"
PLAIN_SKU = "BENCH-PLAIN"                   # the plain-order rush's SKU: PLAIN_UNITS to sell at S001
PLAIN_UNITS = 100
START = 1_000_000
PARTS = ("receipts", "rush", "plain", "sync", "orders", "events", "scale", "quotes")
ON_THEIR_OWN = {"quotes"}                  # a part that starts what it measures itself, not a mode's hub
LOAD_ORDERS_PER_S = 10                      # pickup orders beside the sales during the sync figure


def _ensure_vhost(url: str) -> None:
    vhost = make_url(url.replace("amqp://", "postgresql://", 1)).database or "/"
    listed = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True).stdout.split()
    if vhost not in listed:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                       capture_output=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(database_url: str, shop: object) -> None:
    cfg = load_config()
    ctx = build_context(cfg, database_url, connectors=build_connector)
    if ctx.engine.dialect.name == "postgresql":
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with ctx.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        from hub.bootstrap import sync_locations
        sync_locations(ctx)
    codes = [*SKUS, LATENCY_SKU, RUSH_SKU]
    with ctx.uow() as uow:
        upsert_skus(uow, [Sku(c, f"bench item {c}", price_fen=1000) for c in [*codes, PLAIN_SKU]])
        now = utcnow()
        for code in codes:
            for store in ("S001", "S002"):
                inventory.apply_count(uow, StockCount("bench", f"open-{code}-{store}", code, store, START, now))
        held_back = cfg.safety_stock("S001") + cfg.channel("miniprogram").safety_stock
        inventory.apply_count(uow, StockCount("bench", f"open-{PLAIN_SKU}", PLAIN_SKU, "S001",
                                              PLAIN_UNITS + held_back, now))
        uow.commit()
    pushed = [*codes, PLAIN_SKU]                # every SKU whose stock moves is pushed to each channel
    shop.seed_catalog(pushed)
    binder = SqlBinder(ctx.session_factory)
    seed_binder(binder, pushed)
    meituan.seed_binder(binder, pushed)         # the second channel stock is pushed to (issue 23)
    ctx.engine.dispose()


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    # Every channel config.yaml publishes stock to: the mini-program's shop and Meituan (issue 23).
    sandbox = start_sandbox(only=["wechat_shop", "meituan"])
    shop = sandbox.wechat_shop
    env = {**os.environ, **sandbox.env(), "HUB_LOG_LEVEL": "WARNING"}
    os.environ.update(sandbox.env())
    if mode == "production":
        ensure_pg_database(PG_URL)
        _ensure_vhost(AMQP_URL)
        db, broker = PG_URL, AMQP_URL
        env["HUB_REDIS_URL"] = REDIS_URL
        # Gateways share the HTTP port (SO_REUSEPORT), so both cores serve HTTP; one relay and one channel sync.
        groups = [["gateway"]] * args.gateways + [["relay"], ["channel_sync"]]
    else:
        db, broker = f"sqlite:///{workdir}/bench.sqlite", "memory://"
        env.pop("HUB_REDIS_URL", None)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workdir}/bench.sqlite{suffix}").unlink(missing_ok=True)
        groups = [["gateway", "relay", "channel_sync"]]
    os.environ["HUB_DATABASE_URL"] = env["HUB_DATABASE_URL"] = db
    os.environ["HUB_BROKER_URL"] = env["HUB_BROKER_URL"] = broker
    _prepare(db, shop)
    cfg = load_config()
    base = f"http://{cfg.hub.http.host}:{cfg.hub.http.port}"
    store_keys = {s.id: s.pos_key for s in cfg.stores if s.id in ("S001", "S002")}
    channel = cfg.channel("miniprogram")
    out: dict[str, float] = {}
    if mode == "production":
        print(f"[{mode}] pgbench: the sale-shaped transaction on PostgreSQL itself ...", flush=True)
        out["pgbench_tps"] = sale_tps(db, seconds=args.seconds)
    profiler = Profiler(Path(args.profile) / mode if args.profile else None)
    # gunicorn, granian and nameko are the hub's own gateway (`hub.http.server`); bjoern is only the bench's.
    env["HUB_GATEWAY_SERVER"] = "nameko" if args.gateway_server == "bjoern" else args.gateway_server
    alt = args.gateway_server if mode == "production" and args.gateway_server == "bjoern" else None
    procs: list[HubProcess | AltGateway] = [
        AltGateway(alt, env, workdir / f"{mode}-{alt}-{i}.log", cfg.hub.http.host, cfg.hub.http.port)
        if alt and g == ["gateway"] else HubProcess(g, env | profiler.env(), workdir / f"{mode}-{'-'.join(g)}.log")
        for i, g in enumerate(groups)]
    try:
        import requests
        wait_for(lambda: _up(requests, base), 90, "the gateway")
        print(f"[{mode}] broker raw rate ...", flush=True)
        out["broker_raw_per_s"] = raw_rate(broker if mode == "production" else "memory://", messages=args.raw)
        pids = [p.pids() if isinstance(p, AltGateway) else [p.proc.pid] for p in procs]
        gateway_pid = [pid for group, g in zip(pids, groups, strict=True) if "gateway" in g for pid in group]
        out["gateways"] = sum(1 for g in groups if "gateway" in g)
        roles: dict[str, list[int]] = {}
        for group, g in zip(pids, groups, strict=True):
            roles.setdefault("+".join(g) + (f" ({alt})" if alt and g == ["gateway"] else ""), []).extend(group)
        if "receipts" in args.only:
            out |= scenario.receipts(base, store_keys["S001"], "S001", len(SKUS), args.seconds, db, mode, gateway_pid,
                                     [pid for group in pids for pid in group], roles=roles, profiler=profiler)
        if "rush" in args.only:
            print(f"[{mode}] flash-sale rush: {args.attempts} attempts on 100 units ...", flush=True)
            with profiler.part("rush", roles):
                out |= scenario.rush(base, cfg.hub.ops_key, channel.key, RUSH_SKU, args.attempts, db, gateway_pid)
        if "plain" in args.only:
            print(f"[{mode}] plain-order rush: {args.attempts} attempts on {PLAIN_UNITS} units, no flash sale ...",
                  flush=True)
            with profiler.part("plain", roles):
                out |= scenario.plain_rush(base, channel.key, PLAIN_SKU, "S001", args.attempts, db, gateway_pid,
                                           units=PLAIN_UNITS)
        latency: list[float] = []
        if "sync" in args.only:
            print(f"[{mode}] sync latency, {args.samples} samples, under {args.load_rate}/s sales + orders ...",
                  flush=True)
            with PacedLoad(base, "S002", store_keys["S002"], channel.key, len(SKUS), scenario.now_iso(),
                           rate_per_s=args.load_rate, orders_per_s=LOAD_ORDERS_PER_S) as load, \
                    profiler.part("sync", roles):
                latency = scenario.sync_latency(base, store_keys["S001"], "S001", LATENCY_SKU, shop, START,
                                                channel.safety_stock, args.samples)
            out["load_per_s"] = load.sent / load.seconds
            out["load_errors"] = load.errors
            out["load_asked"] = args.load_rate + LOAD_ORDERS_PER_S
            out["load_behind"] = load.behind      # requests queued, not yet sent: the hub fell behind the pace
        orders_per_s, refused = 0.0, 0
        if "orders" in args.only:
            print(f"[{mode}] {args.orders} pickup orders ...", flush=True)
            orders_per_s, refused = scenario.orders(base, channel.key, SKUS, "S002", args.orders)
        out |= scenario.summary(scenario.Figures(0, latency, orders_per_s, refused))
    finally:
        for p in procs:
            p.stop()
    if "events" not in args.only:
        sandbox.stop()
        return out
    try:
        print(f"[{mode}] 1000 events through outbox, relay and an idempotent consumer ...", flush=True)
        env["HUB_EXTRA_SERVICES"] = backbone.SERVICE
        ping_groups = [["relay"], [backbone.SERVICE]] if mode == "production" else [["relay", backbone.SERVICE]]
        out["events_1000_s"] = backbone.events_end_to_end(env, ping_groups, workdir)
        return out
    finally:
        sandbox.stop()


def _up(requests: object, base: str) -> bool:
    try:
        return requests.get(f"{base}/health", timeout=1).status_code in (200, 503)
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--modes", default="production,embedded")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk and pgbench run")
    parser.add_argument("--attempts", type=int, default=10_000, help="flash-sale attempts in the rush")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--load-rate", type=float, default=200, help="sales/s flowing during the sync figure")
    parser.add_argument("--orders", type=int, default=800)
    parser.add_argument("--raw", type=int, default=10000)
    parser.add_argument("--scale", default="1000x10000", help="stores x SKUs for the stock query ('' skips)")
    parser.add_argument("--gateways", type=int, default=2, help="gateway processes in production mode")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"the figures to measure, of {','.join(PARTS)} (all by default)")
    parser.add_argument("--gateway-server", default="granian", choices=("granian", "gunicorn", "nameko", "bjoern"),
                        help="production mode's gateways: the hub's own on granian (default), gunicorn or nameko "
                             "(hub.http.server), or the same API behind bjoern to compare (bench/alt_gateway.py)")
    parser.add_argument("--profile", default="", metavar="DIR",
                        help="sample every hub process with py-spy during each part: stacks in DIR, top frames printed")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    if args.profile and args.gateway_server != "nameko":
        # The CPU sampler sees a process's main thread: gunicorn's is its poll loop, granian's its supervisor.
        parser.error("--profile samples the hub's own processes on eventlet: use it with --gateway-server nameko")
    if args.only - set(PARTS):
        parser.error(f"--only takes {','.join(PARTS)}")
    from sandbox.credentials import sandbox_env
    for k, v in sandbox_env().items():
        os.environ.setdefault(k, v)
    os.environ.setdefault("HUB_HTTP_PORT", str(_free_port()))    # 8000 may be another hub's
    results = {}
    workdir = Path("var/bench")                  # logs of the hub processes stay here for a look afterwards
    workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    for mode in args.modes.split(","):
        results[mode] = run_mode(mode, args, workdir) if args.only - ON_THEIR_OWN else {}
    if "quotes" in args.only and "production" in results:
        results["production"] |= quotes.run(PG_URL, workdir)
    if args.scale and "scale" in args.only and "production" in results:
        stores, skus = (int(x) for x in args.scale.split("x"))
        results["production"] |= scale.stock_query(SCALE_URL, stores, skus, args.seconds, workdir,
                                                   gateways=args.gateways, server=args.gateway_server)
    results = {mode: r for mode, r in results.items() if r}
    report.print_table(results, load_before=load_before, load_after=os.getloadavg(), cores=os.cpu_count() or 0)


if __name__ == "__main__":
    main()
