"""WeChat Channels shop connector against its simulator: pushes, order/get, per-store stock."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import MappingError, MemoryBinder, PermanentError, SignatureError, TransientError
from hub.domain.model import FulfillmentType
from hub.ports import ChannelDelivery
from sandbox.base import Response
from sandbox.wechat_shop import STORE_WAREHOUSES, WeChatShopSimulator, seed_binder, shop_ids
from tests.connectors.conftest import simulator

SKUS = ["SKU-A", "SKU-B"]


sim = simulator(WeChatShopSimulator)


@pytest.fixture
def binder():
    return seed_binder(MemoryBinder(), SKUS)


@pytest.fixture
def shop(make_connector, sim, binder):
    return make_connector("wechat_shop", sim, binder=binder, timeout=1.0)


def test_sandbox_ids_differ_from_the_hubs():
    product_id, sku_id = shop_ids("SKU-A")
    assert sku_id != "SKU-A" and product_id != sku_id and STORE_WAREHOUSES["S001"] != "S001"


# -- pushes ------------------------------------------------------------------------------------

def _flat(query):
    return {k: v[-1] for k, v in query.items()}


def test_push_over_http_verified_and_mapped(sim, shop, sink):
    got = []

    def hub(req):
        got.append(shop.parse_push(_flat(req.query), req.body))
        return Response(200, "success")
    sink.handler = hub
    resp = sim.push_event(sink.url("wechat_shop"), "order_pay", "3705115058471208928")
    assert resp.text == "success"
    [event] = got
    assert event["event"] == "order_pay" and event["external_order_id"] == "3705115058471208928"
    assert abs(event["at"].timestamp() - time.time()) < 5


def test_duplicate_push_maps_to_the_same_event(sim, shop, sink):
    got = []
    sink.handler = lambda req: (got.append(shop.parse_push(_flat(req.query), req.body)),
                                Response(200, "success"))[1]
    sim.faults.duplicate_callbacks = True
    sim.push_event(sink.url("wechat_shop"), "order_new", "42")
    assert len(got) == 2 and got[0]["external_order_id"] == got[1]["external_order_id"] == "42"
    assert [status for _, _, status in sim.pushes] == [200, 200]


def test_bad_signature_refused(sim, shop):
    query = sim.signed_query()
    query["signature"] = "0" * 40
    with pytest.raises(SignatureError, match="bad signature"):
        shop.parse_push(query, sim.push_body("channels_ec_order_new", "1"))


def test_stale_push_refused(sim, shop):
    query = sim.signed_query(timestamp=int(time.time()) - 3600)
    with pytest.raises(SignatureError, match="stale timestamp"):
        shop.parse_push(query, sim.push_body("channels_ec_order_new", "1"))


def test_missing_signature_parameters(sim, shop):
    with pytest.raises(SignatureError, match="nonce"):
        shop.parse_push({"signature": "x", "timestamp": "1"}, b"{}")


def test_signature_by_another_token_refused(sim, shop):
    other = WeChatShopSimulator(app_id="x", app_secret="y", push_token="not-ours")
    with pytest.raises(SignatureError, match="bad signature"):
        shop.parse_push(other.signed_query(), other.push_body("channels_ec_order_new", "1"))


def test_unknown_event_and_bad_body(sim, shop):
    with pytest.raises(MappingError, match="unknown status code") as err:
        shop.parse_push(sim.signed_query(), sim.push_body("channels_ec_order_teleported", "1"))
    assert err.value.field == "Event"
    with pytest.raises(MappingError, match="not JSON"):
        shop.parse_push(sim.signed_query(), b"<xml/>")
    with pytest.raises(MappingError, match="missing required field"):
        shop.parse_push(sim.signed_query(), b'{"Event": "channels_ec_order_new", "CreateTime": 1}')


def test_echo(sim, shop):
    assert shop.echo({**sim.signed_query(), "echostr": "abc"}) == "abc"


# -- orders ------------------------------------------------------------------------------------

def test_get_order_maps_lines_buyer_and_status(sim, shop):
    sim.seed_order("1001", [("SKU-A", 2, 1990), ("SKU-B", 1, 500)], status=20, fulfillment="delivery")
    order = shop.get_order("1001")
    assert order.channel == "wechat_shop" and order.external_id == "1001" and order.status == "paid"
    assert [(ln.sku, ln.qty, ln.unit_price_fen) for ln in order.lines] == [("SKU-A", 2, 1990), ("SKU-B", 1, 500)]
    assert order.total_fen == 4480
    assert order.buyer.id == "oSandboxBuyer" and order.buyer.phone == "13800000000"
    assert order.fulfillment.type is FulfillmentType.DELIVERY
    assert order.fulfillment.address.text == "上海市上海市静安区南京西路1号"
    assert order.fulfillment.address.lat == pytest.approx(31.2301)


def test_get_pickup_order_cross_references_the_store(sim, shop):
    sim.seed_order("1002", [("SKU-A", 1, 100)], fulfillment="pickup", store_id="S002")
    order = shop.get_order("1002")
    assert order.fulfillment.type is FulfillmentType.PICKUP and order.fulfillment.store_id == "S002"


@pytest.mark.parametrize("code,status", [(10, "pending_payment"), (30, "shipped"), (100, "completed"),
                                         (250, "cancelled"), (200, "refunded")])
def test_status_codes(sim, shop, code, status):
    sim.seed_order("1003", [("SKU-A", 1, 100)], status=code)
    assert shop.get_order("1003").status == status


def test_unknown_status_code_is_a_mapping_error(sim, shop):
    sim.seed_order("1004", [("SKU-A", 1, 100)], status=13)
    with pytest.raises(MappingError, match="unknown status code") as err:
        shop.get_order("1004")
    assert err.value.value == 13 and "wechat_shop" in str(err.value)


def test_unmapped_sku_is_a_mapping_error(sim, shop):
    sim.seed_order("1005", [("SKU-UNBOUND", 1, 100)])
    with pytest.raises(MappingError, match="unmapped sku"):
        shop.get_order("1005")


def test_delivery_without_coordinates_refused(sim, shop):
    sim.seed_order("1006", [("SKU-A", 1, 100)], fulfillment="delivery",
                   address={"detail_info": "somewhere", "user_name": "x", "tel_number": "1"})
    with pytest.raises(MappingError, match="coordinates"):
        shop.get_order("1006")


def test_unknown_order_is_permanent_and_not_retried(sim, shop):
    with pytest.raises(PermanentError, match="10020060"):
        shop.get_order("999")
    assert len(sim.requests_to("/channels/ec/order/get")) == 1


def test_token_is_cached_and_refreshed_on_42001(sim, shop):
    sim.seed_order("1007", [("SKU-A", 1, 100)])
    shop.get_order("1007")
    shop.get_order("1007")
    assert len(sim.requests_to("/cgi-bin/token")) == 1
    sim.tokens.expire_all()
    shop.get_order("1007")
    assert len(sim.requests_to("/cgi-bin/token")) == 2
    assert len(sim.requests_to("/channels/ec/order/get")) == 4   # one refused with 42001, then retried


# -- stock -------------------------------------------------------------------------------------

def test_update_store_stock_sets_the_figure_under_the_shops_ids(sim, shop):
    shop.update_store_stock("SKU-A", "S001", 7)
    shop.update_store_stock("SKU-A", "S001", 5)
    shop.update_store_stock("SKU-A", "S002", 3)
    product_id, sku_id = shop_ids("SKU-A")
    assert sim.last_update("SKU-A", "S001") == {"product_id": product_id, "sku_id": sku_id,
                                                "out_warehouse_id": "wh_jingan_0001", "diff_type": 3, "num": 5}
    assert sim.stock_of("SKU-A", "S001") == 5 and sim.stock_of("SKU-A", "S002") == 3
    assert shop.get_store_stock("SKU-A", "S001") == 5


def test_negative_available_is_sent_as_zero(sim, shop):
    shop.update_store_stock("SKU-B", "S003", -2)
    assert sim.stock_of("SKU-B", "S003") == 0


def test_unbound_sku_or_store_never_leaves_the_hub(sim, shop):
    with pytest.raises(MappingError, match="unmapped sku"):
        shop.update_store_stock("SKU-NOPE", "S001", 1)
    with pytest.raises(MappingError, match="unmapped store"):
        shop.update_store_stock("SKU-A", "S999", 1)
    assert sim.requests_to("/channels/ec/warehouse/stock/update") == []


@pytest.mark.parametrize("status,body,retry_after", [
    (200, {"errcode": 45009, "errmsg": "api freq out of limit"}, None),
    (200, {"errcode": -1, "errmsg": "system error"}, None),
    (503, None, None),
    (429, None, 0.02),
])
def test_transient_faults_retried_to_success(sim, shop, status, body, retry_after):
    sim.faults.only_paths = ("/channels/ec/warehouse/stock/update",)
    sim.faults.fail_next, sim.faults.error_status, sim.faults.error_body = 2, status, body
    sim.faults.retry_after = retry_after
    shop.update_store_stock("SKU-A", "S001", 9)
    assert len(sim.requests_to("/channels/ec/warehouse/stock/update")) == 3
    assert sim.stock_of("SKU-A", "S001") == 9


def test_timeout_retried(sim, shop):
    sim.faults.only_paths = ("/channels/ec/warehouse/stock/update",)
    sim.faults.timeout_next, sim.faults.timeout_s = 1, 3.0   # well past the 1 s client timeout
    shop.update_store_stock("SKU-A", "S001", 4)
    assert sim.stock_of("SKU-A", "S001") == 4
    assert len(sim.requests_to("/channels/ec/warehouse/stock/update")) == 2


def test_rate_limit_that_never_clears_gives_up_transient(sim, shop):
    sim.faults.only_paths = ("/channels/ec/warehouse/stock/update",)
    sim.faults.fail_next, sim.faults.error_status = 99, 200
    sim.faults.error_body = {"errcode": 45009, "errmsg": "api freq out of limit"}
    with pytest.raises(TransientError, match="45009"):
        shop.update_store_stock("SKU-A", "S001", 1)
    assert len(sim.requests_to("/channels/ec/warehouse/stock/update")) == 4


def test_unknown_warehouse_is_permanent_and_not_retried(sim, make_connector):
    binder = seed_binder(MemoryBinder(), SKUS, stores={"S001": "wh_unknown"})
    shop = make_connector("wechat_shop", sim, binder=binder)
    with pytest.raises(PermanentError, match="warehouse not exist"):
        shop.update_store_stock("SKU-A", "S001", 1)
    assert len(sim.requests_to("/channels/ec/warehouse/stock/update")) == 1


def test_wrong_app_secret_is_permanent(sim, make_connector, binder):
    shop = make_connector("wechat_shop", sim, binder=binder, app_secret="wrong")
    with pytest.raises(PermanentError, match="40125"):
        shop.update_store_stock("SKU-A", "S001", 1)
    assert len(sim.requests_to("/cgi-bin/token")) == 1


# -- the order list (the pull), delivery, after-sales ------------------------------------------

def test_order_list_pages_by_next_key_on_the_update_time(sim, shop):
    t = int(time.time())
    for i in range(130):                                # more than one page of 100
        sim.seed_order(f"37054{i:03d}", [("SKU-A", 1, 100)], at=t - 200 + i)
    sim.seed_order("37055000", [("SKU-A", 1, 100)], at=t - 4000)     # changed before the window
    since, until = datetime.fromtimestamp(t - 300, UTC), datetime.fromtimestamp(t, UTC)
    first = shop.changed_orders(since, until)
    assert len(first.order_ids) == 100 and first.next_page
    rest = shop.changed_orders(since, until, page=first.next_page)
    assert rest.next_page == "" and first.order_ids + rest.order_ids == tuple(f"37054{i:03d}" for i in range(130))
    [ask] = sim.requests_to("/channels/ec/order/list/get")[:1]
    assert ask.json() == {"update_time_range": {"start_time": t - 300, "end_time": t}, "page_size": 100}


def test_order_list_longer_than_seven_days_is_refused(sim, shop):
    until = datetime.now(UTC)
    with pytest.raises(PermanentError, match="47001"):
        shop.changed_orders(until - timedelta(days=8), until)


def test_an_after_sales_push_names_its_order_and_request(sim, shop):
    sim.seed_order("37056001", [("SKU-A", 2, 500)])
    sim.seed_after_sale("88001", "37056001", 1000, kind="RETURN")
    push = shop.parse_push(sim.signed_query(), sim.after_sale_body("88001"))
    assert (push["event"], push["external_order_id"], push["after_sale_id"]) == ("aftersale_update", "37056001",
                                                                                "88001")
    sale = shop.get_after_sale("88001")
    assert (sale.external_order_id, sale.kind, sale.status, sale.amount_fen) == ("37056001", "return", "requested",
                                                                                 1000)
    shop.accept_after_sale("88001")
    assert shop.get_after_sale("88001").status == "accepted"          # a return: the buyer sends the goods first
    with pytest.raises(PermanentError, match="10020001"):             # accepted: it can no longer be rejected
        shop.reject_after_sale("88001", "too late")


def test_delivery_send_maps_the_carrier_and_refuses_an_unknown_one(sim, shop):
    sim.seed_order("37056002", [("SKU-A", 2, 500)])
    with pytest.raises(MappingError, match="delivery_company"):
        shop.send_delivery("37056002", ChannelDelivery("express", "pigeon", "P-1", (("SKU-A", 2),)))
    assert sim.requests_to("/channels/ec/order/delivery/send") == []
    shop.send_delivery("37056002", ChannelDelivery("express", "sf", "SF1", (("SKU-A", 1),)))
    assert sim.orders["37056002"]["status"] == 21                     # one of two units went: part shipped
    shop.send_delivery("37056002", ChannelDelivery("express", "sf", "SF1", (("SKU-A", 1),)))     # again: no change
    assert len(sim.deliveries) == 1
