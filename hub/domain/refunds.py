"""Refund rules (售后): how much may still go back to a buyer, and what each refund status means.

A refund is asked of the payment platform for one payment (the order's, or a second payment the
buyer made by mistake). The platform answers, then notifies: SUCCESS (the money went back),
ABNORMAL (it could not reach the buyer's account: an operator must act), CLOSED (the merchant or
the platform closed it: nothing went back). Pure: no SQL, no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol

from hub.domain.errors import BadInput


class RefundStatus(StrEnum):
    REQUESTED = "requested"      # recorded by the hub; the platform has not answered yet (or not at all)
    PROCESSING = "processing"    # the platform took it; its notification follows
    SUCCESS = "success"          # the money went back
    ABNORMAL = "abnormal"        # the platform could not pay it back (closed card, frozen account): an operator acts
    CLOSED = "closed"            # closed without paying: nothing went back
    FAILED = "failed"            # the platform refused the request (parked for an operator)


R = RefundStatus
# Money that is gone or on its way: it may not be asked for twice.
HOLDS_MONEY = frozenset({R.REQUESTED, R.PROCESSING, R.SUCCESS, R.ABNORMAL})
# The platform has not said its last word: asking again by the same number is safe and needed.
TO_ASK = frozenset({R.REQUESTED, R.FAILED})
FINAL = frozenset({R.SUCCESS, R.CLOSED})
NEEDS_OPERATOR = frozenset({R.ABNORMAL, R.CLOSED, R.FAILED})
# The platform's words (answers and notifications) -> ours.
PLATFORM_STATUS = {"SUCCESS": R.SUCCESS, "PROCESSING": R.PROCESSING, "ABNORMAL": R.ABNORMAL, "CLOSED": R.CLOSED}

# A status may follow another only forward: a late PROCESSING answer never undoes SUCCESS.
_RANK = {R.REQUESTED: 0, R.FAILED: 0, R.PROCESSING: 1, R.ABNORMAL: 2, R.SUCCESS: 3, R.CLOSED: 3}


def moves_forward(current: str, reported: str) -> bool:
    """True when `reported` is news for a refund in `current` (never back, never from final)."""
    if current in FINAL or current == reported:
        return False
    if current == R.ABNORMAL:      # an operator's offline fix or the platform's retry ends it
        return reported in FINAL
    return _RANK[RefundStatus(reported)] > _RANK[RefundStatus(current)]


def remaining(paid_fen: int, refunds: Iterable[tuple[int, str]]) -> int:
    """What may still be asked back of a payment of `paid_fen`, given its refunds (amount, status)."""
    held = sum(amount for amount, status in refunds if status in HOLDS_MONEY)
    return max(paid_fen - held, 0)


def refunded(refunds: Iterable[tuple[int, str]]) -> int:
    """What went back for sure (the platform said SUCCESS)."""
    return sum(amount for amount, status in refunds if status == R.SUCCESS)


def amount_to_refund(paid_fen: int, refunds: Iterable[tuple[int, str]], asked_fen: int | None) -> int:
    """The amount of a new refund: `asked_fen`, or everything that remains when None.

    Refuses a non-positive amount, more than remains, or a payment with nothing left to refund."""
    left = remaining(paid_fen, refunds)
    if asked_fen is None:
        if left <= 0:
            raise BadInput("nothing left to refund on this payment")
        return left
    if asked_fen <= 0:
        raise BadInput(f"a refund must be a positive amount in fen (got {asked_fen})")
    if asked_fen > left:
        raise BadInput(f"refund of {asked_fen} fen is more than the {left} fen left to refund")
    return asked_fen


def fully_refunded(paid_fen: int, refunds: Iterable[tuple[int, str]]) -> bool:
    """Every fen paid went back (partial refunds that add up count too)."""
    return paid_fen > 0 and refunded(refunds) >= paid_fen


class PricedLine(Protocol):
    """What a line's refund is reckoned from (an order line row, or the model's OrderLine)."""
    unit_price_fen: int


def line_refund_fen(line: PricedLine, qty_missing: int) -> int:
    """The money back for `qty_missing` units of `line` not delivered (a short pick, 缺货): its unit price
    times the missing quantity. The one place a line's refund is reckoned, so discounts (issue 24) make it
    the line's discounted share."""
    return line.unit_price_fen * max(qty_missing, 0)
