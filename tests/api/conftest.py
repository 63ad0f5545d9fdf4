"""The API under test: the WSGI app over a fresh database (SQLite, and PostgreSQL when
HUB_TEST_DATABASE_URL is set), configured with the sandbox's credentials so the real
connectors verify real signatures, and a fixed clock (10:00 in Shanghai: stores open)."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from werkzeug.test import Client

from connectors.base import MemoryBinder, RetryPolicy
from connectors.registry import build_connector
from hub.api.app import ApiApp, ApiDeps, build_api, build_deps
from hub.bootstrap import HubContext
from hub.config import DEFAULT_CONFIG_PATH, SystemConfig, parse_config
from hub.domain.model import StockCount
from hub.metrics import HubMetrics
from hub.services import inventory
from sandbox.credentials import STATIC, sandbox_env
from sandbox.local_delivery import LocalDeliverySimulator
from tests.conftest import _BACKENDS, make_ctx
from tests.support import T0, always_open, at

CHANNEL_KEY = STATIC["HUB_CHANNEL_MINIPROGRAM_KEY"]
POS_KEYS = {"S001": STATIC["HUB_POS_S001_KEY"], "S002": STATIC["HUB_POS_S002_KEY"],
            "S003": STATIC["HUB_POS_S003_KEY"]}
ERP_KEY = STATIC["HUB_ERP_KEY"]
OPS_KEY = STATIC["HUB_OPS_KEY"]
BUYER = {"id": "oBuyer1", "name": "Li Lei", "phone": "13800138000"}
ADDRESS = {"text": "Near Jing'an temple, 100 Huashan Road", "lat": 31.2250, "lng": 121.4450, "name": "Li Lei",
           "phone": "13800138000"}

def sandbox_config(url: str):
    return parse_config(always_open(DEFAULT_CONFIG_PATH.read_text()), env={**sandbox_env(), "HUB_DATABASE_URL": url})


def api_ctx(backend: str, tmp_path) -> HubContext:
    return make_ctx(backend, tmp_path, config=sandbox_config)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):
        return self.now


@dataclass
class Api:
    ctx: HubContext
    deps: ApiDeps
    app: ApiApp
    clock: Clock

    @property
    def client(self) -> Client:
        return Client(self.app)

    def call(self, method: str, path: str, key: str | None = CHANNEL_KEY, **kw: Any):
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.open(path, method=method, headers=headers, **kw)

    def get(self, path: str, key: str | None = CHANNEL_KEY, **kw: Any):
        return self.call("GET", path, key, **kw)

    def post(self, path: str, json: Any = None, key: str | None = CHANNEL_KEY, **kw: Any):
        return self.call("POST", path, key, json=json, **kw)

    def put(self, path: str, json: Any = None, key: str | None = CHANNEL_KEY, **kw: Any):
        return self.call("PUT", path, key, json=json, **kw)

    def basic(self, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"ops:{password}".encode()).decode()}

    # -- setting the scene through the core ------------------------------------------------------
    def stock(self, qty: int = 10, locations=("S001", "S002", "WH01"), skus=("TEA-001", "CUP-002")) -> None:
        with self.ctx.uow() as uow:
            for loc in locations:
                for sku in skus:
                    inventory.apply_count(uow, StockCount("test", f"seed-{sku}-{loc}-{qty}", sku, loc, qty, at(-60)))
            uow.commit()

    def level(self, loc: str = "S001", sku: str = "TEA-001") -> inventory.LocationStock:
        with self.ctx.uow() as uow:
            return inventory.stock_at(uow.session, self.ctx.config, sku, loc)

    def order(self, key: str = "k1", kind: str = "pickup", qty: int = 2, store: str = "S001",
              sku: str = "TEA-001") -> str:
        body = order_body(kind, qty, store, sku)
        r = self.post("/api/v1/orders", body, headers={"Idempotency-Key": key})
        assert r.status_code == 201, r.json
        return r.json["order_id"]

    def pay(self, order_id: str, ref: str = "tx-1") -> None:
        r = self.post(f"/api/v1/orders/{order_id}/pay", {"payment_ref": ref})
        assert r.status_code == 200, r.json


def order_body(kind: str = "pickup", qty: int = 2, store: str = "S001", sku: str = "TEA-001") -> dict:
    fulfillment: dict[str, Any] = {"type": kind}
    if kind == "pickup":
        fulfillment["store_id"] = store
    else:
        fulfillment["address"] = ADDRESS
    return {"lines": [{"sku": sku, "qty": qty}], "buyer": BUYER, "fulfillment": fulfillment}


@pytest.fixture(params=_BACKENDS)
def api(request, tmp_path):
    ctx = api_ctx(request.param, tmp_path)
    clock = Clock()
    deps = build_deps(ctx, now=clock, metrics=HubMetrics(CollectorRegistry()))
    yield Api(ctx, deps, build_api(ctx, deps), clock)
    for connector in deps.connectors.values():
        close = getattr(connector, "close", None)
        if close:
            close()
    ctx.engine.dispose()


@pytest.fixture
def courier(api):
    """The Dada simulator the hub asks to confirm each callback (its own callbacks are not sent:
    each test posts the callback it means to)."""
    sim = LocalDeliverySimulator.from_env(sandbox_env()).start()
    sim.step_s, sim.knobs.drop_callbacks = None, True
    system = api.ctx.config.systems["local_delivery"]
    system = SystemConfig(**{**system.model_dump(), "base_url": sim.base_url})
    api.deps.connectors["local_delivery"] = build_connector(
        "local_delivery", system, MemoryBinder(), RetryPolicy(attempts=2, initial=0.01, maximum=0.02, jitter=0))
    yield sim
    sim.stop()
