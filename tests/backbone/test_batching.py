"""Batch consumers on real RabbitMQ: a batch is not capped by the container's worker count (nameko's
prefetch is `max_workers`, 20, which capped every batch at 20 messages), and while a batch runs the next
one gathers what arrives, so batches grow with the load; every message is acknowledged once."""
from __future__ import annotations

import pytest
from kombu import Connection
from sqlalchemy import text

from hub.events import Probe

from .harness import HubProcess, hub_env, wait_for

BATCHED = "tests.backbone.services:BatchedService"
EXTRA = "tests.backbone.services:EffectService," + BATCHED


def sizes(ctx) -> list[int]:
    with ctx.engine.connect() as conn:
        return list(conn.execute(text("select size from test_batches order by id")).scalars())


@pytest.fixture
def batches_table(backbone):
    """The table the batch handler writes to, dropped afterwards (the migration test compares the schema)."""
    ctx = backbone[0]
    with ctx.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS test_batches"))
        conn.execute(text("CREATE TABLE test_batches (id serial primary key, size integer not null)"))
    yield
    with ctx.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS test_batches"))


def test_batches_gather_beyond_the_containers_workers_while_one_runs(backbone, batches_table, tmp_path):
    ctx, db, broker = backbone
    env = hub_env(db, broker, {"HUB_EXTRA_SERVICES": EXTRA})
    consumer = HubProcess([BATCHED], env, tmp_path / "batched.log")
    try:
        with ctx.uow() as uow:
            for i in range(300):
                uow.emit(Probe("test.batched", {"n": i}))
            uow.commit()
        relay = HubProcess(["relay"], env, tmp_path / "relay.log")
        try:
            wait_for(lambda: sum(sizes(ctx)) >= 300, 60, "300 messages handled")
        finally:
            relay.stop()
        queue = "evt-hub-test.batched--batched.on_batch"
        with Connection(broker) as conn:              # every message acknowledged: none ready, none held
            wait_for(lambda: conn.default_channel.queue_declare(queue, passive=True).message_count == 0, 10,
                     "the queue to be empty")
    finally:
        consumer.stop()
    got = sizes(ctx)
    assert sum(got) == 300                             # once each: nothing redelivered
    assert max(got) > 20, got                          # beyond max_workers (20), the old cap on a batch
    assert len(got) < 15, got                          # gathered while the first ran, not 15 batches of 20
