"""1,000 events end to end: committed to the outbox -> relayed -> consumed once."""
from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from connectors.registry import build_connector
from hub.bootstrap import build_context
from hub.config import load_config
from hub.events import Probe
from hub.storage.tables import ProcessedMessage
from workers.launcher import HubProcess, wait_for

SERVICE = "bench.ping_service:PingService"


def events_end_to_end(env: dict[str, str], groups: list[list[str]], workdir: Path, n: int = 1000) -> float:
    """Seconds from committing `n` events to the consumer having applied all of them."""
    ctx = build_context(load_config(), env["HUB_DATABASE_URL"], connectors=build_connector)
    procs = [HubProcess(g, env, workdir / f"backbone-{'-'.join(g).replace(':', '_')}.log") for g in groups]
    try:
        time.sleep(1.0)                       # consumers attached
        started = time.perf_counter()
        with ctx.uow() as uow:
            for i in range(n):
                uow.emit(Probe("bench.ping", {"n": i}))
            uow.commit()

        def applied() -> int:
            with ctx.uow() as uow:
                stmt = select(func.count()).where(ProcessedMessage.consumer == "bench.ping")
                return uow.session.execute(stmt).scalar_one()

        wait_for(lambda: applied() >= n, 300, f"{n} events applied", interval=0.02)
        return time.perf_counter() - started
    finally:
        for p in procs:
            p.stop()
        ctx.engine.dispose()
