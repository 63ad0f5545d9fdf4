"""The message backbone on real RabbitMQ and PostgreSQL, services as real processes."""
from __future__ import annotations

import time

from sqlalchemy import func, select, text

from hub import consumers
from hub.events import Probe
from hub.storage.tables import DeadLetter, OutboxMessage

from . import services
from .harness import HubProcess, hub_env, wait_for

EFFECTS = "tests.backbone.services:EffectService"


def emit_pings(ctx, n: int, start: int = 0) -> None:
    with ctx.uow() as uow:
        for i in range(start, start + n):
            uow.emit(Probe("test.ping", {"n": i}))
        uow.commit()


def scalar(ctx, sql: str) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def unsent(ctx) -> int:
    with ctx.uow() as uow:
        return uow.session.execute(select(func.count()).where(OutboxMessage.sent_at.is_(None))).scalar_one()


def test_event_from_outbox_reaches_a_consumer_started_after_the_publish(backbone, tmp_path):
    ctx, db, broker = backbone
    env = hub_env(db, broker)
    relay = HubProcess(["relay"], env, tmp_path / "relay.log")   # declares every queue, then publishes
    try:
        emit_pings(ctx, 5)
        wait_for(lambda: unsent(ctx) == 0, 30, "the relay to publish")
    finally:
        relay.stop()
    effects = HubProcess([EFFECTS], env, tmp_path / "effects.log")
    try:
        wait_for(lambda: scalar(ctx, "select count(*) from test_effects") == 5, 30, "5 effects")
    finally:
        effects.stop()
    assert scalar(ctx, "select count(distinct n) from test_effects") == 5


def test_kill_9_the_relay_mid_publish_loses_nothing_and_applies_once(backbone, tmp_path):
    ctx, db, broker = backbone
    total = 1000
    emit_pings(ctx, total)
    env = hub_env(db, broker, {"HUB_RELAY_BATCH_SIZE": "20"})
    effects = HubProcess([EFFECTS], env, tmp_path / "effects.log")
    started = time.monotonic()
    try:
        relay = HubProcess(["relay"], env, tmp_path / "relay1.log")
        wait_for(lambda: unsent(ctx) <= total - 100, 60, "the relay to publish 100 events", interval=0.005)
        relay.kill()
        left_at_kill = unsent(ctx)
        relay = HubProcess(["relay"], env, tmp_path / "relay2.log")
        try:
            wait_for(lambda: unsent(ctx) == 0, 60, "the restarted relay to publish the rest")
            wait_for(lambda: scalar(ctx, "select count(distinct n) from test_effects") == total, 60,
                     "every effect")
            time.sleep(0.5)                 # let any late duplicate arrive before counting
        finally:
            relay.stop()
    finally:
        effects.stop()
    elapsed = time.monotonic() - started
    received = scalar(ctx, "select count(*) from test_deliveries")
    applied = scalar(ctx, "select count(*) from test_effects")
    print(f"\nkill test: sent={total} unsent_at_kill={left_at_kill} received={received} applied={applied} "
          f"duplicates_suppressed={received - applied} elapsed={elapsed:.1f}s")
    assert 0 < left_at_kill < total
    assert applied == total and scalar(ctx, "select count(distinct n) from test_effects") == total
    assert received >= total


def test_the_same_event_delivered_twice_has_one_effect(backbone, tmp_path):
    ctx, db, broker = backbone
    emit_pings(ctx, 3)
    env = hub_env(db, broker)
    effects = HubProcess([EFFECTS], env, tmp_path / "effects.log")
    try:
        relay = HubProcess(["relay"], env, tmp_path / "relay.log")
        wait_for(lambda: scalar(ctx, "select count(*) from test_effects") == 3, 30, "3 effects")
        # Re-send everything, as a relay that crashed before marking rows sent would.
        with ctx.engine.begin() as conn:
            conn.execute(text("UPDATE outbox SET sent_at = NULL"))
        wait_for(lambda: scalar(ctx, "select count(*) from test_deliveries") == 6, 30, "6 deliveries")
        relay.stop()
    finally:
        effects.stop()
    assert scalar(ctx, "select count(*) from test_effects") == 3


def test_outbound_call_retried_to_success_then_parked_and_replayed(backbone, tmp_path):
    from sandbox.runner import start_sandbox

    ctx, db, broker = backbone
    sandbox = start_sandbox(only=["crm"])
    env = hub_env(db, broker, sandbox.env())
    crm = sandbox.crm
    try:
        member = _crm_member(ctx, sandbox)
        effects = HubProcess([EFFECTS, "relay"], env, tmp_path / "hub.log")
        try:
            crm.faults.fail_next = 2                       # the connector's own retries absorb these
            with ctx.uow() as uow:
                uow.emit(Probe("test.points", {"member_id": member, "order_id": "O-1", "points": 10}))
                uow.commit()
            wait_for(lambda: crm.members[member].points == 10, 30, "points after retries")
            crm.faults.error_rate, crm.faults.error_status = 1.0, 503     # CRM down for good
            with ctx.uow() as uow:
                uow.emit(Probe("test.points", {"member_id": member, "order_id": "O-2", "points": 5}))
                uow.commit()
            wait_for(lambda: len(consumers.dead_letters(ctx)) == 1, 90, "a dead letter")
        finally:
            effects.stop()
        parked = consumers.dead_letters(ctx)[0]
        assert parked.target == "test.award_points" and parked.attempts == 2 and "503" in parked.error
        assert parked.payload["data"]["order_id"] == "O-2"
        assert not consumers.replay(_ctx_with(ctx, sandbox), parked.id, services.TABLE)  # still down: kept
        crm.faults.error_rate = 0.0
        assert consumers.replay(_ctx_with(ctx, sandbox), parked.id, services.TABLE)  # recovered: applied, removed
        assert crm.members[member].points == 15
        with ctx.uow() as uow:
            assert uow.session.get(DeadLetter, parked.id) is None
    finally:
        sandbox.stop()


def _ctx_with(ctx, sandbox):
    """This process's own context, pointed at the sandbox (as `hub dlq replay` would be)."""
    from hub.bootstrap import HubContext
    from hub.config import DEFAULT_CONFIG_PATH, parse_config
    from tests.support import config_env

    cfg = parse_config(open(DEFAULT_CONFIG_PATH).read(), env={**config_env(), **sandbox.env()})
    return HubContext(cfg, ctx.engine, ctx.connector_factory)


def _crm_member(ctx, sandbox) -> str:
    from hub.domain.model import Buyer

    return _ctx_with(ctx, sandbox).connectors["crm"].upsert_member(Buyer("b-77", "Li Lei", "13800138000"))


def test_hub_run_starts_its_services_again_when_one_dies(backbone, tmp_path):
    """A nameko container dies with its broker connection; the process starts its services again."""
    ctx, db, broker = backbone
    marker = tmp_path / "died"
    env = hub_env(db, broker, {"HUB_TEST_DIE_ONCE_MARKER": str(marker), "HUB_LOG_LEVEL": "INFO"})
    hub = HubProcess([EFFECTS, "tests.backbone.services:DiesOnceService", "relay"], env, tmp_path / "hub.log")
    try:
        wait_for(lambda: b"a service died" in (tmp_path / "hub.log").read_bytes(), 30, "the container to die")
        emit_pings(ctx, 3)
        wait_for(lambda: scalar(ctx, "select count(*) from test_effects") == 3, 60, "3 effects after the restart")
        assert hub.proc.poll() is None
    finally:
        hub.stop()
    assert marker.exists()
    assert "restarting this process's services" in (tmp_path / "hub.log").read_text()
