"""The API on a free loopback port over a fresh SQLite database with the test catalogue and some stock,
configured with the sandbox's credentials: what the contract run (schemathesis) and the browser test
talk to. `python -m tests.contract.serve DIR` prints `port N` once it listens, then serves until killed."""
from __future__ import annotations

import sys
from pathlib import Path

from werkzeug.serving import make_server
from werkzeug.test import Client

from hub import consumers, inventory
from hub.api.app import build_api, build_deps
from hub.bootstrap import HubContext, build_context
from hub.model import StockCount, StockDelta
from tests.api.conftest import CHANNEL_KEY, sandbox_config
from tests.support import T0, at, seed_catalog

STOCK = {("TEA-001", "S001"): 20, ("TEA-001", "S002"): 8, ("TEA-001", "WH01"): 100, ("CUP-002", "S001"): 5}


def build(workdir: Path) -> HubContext:
    url = f"sqlite:///{workdir}/hub.sqlite"
    ctx = build_context(sandbox_config(url), url)
    seed_catalog(ctx)
    with ctx.uow() as uow:
        for (sku, loc), qty in STOCK.items():
            inventory.apply_count(uow, StockCount(f"pos:{loc}" if loc.startswith("S") else "erp",
                                                  f"seed-{sku}-{loc}", sku, loc, qty, T0))
        uow.commit()
    return ctx


@consumers.consumer("console_check.noted")
def _noted(ctx: HubContext, uow: object, data: dict) -> None:
    """A consumer that succeeds: a letter parked for it replays cleanly (the browser test replays one)."""


def scenery(ctx: HubContext) -> None:
    """What an operator would find: sales and an order in the ledger, two parked dead letters."""
    with ctx.uow() as uow:
        inventory.apply_delta(uow, StockDelta("pos:S001", "R-1001", "TEA-001", "S001", -2, at(5), "sale"))
        uow.commit()
    for n in (1, 2):
        consumers.park(ctx, "console_check.noted", {"id": f"evt-{n}", "type": "stock.changed", "data": {}},
                       "TransientError: wechat_shop: HTTP 503 from the shop", 3)


def main(workdir: str) -> None:
    ctx = build(Path(workdir))
    scenery(ctx)
    app = build_api(ctx, build_deps(ctx, replay_dead_letter=lambda i: consumers.replay(ctx, i)))
    order = {"lines": [{"sku": "TEA-001", "qty": 1}], "buyer": {"id": "b1", "name": "Li Lei", "phone": "13800138000"},
             "fulfillment": {"type": "pickup", "store_id": "S001"}}
    Client(app).post("/api/v1/orders", json=order, headers={"Authorization": f"Bearer {CHANNEL_KEY}",
                                                            "Idempotency-Key": "console-1"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
