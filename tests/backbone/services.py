"""Services used only by the backbone tests: real nameko consumers whose effects are countable."""
from __future__ import annotations

from typing import Any

from nameko.events import event_handler
from nameko.rpc import rpc
from sqlalchemy import text

from hub.consumers import consumer, handle_once
from workers.dependencies import HubCore


@consumer("test.record_effect")
def record_effect(ctx, uow, data: dict[str, Any]) -> None:
    uow.session.execute(text("INSERT INTO test_effects (n) VALUES (:n)"), {"n": data["n"]})


@consumer("test.award_points")
def award_points(ctx, uow, data: dict[str, Any]) -> None:
    ctx.connectors["crm"].add_points(data["member_id"], data["order_id"], data["points"])


class EffectService:
    name = "effects"
    hub = HubCore()

    @event_handler("hub", "test.ping")
    def on_ping(self, envelope: dict[str, Any]) -> None:
        with self.hub.uow() as uow:     # every delivery, duplicates included
            uow.session.execute(text("INSERT INTO test_deliveries (message_id) VALUES (:m)"),
                                {"m": envelope["id"]})
            uow.commit()
        handle_once(self.hub, "test.record_effect", envelope)

    @event_handler("hub", "test.points")
    def on_points(self, envelope: dict[str, Any]) -> None:
        handle_once(self.hub, "test.award_points", envelope, attempts=2, backoff=0.05)

    @rpc
    def echo(self, value: Any) -> Any:
        return value
