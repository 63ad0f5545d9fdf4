"""Discounts on an order and each line's share of them (pure: no SQL, no I/O).

An order's discounts (a coupon, a member price, points used, a channel's subsidy) are one amount in fen
each; together they are shared out over the lines by each line's value (qty x unit price), rounded
down, the remainder going to the last line that still has room — so the shares sum to the discount, no
share is below 0 or above its line's value, and the same lines always give the same shares.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from hub.domain.errors import BadInput


class DiscountKind(StrEnum):
    COUPON = "coupon"
    MEMBER_PRICE = "member_price"
    POINTS = "points"
    CHANNEL_SUBSIDY = "channel_subsidy"


FEN_PER_POINT = 1            # 100 points take 1 yuan off (the CRM simulator's rule, config-free for now)
FEN_PER_EARNED_POINT = 100   # one point earned per yuan paid


@dataclass(frozen=True)
class Discount:
    kind: DiscountKind
    amount_fen: int
    ref: str = ""            # the coupon's code, the points hold's id, the channel's promotion id

    def to_dict(self) -> dict[str, object]:
        return {"kind": str(self.kind), "amount_fen": self.amount_fen, "ref": self.ref}

    @classmethod
    def from_dict(cls, data: dict) -> Discount:
        return cls(DiscountKind(data["kind"]), int(data["amount_fen"]), str(data.get("ref") or ""))


def allocate(discount_fen: int, values_fen: Sequence[int]) -> list[int]:
    """Each line's share of `discount_fen`, by the lines' values: shares sum to the discount exactly,
    each between 0 and its line's value. BadInput for a negative discount or line, or a discount
    larger than the lines' values together."""
    if discount_fen < 0:
        raise BadInput(f"a discount cannot be negative ({discount_fen} fen)")
    if any(v < 0 for v in values_fen):
        raise BadInput("a line's value cannot be negative")
    total = sum(values_fen)
    if discount_fen > total:
        raise BadInput(f"the discounts ({discount_fen} fen) are more than the lines' value ({total} fen)")
    if discount_fen == 0:
        return [0] * len(values_fen)
    shares = [discount_fen * v // total for v in values_fen]
    left = discount_fen - sum(shares)
    for i in reversed(range(len(values_fen))):          # the remainder to the last line with room
        room = values_fen[i] - shares[i]
        take = min(room, left)
        shares[i] += take
        left -= take
        if not left:
            break
    return shares


def amounts_after(discounts: Sequence[Discount], values_fen: Sequence[int]) -> list[int]:
    """Each line's amount after all the order's discounts."""
    total = sum(d.amount_fen for d in discounts)
    return [v - s for v, s in zip(values_fen, allocate(total, values_fen), strict=True)]


def share(part_fen: int, whole_fen: int, of: int) -> int:
    """`of` (points, fen) in the proportion part/whole, rounded down; all of it when part covers whole."""
    if whole_fen <= 0 or part_fen <= 0 or of <= 0:
        return 0
    if part_fen >= whole_fen:
        return of
    return of * part_fen // whole_fen


def step_share(before_fen: int, this_fen: int, whole_fen: int, of: int) -> int:
    """This step's part of `of`, given what earlier steps covered: cumulative, so parts never sum past `of`
    and rounding is not lost across several partial refunds."""
    return share(before_fen + this_fen, whole_fen, of) - share(before_fen, whole_fen, of)
