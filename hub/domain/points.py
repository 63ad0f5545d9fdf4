"""Points a buyer earns on an order, and what its refunds take back (pure: no SQL, no I/O).

Earned once, at completion, on the money the buyer kept: the order's total less every refund owed before
completion, whatever its cause (a short pick, a partial refund asked while the order was on its way, the
platform's own partial refund) — one rule, so the points never count money that went back. A refund owed
after completion takes back its part of what was earned, in proportion to the kept money and cumulatively
over the order's refunds, so several refunds together never take back more than was earned.

A refund counts as owed from the moment the hub records it, whatever the platform answers later: what was
earned must not change after the CRM was told.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.domain.discounts import FEN_PER_EARNED_POINT, step_share


@dataclass(frozen=True)
class OwedBack:
    """One refund of the order's payment, in the order it was recorded."""

    amount_fen: int
    after_completion: bool          # recorded once the order had completed


def kept_fen(total_fen: int, refunds: Sequence[OwedBack]) -> int:
    """What the buyer kept at completion: the total less every refund owed before it."""
    return max(total_fen - sum(r.amount_fen for r in refunds if not r.after_completion), 0)


def earned(total_fen: int, refunds: Sequence[OwedBack]) -> int:
    """The points a completed order earns: one per yuan kept."""
    return kept_fen(total_fen, refunds) // FEN_PER_EARNED_POINT


def taken_back(total_fen: int, refunds: Sequence[OwedBack], index: int) -> int:
    """The earned points `refunds[index]` takes back: none for a refund before completion (never earned on);
    after it, its share of the kept money's points, given the refunds after completion before it."""
    mine = refunds[index]
    if not mine.after_completion:
        return 0
    before = sum(r.amount_fen for r in refunds[:index] if r.after_completion)
    return step_share(before, mine.amount_fen, kept_fen(total_fen, refunds), earned(total_fen, refunds))
