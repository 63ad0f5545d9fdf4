"""nameko DependencyProviders: how a worker gets the hub core and the connectors.

A container builds them once in `setup()`; each worker gets a thin handle from
`get_dependency()` — the seam tests use.
"""
from __future__ import annotations

import threading
from typing import Any

from nameko.extensions import DependencyProvider

from connectors.registry import build_connector
from hub.bootstrap import HubContext, build_context
from hub.config import load_config
from hub.consumers import wait_out_outage

_contexts: dict[tuple[str | None, str | None], HubContext] = {}
_lock = threading.Lock()


def context_from_config(config: dict[str, Any]) -> HubContext:
    """One HubContext per (config file, database) per process, shared by every service in it."""
    key = (config.get("HUB_CONFIG_PATH"), config.get("HUB_DATABASE_URL"))
    with _lock:
        if key not in _contexts:
            cfg = load_config(key[0])
            # Services never migrate on start: `hub db upgrade` (or `hub run`'s start-up) does.
            # A service starting while the database is away waits for it rather than dying.
            ctx = wait_out_outage("starting a service", lambda: build_context(cfg, key[1], upgrade=False,
                                                                              connectors=build_connector))
            if cfg.hub.redis_url:
                # Every replica shares the gate in Redis; without it the in-process gate serves one process.
                from connectors.redis_gate import RedisGate
                from connectors.redis_sold_out import RedisSoldOut

                ctx.gate = RedisGate.from_url(cfg.hub.redis_url)
                # ... and the sold-out cache: channel sync writes it, every gateway reads it.
                ctx.sold_out = RedisSoldOut.from_url(cfg.hub.redis_url)
            _contexts[key] = ctx
        return _contexts[key]


class HubCore(DependencyProvider):
    """Gives a worker the HubContext: `self.hub.uow()`, `self.hub.config`, `self.hub.connectors`."""

    def setup(self) -> None:
        self.ctx = context_from_config(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> HubContext:
        return self.ctx
