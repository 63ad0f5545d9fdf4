"""`python -m bench` (make bench): the hub's throughput and sync latency in production mode
(RabbitMQ + PostgreSQL, one process per service) and embedded mode (SQLite + in-memory broker,
one process), each beside the broker's own publish -> consume rate measured in the same run."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connectors.registry import build_connector
from hub.bootstrap import build_context, upsert_skus
from hub.config import load_config
from hub.domain.model import Sku, StockCount
from hub.services import inventory
from hub.storage.bindings import SqlBinder
from hub.storage.tables import Base, utcnow
from sandbox.runner import start_sandbox
from sandbox.wechat_shop import seed_binder
from workers.launcher import HubProcess, wait_for

from . import backbone, scenario
from .broker_raw import raw_rate

PG_URL = os.environ.get("HUB_BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/hub_bench")
AMQP_URL = os.environ.get("HUB_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
SKUS = [f"BENCH-{i:03d}" for i in range(40)]
LATENCY_SKU = "BENCH-LAT"
START = 1_000_000


def _ensure_pg_database(url: str) -> None:
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("select 1 from pg_database where datname=:d"), {"d": u.database}).scalar():
            conn.execute(text(f'create database "{u.database}"'))
    admin.dispose()


def _prepare(database_url: str, shop: object) -> None:
    cfg = load_config()
    ctx = build_context(cfg, database_url, connectors=build_connector)
    if ctx.engine.dialect.name == "postgresql":
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with ctx.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        from hub.bootstrap import sync_locations
        sync_locations(ctx)
    codes = [*SKUS, LATENCY_SKU]
    with ctx.uow() as uow:
        upsert_skus(uow, [Sku(c, f"bench item {c}", price_fen=1000) for c in codes])
        now = utcnow()
        for code in codes:
            for store in ("S001", "S002"):
                inventory.apply_count(uow, StockCount("bench", f"open-{code}-{store}", code, store, START, now))
        uow.commit()
    shop.seed_catalog(codes)
    seed_binder(SqlBinder(ctx.session_factory), codes)
    ctx.engine.dispose()


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    sandbox = start_sandbox(only=["wechat_shop"])
    shop = sandbox.wechat_shop
    env = {**os.environ, **sandbox.env(), "HUB_LOG_LEVEL": "WARNING"}
    os.environ.update(sandbox.env())
    if mode == "production":
        _ensure_pg_database(PG_URL)
        db, broker = PG_URL, AMQP_URL
        groups = [["gateway"], ["relay"], ["channel_sync"]]
    else:
        db, broker = f"sqlite:///{workdir}/bench.sqlite", "memory://"
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
    procs = [HubProcess(g, env, workdir / f"{mode}-{'-'.join(g)}.log") for g in groups]
    try:
        import requests
        wait_for(lambda: _up(requests, base), 30, "the gateway")
        print(f"[{mode}] broker raw rate ...", flush=True)
        broker_rate = raw_rate(broker if mode == "production" else "memory://", messages=args.raw)
        print(f"[{mode}] ingesting {args.sales} POS sales ...", flush=True)
        ingest = scenario.ingest(base, store_keys, SKUS, args.sales)
        wait_for(lambda: _synced(db), 300, "channel sync to catch up", interval=0.5)
        print(f"[{mode}] sync latency, {args.samples} samples ...", flush=True)
        latency = scenario.sync_latency(base, store_keys["S001"], "S001", LATENCY_SKU, shop, START,
                                        channel.safety_stock, args.samples)
        print(f"[{mode}] {args.orders} pickup orders ...", flush=True)
        orders_per_s, refused = scenario.orders(base, channel.key, SKUS, "S002", args.orders)
        fig = scenario.Figures(ingest, latency, orders_per_s, refused)
        out = scenario.summary(fig)
        out["broker_raw_per_s"] = broker_rate
    finally:
        for p in procs:
            p.stop()
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


def _synced(database_url: str) -> bool:
    """Every stock change so far has been relayed and handled by channel sync."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            changes = conn.execute(text("select count(*) from outbox where event_type = 'stock.changed'")).scalar()
            handled = conn.execute(text("select count(*) from processed_messages "
                                        "where consumer = 'channel_sync.publish_stock'")).scalar()
            parked = conn.execute(text("select count(*) from dead_letters")).scalar()
        return handled + parked >= changes
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--modes", default="production,embedded")
    parser.add_argument("--sales", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--orders", type=int, default=800)
    parser.add_argument("--raw", type=int, default=10000)
    args = parser.parse_args()
    from sandbox.credentials import sandbox_env
    for k, v in sandbox_env().items():
        os.environ.setdefault(k, v)
    results = {}
    workdir = Path("var/bench")                  # logs of the hub processes stay here for a look afterwards
    workdir.mkdir(parents=True, exist_ok=True)
    for mode in args.modes.split(","):
        results[mode] = run_mode(mode, args, workdir)
    print("\nmode        sales/s  sync p50   p95    p99 (ms)  orders/s  broker raw msg/s  sales/broker")
    for mode, r in results.items():
        share = r["ingest_per_s"] / r["broker_raw_per_s"]
        print(f"{mode:<11} {r['ingest_per_s']:7.0f}  {r['p50']:7.1f} {r['p95']:6.1f} {r['p99']:6.1f}      "
              f"{r['orders_per_s']:7.0f}  {r['broker_raw_per_s']:15.0f}  {share:11.3f}")
    for mode, r in results.items():
        print(f"{mode}: 1000 events committed -> relayed -> applied once in {r['events_1000_s']:.2f} s "
              f"({1000 / r['events_1000_s']:.0f} events/s)")
    if {"production", "embedded"} <= results.keys():
        p, e = results["production"], results["embedded"]
        print(f"\nembedded / production: sales {e['ingest_per_s'] / p['ingest_per_s']:.2f}x, "
              f"orders {e['orders_per_s'] / p['orders_per_s']:.2f}x, sync p50 {e['p50'] / p['p50']:.2f}x")


if __name__ == "__main__":
    main()
