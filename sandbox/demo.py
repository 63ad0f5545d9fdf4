"""`hub demo`: the embedded mode playing a short scripted day, told in plain words.

One process: every simulator, every nameko service on the in-memory broker, a fresh SQLite
file. The script plays the mini-program, the store staff and the ERP through the public HTTP
API, and the simulators play the payment platform, the shop, the POS, the ERP, the CRM and
both couriers. Stores are treated as open all day so the script reads the same at any hour.
"""
from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import requests

from hub.privacy import mask_phone

BUYER = {"id": "u-1001", "name": "Han Meimei", "phone": "13900001111"}
NEAR_S002 = {"text": "1 Tianyaoqiao Road", "lat": 31.1930, "lng": 121.4390, "name": "Han Meimei",
             "phone": "13900001111"}
QINGPU = {"text": "1 Songze Avenue, Qingpu", "lat": 31.1500, "lng": 121.1200, "name": "Li Lei",
          "phone": "13800002222"}


class DemoFailed(Exception):
    pass


class Script:
    def __init__(self, base: str, keys: dict[str, str], say: Callable[[str], None]):
        self.base, self.keys, self.say = base, keys, say

    def call(self, method: str, path: str, key: str = "channel", **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}", **kw.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def order(self, order_id: str, key: str = "channel") -> dict:
        return self.call("GET", f"/api/v1/orders/{order_id}", key=key).json()

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise DemoFailed(f"timed out waiting for {what}")

    def wait_status(self, order_id: str, status: str, timeout: float = 40, key: str = "channel") -> dict:
        self.wait(f"order {order_id} to be {status}", lambda: self.order(order_id, key).get("status") == status,
                  timeout)
        return self.order(order_id, key)

    def place(self, label: str, lines: list[dict], fulfillment: dict) -> str:
        """The new order's id; a refusal ends the demo (every order of the story is meant to be taken)."""
        r = self.call("POST", "/api/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex},
                      json={"lines": lines, "buyer": BUYER, "fulfillment": fulfillment})
        body = r.json()
        if r.status_code != 201:
            self.say(f"  {label}: refused ({r.status_code} {body.get('error')}: {body.get('message')})")
            raise DemoFailed(f"the {label} order was refused")
        order = self.order(body["order_id"])
        routing = order["routing"]
        self.say(f"  {label}: order {order['order_id']} -> {order['fulfillment']['type']} from "
                 f"{routing.get('location_id')} ({routing.get('rule')})")
        for c in routing.get("candidates", []):
            self.say(f"      {c['location_id']}: {'chosen' if c['accepted'] else 'passed over'} — {c['reason']}")
        return order["order_id"]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Services(Protocol):
    """The hub's services running in this process (a nameko ServiceRunner)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


# (service names, the gateway's HTTP address) -> the services on the in-memory broker, not started yet.
ServicesFactory = Callable[[list[str], str], Services]


def run_demo(services: list[str], make_services: ServicesFactory, verbose: bool = True,
             workdir: str | os.PathLike[str] = "var") -> int:
    """The story, with the hub's services in this process: the entrypoint (workers/cli.py) hands in their
    names and how to build them, so the sandbox imports nothing of the workers."""
    say = print if verbose else (lambda _text: None)
    try:
        _run(say, Path(workdir), services, make_services)
    except DemoFailed as exc:
        print(f"demo failed: {exc}")
        return 1
    return 0


def _run(say: Callable[[str], None], workdir: Path, services: list[str], make_services: ServicesFactory) -> None:
    from connectors.registry import build_connector
    from hub import consumers
    from hub.bootstrap import build_context
    from hub.config import DEFAULT_CONFIG_PATH, load_config
    from hub.flows.erp_pull import pull_products, pull_warehouse_stock
    from hub.services import inventory
    from hub.storage.bindings import SqlBinder
    from sandbox.bindings import bind_sandbox
    from sandbox.credentials import sandbox_env
    from sandbox.runner import start_sandbox

    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "demo.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    config_file = workdir / "demo-config.yaml"
    config_file.write_text(re.sub(r"\n\s*opening_hours: \{[^}]*\}", "", DEFAULT_CONFIG_PATH.read_text()))
    for k, v in sandbox_env().items():
        os.environ.setdefault(k, v)
    # The configured port if it is free, else any; chosen first, so the simulators that call back to an address
    # registered with them (闪送's account-wide callback URL) are given this hub's.
    port = load_config(config_file).hub.http.port
    port = port if _port_free(port) else _free_port()
    base = f"http://127.0.0.1:{port}"
    sandbox = start_sandbox(callback_base=base)
    sandbox.local_delivery.step_s = 0.4
    sandbox.express.auto_step_s = 0.4
    os.environ.update({**sandbox.env(), "HUB_DATABASE_URL": f"sqlite:///{db}", "HUB_BROKER_URL": "memory://",
                       "HUB_HTTP_PORT": str(port), "HUB_CONFIG": str(config_file),
                       # the platform signs its pushes over the address registered with it: this hub's
                       "HUB_MEITUAN_PUSH_URL": f"{base}/callbacks/meituan"})
    cfg = load_config()
    ctx = build_context(cfg, connectors=build_connector)
    runner = make_services(services, f"127.0.0.1:{port}")
    runner.start()
    keys = {"channel": cfg.known_channel("miniprogram").key, "meituan": cfg.known_channel("meituan").key,
            "erp": cfg.systems["erp"].get("key"),
            "ops": cfg.hub.ops_key, **{s.id: s.pos_key for s in cfg.stores}}
    s = Script(base, keys, say)
    try:
        s.wait("the gateway", lambda: _up(base))
        say(f"O2O Hub demo — embedded mode: one process, SQLite at {db}, in-memory broker, "
            f"{len(services)} services, {len(sandbox.simulators)} simulators")
        say("(stores are treated as open all day, so the script reads the same at any hour)\n")

        # The sandbox's systems know the hub's SKUs and stores by their own ids: bind them first.
        skus = ["TEA-001", "CUP-002", "POT-003", "SET-004"]
        bind_sandbox(SqlBinder(ctx.session_factory), sandbox, skus)
        say("06:00  ERP pull (SOAP): product master and warehouse stock")
        say(f"  {pull_products(ctx)} products, {pull_warehouse_stock(ctx)} warehouse stock lines applied")

        say("09:00  Stores open: stock counts from the POS")
        counted = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        for store, qty in (("S001", 8), ("S002", 5)):
            r = s.call("PUT", f"/api/v1/stores/{store}/stock", key=store, json={
                "counted_at": counted, "lines": [{"sku": sku, "on_hand": qty} for sku in skus[:2]]})
            say(f"  {store}: {qty} of TEA-001 and CUP-002 counted ({r.status_code})")

        say("10:00  Sales at the tills")
        for store, receipt, sku, qty in (("S001", "R-1001", "TEA-001", 2), ("S002", "R-2001", "CUP-002", 1)):
            body = {"receipt_id": receipt, "sold_at": datetime.now(UTC).isoformat(),
                    "lines": [{"sku": sku, "qty": qty}]}
            s.call("POST", f"/api/v1/stores/{store}/sales", key=store, json=body)
            again = s.call("POST", f"/api/v1/stores/{store}/sales", key=store, json=body).json()
            say(f"  {store} receipt {receipt}: {qty} x {sku}; sent again -> duplicate={again.get('duplicate')}")

        say("11:00  Store pickup at S001")
        pickup = s.place("pickup", [{"sku": "TEA-001", "qty": 1}], {"type": "pickup", "store_id": "S001"})
        code = s.order(pickup)["pickup_code"]
        _pay(s, sandbox, pickup, say)
        s.wait("the order at S001's POS", lambda: sandbox.pos.order_for(pickup) is not None)
        say(f"  the POS at S001 received it (state {sandbox.pos.pickup_state(pickup)})")
        s.call("POST", f"/api/v1/stores/S001/pickup-orders/{pickup}/ready", key="S001")
        s.wait("PREPARED at the POS", lambda: sandbox.pos.pickup_state(pickup) == "PREPARED")
        say("  staff marked it ready; POS shows PREPARED; shipping info uploaded as self-pickup")
        wrong = s.call("POST", f"/api/v1/stores/S001/pickup-orders/{pickup}/collect", key="S001",
                       json={"pickup_code": "000000" if code != "000000" else "111111"}).json()
        say(f"  a wrong pickup code is refused: {wrong.get('message')}")
        s.call("POST", f"/api/v1/stores/S001/pickup-orders/{pickup}/collect", key="S001", json={"pickup_code": code})
        s.wait_status(pickup, "completed")
        say("  collected with the right code -> completed")

        say("11:30  A short pick at S001: the shelf holds one tea fewer than the count said")
        short = s.place("pickup, two lines", [{"sku": "TEA-001", "qty": 2}, {"sku": "CUP-002", "qty": 1}],
                        {"type": "pickup", "store_id": "S001"})
        _pay(s, sandbox, short, say)
        before = _on_hand(ctx, "TEA-001", "S001")
        _pick(s, "S001", short, say, short={"TEA-001": 1})
        s.wait("the refund of the short line", lambda: any(
            r["status"] == "success" for r in s.order(short).get("refunds", [])), timeout=30)
        done = s.order(short)
        for r in done["refunds"]:
            say(f"  refund {r['refund_id']} of {r['amount_fen'] / 100:.2f} yuan for the missing tea: {r['status']}")
        say(f"  S001's TEA-001 on hand: {before} -> {_on_hand(ctx, 'TEA-001', 'S001')} "
            "(the short pick corrects the count; the ledger row says why)")
        line = next((e for e in done["timeline"] if "short" in (e.get("detail") or "")), None)
        if line is not None:
            say(f"  the buyer's timeline: {line['status']} — {line['detail']}")
        s.call("POST", f"/api/v1/stores/S001/pickup-orders/{short}/collect", key="S001",
               json={"pickup_code": done["pickup_code"]})
        say(f"  handed over with its code -> {s.wait_status(short, 'completed')['status']}")

        say("12:00  Nearby delivery (the courier fails once, and is retried)")
        sandbox.local_delivery.faults.fail_next = 1
        delivery = s.place("delivery", [{"sku": "CUP-002", "qty": 1}], {"type": "delivery", "address": NEAR_S002})
        _pay(s, sandbox, delivery, say)
        store = s.order(delivery)["routing"]["location_id"]
        s.wait(f"the delivery at {store}'s POS", lambda: sandbox.pos.order_for(delivery) is not None)
        till = sandbox.pos.order_for(delivery) or {}
        details = till["fulfillments"][0].get("delivery_details") or {}
        shelves = ", ".join((i.get("metadata") or {}).get("bin") or "-" for i in till["line_items"])
        say(f"  {store}'s POS shows it as a {till['fulfillments'][0]['type']} to deliver by "
            f"{details.get('deliver_at')} (shelf {shelves})")
        _pick(s, store, delivery, say)   # the rider is booked at pick complete
        done = s.wait_status(delivery, "completed", timeout=60)
        rider = next((e["detail"] for e in done["timeline"] if e["status"] == "rider_assigned"), "")
        say(f"  rider booked, picked up, delivered -> completed ({rider})")

        say("13:00  Delivery to Qingpu: no store is near, express from the warehouse")
        express = s.place("far delivery", [{"sku": "POT-003", "qty": 1}], {"type": "delivery", "address": QINGPU})
        _pay(s, sandbox, express, say)
        s.wait_status(express, "completed", timeout=60)
        waybill = sandbox.express.orders.get(express)
        say(f"  waybill {waybill} created, tracking pushes followed -> completed")

        platform = _platform_order(s, ctx, sandbox, say)

        say("14:00  A forged payment notification")
        victim = s.place("pickup to be forged", [{"sku": "CUP-002", "qty": 1}], {"type": "pickup", "store_id": "S001"})
        sandbox.wechat_pay.knobs.bad_signature = True
        r = sandbox.wechat_pay.notify(f"{base}/callbacks/wechat_pay", victim, s.order(victim)["total_fen"])
        sandbox.wechat_pay.knobs.bad_signature = False
        say(f"  rejected with {r.status_code}; the order stays {s.order(victim)['status']}")

        say("15:00  The buyer cancels it")
        s.call("POST", f"/api/v1/orders/{victim}/cancel")
        say(f"  order {victim} is {s.order(victim)['status']}; its reservation is released")

        say("16:00  A paid order is cancelled: its refund asked of WeChat Pay, refunded when the money is back")
        regret = s.place("pickup to be refunded", [{"sku": "TEA-001", "qty": 1}],
                         {"type": "pickup", "store_id": "S002"})
        _pay(s, sandbox, regret, say)
        s.call("POST", f"/api/v1/orders/{regret}/cancel", json={"reason": "bought the wrong tea"})
        done = s.wait_status(regret, "refunded", timeout=30)
        [refund] = done["refunds"]
        say(f"  refund {refund['refund_id']} of {refund['amount_fen'] / 100:.2f} yuan: {refund['status']}; "
            f"order {regret} is {done['status']}")

        s.wait("the outbox to drain and the shop to catch up", lambda: _drained(ctx), timeout=30)
        time.sleep(0.5)
        say("\nWhat each system received")
        kinds = Counter(o["fulfillments"][0]["type"].lower() for o in list(sandbox.pos.orders.values()))
        say(f"  POS: {len(sandbox.pos.orders)} order(s) ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
            f"{len(sandbox.pos.state_changes)} state change(s)")
        say(f"  WeChat Channels shop: {len(sandbox.wechat_shop.stock_updates)} per-store stock update(s)")
        say(f"  WeChat Pay: {len(sandbox.wechat_pay.shipping_uploads)} shipping-info upload(s), "
            f"{len(sandbox.wechat_pay.refunds)} refund(s)")
        say(f"  ERP: {len(sandbox.erp.received_orders)} sales order(s) over SOAP")
        say(f"  CRM: {len(sandbox.crm.point_entries)} points entr(y/ies)")
        mt = sandbox.meituan
        say(f"  Meituan: {len(mt.stock_calls)} per-store stock update(s), {len(mt.calls)} order call(s) "
            f"({', '.join(op for op, _ in mt.calls)}), {len(mt.refunds)} refund(s) answered")
        say(f"  local courier: {len(sandbox.local_delivery.deliveries)} booking(s); "
            f"express: {len(sandbox.express.orders)} waybill(s)")
        feed = s.call("GET", "/api/v1/erp/orders?limit=50", key="erp").json()
        say(f"  ERP order feed: {len(feed['orders'])} completed order(s) waiting for the ERP")
        say(f"  dead letters: {len(consumers.dead_letters(ctx))}")

        say("\nOrder timelines")
        for order_id in (pickup, short, delivery, express, platform, victim, regret):
            o = s.order(order_id, "meituan" if order_id == platform else "channel")
            say(f"  {order_id} ({o['fulfillment']['type']}):")
            for e in o["timeline"]:
                say(f"    {e['at'][11:19]}  {e['status']:<16} {e['source']:<15} {(e.get('detail') or '')[:70]}")

        say("\nFinal stock per location (on hand / reserved / available; the mini-program is shown")
        say("available minus its own safety stock)")
        with ctx.reader() as uow:
            for sku in skus:
                cells = [f"{x.location_id} {x.on_hand}/{x.reserved}/{x.available}"
                         for x in inventory.stock_of(uow.session, cfg, sku)]
                say(f"  {sku}: " + ", ".join(cells))
        say(f"\nBuyer's phone in logs and timelines appears only masked, e.g. {mask_phone(BUYER['phone'])}")
    finally:
        runner.stop()
        sandbox.stop()
        ctx.engine.dispose()


def _pay(s: Script, sandbox: Any, order_id: str | None, say: Callable[[str], None]) -> None:
    if order_id is None:
        raise DemoFailed("an order the script needs was refused")
    total = s.order(order_id)["total_fen"]
    r = sandbox.wechat_pay.notify(f"{s.base}/callbacks/wechat_pay", order_id, total)
    say(f"  paid {total / 100:.2f} yuan; WeChat Pay's signed notification -> {r.json().get('code')}")


def _pick(s: Script, store: str, order_id: str, say: Callable[[str], None],
          short: dict[str, int] | None = None, channel: str = "channel") -> dict:
    """The store's staff pick the order (as the staff screen at /store does): every line in full but the
    `short` ones, which get the quantity given."""
    s.wait(f"order {order_id} at {store}'s pick list", lambda: any(
        o["order_id"] == order_id for o in s.call("GET", f"/api/v1/stores/{store}/orders", key=store,
                                                  params={"status": "allocated"}).json().get("orders", [])))
    s.call("POST", f"/api/v1/stores/{store}/orders/{order_id}/picking", key=store, json={"staff": "Wang"})
    lines = s.order(order_id, channel)["lines"]
    picked = [{"sku": x["sku"], "qty_picked": (short or {}).get(x["sku"], x["qty"])} for x in lines]
    r = s.call("POST", f"/api/v1/stores/{store}/orders/{order_id}/picked", key=store,
               json={"lines": picked, "staff": "Wang"})
    if r.status_code != 200:
        raise DemoFailed(f"picking {order_id} was refused: {r.status_code} {r.text[:200]}")
    missing = ", ".join(f"{x['sku']} {x['qty_picked']} of {q['qty']}" for x, q in zip(picked, lines, strict=True)
                        if x["qty_picked"] < q["qty"])
    say(f"  {store} picked {order_id}" + (f" — short: {missing}" if missing else " in full"))
    return r.json()


def _platform_order(s: Script, ctx: Any, sandbox: Any, say: Callable[[str], None]) -> str:
    """A Meituan 闪购 order: pushed by the platform (signed), taken at the store it names, accepted, picked,
    handed to the platform's rider, who delivers it; then the buyer asks the platform for a partial refund."""
    from hub.services import orders

    mt, push_url = sandbox.meituan, f"{s.base}/callbacks/meituan"
    say("13:30  A Meituan 闪购 order: the platform chose S002 and delivers with its own rider")
    ext = "7301"
    mt.seed_order(ext, [("TEA-001", 2, 12800), ("CUP-002", 1, 4500)], "S002", status=2, pick_type=0,
                  logistics_code="1001")
    r = mt.push(push_url, ext)
    say(f"  the platform's signed push for its order {ext} -> {r.status_code if r is not None else 'lost'} "
        f"{r.json() if r is not None else ''}")
    with ctx.reader() as uow:
        row = orders.find_by_idempotency(uow, "meituan", f"meituan:{ext}")
        if row is None:
            raise DemoFailed(f"the platform's order {ext} was not taken")
        order_id = row.id
    o = s.order(order_id, "meituan")
    say(f"  order {order_id} -> {o['fulfillment']['type']} from {o['routing'].get('location_id')} "
        f"({o['routing'].get('rule')}); {o['total_fen'] / 100:.2f} yuan paid to the platform")
    s.wait("the platform told the order is accepted", lambda: ("confirm", ext) in mt.calls)
    say("  accepted at the platform (order/confirm)")
    _pick(s, "S002", order_id, say, channel="meituan")
    s.wait("the platform's rider asked for", lambda: ("logistics_push", ext) in mt.calls)
    say("  picked (preparationMealComplete) and handed to the platform's rider (order/logistics/push)")
    for code, what in ((10, "rider assigned"), (20, "picked up"), (40, "delivered")):
        mt.push_rider(push_url, ext, code)
        say(f"  the platform reports its rider: {what}")
    done = s.wait_status(order_id, "completed", timeout=30, key="meituan")
    say(f"  -> {done['status']} (no courier of the store's booked, no WeChat Pay involved)")
    r = requests.post(push_url, data=mt.refund_params(push_url, ext, "MR-1", [("TEA-001", 1)], "茶叶受潮"),
                      timeout=10)
    say(f"  the buyer asks Meituan to refund one tin of tea; its signed push -> {r.status_code}, "
        f"the hub {mt.refunds['MR-1']['status']} it (order/refund/agree)")
    entry = next((e for e in s.order(order_id, "meituan")["timeline"] if e["status"] == "part_refunded"), None)
    if entry is None:
        raise DemoFailed("the platform's partial refund is not in the order's timeline")
    say(f"  the buyer's timeline: {entry['detail']}")
    # Meituan sells 80 % of a store's stock less its safety stock of 1 (config.yaml): S002's last 2 cups give it
    # 1 (80 % of 2, rounded down), less 1: none to sell.
    mt.seed_order("7302", [("CUP-002", 2, 4500)], "S002", status=2, pick_type=0, logistics_code="1001")
    mt.push(push_url, "7302")
    cancel = mt.cancels.get("7302")
    if cancel is None:
        raise DemoFailed("an order past the platform's share at S002 was not refused back to it")
    say(f"  a second Meituan order, 2 cups at S002, is more than the platform's share there: cancelled back to it "
        f"(order/cancel, reason_code {cancel['reason_code']}), not sent to another store")
    return order_id


def _on_hand(ctx: Any, sku: str, location: str) -> int:
    from hub.services import inventory

    with ctx.reader() as uow:
        return inventory.stock_at(uow.session, ctx.config, sku, location).on_hand


def _up(base: str) -> bool:
    try:
        return requests.get(base + "/health", timeout=1).status_code in (200, 503)
    except requests.RequestException:
        return False


def _drained(ctx: Any) -> bool:
    from sqlalchemy import func, select

    from hub.storage.tables import OutboxMessage

    with ctx.reader() as uow:
        return uow.session.execute(select(func.count()).where(OutboxMessage.sent_at.is_(None))).scalar_one() == 0
