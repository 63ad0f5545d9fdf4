"""Flows against real simulators: one sandbox for the session, a hub context pointed at it per test."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from hub import consumers
from hub.api.app import build_api
from hub.bootstrap import HubContext
from hub.config import DEFAULT_CONFIG_PATH, parse_config
from hub.consumers import Outcome
from hub.domain.model import Address, Buyer, Fulfillment, FulfillmentType, OrderLine
from hub.services import inventory, orders
from hub.storage.bindings import SqlBinder
from hub.storage.tables import OrderRow, OutboxMessage
from sandbox.bindings import bind_sandbox
from sandbox.runner import Sandbox, start_sandbox
from tests.support import CATALOG, T0, always_open, config_env, count

SKUS = [s.code for s in CATALOG]
ERP_EPOCH = datetime(2024, 5, 1, tzinfo=UTC)
NEAR_S001 = Address("88 Changde Road, Jing'an, Shanghai", 31.2301, 121.4456, "Han Mei", "13900139000")
HANGZHOU = Address("1 Lakeside Road, Hangzhou", 30.2741, 120.1551, "Li Lei", "13700137000")
BUYER = Buyer("oBuyer001", "Han Mei", "13800138000")


@pytest.fixture(scope="session")
def sandbox():
    # every system config.yaml names for the flows (meituan too: a channel stock pushes to, issue 23)
    sb = start_sandbox(only=["pos", "wechat_pay", "local_delivery", "sf_same_city", "shansong", "express", "erp", "crm",
                              "wechat_shop", "meituan"])
    sb.local_delivery.step_s = None        # tests move riders and parcels themselves
    sb.express.auto_step_s = None
    yield sb
    sb.stop()


def sandbox_ctx(ctx: HubContext, sandbox: Sandbox, edit: Callable[[str], str] = str) -> HubContext:
    """The test's database, with config.yaml's systems pointed at the running simulators (and `edit` made to
    config.yaml's text, for a test of another setting)."""
    text = edit(always_open(Path(DEFAULT_CONFIG_PATH).read_text()))
    cfg = parse_config(text, env={**config_env(text), **sandbox.env(),
                                  "HUB_DATABASE_URL": ctx.config.hub.database_url})
    return HubContext(cfg, ctx.engine, ctx.connector_factory)


@dataclass
class Flow:
    ctx: HubContext
    sandbox: Sandbox

    def place(self, kind: str, lines: list[tuple[str, int, int]], *, store_id: str | None = None,
              address: Address | None = None, key: str | None = None) -> str:
        cmd = orders.PlaceOrder("miniprogram", key or f"k-{kind}-{id(lines)}",
                                tuple(OrderLine(*line) for line in lines), BUYER,
                                Fulfillment(FulfillmentType(kind), store_id, address))
        with self.ctx.uow() as uow:
            order, _ = orders.place(uow, self.ctx.config, cmd, now=T0)
            uow.commit()
            return order.id

    def pay(self, order_id: str) -> str:
        """Paid through the payment simulator (so it knows the transaction), then allocated."""
        tx = f"4200{order_id}"
        with self.ctx.uow() as uow:
            order = orders.get(uow, order_id, lock=True)
            # The payer's openid comes with the notification; the shipping upload must name it.
            self.sandbox.wechat_pay.notification_body(order_id, order.total_fen, transaction_id=tx,
                                                      payer_openid=f"oPayer-{order_id}")
            orders.mark_paid(uow, order, "wechat_pay", tx, payer_id=f"oPayer-{order_id}")
            uow.commit()
        return tx

    def move(self, order_id: str, *targets: str) -> None:
        with self.ctx.uow() as uow:
            order = orders.get(uow, order_id, lock=True)
            for target in targets:
                orders.transition(uow, order, target, "test")
            uow.commit()

    def order(self, order_id: str) -> OrderRow:
        with self.ctx.uow() as uow:
            row = orders.get(uow, order_id)
            uow.session.expunge(row)
            return row

    def events(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        with self.ctx.uow() as uow:
            rows = uow.session.execute(select(OutboxMessage).where(OutboxMessage.event_type == event_type)
                                       .order_by(OutboxMessage.id)).scalars()
            return [r.payload for r in rows if all(r.payload["data"].get(k) == v for k, v in match.items())]

    def platform_notifies(self) -> list[int]:
        """The payment platform's held refund notifications, posted to the hub's /callbacks/wechat_pay
        (the real handler, verifying the platform's signature); their HTTP statuses."""
        app = Client(build_api(self.ctx))
        codes = []
        for _url, body in self.sandbox.wechat_pay.take_refund_notifications():
            headers = {**self.sandbox.wechat_pay.sign(body), "Content-Type": "application/json"}
            codes.append(app.post("/callbacks/wechat_pay", data=body, headers=headers).status_code)
        return codes

    def deliver(self, consumer: str, event_type: str, **match: Any) -> list[Outcome]:
        """Hand every matching outbox event to `consumer`, as its service would."""
        envelopes = self.events(event_type, **match)
        assert envelopes, f"no {event_type} event matching {match}"
        return [o for o in (consumers.handle(self.ctx, consumer, e) for e in envelopes) if o is not None]


def make_flow(ctx: HubContext, sandbox: Sandbox) -> Flow:
    sandbox.reset()
    # No hub listens on the notify_url here: refund notifications wait for `Flow.platform_notifies`.
    sandbox.wechat_pay.knobs.refund_notify_after_s = None
    for i, sku in enumerate(SKUS):             # the ERP's warehouse lines as it starts (older than the hub's)
        sandbox.erp.set_stock("1000", sku, 100 + 10 * i, ERP_EPOCH)
    fctx = sandbox_ctx(ctx, sandbox)
    bind_sandbox(SqlBinder(fctx.session_factory), sandbox, SKUS)
    with fctx.uow() as uow:
        for location in ("S001", "S002", "WH01"):
            for sku in SKUS:
                inventory.apply_count(uow, count(sku, location, 10))
        uow.commit()
    return Flow(fctx, sandbox)


@pytest.fixture
def flow(ctx, sandbox) -> Flow:
    """SQLite, and PostgreSQL when configured."""
    return make_flow(ctx, sandbox)


@pytest.fixture
def pg_flow(pg_ctx, sandbox) -> Flow:
    return make_flow(pg_ctx, sandbox)
