"""The gateway's API, set up once per process for whichever HTTP server serves it (granian, gunicorn, nameko)."""
from __future__ import annotations

import logging
from typing import Any

from hub.api.app import ApiApp

WARM_CONNECTIONS = 64           # Redis connections a gateway opens at start: its busiest concurrency
log = logging.getLogger(__name__)


def build_gateway_api(config: dict[str, Any]) -> ApiApp:
    """The API over this process's context, its pools opened ahead of the first rush, with the operators'
    dead-letter replay and the broker's queue depths wired in."""
    from hub import consumers, handlers
    from hub.api.app import build_api, build_deps
    from hub.services import flash_sales
    from hub.storage.db import warm_pool

    from .broker import queue_depths
    from .dependencies import context_from_config
    from .embedded import transport_options
    from .runner import all_service_classes

    ctx = context_from_config(config)
    # A rush's first attempts find their connections open (each worker thread or greenthread uses its own).
    warm_pool(ctx.engine, prepare=flash_sales.prepare_connection)
    warm_gate = getattr(ctx.gate, "warm", None)
    if warm_gate is not None:
        try:
            warm_gate(WARM_CONNECTIONS)
        except Exception as exc:         # Redis away: the gate's own errors answer the first attempts
            log.warning("could not open the flash-sale gate's connections ahead of time: %s", exc)
    url, options = config["AMQP_URI"], transport_options(config)

    def replay(i: int, resend: bool = False) -> bool:
        return consumers.replay(ctx, i, handlers.BY_NAME, resend=resend)

    return build_api(ctx, build_deps(ctx, replay_dead_letter=replay,
                                     queue_depths=lambda: queue_depths(url, all_service_classes(), options)))
