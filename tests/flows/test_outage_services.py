"""Two replicas of channel_sync as real processes on RabbitMQ + PostgreSQL, the database refusing
connections while stock events arrive: every event waits on its queue and is applied once the
database is back — none lost, none parked."""
from __future__ import annotations

import time
import uuid

import pytest

from hub import consumers
from hub.domain.stock import channel_available
from hub.services import inventory
from hub.storage.tables import utcnow
from tests.backbone.harness import HubProcess, hub_env, purge_hub_queues, wait_for
from tests.conftest import BROKER_URL, PG_URL
from tests.faults import allow_connections, database_down
from tests.support import count

from .conftest import SKUS

STORES = ("S001", "S002")


@pytest.fixture
def db_comes_back():
    yield
    allow_connections(PG_URL)


def _stock_event(sku: str, store: str) -> dict:
    return {"id": str(uuid.uuid4()), "type": "stock.changed", "occurred_at": utcnow().isoformat(),
            "data": {"sku": sku, "location_id": store, "cause": "count"}}


def test_stock_events_wait_out_a_database_outage_with_two_replicas(pg_flow, tmp_path, db_comes_back):
    if not BROKER_URL:
        pytest.skip("RabbitMQ not configured: set HUB_TEST_BROKER_URL (make test does)")
    from workers.relay import OutboxPublisher

    purge_hub_queues(BROKER_URL)
    ctx, shop = pg_flow.ctx, pg_flow.sandbox.wechat_shop
    pairs = [(sku, store) for sku in SKUS for store in STORES]
    with ctx.uow() as uow:                   # a figure of its own for every pair
        for i, (sku, store) in enumerate(pairs):
            inventory.apply_count(uow, count(sku, store, 20 + i, minutes=5))
        uow.commit()
    safety = ctx.config.channel("wechat_shop").safety_stock
    with ctx.reader() as uow:
        expected = {p: channel_available(inventory.stock_at(uow.session, ctx.config, *p).available, safety)
                    for p in pairs}
    env = hub_env(PG_URL, BROKER_URL, pg_flow.sandbox.env())
    replicas = [HubProcess(["channel_sync"], env, tmp_path / f"channel_sync-{i}.log") for i in range(2)]
    publisher = OutboxPublisher(BROKER_URL)
    try:
        with database_down(PG_URL):
            publisher.publish([("stock.changed", _stock_event(sku, store)) for sku, store in pairs])
            # The old consumers tried 3 times within 0.6 s, failed to park, and were acked: gone.
            time.sleep(4)
        wait_for(lambda: all(shop.stock_of(*p) == expected[p] for p in pairs), 60,
                 "the shop to show every figure")
        assert all(r.proc.poll() is None for r in replicas), "a replica died during the outage"
    finally:
        publisher.close()
        for r in replicas:
            r.stop()
    assert consumers.dead_letters(ctx) == []
