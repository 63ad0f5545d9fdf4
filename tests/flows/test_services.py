"""The fulfilment service as a real process on RabbitMQ + PostgreSQL: a pickup order's events
go outbox -> relay -> broker -> FulfilmentService -> the POS simulator."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub import handlers
from hub.storage.tables import ProcessedMessage
from tests.backbone.harness import HubProcess, hub_env, purge_hub_queues, wait_for
from tests.conftest import BROKER_URL, PG_URL


def test_pickup_order_reaches_the_pos_and_is_prepared_through_the_broker(pg_flow, tmp_path):
    if not BROKER_URL:
        pytest.skip("RabbitMQ not configured: set HUB_TEST_BROKER_URL (make test does)")
    purge_hub_queues(BROKER_URL)
    pos, pay = pg_flow.sandbox.pos, pg_flow.sandbox.wechat_pay
    hub = HubProcess(["relay", "fulfilment"], hub_env(PG_URL, BROKER_URL, pg_flow.sandbox.env()),
                     tmp_path / "hub.log")
    try:
        order_id = pg_flow.place("pickup", [("TEA-001", 1, 12800)], store_id="S001")
        pg_flow.pay(order_id)
        wait_for(lambda: pos.order_for(order_id) is not None, 30, "the order at the POS")
        pg_flow.move(order_id, "picking", "picked", "ready_for_pickup")
        wait_for(lambda: pos.pickup_state(order_id) == "PREPARED", 30, "PREPARED at the POS")
        wait_for(lambda: len(pay.shipping_uploads) == 1, 30, "the self-pickup shipping info")
    finally:
        hub.stop()
    assert pay.shipping_uploads[0]["logistics_type"] == 4
    assert [o["reference_id"] for o in pos.orders_at("S001")] == [order_id]
    with pg_flow.ctx.uow() as uow:
        handled = uow.session.execute(select(func.count()).where(
            ProcessedMessage.consumer == handlers.STORE_ORDER_TO_POS.name)).scalar_one()
    assert handled == 3          # allocated, picked and ready_for_pickup; paid was not for it (no write)
    assert "Traceback" not in (tmp_path / "hub.log").read_text()
