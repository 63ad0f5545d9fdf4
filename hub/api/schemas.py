"""The declared request bodies, query parameters and headers, built of the fields of `api/http.py` (which parse
and document them); the field types are named here too, for handlers declaring their own."""
from __future__ import annotations

from .http import NO_NUL, Arr, Bool, Field, Int, Num, Obj, Str, Time, invalid

__all__ = ["NO_NUL", "Arr", "Bool", "Field", "Int", "Num", "Obj", "Str", "Time", "invalid"]

# -- query parameters and headers ------------------------------------------------------------------

LAT = Num(required=False, minimum=-90, maximum=90)
LNG = Num(required=False, minimum=-180, maximum=180)
# The system a client's coordinates are in: the hub's are GCJ-02; WeChat's getLocation answers WGS-84 by default.
COORDS = Str(required=False, enum=("gcj02", "wgs84", "bd09"),
             description="the coordinates' system (default gcj02); others are converted to GCJ-02")
QTY = Int(required=False, minimum=1, maximum=9999)
# Visible ASCII only: an HTTP header carries no more, and a key must survive proxies unchanged.
IDEMPOTENCY_KEY = Str(max_len=128, pattern=r"[!-~]+", description="the client's key for this request")

# -- the bodies ----------------------------------------------------------------------------------

SKU = Str(max_len=64, description="SKU code from the product master")
ADDRESS = Obj(required=False, fields={"text": Str(max_len=300), "lat": Num(minimum=-90, maximum=90),
                      "lng": Num(minimum=-180, maximum=180), "name": Str(required=False, min_len=0, max_len=64),
                      "phone": Str(required=False, min_len=0, max_len=32), "coords": COORDS})
PLACE_ORDER = Obj(fields={
    "lines": Arr(item=Obj(fields={"sku": SKU, "qty": Int(minimum=1, maximum=9999)}), min_items=1,
                 max_items=100),
    "buyer": Obj(fields={"id": Str(max_len=64), "name": Str(required=False, min_len=0, max_len=64),
                         "phone": Str(required=False, min_len=0, max_len=32), "coords": COORDS}),
    "fulfillment": Obj(fields={"type": Str(enum=("pickup", "delivery", "express")),
                               "store_id": Str(required=False, max_len=32), "address": ADDRESS}),
    "coupon_code": Str(required=False, max_len=64, pattern=r"[0-9A-Za-z_-]+",
                       description="the buyer's coupon at the CRM: locked at order, used at payment"),
    "points": Int(required=False, minimum=1, maximum=10**7, description="points to spend (100 = 1 yuan)"),
    "note": Str(required=False, min_len=0, max_len=200, description="the buyer's note to the store"),
})
PAY_ORDER = Obj(fields={"payment_ref": Str(max_len=64, description="the payment's id at the payment backend"),
                        "amount_fen": Int(required=False, minimum=0, description="checked against the total")})
CANCEL_ORDER = Obj(fields={"reason": Str(required=False, max_len=200)})
REFUND = Obj(fields={
    "amount_fen": Int(required=False, minimum=1,
                      description="fen to refund; omitted: everything not yet refunded"),
    "reason": Str(required=False, max_len=80, description="shown to the buyer by the payment platform")})
# ASCII digits only: a full-width "１２３４５６" is not the code, and `[0-9]` (unlike `\d`) says so.
COLLECT = Obj(fields={"pickup_code": Str(max_len=12, pattern="[0-9]+", description="the code the buyer shows")})
EMPTY = Obj(fields={})
STORE_RETURN = Obj(fields={"reason": Str(max_len=200, description="why the buyer handed the goods back")})
SALE = Obj(fields={
    "receipt_id": Str(max_len=100, description="the POS receipt number: a receipt applies once"),
    "sold_at": Time(),
    "lines": Arr(item=Obj(fields={"sku": SKU, "qty": Int(minimum=1, maximum=100000)}), min_items=1, max_items=500),
})
SALE_BATCH = Obj(fields={"receipts": Arr(item=SALE, min_items=1, max_items=500,
                                         description="receipts a till sends at once, each applied once")})
COUNT = Obj(fields={
    "counted_at": Time(),
    "count_id": Str(required=False, max_len=100, description="the POS's id of the count, if it has one"),
    "lines": Arr(item=Obj(fields={"sku": SKU, "on_hand": Int(minimum=0, maximum=10_000_000)}), min_items=1,
                 max_items=5000),
})
ERP_ACK = Obj(fields={"order_ids": Arr(item=Str(max_len=40), min_items=1, max_items=500)})
PICKING = Obj(fields={"staff": Str(required=False, max_len=40, description="who picks (shown on the order)")})
PICKED = Obj(fields={
    "lines": Arr(item=Obj(fields={"sku": SKU, "qty_picked": Int(minimum=0, maximum=9999)}), min_items=0,
                 max_items=100, description="what was on the shelf per line; a line not named is picked in full"),
    "staff": Str(required=False, max_len=40, description="who picked"),
})
STORE_PAUSE = Obj(fields={
    "paused": Bool(),
    "until": Time(required=False),
    "reason": Str(required=False, min_len=0, max_len=200, description="busy, closed now, ..."),
})
