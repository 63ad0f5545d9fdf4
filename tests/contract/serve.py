"""The API on a free loopback port over a fresh SQLite database with the test catalogue and some stock,
configured with the sandbox's credentials: what the contract run (schemathesis) and the browser test
talk to. `python -m tests.contract.serve DIR` prints `port N` once it listens, then serves until killed."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server
from werkzeug.test import Client

from connectors.registry import build_connector
from hub import consumers
from hub.api.app import build_api, build_deps
from hub.bootstrap import HubContext, build_context
from hub.config import DEFAULT_CONFIG_PATH, parse_config
from hub.domain.model import StockCount, StockDelta
from hub.events import Probe
from hub.flows.order_pull import pull_channel
from hub.flows.reconcile import reconcile_channel_stock
from hub.services import inventory
from hub.storage.bindings import SqlBinder
from sandbox.bindings import prepare_simulators, seed_sandbox_bindings
from sandbox.runner import Sandbox, start_sandbox
from tests.api.conftest import CHANNEL_KEY
from tests.support import CATALOG, T0, always_open, at, seed_catalog
from workers.launcher import ROOT, wait_for

STOCK = {("TEA-001", "S001"): 20, ("TEA-001", "S002"): 8, ("TEA-001", "WH01"): 100, ("CUP-002", "S001"): 5}


def build(workdir: Path, sandbox: Sandbox) -> HubContext:
    url = f"sqlite:///{workdir}/hub.sqlite"
    text = always_open(DEFAULT_CONFIG_PATH.read_text())
    ctx = build_context(parse_config(text, env={**sandbox.env(), "HUB_DATABASE_URL": url}), url,
                        connectors=build_connector)
    seed_catalog(ctx)
    with ctx.uow() as uow:
        for (sku, loc), qty in STOCK.items():
            inventory.apply_count(uow, StockCount(f"pos:{loc}" if loc.startswith("S") else "erp",
                                                  f"seed-{sku}-{loc}", sku, loc, qty, T0))
        uow.commit()
    return ctx


def _noted(ctx: HubContext, uow: object, data: dict) -> None:
    """A consumer that succeeds: a letter parked for it replays cleanly (the browser test replays one)."""


KNOWN = {"console_check.noted": consumers.Consumer("console_check.noted", Probe, _noted, "console_check")}


def scenery(ctx: HubContext, sandbox: Sandbox) -> None:
    """What an operator would find: sales and an order in the ledger, two parked dead letters, a
    reconciliation against the shop simulator (one call failing) — connector health and drift to show — and
    the shop's order pull."""
    skus = [s.code for s in CATALOG]
    seed_sandbox_bindings(SqlBinder(ctx.session_factory), skus)
    prepare_simulators(sandbox, skus)
    with ctx.uow() as uow:
        inventory.apply_delta(uow, StockDelta("pos:S001", "R-1001", "TEA-001", "S001", -2, at(5), "sale"))
        uow.commit()
    for n in (1, 2):
        consumers.park(ctx, "console_check.noted", {"id": f"evt-{n}", "type": "stock.changed", "data": {}},
                       "TransientError: wechat_shop: HTTP 503 from the shop", 3)
    sandbox.wechat_shop.faults.fail_next = 5          # the first pair's look-up fails after its retries
    reconcile_channel_stock(ctx)
    # A shop order whose pushes never came: the shop's order pull takes it (the console's pull panel counts it).
    sandbox.wechat_shop.seed_order("3705900000000000001", [("CUP-002", 1, 1500)], status=20, fulfillment="pickup",
                                   store_id="S001")
    pull_channel(ctx, "wechat_shop", "wechat_shop")


def main(workdir: str) -> None:
    sandbox = start_sandbox(only=["wechat_shop"])
    try:
        serve(workdir, sandbox)
    finally:
        sandbox.stop()


def serve(workdir: str, sandbox: Sandbox) -> None:
    ctx = build(Path(workdir), sandbox)
    scenery(ctx, sandbox)
    app = build_api(ctx, build_deps(ctx, replay_dead_letter=lambda i: consumers.replay(ctx, i, KNOWN)))
    order = {"lines": [{"sku": "TEA-001", "qty": 1}], "buyer": {"id": "b1", "name": "Li Lei", "phone": "13800138000"},
             "fulfillment": {"type": "pickup", "store_id": "S001"}}
    Client(app).post("/api/v1/orders", json=order, headers={"Authorization": f"Bearer {CHANNEL_KEY}",
                                                            "Idempotency-Key": "console-1"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()


@contextmanager
def served(workdir: Path) -> Iterator[str]:
    """This module in a child process; yields the hub's base URL."""
    log = workdir / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.contract.serve", str(workdir)], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"port " in log.read_bytes() or proc.poll() is not None, 60, "the hub to listen")
        assert proc.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{log.read_text().split('port ')[1].split()[0]}"
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main(sys.argv[1])
