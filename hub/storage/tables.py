"""SQLAlchemy 2 tables. Times are stored as naive UTC (see UtcDateTime) so SQLite and
PostgreSQL compare them alike."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


# BigInteger ids autoincrement on SQLite only as INTEGER.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict: JSON, list: JSON}
    if TYPE_CHECKING:
        # SQLAlchemy types `__table__` as any FromClause; every class here is mapped to a Table (its Core
        # statements — update(), .c, insert_rows — rely on that).
        __table__: ClassVar[Table]


class SkuRow(Base):
    __tablename__ = "skus"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    barcode: Mapped[str | None] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(16), default="pcs")
    price_fen: Mapped[int | None] = mapped_column(Integer)
    bin: Mapped[str | None] = mapped_column(String(32))         # the shelf hint staff pick from, if the master has one
    weight_g: Mapped[int | None] = mapped_column(Integer)       # one unit's weight in grams, if the master has it
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LocationRow(Base):
    """Mirror of config.yaml's locations, so ledger rows have something to point at."""

    __tablename__ = "locations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float]
    lng: Mapped[float]


class StockLevel(Base):
    """Current on-hand and reserved per (SKU, location); the ledger explains every change."""

    __tablename__ = "stock_levels"
    sku: Mapped[str] = mapped_column(ForeignKey("skus.code"), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    last_counted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StockMovement(Base):
    """The ledger. `applied` is false for a duplicate-free row that did not move on-hand
    (a stale count, or a delta older than the last count, which already includes it)."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        UniqueConstraint("source", "external_id", "sku", "location_id", name="uq_movement_source_ext"),
        Index("ix_movement_sku_loc_time", "sku", "location_id", "occurred_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(ForeignKey("skus.code"))
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    kind: Mapped[str] = mapped_column(String(16))  # delta | count | reserve | release | commit | return
    qty: Mapped[int] = mapped_column(Integer)        # signed change, or the counted on-hand for a count
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    on_hand_after: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(200))


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "idempotency_key", name="uq_order_idempotency"),
        Index("ix_orders_status_expires", "status", "expires_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    fulfillment_type: Mapped[str] = mapped_column(String(16))
    location_id: Mapped[str | None] = mapped_column(ForeignKey("locations.id"))
    address: Mapped[dict | None]
    buyer: Mapped[dict]
    total_fen: Mapped[int] = mapped_column(Integer, default=0)        # after discounts: what the buyer pays
    discounts: Mapped[list | None]            # [{kind, amount_fen, ref}] (hub/domain/discounts.py); None: none
    pickup_code: Mapped[str | None] = mapped_column(String(12))
    pickup_attempts: Mapped[int] = mapped_column(Integer, default=0)
    pickup_locked_until: Mapped[datetime | None]
    routing: Mapped[dict | None]
    payment_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    flash_sale_id: Mapped[str | None] = mapped_column(String(40), index=True)   # admitted by that sale's gate
    note: Mapped[str | None] = mapped_column(String(200))             # the buyer's note to the store
    # "platform": the channel's own rider delivers it (the hub calls the platform's rider instead of a courier)
    rider: Mapped[str | None] = mapped_column(String(16))
    picked_at: Mapped[datetime | None]                                # the store's pick, done (services/picking.py)
    picked_by: Mapped[str | None] = mapped_column(String(100))        # the store, and the staff member if named
    # The CRM order_no its coupon and points are held under (the attempt it adopted, flows/members.py): kept
    # here, as member_holds rows are removed after hub.member_holds_keep_days. None: none held.
    crm_order_no: Mapped[str | None] = mapped_column(String(48))
    version: Mapped[int] = mapped_column(Integer, default=1)

    lines: Mapped[list[OrderLineRow]] = relationship(
        back_populates="order", order_by="OrderLineRow.id", cascade="all, delete-orphan"
    )
    transitions: Mapped[list[OrderTransition]] = relationship(
        back_populates="order", order_by="OrderTransition.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}


class OrderLineRow(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(ForeignKey("skus.code"))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = mapped_column(Integer, default=0)
    amount_fen: Mapped[int | None] = mapped_column(Integer)    # after its share of the discounts; None: qty x price
    location_id: Mapped[str | None] = mapped_column(ForeignKey("locations.id"))
    qty_picked: Mapped[int | None] = mapped_column(Integer)           # None until the store picked the order
    # Units the channel refunded (a platform's partial refund), already taken off `qty` (and `qty_picked`)
    qty_refunded: Mapped[int | None] = mapped_column(Integer)
    unit_weight_g: Mapped[int | None] = mapped_column(Integer)        # the SKU's weight when ordered; None: unknown
    order: Mapped[OrderRow] = relationship(back_populates="lines")


class OrderTransition(Base):
    """Every applied state change of an order: the history and the buyer's timeline."""

    __tablename__ = "order_transitions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    order: Mapped[OrderRow] = relationship(back_populates="transitions")


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservation_order_status", "order_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    sku: Mapped[str] = mapped_column(ForeignKey("skus.code"))
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    qty: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | released | committed | returned
    # Set when the unit came out of a flash sale's held stock rather than the location's free stock.
    flash_sale_id: Mapped[str | None] = mapped_column(ForeignKey("flash_sales.id"), index=True)
    # Set when the units count against a channel's allocation (channel_reserved), so closing it gives them back.
    channel: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class ChannelRefundRow(Base):
    """A refund a channel asked of the hub for its own order (a platform's 部分退款 or 全额退款), and the
    hub's answer: decided once, in the transaction that adjusts the lines and the stock; `told_at` once the
    platform took the answer."""

    __tablename__ = "channel_refunds"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    lines: Mapped[list | None] = mapped_column(JSON)           # [[sku, qty], ...]; None: the whole order
    agreed: Mapped[bool] = mapped_column(Boolean)
    # Agreed after completion: the ERP holds the sale as it was, so the lines stay and a credit memo goes
    after_sale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reason: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    told_at: Mapped[datetime | None]


class ChannelReserved(Base):
    """Units a channel with an allocation holds open per (SKU, store): what its share is measured against.
    Written in the reservation's own transaction, after the stock row's lock (services/inventory.py)."""

    __tablename__ = "channel_reserved"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("skus.code"), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    reserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Shipment(Base):
    """A courier booking (local rider) or an express waybill for an order."""

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("carrier", "shipment_ref", name="uq_shipment_ref"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # local | express
    carrier: Mapped[str] = mapped_column(String(32))
    shipment_ref: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    rider_name: Mapped[str | None] = mapped_column(String(64))
    rider_phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_event_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # push (the courier pushes) | polling (it stopped: Kuaidi100's `abort`; the hub asks instead)
    tracking: Mapped[str] = mapped_column(String(16), default="push", server_default="push")
    # Escalation when no rider accepts (flows/escalation.py): the tip added in all and the penalty a cancel cost
    # (fen), the last step taken (tipped | switched | express | operator | cancel_refused | tip_refused), why, when.
    tip_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    penalty_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalation: Mapped[str | None] = mapped_column(String(24))
    escalation_detail: Mapped[str | None] = mapped_column(String(300))
    escalated_at: Mapped[datetime | None]
    rider_lat: Mapped[float | None] = mapped_column(Float)      # the rider's last position (GCJ-02), if given
    rider_lng: Mapped[float | None] = mapped_column(Float)


class TrackingEventRow(Base):
    __tablename__ = "tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "external_id", name="uq_tracking_ext"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Binding(Base):
    """External id <-> canonical id per (system, kind): connectors never leak foreign ids inward."""

    __tablename__ = "bindings"
    __table_args__ = (
        UniqueConstraint("system", "kind", "external_id", name="uq_binding_external"),
        UniqueConstraint("system", "kind", "internal_id", name="uq_binding_internal"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    internal_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """Events written in the same transaction as the change that caused them."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class ProcessedMessage(Base):
    """A consumer's record that it applied a message; written with the effect itself."""

    __tablename__ = "processed_messages"
    consumer: Mapped[str] = mapped_column(String(96), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


FAILED, UNKNOWN_OUTCOME = "failed", "unknown_outcome"      # a dead letter's kind


class DeadLetter(Base):
    """Work that failed after its retries: kept for an operator to see and replay."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(96))       # consumer or outbound operation
    message_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict]
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="parked")  # parked | replayed
    # failed (its retries ran out) | unknown_outcome (a create that may have been saved: resend only when told)
    kind: Mapped[str] = mapped_column(String(24), default=FAILED, server_default=FAILED)


class RetryDue(Base):
    """A consumer's event that an external system said to try again later (WeChat's 10060001: the
    payment is not yet visible, wait up to about a minute): the scheduler's timer runs it again at
    `due_at`, and parks it as a dead letter once `give_up_at` has passed. Waiting so holds no worker."""

    __tablename__ = "retries_due"
    __table_args__ = (Index("ix_retries_due_due_at", "due_at"),)
    consumer: Mapped[str] = mapped_column(String(96), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    payload: Mapped[dict]
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    give_up_at: Mapped[datetime] = mapped_column(default=utcnow)


class MemberHold(Base):
    """What an order request holds at the CRM, per Idempotency-Key (`order_key`): the coupon and points it
    asked for and which attempt (`generation`) holds them. Each attempt holds under its own CRM order_no,
    so an earlier attempt's give-back can never release what a retry took; the order adopts the current
    attempt's holds (`placed`) or they are given back (`releasing` → `released`)."""

    __tablename__ = "member_holds"
    order_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64))
    coupon_code: Mapped[str | None] = mapped_column(String(128))
    points: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    points_asked: Mapped[bool] = mapped_column(default=False)   # the current attempt asked the CRM for points
    state: Mapped[str] = mapped_column(String(16))              # holding | releasing | released | placed
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ErpReturnEntry(Base):
    """A return or refund of a completed order sent to the ERP: once per return id, its document after."""

    __tablename__ = "erp_returns"
    return_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))          # return | refund
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    erp_document_no: Mapped[str | None] = mapped_column(String(64))


class ErpFeedEntry(Base):
    """The ERP's cursor feed: one row per order ready for the ERP, in a stable order."""

    __tablename__ = "erp_feed"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    acked_at: Mapped[datetime | None]
    erp_document_no: Mapped[str | None] = mapped_column(String(64))


class ChannelStockPublished(Base):
    """What each channel was last told per (SKU, store): for coalescing and reconciliation. `available` is
    -1 when pushes overlapped and which landed last is unknown. `push_seq` numbers the pushes begun;
    pushes numbered up to `untrusted_through` overlapped another (hub/flows/channel_stock.py)."""

    __tablename__ = "channel_stock_published"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    available: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    push_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    untrusted_through: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class FlashSaleRow(Base):
    """A flash sale (秒杀) operations armed: a quota of one SKU at one location, for a while."""

    __tablename__ = "flash_sales"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("skus.code"))
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    quota: Mapped[int] = mapped_column(Integer)
    per_buyer_limit: Mapped[int] = mapped_column(Integer)
    min_interval_ms: Mapped[int] = mapped_column(Integer)      # a buyer's attempts at most this often
    price_fen: Mapped[int | None] = mapped_column(Integer)      # the sale price; the price list's when absent
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="armed")   # armed | ended
    # The sale holds its quota in the stock row's `reserved` from arming to ending, so its orders draw from
    # that hold instead of each locking the one hot stock row (sales armed before 0004 do not).
    stock_held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Units the sale's orders drew from its hold (open, collected or returned; a released one goes back): the
    # ledger's own count of the quota, moved by one conditional UPDATE per order whatever the gate said (0005).
    drawn: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    result: Mapped[dict | None]                                 # gate and ledger at the end


class RefundRow(Base):
    """A refund the hub asked (or was told of) for one payment of an order; `refund_no` is the
    platform's out_refund_no, fixed before the first call so a repeated request is the same refund."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("order_id", "request_key", name="uq_refund_request"),
        Index("ix_refunds_status", "status", "updated_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    payment_ref: Mapped[str] = mapped_column(String(64))        # the payment refunded (transaction id)
    paid_fen: Mapped[int] = mapped_column(Integer)               # what that payment was
    amount_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(80), default="")
    cause: Mapped[str] = mapped_column(String(24))   # cancelled | paid_late | paid_twice | not_collected | asked | ...
    source: Mapped[str] = mapped_column(String(32))             # who asked (channel, ops, hub, the platform)
    request_key: Mapped[str | None] = mapped_column(String(160))  # Idempotency-Key or event id that asked
    status: Mapped[str] = mapped_column(String(16))             # hub.domain.refunds.RefundStatus
    # recorded once the order had completed: it takes back earned points; one before was never earned on
    after_completion: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    platform_refund_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)            # the platform's last word or refusal
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]                         # when the platform said SUCCESS


class PaymentReconciliationRun(Base):
    """One comparison of a payment system's daily bills with the hub (`services/payment_reconciliation.py`):
    `ok` with its counts, or `error` (a bill that could not be had or whose digest did not match) — nothing
    compared then."""

    __tablename__ = "payment_reconciliations"
    __table_args__ = (Index("ix_payment_reconciliations_day", "system", "bill_date"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(32))
    bill_date: Mapped[str] = mapped_column(String(10))           # the platform's calendar day, YYYY-MM-DD
    status: Mapped[str] = mapped_column(String(16))              # ok | error
    trigger: Mapped[str] = mapped_column(String(16))             # daily | operator | cli
    bill_payments: Mapped[int] = mapped_column(Integer, default=0)
    bill_refunds: Mapped[int] = mapped_column(Integer, default=0)
    differences: Mapped[int] = mapped_column(Integer, default=0)
    repaired: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentDifference(Base):
    """A line of a run where the bill and the hub disagree (`hub.domain.payment_bills.Kind`)."""

    __tablename__ = "payment_differences"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("payment_reconciliations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(64))            # as the bill or the hub names it (maybe unknown)
    transaction_id: Mapped[str] = mapped_column(String(64), default="")
    refund_no: Mapped[str] = mapped_column(String(64), default="")
    bill_fen: Mapped[int | None] = mapped_column(Integer)
    hub_fen: Mapped[int | None] = mapped_column(Integer)
    repaired: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(Text, default="")


class StoreStatusRow(Base):
    """A store's own word on taking orders: paused (busy, closed now) until a time or until it says otherwise.
    No row: taking orders. The capacity cap per window is config (`locations[].capacity`), counted from orders."""
    __tablename__ = "store_status"
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_until: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelOrderPull(Base):
    """Each channel's order pull (`hub/flows/order_pull.py`): every order the channel changed before `cursor_at`
    has been taken and committed; the next pull asks from there (less a small overlap). `missed` counts the
    orders (or their changes) the pull found that the channel's pushes never delivered."""

    __tablename__ = "channel_order_pulls"
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    cursor_at: Mapped[datetime]
    last_pull_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    listed: Mapped[int] = mapped_column(BigInteger, default=0)
    missed: Mapped[int] = mapped_column(BigInteger, default=0)
    last_missed_at: Mapped[datetime | None]
