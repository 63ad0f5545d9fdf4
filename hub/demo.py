"""`hub demo`: the embedded mode playing a short scripted day, told in plain words.

Runs on a fresh SQLite file with the sandbox's credentials; nothing to install or start.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from . import inventory, orders
from .bootstrap import build_context, upsert_skus
from .config import load_config
from .errors import HubError
from .model import Address, Buyer, Fulfillment, FulfillmentType, OrderLine, Sku, StockCount, StockDelta
from .storage.tables import utcnow

CATALOG = [Sku("TEA-001", "Longjing green tea 250g", "6901234567001", "box", 12800),
           Sku("CUP-002", "Celadon tea cup", "6901234567002", "pcs", 4500)]


def _say(verbose: bool, text: str) -> None:
    if verbose:
        print(text)


def run_demo(verbose: bool = True, workdir: str | os.PathLike[str] = "var") -> int:
    from sandbox.credentials import sandbox_env

    for k, v in sandbox_env().items():
        os.environ.setdefault(k, v)
    db = Path(workdir) / "demo.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    cfg = load_config()
    ctx = build_context(cfg, f"sqlite:///{db}")
    say = lambda text: _say(verbose, text)  # noqa: E731
    now = utcnow()
    say(f"O2O Hub demo — embedded mode, database {db}")
    with ctx.uow() as uow:
        upsert_skus(uow, CATALOG)
        for loc, qty in (("S001", 6), ("S002", 3), ("WH01", 100)):
            for sku in ("TEA-001", "CUP-002"):
                inventory.apply_count(uow, StockCount("pos" if loc != "WH01" else "erp", f"open-{loc}-{sku}",
                                                      sku, loc, qty, now - timedelta(hours=2)))
        uow.commit()
    say("Opening counts: S001 6, S002 3, WH01 100 of each SKU")
    with ctx.uow() as uow:
        inventory.apply_delta(uow, StockDelta("pos", "R-1001", "TEA-001", "S001", -2, now - timedelta(hours=1), "sale"))
        dup = inventory.apply_delta(uow, StockDelta("pos", "R-1001", "TEA-001", "S001", -2,
                                                    now - timedelta(hours=1), "sale"))
        uow.commit()
    say(f"POS sale R-1001 at S001: 2 x TEA-001; the same receipt again is {'ignored' if dup.duplicate else 'APPLIED'}")
    buyer = Buyer("u-1", "Han Meimei", "13900001111")
    home = Address("88 Yanping Road", 31.2295, 121.4420, "Han Meimei", "13900001111")
    far = Address("1 Songze Avenue, Qingpu", 31.1500, 121.1200, "Han Meimei", "13900001111")
    plans = [("pickup", Fulfillment(FulfillmentType.PICKUP, "S001"), 1),
             ("delivery", Fulfillment(FulfillmentType.DELIVERY, address=home), 2),
             ("delivery far away", Fulfillment(FulfillmentType.DELIVERY, address=far), 1),
             ("pickup, too many", Fulfillment(FulfillmentType.PICKUP, "S002"), 9)]
    for i, (label, f, qty) in enumerate(plans):
        cmd = orders.PlaceOrder("miniprogram", f"demo-{i}", (OrderLine("TEA-001", qty, 12800),), buyer, f)
        try:
            with ctx.uow() as uow:
                order, _ = orders.place(uow, cfg, cmd)
                orders.mark_paid(uow, order, "wechat_pay", f"tx-{i}")
                uow.commit()
            say(f"Order ({label}): {order.id} -> {order.fulfillment_type} from {order.location_id}; "
                f"{order.transitions[0].detail}")
            for c in order.routing["candidates"]:
                say(f"    {c['location_id']}: {'chosen' if c['accepted'] else 'passed over'} — {c['reason']}")
        except HubError as exc:
            say(f"Order ({label}) refused: {exc}")
    say("\nFinal stock (on hand / reserved / available):")
    with ctx.uow() as uow:
        for sku in ("TEA-001", "CUP-002"):
            cells = [f"{s.location_id} {s.on_hand}/{s.reserved}/{s.available}"
                     for s in inventory.stock_of(uow.session, cfg, sku)]
            say(f"  {sku}: " + ", ".join(cells))
    ctx.engine.dispose()
    return 0
