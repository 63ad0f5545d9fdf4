"""`hub run [SERVICE…]`: start nameko services in this process.

All of them by default (embedded: one process); name some to run each service in its own
process, as many replicas as load needs (competing consumers on RabbitMQ queues).
"""
from __future__ import annotations

import importlib
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import eventlet
from nameko.runners import ServiceRunner

from . import SERVICES
from .broker import declare_all
from .embedded import nameko_config

log = logging.getLogger(__name__)

# Restarting services that died: first pause, longest pause, and how long a run must last to
# count as healthy again (the pause then starts over from the first).
RESTART_FIRST_WAIT_S = 1.0
RESTART_MAX_WAIT_S = 30.0
STABLE_AFTER_S = 60.0


def service_class(name: str) -> type:
    """A name from SERVICES, or "module:Class" (how tests run a service of their own)."""
    target = SERVICES.get(name, name)
    if ":" not in target:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def all_service_classes() -> list[type]:
    """The hub's services, plus any named in HUB_EXTRA_SERVICES ("module:Class,…"): their queues
    are declared by every process, wherever the services themselves run."""
    extra = [n for n in os.environ.get("HUB_EXTRA_SERVICES", "").split(",") if n.strip()]
    return [service_class(n) for n in [*SERVICES, *extra]]


# Concurrent workers per container. A process with the gateway takes more: a flash sale's admitted attempts
# each wait on ten or so database round trips, and with 20 workers they held every one while the "sold out"
# answers, which need neither a worker for long nor the database, queued behind them (rush p99 of seconds).
WORKERS, GATEWAY_WORKERS = 20, 100


def _max_workers(names: list[str]) -> int:
    # Only a process that is a gateway alone: beside the relay and channel sync (embedded, SQLite's one
    # writer) 100 HTTP workers would crowd them out of the writer lock and the backlog would only grow.
    return GATEWAY_WORKERS if set(names) == {"gateway"} else WORKERS


def build_runner(names: list[str], broker_url: str, *, database_url: str | None = None,
                 config_path: str | None = None, http_address: str | None = None) -> ServiceRunner:
    config: dict[str, Any] = nameko_config(broker_url, HUB_DATABASE_URL=database_url, HUB_CONFIG_PATH=config_path,
                                           WEB_SERVER_ADDRESS=http_address or "127.0.0.1:8000",
                                           max_workers=_max_workers(names), parent_calls_tracked=10)
    classes = [service_class(n) for n in names]
    # Every queue the hub needs exists before anything publishes, even for services run elsewhere.
    declare_all(broker_url, {*all_service_classes(), *classes}, config.get("TRANSPORT_OPTIONS"))
    runner = ServiceRunner(config)
    for cls in classes:
        runner.add_service(cls)
    return runner


WAKE_S = 0.5                 # at most this long between a SIGTERM and the services starting to stop


def _keep_waking() -> None:
    while True:
        eventlet.sleep(WAKE_S)


def run_forever(make_runner: Callable[[], ServiceRunner], announce: str = "") -> None:
    """Run the services until SIGTERM or Ctrl-C; when one dies (a nameko container dies with its
    broker connection), stop the rest and start them all again, with backoff."""
    stopping = False
    current: ServiceRunner | None = None

    def shutdown(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        if current is not None:
            eventlet.spawn_n(current.stop)

    signal.signal(signal.SIGTERM, shutdown)
    # The handler's spawn runs only once eventlet's hub next wakes, and Python resumes the hub's interrupted poll
    # with its old timeout (PEP 475): a gateway whose only company was a client's idle keep-alive connection had
    # nothing due and never stopped (`hub up` killed it after 15 s). A tick keeps the hub looking.
    eventlet.spawn(_keep_waking)
    delay, announced = RESTART_FIRST_WAIT_S, False
    while not stopping:
        started = time.monotonic()
        try:
            current = make_runner()         # declares the queues: needs the broker
            current.start()
        except Exception as exc:           # broker (or database) not there yet: wait, try again
            log.warning("services could not start (%s: %s); trying again in %.0fs", type(exc).__name__, exc, delay)
        else:
            if not announced:
                log.info("services running: %s", ", ".join(c.service_name for c in current.containers))
                if announce:
                    print(announce, flush=True)
                announced = True
            try:
                current.wait()
                if stopping:
                    break
                log.error("services stopped without being asked; starting them again")
            except KeyboardInterrupt:
                stopping = True
                current.stop()
                break
            except Exception as exc:
                if stopping:
                    break
                log.error("a service died (%s: %s); restarting this process's services in %.0fs",
                          type(exc).__name__, exc, delay)
        if time.monotonic() - started > STABLE_AFTER_S:
            delay = RESTART_FIRST_WAIT_S
        eventlet.sleep(delay)
        delay = min(delay * 2, RESTART_MAX_WAIT_S)
