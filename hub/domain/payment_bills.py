"""A payment platform's daily bill and the hub's own record of that day, compared line by line (对账).

Pure: the connector parses the platform's file into `Bill`; the service reads the hub's side into
`HubPayment`/`HubRefund`; `compare` says what differs. A bill payment is looked up by its transaction
(not by day), so a payment the hub recorded near midnight on the other side of the line still matches;
the hub's own lines of the day that the bill lacks are differences."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    PAYMENT_MISSED = "payment_missed"          # the bill's payment for a hub order the hub never recorded: repaired
    PAID_UNKNOWN = "paid_unknown"              # the bill's payment names no order of the hub
    NOT_IN_BILL = "not_in_bill"                # the hub recorded a payment the bill does not have
    AMOUNT_DIFFERS = "amount_differs"          # both have the payment, not for the same amount
    REFUND_ONLY_IN_BILL = "refund_only_in_bill"
    REFUND_ONLY_IN_HUB = "refund_only_in_hub"  # the hub says the money went back; the bill does not
    REFUND_AMOUNT_DIFFERS = "refund_amount_differs"


KINDS = tuple(str(k) for k in Kind)


@dataclass(frozen=True)
class BillPayment:
    order_ref: str              # out_trade_no: the hub's order id
    transaction_id: str
    amount_fen: int             # 应结订单金额 in fen
    status: str                 # 交易状态: SUCCESS, REVOKED, ...
    at: str = ""                # 交易时间 as the bill writes it (Beijing time)


@dataclass(frozen=True)
class BillRefund:
    order_ref: str
    transaction_id: str
    refund_no: str              # out_refund_no: the hub's refund number
    refund_id: str
    amount_fen: int             # 退款金额 in fen
    status: str                 # 退款状态: SUCCESS, PROCESSING, ...


@dataclass(frozen=True)
class Bill:
    """One day of one merchant: the trade bill's payments and the refund bill's refunds."""

    day: str
    payments: tuple[BillPayment, ...]
    refunds: tuple[BillRefund, ...]


@dataclass(frozen=True)
class HubPayment:
    order_id: str
    transaction_id: str
    amount_fen: int


@dataclass(frozen=True)
class HubOrder:
    """What the hub holds of an order a bill payment names."""

    order_id: str
    status: str
    payment_ref: str | None
    total_fen: int
    known_payments: frozenset[str]   # its payment and every payment it owes or owed back (a second one)


@dataclass(frozen=True)
class HubRefund:
    order_id: str
    refund_no: str
    amount_fen: int
    status: str


@dataclass(frozen=True)
class Difference:
    kind: Kind
    order_id: str
    transaction_id: str = ""
    refund_no: str = ""
    bill_fen: int | None = None
    hub_fen: int | None = None
    detail: str = ""

    @property
    def repairable(self) -> bool:
        return self.kind == Kind.PAYMENT_MISSED


def compare(bill: Bill, orders: dict[str, HubOrder], paid_that_day: list[HubPayment],
            payment_amounts: dict[str, int], refunds: dict[str, HubRefund],
            refunded_that_day: list[HubRefund]) -> list[Difference]:
    """`orders`: the hub's orders the bill's payments name; `payment_amounts`: every payment the hub knows
    of those orders (transaction -> fen); `refunds`: the hub's refunds the bill's refunds name (by refund_no);
    `*_that_day`: the hub's own payments and settled refunds of the bill's day."""
    out: list[Difference] = []
    paid = [p for p in bill.payments if p.status == "SUCCESS"]
    in_bill = {p.transaction_id for p in bill.payments}
    for p in paid:
        order = orders.get(p.order_ref)
        if order is None:
            out.append(Difference(Kind.PAID_UNKNOWN, p.order_ref, p.transaction_id, bill_fen=p.amount_fen,
                                  detail="the platform took this payment for an order the hub does not have"))
        elif p.transaction_id not in order.known_payments:
            out.append(Difference(Kind.PAYMENT_MISSED, order.order_id, p.transaction_id, bill_fen=p.amount_fen,
                                  hub_fen=order.total_fen,
                                  detail=f"paid at the platform; the hub has the order {order.status}"))
        elif payment_amounts.get(p.transaction_id, p.amount_fen) != p.amount_fen:
            out.append(Difference(Kind.AMOUNT_DIFFERS, order.order_id, p.transaction_id, bill_fen=p.amount_fen,
                                  hub_fen=payment_amounts[p.transaction_id]))
    for h in paid_that_day:
        if h.transaction_id not in in_bill:
            out.append(Difference(Kind.NOT_IN_BILL, h.order_id, h.transaction_id, hub_fen=h.amount_fen,
                                  detail="the hub recorded this payment; the platform's bill does not have it"))
    billed_refunds = {r.refund_no for r in bill.refunds}
    for r in bill.refunds:
        if r.status != "SUCCESS":
            continue
        mine = refunds.get(r.refund_no)
        if mine is None:
            out.append(Difference(Kind.REFUND_ONLY_IN_BILL, r.order_ref, r.transaction_id, r.refund_no,
                                  bill_fen=r.amount_fen, detail="the platform paid back money the hub never asked"))
        elif mine.amount_fen != r.amount_fen:
            out.append(Difference(Kind.REFUND_AMOUNT_DIFFERS, mine.order_id, r.transaction_id, r.refund_no,
                                  bill_fen=r.amount_fen, hub_fen=mine.amount_fen))
    for settled in refunded_that_day:
        if settled.refund_no not in billed_refunds:
            out.append(Difference(Kind.REFUND_ONLY_IN_HUB, settled.order_id, refund_no=settled.refund_no,
                                  hub_fen=settled.amount_fen,
                                  detail="the hub has this refund settled; the platform's refund bill does not"))
    return out
