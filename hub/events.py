"""The catalogue of events: every event the core emits, typed, and what it carries on the wire.

Services emit event objects (`uow.emit(events.StockChanged(sku, location_id, cause))`) into the
outbox in the same transaction as the change; the relay publishes them; the consumers that run
on each are listed in `hub/handlers.py`, the one table of who handles what.

Each event is a frozen dataclass: a missing field fails where it is built, a wrong object fails
at `emit`. On the wire it stays the JSON envelope the hub has always written
(`{id, type, occurred_at, data}`, the same `data` keys, e.g. `from`/`to`), so a message queued by
an older hub is still read; `data()` and `from_data()` are written out by hand per event (no
reflection on the hot paths: a flash-sale order's and a till sale's outbox rows).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class Event:
    """What every event has: its wire name (`TYPE`), a meaning, and its `data` both ways."""

    TYPE: ClassVar[str]
    MEANING: ClassVar[str]

    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Event:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class StockChanged(Event):
    TYPE: ClassVar[str] = "stock.changed"
    MEANING: ClassVar[str] = "what may be sold of a SKU at a location changed (sale, count, reservation, release, ...)"
    sku: str
    location_id: str
    cause: str

    def data(self) -> dict[str, Any]:
        return {"sku": self.sku, "location_id": self.location_id, "cause": self.cause}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> StockChanged:
        return cls(data["sku"], data["location_id"], data.get("cause", ""))


@dataclass(frozen=True, slots=True)
class OrderStatusChanged(Event):
    TYPE: ClassVar[str] = "order.status_changed"
    MEANING: ClassVar[str] = ("an order moved along its state machine; consumers pick the fulfilment types and "
                              "targets they want")
    order_id: str
    from_status: str | None
    to_status: str
    fulfillment: str
    location_id: str | None
    source: str

    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "from": self.from_status, "to": self.to_status,
                "fulfillment": self.fulfillment, "location_id": self.location_id, "source": self.source}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderStatusChanged:
        return cls(data["order_id"], data.get("from"), data["to"], data.get("fulfillment", ""),
                   data.get("location_id"), data.get("source", ""))


@dataclass(frozen=True, slots=True)
class ShipmentRebookNeeded(Event):
    TYPE: ClassVar[str] = "shipment.rebook_needed"
    MEANING: ClassVar[str] = "a courier cancelled or let a booking expire; the order is back to allocated"
    order_id: str
    shipment_id: int | None
    carrier: str
    shipment_ref: str | None
    reason: str

    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "shipment_id": self.shipment_id, "carrier": self.carrier,
                "shipment_ref": self.shipment_ref, "reason": self.reason}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ShipmentRebookNeeded:
        return cls(data["order_id"], data.get("shipment_id"), data.get("carrier", ""), data.get("shipment_ref"),
                   data.get("reason", ""))


@dataclass(frozen=True, slots=True)
class OrderRefundDue(Event):
    """amount_fen: default what was paid minus what is refunded or on its way; refund_no: the refund row
    the emitter recorded (services/money_owed.py), else the consumer records one per event."""

    TYPE: ClassVar[str] = "order.refund_due"
    MEANING: ClassVar[str] = (
        "money is owed back on a payment (paid order cancelled, a cancel the courier accepted, paid after "
        "cancellation, paid twice, not collected, refund asked for, a delivery returned, goods handed back "
        "at a store): ask the payment platform for it")
    order_id: str
    payment_ref: str | None
    amount_fen: int | None = None
    reason: str | None = None
    refund_no: str | None = None

    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "payment_ref": self.payment_ref, "amount_fen": self.amount_fen,
                "reason": self.reason, "refund_no": self.refund_no}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderRefundDue:
        return cls(data["order_id"], data.get("payment_ref"), data.get("amount_fen"), data.get("reason"),
                   data.get("refund_no"))


@dataclass(frozen=True, slots=True)
class OrderRefunded(Event):
    """A refund of the order is done — the money went back — by whatever path it was recorded: the hub's own
    (WeChat Pay's answer or notice), one made at the payment platform by hand, a channel's own refund (a
    platform's partial or full refund, the WeChat shop's after-sales). Emitted once per refund, in the
    transaction that records it done (`services/money_owed.py` `refunded`)."""

    TYPE: ClassVar[str] = "order.refunded"
    MEANING: ClassVar[str] = ("money went back to the buyer (a refund recorded done, whoever made it): the "
                              "points it moves")
    order_id: str
    refund_no: str | None
    amount_fen: int = 0
    after_completion: bool = False

    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "refund_no": self.refund_no, "amount_fen": self.amount_fen,
                "after_completion": self.after_completion}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderRefunded:
        # also an `order.refund_due` parked under crm_refund_points before this event (its dead letter replayed)
        return cls(data["order_id"], data.get("refund_no"), int(data.get("amount_fen") or 0),
                   bool(data.get("after_completion")))


@dataclass(frozen=True, slots=True)
class MemberHoldsReleaseDue(Event):
    """A coupon locked or points held at the CRM for an order that was not placed (refused, no stock)."""

    TYPE: ClassVar[str] = "member.holds_release_due"
    MEANING: ClassVar[str] = ("the CRM holds a coupon or points for an order that was never placed: give them "
                              "back")
    order_key: str
    member_id: str
    coupon_code: str | None
    hold_id: str | None
    points: int = 0             # asked for but the hold's id not known: found by the attempt's idempotency key

    def data(self) -> dict[str, Any]:
        return {"order_key": self.order_key, "member_id": self.member_id, "coupon_code": self.coupon_code,
                "hold_id": self.hold_id, "points": self.points}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> MemberHoldsReleaseDue:
        return cls(data["order_key"], data["member_id"], data.get("coupon_code"), data.get("hold_id"),
                   int(data.get("points") or 0))


@dataclass(frozen=True, slots=True)
class ChannelAfterSaleAnswerDue(Event):
    """The hub decided a buyer's after-sales request made in a channel (`services/channel_after_sales.py`)."""

    TYPE: ClassVar[str] = "channel.after_sale_answer_due"
    MEANING: ClassVar[str] = ("a buyer's after-sales request in a channel (the WeChat shop) was decided: tell the "
                              "channel, which then pays the buyer back (accepted) or not (rejected)")
    order_id: str
    system: str
    after_sale_id: str
    accept: bool
    reason: str = ""

    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "system": self.system, "after_sale_id": self.after_sale_id,
                "accept": self.accept, "reason": self.reason}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ChannelAfterSaleAnswerDue:
        return cls(data["order_id"], data["system"], data["after_sale_id"], bool(data["accept"]),
                   data.get("reason") or "")


@dataclass(frozen=True, slots=True)
class ShipmentChanged(Event):
    """A rider's status, name, phone or position changed for an order a channel takes itself and the store's
    own courier delivers: the channel is told (its rider sync). `lat`/`lng` are GCJ-02, None when unknown."""

    TYPE: ClassVar[str] = "shipment.changed"
    MEANING: ClassVar[str] = ("the store's courier reported a real change of an order's delivery (status, rider, "
                              "position)")
    order_id: str
    shipment_id: int
    status: str
    rider_name: str | None
    rider_phone: str | None
    lat: float | None
    lng: float | None
    at: str

    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "shipment_id": self.shipment_id, "status": self.status,
                "rider_name": self.rider_name, "rider_phone": self.rider_phone, "lat": self.lat, "lng": self.lng,
                "at": self.at}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ShipmentChanged:
        return cls(data["order_id"], int(data["shipment_id"]), data["status"], data.get("rider_name"),
                   data.get("rider_phone"), data.get("lat"), data.get("lng"), data.get("at", ""))


@dataclass(frozen=True, slots=True)
class ChannelRefundAgreed(Event):
    """A channel's partial refund of an order the ERP already holds as a sale: a credit memo for its lines."""

    TYPE: ClassVar[str] = "channel.refund_agreed"
    MEANING: ClassVar[str] = "a channel refunded lines of a completed order; the ERP gets a credit memo for them"
    order_id: str
    channel: str
    refund_id: str

    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "channel": self.channel, "refund_id": self.refund_id}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ChannelRefundAgreed:
        return cls(data["order_id"], data["channel"], data["refund_id"])


CATALOGUE: tuple[type[Event], ...] = (StockChanged, OrderStatusChanged, ShipmentRebookNeeded, OrderRefundDue,
                                      OrderRefunded, MemberHoldsReleaseDue, ChannelAfterSaleAnswerDue,
                                      ShipmentChanged, ChannelRefundAgreed)
EVENTS: dict[str, type[Event]] = {e.TYPE: e for e in CATALOGUE}


@dataclass(frozen=True)
class Probe(Event):
    """Not the core's: an event of the backbone tests' and benchmarks' own consumers (any type name,
    any data, handed to the consumer as the dict it is). The core emits only the CATALOGUE's."""

    TYPE: str   # type: ignore[misc]  # mypy: a ClassVar made a field; a probe carries its own name
    fields: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return self.fields

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Any:
        return data
