"""Issue 23: a third channel of the platform kind needs only a config block and a mapping. An Ele.me 零售-style
platform run by the meituan_retail connector: its own block in a test-only config (channel and system), its own
mapping file (tests/flows/channels/eleme.yaml: its calls under /openapi/v2), and its own simulator instance (the
Meituan simulator, configured with its own port, prefix, credentials, store codes and SKU ids). No code of its own.
Its pushed order reaches the store it names; its stock is pushed by its own safety stock and allocation; its
refunds are the platform's, never WeChat Pay's."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.bootstrap import HubContext
from hub.config import DEFAULT_CONFIG_PATH, parse_config
from hub.events import OrderStatusChanged
from hub.flows import channel_orders
from hub.flows.channel_stock import publish_figures
from hub.services import inventory, orders
from hub.storage.bindings import SqlBinder
from hub.storage.tables import OutboxMessage
from sandbox.meituan import MeituanSimulator, seed_binder
from tests.support import always_open, config_env

from .conftest import SKUS, Flow, make_flow

MAPPING = Path(__file__).parent / "channels" / "eleme.yaml"
POIS = {"S001": "e_77001", "S002": "e_77002", "S003": "e_77003"}
CHANNEL_BLOCK = """
  - id: eleme
    name: Ele.me 零售 (test)
    key: ${HUB_CHANNEL_ELEME_KEY}
    safety_stock: 2
    publish_to: eleme
    payment: channel
    allocation:
      share: 50
      rules:
        - {sku: CUP-002, listed: false}
"""
SYSTEM_BLOCK = """
  eleme:
    kind: meituan_retail
    mapping: {mapping}
    base_url: ${{HUB_ELEME_URL}}
    app_id: ${{HUB_ELEME_APP_ID}}
    app_secret: ${{HUB_ELEME_APP_SECRET}}
    push_url: http://127.0.0.1:8000/callbacks/eleme
    channel: eleme
"""
PUSH_URL = "http://127.0.0.1:8000/callbacks/eleme"
CREDENTIALS = {"HUB_ELEME_APP_ID": "sandbox-ele-app-0815", "HUB_ELEME_APP_SECRET": "sandbox-eleme-secret",
               "HUB_CHANNEL_ELEME_KEY": "sandbox-eleme-key-0001"}


@pytest.fixture
def ele():
    sim = MeituanSimulator(app_id=CREDENTIALS["HUB_ELEME_APP_ID"], app_secret=CREDENTIALS["HUB_ELEME_APP_SECRET"],
                           prefix="/openapi/v2", poi_codes=POIS, sku_prefix="ele-").start()
    yield sim
    sim.stop()


@pytest.fixture
def three(ctx, sandbox, ele) -> Flow:
    """The flows' sandbox and hub, with config.yaml as shipped plus the third channel's two blocks."""
    base = make_flow(ctx, sandbox)
    text = always_open(Path(DEFAULT_CONFIG_PATH).read_text())
    text = text.replace("\nlocations:", CHANNEL_BLOCK + "\nlocations:", 1) + SYSTEM_BLOCK.format(mapping=MAPPING)
    cfg = parse_config(text, env={**config_env(text), **sandbox.env(), **CREDENTIALS, "HUB_ELEME_URL": ele.base_url,
                                  "HUB_DATABASE_URL": ctx.config.hub.database_url})
    fctx = HubContext(cfg, base.ctx.engine, base.ctx.connector_factory)
    seed_binder(SqlBinder(fctx.session_factory), SKUS, "eleme", POIS, "ele-")    # its store codes and SKU ids
    return Flow(fctx, sandbox)


def post(flow: Flow, params: dict[str, str], system: str = "eleme"):
    return Client(build_api(flow.ctx)).post(f"/callbacks/{system}", data=params)


def the_order(flow: Flow, external_id: str):
    with flow.ctx.uow() as uow:
        row = orders.find_by_idempotency(uow, "eleme", f"eleme:{external_id}")
        if row is not None:
            uow.session.expunge(row)
        return row


def publish_all(flow: Flow, pairs: list[tuple[str, str]]) -> None:
    for ch in flow.ctx.config.channels:
        if ch.publish_to:                    # the mini-program publishes to no one: its checkout reads the API
            publish_figures(flow.ctx, flow.ctx.connectors.channel(ch.publish_to), ch.id, ch.safety_stock, pairs)


def test_the_third_channel_takes_its_order_at_its_store_pushes_its_own_figures_and_refunds_itself(three, ele):
    flow, mt = three, three.sandbox.meituan
    pairs = [("TEA-001", "S002"), ("CUP-002", "S002")]
    publish_all(flow, pairs)
    # its own allocation: half of S002's 10 teas less its safety stock of 2; the cups not listed there
    assert (ele.stock_of("TEA-001", "S002"), ele.stock_of("CUP-002", "S002")) == (3, 0)
    assert ele.stock_calls and all(c["app_poi_code"] == POIS["S002"] for c in ele.stock_calls)
    # ... while the other channels' figures follow their own rules (config.yaml: Meituan 80 % of 10 less its
    # safety 1; the WeChat shop all of it less its 1)
    assert (mt.stock_of("TEA-001", "S002"), flow.sandbox.wechat_shop.stock_of("TEA-001", "S002")) == (7, 9)

    # its order, pushed signed with its own secret, names S002 (the buyer's address is by S001): taken there
    ele.seed_order("880001", [("TEA-001", 2, 1200)], "S002", status=2, pick_type=0)
    r = post(flow, ele.push_params(PUSH_URL, "880001"))
    assert r.status_code == 200 and r.json == {"data": "ok"}, r.get_data()
    order = the_order(flow, "880001")
    assert (order.channel, order.status, order.location_id) == ("eleme", "allocated", "S002")
    assert flow.ctx.connectors.payment_platform_for(order) is None                # the platform's money
    channel_orders.channel_order_progress(flow.ctx, OrderStatusChanged(
        order_id=order.id, from_status="paid", to_status="allocated", fulfillment=order.fulfillment_type,
        location_id=order.location_id, source="test"))
    assert ele.calls == [("confirm", "880001")] and mt.calls == []               # its platform, told at its path

    # every channel's figure pushed again as the sale moved stock: each by its own rule
    flow.deliver(handlers.STOCK_TO_SHOP, "stock.changed", sku="TEA-001", location_id="S002")
    assert ele.stock_of("TEA-001", "S002") == 1                  # its share of 5, 2 of it held, less 2 safety
    assert mt.stock_of("TEA-001", "S002") == 7                   # its 8 (80 % of on-hand) less 1: no sale of its own
    assert flow.sandbox.wechat_shop.stock_of("TEA-001", "S002") == 7      # 8 left unreserved, less its 1

    # more than its share is left: refused back to it, sold out, though S002 holds 8 unreserved
    ele.seed_order("880002", [("TEA-001", 3, 1200)], "S002", status=2, pick_type=0)
    assert post(flow, ele.push_params(PUSH_URL, "880002")).status_code == 200
    assert the_order(flow, "880002") is None and ele.cancels["880002"]["reason_code"] == "2009"

    # its refund: asked by its platform, agreed through its platform, the unit back on S002's shelf
    params = ele.refund_params(PUSH_URL, "880001", "ER-1", [("TEA-001", 1)], "少送")
    assert post(flow, params).status_code == 200
    assert ele.refunds["ER-1"]["status"] == "agreed" and mt.refunds == {}
    with flow.ctx.uow() as uow:
        assert inventory.stock_at(uow.session, flow.ctx.config, "TEA-001", "S002").reserved == 1
        assert [x.qty for x in orders.get(uow, order.id).lines] == [1]
        types = [m.event_type for m in uow.session.execute(select(OutboxMessage)).scalars()]
    assert "order.refund_due" not in types                                        # never WeChat Pay's


def test_the_third_channel_checks_its_own_signature(three, ele):
    """A push signed with Meituan's secret (or to Meituan's address) is not its push: 401, nothing taken."""
    flow, mt = three, three.sandbox.meituan
    ele.seed_order("880003", [("TEA-001", 1, 1200)], "S001", status=2)
    forged = mt.push_params(PUSH_URL, "880003")
    assert post(flow, forged).status_code == 401
    assert post(flow, ele.push_params(flow.ctx.connectors.channel("meituan").push_url, "880003")).status_code == 401
    assert the_order(flow, "880003") is None and ele.calls == []
