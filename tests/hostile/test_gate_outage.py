"""Issue 19, item 7: the flash-sale gate's Redis away is an outage of our own infrastructure. An attempt is
503 with Retry-After (like the database away), and the give-back consumer waits it out instead of parking.
Redis "away" is a real RedisGate pointed at a local port where nothing listens: real connection errors,
and the Redis the other engineers use is not touched."""
from __future__ import annotations

import socket

import redis
from sqlalchemy import func, select

from connectors.redis_gate import RedisGate
from hub import consumers, handlers
from hub.storage.tables import DeadLetter, OrderRow, OutboxMessage
from tests.api.test_flash_sales import arm, attempt, drawn


def redis_away() -> RedisGate:
    with socket.socket() as s:           # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_connect_timeout=0.5,
                         socket_timeout=0.5)
    return RedisGate(client, "hubtest:away:")


def count(api, table) -> int:
    with api.ctx.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(table)).scalar_one()


def test_an_attempt_while_redis_is_away_is_503_with_retry_after_and_changes_nothing(api):
    """Old code: 500 "internal" (redis.ConnectionError was nobody's)."""
    sale = arm(api, quota=5)
    api.ctx.gate = redis_away()
    r = attempt(api, sale, "b1")
    assert r.status_code == 503 and r.json["error"] == "gate_unavailable", r.json
    assert r.headers["Retry-After"] == "1"
    assert count(api, OrderRow) == 0 and drawn(api, sale) == 0


def test_the_give_back_consumer_waits_out_redis_and_never_parks(api):
    """Old code: three tries, then a dead letter, and the cancelled order's unit stayed out of the gate."""
    sale = arm(api, quota=2)
    gate = api.ctx.gate
    oid = attempt(api, sale, "b1").json["order_id"]
    assert api.post(f"/api/v1/orders/{oid}/cancel", {}).status_code == 200
    with api.ctx.uow() as uow:
        envelope = uow.session.execute(select(OutboxMessage.payload).where(
            OutboxMessage.event_type == "order.status_changed")).scalars().all()[-1]
    api.ctx.gate = redis_away()
    waits: list[float] = []

    def sleep(seconds: float) -> None:    # Redis comes back after the sixth pause
        waits.append(seconds)
        if len(waits) == 6:
            api.ctx.gate = gate

    outcome = consumers.handle_once(api.ctx, handlers.FLASH_SALE_GIVE_BACK, envelope, sleep=sleep)
    assert outcome.status == "applied" and len(waits) == 6
    assert count(api, DeadLetter) == 0
    assert gate.state(sale).left == 2
