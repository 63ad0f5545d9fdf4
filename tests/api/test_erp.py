"""The ERP's cursor feed: every completed order exactly once, even while new ones arrive."""
from __future__ import annotations

import threading

from hub.services import erp_feed
from hub.storage.tables import OrderRow
from tests.support import T0

from .conftest import BUYER, ERP_KEY


def completed(api, n: int, start: int = 0) -> list[str]:
    """Orders that reached completed, straight into the feed through the core."""
    ids = []
    with api.ctx.uow() as uow:
        for i in range(start, start + n):
            oid = f"OC{i:04d}"
            uow.session.add(OrderRow(id=oid, channel="miniprogram", idempotency_key=oid, request_hash="-",
                                     status="completed", fulfillment_type="pickup", location_id="S001",
                                     buyer=BUYER, total_fen=100, created_at=T0, updated_at=T0, paid_at=T0))
            uow.session.flush()
            assert erp_feed.add_to_feed(uow, oid)
            assert not erp_feed.add_to_feed(uow, oid)          # twice is once
            ids.append(oid)
        uow.commit()
    return ids


def page(api, after=None, limit=3):
    q = f"?limit={limit}" + (f"&after={after}" if after is not None else "")
    r = api.get("/api/v1/erp/orders" + q, key=ERP_KEY)
    assert r.status_code == 200, r.json
    return r.json


def test_pages_then_next_is_null_at_the_end(api):
    ids = completed(api, 5)
    first = page(api)
    assert [o["order_id"] for o in first["orders"]] == ids[:3] and first["next"] is not None
    second = page(api, first["next"])
    assert [o["order_id"] for o in second["orders"]] == ids[3:] and second["next"] is None
    o = first["orders"][0]
    assert o["buyer"]["phone"] == "138****8000" and o["total_fen"] == 100 and o["completed_at"].endswith("+08:00")


def test_paging_with_acks_while_new_orders_arrive_misses_nothing_and_repeats_nothing(api):
    completed(api, 4)
    seen: list[str] = []
    cursor, start = 0, 4
    for _ in range(30):
        body = page(api, cursor)
        got = [o["order_id"] for o in body["orders"]]
        seen += got
        if got:
            assert api.post("/api/v1/erp/orders/ack", {"order_ids": got}, key=ERP_KEY).status_code == 200
            cursor = body["orders"][-1]["seq"]
            assert body["next"] in (None, cursor)
        if start < 12:                      # new orders complete between the ERP's pages
            completed(api, 2, start)
            start += 2
        elif not got:
            break
    assert sorted(seen) == [f"OC{i:04d}" for i in range(12)] and len(seen) == len(set(seen))
    assert page(api, 0)["orders"] == []            # acked orders never come back


def test_concurrent_inserts_and_pages_lose_nothing(api):
    seen: list[str] = []
    done = threading.Event()

    def writer():
        for i in range(30):
            completed(api, 1, 100 + i)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    after = 0
    while True:
        finished = done.is_set()
        body = page(api, after, limit=4)
        got = [o["order_id"] for o in body["orders"]]
        seen += got
        if got:
            after = body["orders"][-1]["seq"]
        if finished and body["next"] is None:
            break
    t.join()
    assert sorted(seen) == [f"OC{i:04d}" for i in range(100, 130)] and len(seen) == 30


def test_ack_of_an_unknown_order_is_422_and_acks_nothing(api):
    ids = completed(api, 2)
    r = api.post("/api/v1/erp/orders/ack", {"order_ids": [ids[0], "NOPE"]}, key=ERP_KEY)
    assert r.status_code == 422 and "NOPE" in r.json["message"]
    assert len(page(api, 0)["orders"]) == 2
    assert api.post("/api/v1/erp/orders/ack", {"order_ids": ids}, key=ERP_KEY).json == {"acked": ids}
    assert api.post("/api/v1/erp/orders/ack", {"order_ids": ids}, key=ERP_KEY).status_code == 200   # again: fine
    assert api.post("/api/v1/erp/orders/ack", {"order_ids": []}, key=ERP_KEY).status_code == 422
    assert api.get("/api/v1/erp/orders?limit=0", key=ERP_KEY).status_code == 422
    assert api.get("/api/v1/erp/orders?after=x", key=ERP_KEY).status_code == 422
