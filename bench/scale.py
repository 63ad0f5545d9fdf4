"""The stock query at scale: `stores` stores x `skus` SKUs in the ledger (one stock row and one count row
each), in a database of its own that is generated once and reused while it matches, and a gateway
configured with every one of those stores."""
from __future__ import annotations

import os
import time
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.config import DEFAULT_CONFIG_PATH
from workers.launcher import HubProcess, wait_for

from . import wrk
from .scenario import cpu_seconds

POS_KEY_ENV = "HUB_BENCH_SCALE_POS_KEY"


def _config(stores: int, path: Path) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["locations"] = [loc for loc in raw["locations"] if loc["kind"] == "warehouse"] + [
        {"id": f"B{i:04d}", "kind": "store", "name": f"Bench store {i}", "lat": 31.0 + (i % 100) / 200,
         "lng": 121.0 + (i // 100) / 20, "pickup": True, "delivery_radius_km": 3.0, "pos_key": f"${{{POS_KEY_ENV}}}"}
        for i in range(stores)]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _generate(url: str, stores: int, skus: int) -> None:
    """Create the database, the schema and the rows, unless they are already there."""
    from bench.pgbench import ensure_pg_database
    from hub.bootstrap import build_context
    from hub.config import load_config

    ensure_pg_database(url)
    ctx = build_context(load_config(), url)           # migrates and mirrors the configured locations
    with ctx.engine.begin() as conn:
        held = conn.execute(text("select count(*) from stock_levels")).scalar()
        if held == stores * skus:
            ctx.engine.dispose()
            return
        print(f"[scale] generating {stores} stores x {skus} SKUs (once; kept in {make_url(url).database}) ...",
              flush=True)
        started = time.perf_counter()
        # Set-based, in one transaction: 10 million rows through per-row FK triggers and two secondary
        # indexes took over 40 minutes; without the triggers (the rows are built from the parent tables
        # themselves) and with the indexes built once at the end, it takes a few minutes.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("TRUNCATE stock_movements, stock_levels, skus CASCADE"))
        conn.execute(text("ALTER TABLE stock_movements DROP CONSTRAINT uq_movement_source_ext"))
        conn.execute(text("DROP INDEX ix_movement_sku_loc_time"))
        conn.execute(text("INSERT INTO skus (code, name, unit, price_fen, active, updated_at) "
                          "SELECT format('SCALE-%s', lpad(g::text, 5, '0')), 'scale item', 'pcs', 1000, true, now() "
                          "FROM generate_series(0, :n - 1) g"), {"n": skus})
        conn.execute(text("INSERT INTO stock_levels (sku, location_id, on_hand, reserved, last_counted_at, updated_at) "
                          "SELECT s.code, l.id, 100, 0, now(), now() FROM skus s CROSS JOIN locations l "
                          "WHERE l.kind = 'store' ORDER BY s.code, l.id"))
        conn.execute(text("INSERT INTO stock_movements (sku, location_id, kind, qty, source, external_id, "
                          "occurred_at, recorded_at, applied, on_hand_after) "
                          "SELECT sku, location_id, 'count', 100, 'bench', 'open', now(), now(), true, 100 "
                          "FROM stock_levels"))
        conn.execute(text("ALTER TABLE stock_movements ADD CONSTRAINT uq_movement_source_ext "
                          "UNIQUE (source, external_id, sku, location_id)"))
        conn.execute(text("CREATE INDEX ix_movement_sku_loc_time ON stock_movements (sku, location_id, occurred_at)"))
    with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE stock_levels"))      # the visibility map: index-only scans
        conn.execute(text("VACUUM ANALYZE stock_movements"))
    ctx.engine.dispose()
    print(f"[scale] generated in {time.perf_counter() - started:.0f}s", flush=True)


def stock_query(url: str, stores: int, skus: int, seconds: int, workdir: Path, gateways: int = 2,
                server: str = "granian") -> dict[str, float]:
    os.environ.setdefault(POS_KEY_ENV, "bench-scale-store-key")
    config = _config(stores, workdir / "scale-config.yaml")
    env = {**os.environ, "HUB_CONFIG": str(config), "HUB_DATABASE_URL": url, "HUB_LOG_LEVEL": "WARNING",
           "HUB_GATEWAY_SERVER": server if server != "bjoern" else "granian"}
    os.environ["HUB_CONFIG"] = str(config)
    try:
        _generate(url, stores, skus)
        from hub.config import load_config
        cfg = load_config(str(config))
        base = f"http://{cfg.hub.http.host}:{cfg.hub.http.port}"
        gateway = [HubProcess(["gateway"], env, workdir / f"scale-gateway-{i}.log") for i in range(gateways)]
        try:
            import requests
            key = cfg.channel("miniprogram").key

            def answers() -> bool:
                try:
                    return requests.get(f"{base}/api/v1/stock/SCALE-00000", timeout=5,
                                        headers={"Authorization": f"Bearer {key}"}).status_code == 200
                except requests.RequestException:
                    return False
            wait_for(answers, 60, "the scale gateway")
            print(f"[scale] stock query, wrk {seconds}s x 4 connections ...", flush=True)
            pids = [g.proc.pid for g in gateway]
            cpu = cpu_seconds(pids)
            r = wrk.run(base, "stock.lua", [key, str(skus)], seconds=seconds, connections=4)
            cpu_ms = (cpu_seconds(pids) - cpu) * 1000 / max(r.requests, 1)
        finally:
            for g in gateway:
                g.stop()
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(text("select count(*) from stock_levels")).scalar()
            ledger = conn.execute(text("select count(*) from stock_movements")).scalar()
        engine.dispose()
    finally:
        os.environ.pop("HUB_CONFIG", None)
    return {"stock_query_per_s": r.per_s, "stock_query_p50_ms": r.p50_ms, "stock_query_p99_ms": r.p99_ms,
            "stock_query_failed": r.requests - r.statuses.get("200", 0) + r.errors, "scale_stock_rows": rows,
            "scale_ledger_rows": ledger, "scale_stores": stores, "stock_query_cpu_ms": cpu_ms}
