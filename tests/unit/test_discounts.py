"""The allocation of an order's discounts over its lines, and a line's refund per missing unit."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.discounts import Discount, DiscountKind, allocate, amounts_after, step_share
from hub.domain.errors import BadInput
from hub.domain.refunds import line_refund_fen

values = st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=12)


@st.composite
def discount_and_values(draw):
    vs = draw(values)
    return draw(st.integers(min_value=0, max_value=sum(vs))), vs


@given(discount_and_values())
def test_shares_sum_to_the_discount_each_within_its_line(case):
    discount, vs = case
    shares = allocate(discount, vs)
    assert sum(shares) == discount
    assert all(0 <= s <= v for s, v in zip(shares, vs, strict=True))
    assert allocate(discount, list(vs)) == shares          # deterministic


@given(discount_and_values())
def test_shares_follow_the_lines_values(case):
    discount, vs = case
    shares = allocate(discount, vs)
    total = sum(vs)
    if total == 0:                                         # lines worth nothing: nothing to share (discount 0)
        assert shares == [0] * len(vs)
        return
    for s, v in zip(shares[:-1], vs[:-1], strict=True):   # all but the last take their floor, or the remainder
        assert s >= discount * v // total


def test_the_remainder_goes_to_the_last_line():
    assert allocate(100, [100, 100, 100]) == [33, 33, 34]
    assert allocate(10, [1000, 0]) == [10, 0]              # the last line has no room: the one before takes it


def test_a_discount_above_the_lines_is_refused():
    with pytest.raises(BadInput, match="more than the lines"):
        allocate(301, [100, 100, 100])
    with pytest.raises(BadInput):
        allocate(-1, [100])


def test_amounts_after_several_discounts():
    ds = [Discount(DiscountKind.COUPON, 500, "C1"), Discount(DiscountKind.POINTS, 100, "H1")]
    assert amounts_after(ds, [3000, 1000]) == [2550, 850]


@given(st.integers(min_value=1, max_value=10**6), st.lists(st.integers(min_value=1, max_value=10**5), min_size=1,
                                                            max_size=8), st.integers(min_value=0, max_value=10**5))
def test_partial_steps_never_add_up_past_the_whole(whole, parts, of):
    done, given_back = 0, 0
    for part in parts:
        part = min(part, whole - done)
        given_back += step_share(done, part, whole, of)
        done += part
    assert 0 <= given_back <= of
    if done == whole:
        assert given_back == of


@dataclass
class Line:
    qty: int
    unit_price_fen: int
    amount_fen: int | None = None


def test_line_refund_uses_the_discounted_amount():
    line = Line(qty=3, unit_price_fen=1000, amount_fen=2850)
    assert line_refund_fen(line, 1) == 950
    assert line_refund_fen(line, 3) == 2850
    assert line_refund_fen(Line(3, 1000, 2851), 1) == 951           # the missing unit carries the remainder
    assert line_refund_fen(Line(2, 500), 1) == 500                   # no discount: the unit price


@given(st.integers(min_value=1, max_value=1000), st.integers(min_value=0, max_value=10**7),
       st.integers(min_value=0, max_value=1000))
def test_line_refund_is_within_the_line(qty, amount, missing):
    line = Line(qty, 0, amount)
    refund = line_refund_fen(line, missing)
    assert 0 <= refund <= amount
    if missing >= qty:
        assert refund == amount
    assert line_refund_fen(line, min(missing, qty)) >= line_refund_fen(line, max(min(missing, qty) - 1, 0))
