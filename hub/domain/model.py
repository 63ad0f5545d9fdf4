"""The canonical model: what every connector translates to and from.

Plain value objects, no persistence and no transport. Amounts are integers in fen,
quantities integers, times timezone-aware datetimes.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.domain.discounts import Discount


class FulfillmentType(StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"
    EXPRESS = "express"


class TrackingStatus(StrEnum):
    """Canonical courier states, local riders and express parcels alike."""

    BOOKED = "booked"                 # courier accepted, waiting for a rider / pickup
    RIDER_ASSIGNED = "rider_assigned"  # a rider is on the way to the store
    RIDER_AT_STORE = "rider_at_store"
    COLLECTED = "collected"           # parcel or goods left the store / warehouse with the courier
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    PROBLEM = "problem"
    CANCELLED = "cancelled"           # the courier cancelled the booking
    EXPIRED = "expired"               # nobody took the booking in time
    RETURNING = "returning"
    RETURNED = "returned"


@dataclass(frozen=True)
class Sku:
    code: str
    name: str
    barcode: str | None = None
    unit: str = "pcs"
    price_fen: int | None = None
    bin: str | None = None        # the shelf (bin) staff pick it from, where the product master names one
    weight_g: int | None = None      # one unit's weight in grams; None: the master does not say


@dataclass(frozen=True)
class StockDelta:
    """A change of on-hand by `qty` (negative for a sale), applied once per (source, external_id)."""

    source: str
    external_id: str
    sku: str
    location_id: str
    qty: int
    occurred_at: datetime
    reason: str = "adjustment"


@dataclass(frozen=True)
class StockCount:
    """An absolute on-hand; applies only if newer than the last count held."""

    source: str
    external_id: str
    sku: str
    location_id: str
    on_hand: int
    counted_at: datetime


@dataclass(frozen=True)
class Buyer:
    id: str
    name: str = ""
    phone: str = ""
    openid: str = ""           # the payer's id at the payment platform, from its notification


@dataclass(frozen=True)
class Address:
    text: str
    lat: float
    lng: float
    name: str = ""
    phone: str = ""


@dataclass(frozen=True)
class OrderLine:
    sku: str
    qty: int
    unit_price_fen: int = 0
    amount_fen: int | None = None     # after the line's share of the order's discounts; None: qty x price


@dataclass(frozen=True)
class Fulfillment:
    type: FulfillmentType
    store_id: str | None = None
    address: Address | None = None


@dataclass(frozen=True)
class PlaceOrder:
    """A channel's request for an order: through the hub's API, or from the channel's own checkout
    (then `external_id` is the channel's order id and `status` how the channel holds it now)."""

    channel: str
    idempotency_key: str
    lines: tuple[OrderLine, ...]
    buyer: Buyer
    fulfillment: Fulfillment
    external_id: str | None = None
    status: str = "pending_payment"
    total_fen: int = 0
    flash_sale_id: str | None = None          # admitted by this flash sale's gate
    coupon_code: str | None = None            # the buyer's coupon, as the client named it
    points: int = 0                           # points the buyer spends on it, as the client asked
    discounts: tuple[Discount, ...] = ()      # what the CRM (or the channel) granted: shared over the lines
    note: str | None = None                   # the buyer's note to the store
    crm_order_no: str | None = None           # the attempt whose CRM holds the order adopts (flows/members.py)
    rider: str | None = None                  # "platform": the channel's own rider delivers it (its logistics code)
    # The channel chose the store (`fulfillment.store_id`: a platform's order names its store): served there or
    # refused (StoreCannotFill), never routed elsewhere. Not in the fingerprint: the connector's word, not a client's.
    channel_store: bool = False

    def fingerprint(self) -> str:
        """What a repeat with the same idempotency key must match: what the client sent (SKUs and quantities,
        buyer, fulfilment, and the flash sale it was sent to), never a price the hub derived — the same request
        retried after a price pull is the same request. The channel's status may move on."""
        sent: dict = {"v": 2, "lines": [[x.sku, x.qty] for x in self.lines], "buyer": asdict(self.buyer),
                      "fulfillment": asdict(self.fulfillment), "flash_sale_id": self.flash_sale_id}
        if self.coupon_code or self.points:        # absent from the orders placed before them: their hash holds
            sent |= {"coupon_code": self.coupon_code, "points": self.points}
        if self.note:
            sent["note"] = self.note
        body = json.dumps(sent, sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    def _priced_fingerprint(self) -> str:
        """The hash orders placed before the upgrade hold: it also hashed each line's unit price."""
        body = json.dumps({"lines": [asdict(x) for x in self.lines], "buyer": asdict(self.buyer),
                           "fulfillment": asdict(self.fulfillment)}, sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    def matches(self, request_hash: str) -> bool:
        """Whether an order holding `request_hash` was placed by this same request. An order placed before
        the upgrade holds the priced hash: it matches while the price is unchanged, as it did then."""
        return request_hash in (self.fingerprint(), self._priced_fingerprint())


@dataclass(frozen=True)
class PaymentNotice:
    """A payment platform's word that an order was paid (or refunded)."""

    event: str                 # "paid" | "refunded" | "refund_abnormal" | "refund_closed"
    order_ref: str             # the hub's order id as the platform echoes it (out_trade_no)
    transaction_id: str
    amount_fen: int            # paid, or (refund events) the refund's amount
    at: datetime
    external_id: str = ""      # the notification's own id, for duplicate suppression
    payer_id: str = ""         # the payer's openid, kept on the order for the shipping-info upload
    refund_no: str = ""        # refund events: the hub's out_refund_no
    refund_id: str = ""        # refund events: the platform's refund id
    refund_status: str = ""    # refund events: SUCCESS | ABNORMAL | CLOSED, as the platform says it
    paid_fen: int | None = None  # refund events: the payment's total (amount.total)


@dataclass(frozen=True)
class RefundRequest:
    """What the hub asks the payment platform to pay back: `amount_fen` of payment `payment_ref`."""

    refund_no: str             # out_refund_no: the same number asks for the same refund
    order_ref: str             # out_trade_no (the hub's order id)
    payment_ref: str           # transaction_id at the platform
    paid_fen: int              # the payment's total
    amount_fen: int
    reason: str
    notify_url: str            # where the platform posts the refund's outcome


@dataclass(frozen=True)
class RefundAnswer:
    """The platform's (signature-verified) answer to a refund request."""

    refund_no: str
    refund_id: str
    status: str                # SUCCESS | PROCESSING | ABNORMAL | CLOSED
    amount_fen: int
    at: datetime | None = None  # success_time, when it already succeeded


@dataclass(frozen=True)
class TrackingEvent:
    """One courier status report for a shipment (a rider booking or an express waybill)."""

    carrier: str
    shipment_ref: str          # the courier's id for the booking / the waybill number
    status: TrackingStatus
    at: datetime
    detail: str = ""
    rider_name: str | None = None
    rider_phone: str | None = None
    external_id: str = ""      # id of the report itself, for duplicate suppression
    order_ref: str | None = None
    rider_lat: float | None = None     # the rider's position (GCJ-02), where the courier gives it
    rider_lng: float | None = None


@dataclass(frozen=True)
class ChannelRefundRequest:
    """A channel asks the hub to refund part of its own order (`lines`: (sku, qty)) or all of it (None).
    The channel takes and gives back the money; the hub adjusts the order and answers agree or reject."""

    channel: str
    refund_id: str
    external_order_id: str
    lines: tuple[tuple[str, int], ...] | None
    reason: str = ""


@dataclass(frozen=True)
class CourierState:
    """What a courier's query API says of an order's delivery now: the truth a callback only claims."""

    carrier: str
    order_ref: str             # the hub's order id, as the courier knows it
    status: TrackingStatus
    at: datetime | None = None  # when the delivery reached `status`, if the courier says
    rider_name: str | None = None
    rider_phone: str | None = None
    fee_fen: int | None = None
    shipment_ref: str | None = None    # the courier's own number for the booking, where it has one
    rider_lat: float | None = None     # the rider's position (GCJ-02), where the courier gives it
    rider_lng: float | None = None


@dataclass(frozen=True)
class DeliveryQuote:
    carrier: str
    quote_id: str
    fee_fen: int
    distance_m: int | None = None
    pickup_minutes: int | None = None  # the courier's promised time until a rider is at the store
    weight_g: int | None = None        # the basket's weight the quote was asked for
    # What the courier needs to book this quote when it gives no quote number (SF: the createorder body).
    terms: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CancelTerms:
    """What a courier says a cancel would do now: allowed or not (some refuse once the rider has the goods),
    and the penalty it would charge (a rider already on the way or at the store)."""

    allowed: bool
    penalty_fen: int = 0
    reason: str = ""


@dataclass(frozen=True)
class Booking:
    """A courier's acceptance of a shipment: a local-delivery order or an express waybill."""

    carrier: str
    shipment_ref: str
    fee_fen: int = 0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderSnapshot:
    """What connectors are given of an order to push it out (POS, ERP, couriers, CRM)."""

    order_id: str
    channel: str
    status: str
    fulfillment: Fulfillment
    lines: tuple[OrderLine, ...]
    buyer: Buyer
    total_fen: int
    location_id: str | None          # the store or warehouse that fulfils it
    created_at: datetime
    paid_at: datetime | None = None
    external_id: str | None = None   # the channel's own order id, when the channel sent it
    weight_g: int | None = None      # the basket's weight from the product master; None when a SKU has none
    # For the store that picks it (its POS, its list): the promised time, the buyer's note, SKU -> shelf hint.
    promised_at: datetime | None = None
    note: str | None = None
    bins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ErpReturn:
    """A return or a refund after completion, for the ERP (a return order / credit memo): once per
    `return_id` (the refund's number, or the order's return), with the order's lines and the amount."""

    return_id: str
    kind: str                        # return (the goods came back) | refund (money back)
    order_id: str
    lines: tuple[OrderLine, ...]
    amount_fen: int
    location_id: str | None
    created_at: datetime
