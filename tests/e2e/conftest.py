"""The whole hub as production runs it: each service its own process on RabbitMQ and PostgreSQL,
every simulator on loopback, driven through the public HTTP API."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from connectors.registry import build_connector
from hub.bootstrap import HubContext, build_context, sync_locations, upsert_skus
from hub.config import DEFAULT_CONFIG_PATH, parse_config
from hub.metrics import prepare_multiproc_dir
from hub.storage.bindings import SqlBinder
from hub.storage.tables import Base
from sandbox.bindings import bind_sandbox
from sandbox.runner import start_sandbox
from tests.backbone.harness import hub_env, purge_hub_queues
from tests.conftest import BROKER_URL, PG_URL
from tests.support import CATALOG, always_open, config_env
from workers import SERVICES
from workers.launcher import HubProcess, wait_for

SKUS = [s.code for s in CATALOG]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Hub:
    base: str
    ctx: HubContext
    sandbox: Any
    keys: dict[str, str]

    def call(self, method: str, path: str, key: str = "channel", **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}", **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def order(self, order_id: str) -> dict:
        return self.call("GET", f"/api/v1/orders/{order_id}").json()

    def wait_status(self, order_id: str, status: str, timeout: float = 30) -> dict:
        wait_for(lambda: self.order(order_id)["status"] == status, timeout, f"order {order_id} to be {status}",
                 interval=0.1)
        return self.order(order_id)


@pytest.fixture(scope="module")
def running_hub(tmp_path_factory):
    yield from start_hub(tmp_path_factory)


def start_hub(tmp_path_factory: Any, extra_env: dict[str, str] | None = None) -> Iterator[Hub]:
    """Every service its own process; `extra_env` added to their environment (a module's own `running_hub`)."""
    if not (PG_URL and BROKER_URL):
        pytest.skip("end-to-end tests need PostgreSQL and RabbitMQ (make test sets them)")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("e2e")
    # Stores open around the clock, so delivery routing does not depend on when CI runs.
    config_file = logs / "config.yaml"
    config_file.write_text(always_open(DEFAULT_CONFIG_PATH.read_text()))
    sandbox = start_sandbox(callback_base=base)
    sandbox.local_delivery.step_s = 0.3
    sandbox.express.auto_step_s = 0.3
    # Metrics from every service process add up in one directory, as a launcher of replicas sets it up.
    metrics_dir = prepare_multiproc_dir(logs / "metrics")
    env = hub_env(PG_URL, BROKER_URL, {**sandbox.env(), "HUB_HTTP_PORT": str(port), "HUB_CONFIG": str(config_file),
                                       "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **(extra_env or {})})
    cfg = parse_config(config_file.read_text(), env={**config_env(), **env})
    ctx = build_context(cfg, PG_URL, connectors=build_connector)
    purge_hub_queues(BROKER_URL)
    procs = []
    try:
        for name in SERVICES:                    # one process per service, as in production
            procs.append(HubProcess([name], env, logs / f"{name}.log"))
        wait_for(lambda: _up(base), 30, "the gateway")
        keys = {"channel": cfg.channel("miniprogram").key, "erp": cfg.systems["erp"].get("key"),
                "ops": cfg.hub.ops_key, **{s.id: s.pos_key for s in cfg.stores}}
        yield Hub(base, ctx, sandbox, keys)
    finally:
        for p in procs:
            p.stop()
        sandbox.stop()
        ctx.engine.dispose()


def _up(base: str) -> bool:
    try:
        return requests.get(base + "/health", timeout=1).status_code in (200, 503)
    except requests.RequestException:
        return False


def _truncate_when_quiet(ctx: HubContext) -> None:
    """Let the previous test's events drain, then empty every table. TRUNCATE gives way after a
    moment: a consumer mid-transaction may need another connection to finish, and a queued
    TRUNCATE would block that connection behind it."""
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    wait_for(lambda: _unsent(ctx) == 0, 30, "the outbox to drain", interval=0.1)
    for _ in range(30):
        try:
            with ctx.engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        except OperationalError:
            continue
    raise AssertionError("could not empty the database between tests")


def _unsent(ctx: HubContext) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(text("select count(*) from outbox where sent_at is null")).scalar_one()


@pytest.fixture
def hub(running_hub):
    """A clean database and clean simulators for each test, the same running services."""
    h = running_hub
    _truncate_when_quiet(h.ctx)
    sync_locations(h.ctx)
    with h.ctx.uow() as uow:
        upsert_skus(uow, CATALOG)
        uow.commit()
    h.sandbox.reset()
    h.sandbox.local_delivery.step_s = 0.3
    bind_sandbox(SqlBinder(h.ctx.session_factory), h.sandbox, SKUS)
    return h
