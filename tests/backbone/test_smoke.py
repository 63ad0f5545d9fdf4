"""The same end-to-end smoke test in production mode (RabbitMQ + PostgreSQL, one process per
service) and embedded mode (SQLite + in-memory broker, one process): stock changes reach the
mini-program shop simulator, coalesced, with the right last figure."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub.domain.model import StockDelta
from hub.services import inventory
from hub.storage.bindings import SqlBinder
from sandbox.runner import start_sandbox
from sandbox.wechat_shop import seed_binder
from tests.conftest import BROKER_URL, PG_URL, make_ctx
from tests.support import CATALOG, at, count

from .harness import ROOT, HubProcess, hub_env, purge_hub_queues, wait_for


def _smoke(ctx, processes_for, tmp_path):
    sandbox = start_sandbox(only=["wechat_shop"])
    shop = sandbox.wechat_shop
    shop.seed_catalog([s.code for s in CATALOG])
    seed_binder(SqlBinder(ctx.session_factory), [s.code for s in CATALOG])
    procs = []
    try:
        procs = processes_for(sandbox.env())
        with ctx.uow() as uow:
            inventory.apply_count(uow, count("TEA-001", "S001", 12, 0))
            uow.commit()
        for i in range(6):                           # a burst of till sales
            with ctx.uow() as uow:
                inventory.apply_delta(uow, StockDelta("pos", f"R{i}", "TEA-001", "S001", -1, at(1 + i)))
                uow.commit()
        channel_safety = ctx.config.channel("wechat_shop").safety_stock
        expected = 12 - 6 - channel_safety
        wait_for(lambda: shop.stock_of("TEA-001", "S001") == expected, 30, f"the shop to show {expected}")
        pushes = [u for u in shop.stock_updates if u["out_warehouse_id"] == "wh_jingan_0001"]
        assert 1 <= len(pushes) <= 7                 # never more pushes than changes
        assert shop.last_update("TEA-001", "S001")["num"] == expected
    finally:
        for p in procs:
            p.stop()
        sandbox.stop()


def test_smoke_production_mode(backbone, tmp_path):
    ctx, db, broker = backbone

    def processes(sandbox_env):
        env = hub_env(db, broker, sandbox_env)
        return [HubProcess(["relay"], env, tmp_path / "relay.log"),
                HubProcess(["channel_sync"], env, tmp_path / "channel_sync.log")]

    _smoke(ctx, processes, tmp_path)


def test_smoke_embedded_mode(tmp_path):
    ctx = make_ctx("sqlite", tmp_path)
    db = ctx.engine.url.render_as_string(hide_password=False)

    def processes(sandbox_env):
        env = hub_env(db, "memory://", sandbox_env)
        return [HubProcess(["relay", "channel_sync", "scheduler"], env, tmp_path / "hub.log")]

    _smoke(ctx, processes, tmp_path)


def test_embedded_rpc_works_through_the_compatibility_layer():
    out = subprocess.run([sys.executable, "-m", "tests.backbone.embedded_rpc"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["calls"] == 20


@pytest.fixture(autouse=True)
def _clean_broker():
    if BROKER_URL and PG_URL:
        purge_hub_queues(BROKER_URL)
