"""The nameko services that run the hub. Each `service.py`-style module is entrypoints only;
the work is done by the `hub/` core through the dependency providers in `dependencies.py`."""
from typing import Any

# name -> "module:Class"; `hub run NAME…` starts these (all of them when none is named).
SERVICES: dict[str, str] = {
    "gateway": "workers.gateway:GatewayService",
    "relay": "workers.relay:RelayService",
    "channel_sync": "workers.channel_sync:ChannelSyncService",
    "scheduler": "workers.scheduler:SchedulerService",
    "fulfilment": "workers.fulfilment:FulfilmentService",
    "erp_sync": "workers.erp_sync:ErpSyncService",
}

EVENT_SOURCE = "hub"   # events from the outbox are published as if dispatched by service "hub"


def on_event(event_type: str) -> Any:
    """A nameko event handler for a hub event that is never acknowledged on failure.

    nameko acks a failed worker's message by default; the hub's handlers return only once the
    effect or the dead letter is committed, so anything escaping them (the database away while
    parking, a bug) puts the message back on its queue instead of losing it.
    """
    from nameko.events import event_handler

    return event_handler(EVENT_SOURCE, event_type, requeue_on_error=True)
