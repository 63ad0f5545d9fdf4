"""Services used only by the backbone tests: real nameko consumers whose effects are countable."""
from __future__ import annotations

import os
from typing import Any

import eventlet
from nameko.events import event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from sqlalchemy import text

from hub.consumers import Consumer, handle_once
from hub.events import Probe
from hub.ports import TransientError
from workers.dependencies import HubCore
from workers.subscribe import batch_event_handler


def record_effect(ctx, uow, data: dict[str, Any]) -> None:
    uow.session.execute(text("INSERT INTO test_effects (n) VALUES (:n)"), {"n": data["n"]})


def award_points(ctx, uow, data: dict[str, Any]) -> None:
    try:
        ctx.connectors["crm"].add_points(data["member_id"], data["order_id"], data["points"])
    except TransientError as exc:
        # this probe shows a failing call parked and replayed: the CRM's own outage wait (retries due,
        # tests/flows/test_crm_outage.py) is left out of it
        raise TransientError(exc.system, str(exc).removeprefix(f"{exc.system}: "), status=exc.status) from exc


RECORD_EFFECT = Consumer("test.record_effect", Probe, record_effect, "effects")
AWARD_POINTS = Consumer("test.award_points", Probe, award_points, "effects")
TABLE = {c.name: c for c in (RECORD_EFFECT, AWARD_POINTS)}       # what a replay here looks letters up in


class EffectService:
    name = "effects"
    hub = HubCore()

    @event_handler("hub", "test.ping")
    def on_ping(self, envelope: dict[str, Any]) -> None:
        with self.hub.uow() as uow:     # every delivery, duplicates included
            uow.session.execute(text("INSERT INTO test_deliveries (message_id) VALUES (:m)"),
                                {"m": envelope["id"]})
            uow.commit()
        handle_once(self.hub, RECORD_EFFECT, envelope)

    @event_handler("hub", "test.points")
    def on_points(self, envelope: dict[str, Any]) -> None:
        handle_once(self.hub, AWARD_POINTS, envelope, attempts=2, backoff=0.05)

    @rpc
    def echo(self, value: Any) -> Any:
        return value


class _DiesOnce(DependencyProvider):
    """Kills its container once (as a lost broker connection does): a managed thread that raises."""

    def start(self) -> None:
        marker = os.environ.get("HUB_TEST_DIE_ONCE_MARKER")
        if marker and not os.path.exists(marker):
            open(marker, "w").close()
            self.container.spawn_managed_thread(self._die)

    @staticmethod
    def _die() -> None:
        eventlet.sleep(1.0)
        raise ConnectionError("the broker connection went away")


class DiesOnceService:
    name = "dies_once"
    fate = _DiesOnce()

    @rpc
    def ping(self) -> str:
        return "pong"


class BatchedService:
    """A slow batch handler that records each batch's size: what arrives while a batch runs gathers."""

    name = "batched"
    hub = HubCore()

    @batch_event_handler("hub", "test.batched")
    def on_batch(self, envelopes: list[dict[str, Any]]) -> None:
        with self.hub.uow() as uow:
            uow.session.execute(text("INSERT INTO test_batches (size) VALUES (:s)"), {"s": len(envelopes)})
            uow.commit()
        eventlet.sleep(0.3)
