"""A store's cap on orders per window (`locations[].capacity`) and its pause, as a rush of clients meets them:
many orders for one capped store at once (real concurrent requests on PostgreSQL) take no more than the cap;
the rest are 409 with the reason and reserve nothing."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.test import Client

from hub.api.app import build_api, build_deps
from hub.config import LocationConfig
from hub.domain.model import StockCount
from hub.metrics import HubMetrics
from hub.services import inventory
from hub.storage.tables import OrderRow
from tests.api.conftest import CHANNEL_KEY, Clock, order_body, sandbox_config
from tests.conftest import _BACKENDS, PG_URL, make_ctx
from tests.hostile.conftest import Live, at_once
from tests.hostile.test_pay_cancel_race import reserved, stock
from tests.support import at

CAP = 3


def capped(url: str):
    cfg = sandbox_config(url)
    locations = [LocationConfig.model_validate({**loc.model_dump(), "capacity": {"max_orders": CAP,
                                                                                  "window_minutes": 60}})
                 if loc.id == "S001" else loc for loc in cfg.locations]
    return cfg.model_copy(update={"locations": locations})


@pytest.fixture
def live(tmp_path) -> Iterator[Live]:
    if not PG_URL:
        pytest.skip("needs PostgreSQL")
    ctx = make_ctx("postgresql", tmp_path, config=capped)
    clock = Clock()
    deps = build_deps(ctx, now=clock, metrics=HubMetrics(CollectorRegistry()))
    server = make_server("127.0.0.1", 0, build_api(ctx, deps), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", ctx, deps, clock)
    finally:
        server.shutdown()
        ctx.engine.dispose()


def test_a_rush_of_orders_at_a_capped_store_takes_no_more_than_the_cap(live: Live) -> None:
    stock(live)
    replies = at_once(*[lambda n=n: live.post("/api/v1/orders", order_body(qty=1),
                                              headers={"Idempotency-Key": f"r-{n}"}) for n in range(8)])
    codes = sorted(r.status_code for r in replies)
    with live.ctx.reader() as uow:
        at_s001 = uow.session.execute(select(func.count()).select_from(OrderRow)
                                      .where(OrderRow.location_id == "S001")).scalar_one()
    assert at_s001 <= CAP and codes.count(201) == at_s001 and reserved(live) == at_s001
    assert set(codes) <= {201, 409} and codes.count(201) == CAP
    refused = [r.json() for r in replies if r.status_code == 409]
    assert all("at capacity" in body["message"] for body in refused), refused


def test_a_rush_of_deliveries_fills_the_capped_store_and_goes_on_to_the_next(live: Live) -> None:
    stock(live)
    with live.ctx.uow() as uow:         # S002 stocked too, so a delivery the full S001 cannot take goes there
        inventory.apply_count(uow, StockCount("test", "seed-s002", "TEA-001", "S002", 50, at(-60)))
        uow.commit()
    replies = at_once(*[lambda n=n: live.post("/api/v1/orders", order_body("delivery", qty=1),
                                              headers={"Idempotency-Key": f"d-{n}"}) for n in range(8)])
    assert [r.status_code for r in replies] == [201] * 8, [r.text for r in replies]
    with live.ctx.reader() as uow:
        where = [loc for (loc,) in uow.session.execute(select(OrderRow.location_id))]
    assert where.count("S001") <= CAP and len(where) == 8



@pytest.mark.parametrize("backend", _BACKENDS)
def test_the_cap_counts_one_order_after_another_on_either_database(tmp_path, backend: str) -> None:
    ctx = make_ctx(backend, tmp_path, config=capped)
    try:
        deps = build_deps(ctx, now=Clock(), metrics=HubMetrics(CollectorRegistry()))
        client = Client(build_api(ctx, deps))
        with ctx.uow() as uow:
            inventory.apply_count(uow, StockCount("test", "seed", "TEA-001", "S001", 50, at(-60)))
            uow.commit()
        codes = [client.post("/api/v1/orders", json=order_body(qty=1), headers={
            "Authorization": f"Bearer {CHANNEL_KEY}", "Idempotency-Key": f"s-{n}"}).status_code for n in range(CAP + 2)]
        assert codes == [201] * CAP + [409, 409]
    finally:
        ctx.engine.dispose()
