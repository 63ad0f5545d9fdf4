"""The API on a free loopback port over a fresh SQLite database with the test catalogue and some stock,
configured with the sandbox's credentials: what the contract run (schemathesis) and the browser test
talk to. `python -m tests.contract.serve DIR` prints `port N` once it listens, then serves until killed."""
from __future__ import annotations

import sys
from pathlib import Path

from werkzeug.serving import make_server

from hub import consumers, inventory
from hub.api.app import build_api, build_deps
from hub.bootstrap import HubContext, build_context
from hub.model import StockCount
from tests.api.conftest import sandbox_config
from tests.support import T0, seed_catalog

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


def main(workdir: str) -> None:
    ctx = build(Path(workdir))
    app = build_api(ctx, build_deps(ctx, replay_dead_letter=lambda i: consumers.replay(ctx, i)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
