"""The nameko services that run the hub. Each `service.py`-style module is entrypoints only;
the work is done by the `hub/` core through the dependency providers in `dependencies.py`."""

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

