"""Domain errors. Each says what is wrong in words an operator or caller can act on."""
from __future__ import annotations

from datetime import datetime


class HubError(Exception):
    """Base of every error the core raises on purpose."""

    code = "hub_error"


class BadInput(HubError):
    code = "bad_input"


class UnknownSku(BadInput):
    code = "unknown_sku"


class UnknownLocation(BadInput):
    code = "unknown_location"


class TimeAhead(BadInput):
    """A business time from a clock ahead of ours (a till with a wrong clock): refused, never applied."""

    code = "time_ahead"


class CouponNotAllowed(BadInput):
    """A coupon named on an order whose price takes none (a flash sale's)."""

    code = "coupon_not_allowed"


class PointsNotAllowed(BadInput):
    """Points to spend named on an order whose price takes none (a flash sale's)."""

    code = "points_not_allowed"


class NotFound(HubError):
    code = "not_found"


class NotPlatformRider(HubError):
    """A channel's report on its own rider for an order its rider does not carry (the store's courier has it):
    a terminal 422, so the platform stops pushing it, rather than a 404 it would push again forever."""

    code = "not_platform_rider"


class InsufficientStock(HubError):
    """Not enough available stock; `short` lists (sku, location, wanted, available)."""

    code = "insufficient_stock"

    def __init__(self, short: list[dict]):
        self.short = short
        names = ", ".join(
            f"{s['sku']}@{s['location_id']} wants {s['wanted']} has {s['available']}" for s in short
        )
        super().__init__(f"insufficient stock: {names}")


class SaleEnded(HubError):
    """An admitted flash-sale attempt whose sale ended before its order was written."""

    code = "sale_ended"


class SaleSoldOut(HubError):
    """The sale's ledger holds no unit for an attempt its gate admitted (a gate that lost count, or an attempt
    bigger than what is left): the ledger, not the gate, has the last word."""

    code = "sold_out"


class IllegalTransition(HubError):
    code = "illegal_transition"

    def __init__(self, order_id: str, current: str, target: str, fulfillment: str):
        self.order_id, self.current, self.target = order_id, current, target
        super().__init__(
            f"order {order_id} ({fulfillment}) cannot go from {current} to {target}"
        )


class NeedsOperator(HubError):
    """Automatic handling stops here on purpose (e.g. too many riders booked for one order): the work is
    parked as a dead letter for an operator to look at, cancel or replay."""

    code = "needs_operator"


class NoRoute(HubError):
    """No location can serve the order; `reasons` says why each candidate was passed over."""

    code = "no_route"

    def __init__(self, message: str, reasons: list[dict]):
        self.reasons = reasons
        super().__init__(message)


class StoreCannotFill(NoRoute):
    """The store a channel chose for its own order (a platform's `app_poi_code`) cannot fill it now. The hub does
    not re-route a platform's choice: the order is refused back to it. `cause` is what the channel is told:
    sold_out, busy (paused, at capacity), closed, or other."""

    code = "store_cannot_fill"
    CAUSES = ("sold_out", "busy", "closed", "other")

    def __init__(self, store_id: str, cause: str, message: str, reasons: list[dict]):
        assert cause in self.CAUSES, cause
        self.store_id, self.cause = store_id, cause
        super().__init__(message, reasons)


class PickupCodeRejected(HubError):
    code = "pickup_code_rejected"

    def __init__(self, message: str, attempts_left: int):
        self.attempts_left = attempts_left
        super().__init__(message)


class PickupLocked(HubError):
    code = "pickup_locked"

    def __init__(self, message: str, locked_until: datetime | None):
        self.locked_until = locked_until
        super().__init__(message)


class MemberRefused(HubError):
    """The CRM refused the order's coupon or points (used, expired, locked by another order): 409, the
    CRM's reason given, nothing reserved."""

    code = "member_refused"


class NotSellable(BadInput):
    """A line's SKU is unknown, inactive or has no price: no channel may order it. `line` is its index."""

    def __init__(self, message: str, line: int, unknown: bool) -> None:
        self.line, self.unknown = line, unknown
        super().__init__(message)
