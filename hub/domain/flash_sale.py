"""A flash sale's terms and the admission gate's answers: plain values, no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.domain.errors import CouponNotAllowed, PointsNotAllowed


class Verdict(StrEnum):
    ADMITTED = "admitted"
    AGAIN = "again"                  # this attempt was admitted before, for the same buyer and qty (a retry)
    CONFLICT = "conflict"            # this attempt was admitted before for another buyer or qty: not a retry
    SOLD_OUT = "sold_out"
    OVER_LIMIT = "over_limit"        # the buyer already holds the per-buyer limit
    TOO_FAST = "too_fast"            # the buyer tried again sooner than the sale allows
    NOT_STARTED = "not_started"
    ENDED = "ended"
    UNKNOWN = "unknown"              # no such sale armed in the gate


@dataclass(frozen=True)
class SaleTerms:
    """What the gate enforces for one sale; times in epoch milliseconds."""

    sale_id: str
    quota: int
    per_buyer_limit: int
    min_interval_ms: int
    starts_ms: int
    ends_ms: int


@dataclass(frozen=True)
class GateState:
    quota: int
    left: int
    held: dict[str, int]             # attempt key -> units held by an admitted attempt
    ended: bool

    @property
    def taken(self) -> int:
        return sum(self.held.values())


def refuse_member_benefits(coupon_code: str | None, points: int | None) -> None:
    """A flash-sale price is the whole discount: a coupon or points on top are refused (422), before the gate
    is asked, so nothing is taken — neither a unit of the sale nor anything at the CRM."""
    if coupon_code:
        raise CouponNotAllowed("a flash-sale price takes no coupon: order without it, or at the regular price")
    if points:
        raise PointsNotAllowed("a flash-sale price takes no points: order without them, or at the regular price")
