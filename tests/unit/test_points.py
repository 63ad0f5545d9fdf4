"""Points earned on the money kept at completion, and taken back by the refunds after it (domain/points.py)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.domain.points import OwedBack, earned, kept_fen, taken_back


def test_every_refund_before_completion_is_off_what_earns():
    refunds = [OwedBack(4500, False), OwedBack(5000, False), OwedBack(3000, True)]
    assert kept_fen(30100, refunds) == 20600 and earned(30100, refunds) == 206
    assert [taken_back(30100, refunds, i) for i in range(3)] == [0, 0, 206 * 3000 // 20600]


@st.composite
def order_refunds(draw):
    total = draw(st.integers(0, 10**7))
    refunds, left, done = [], total, False
    for _ in range(draw(st.integers(0, 6))):
        if left <= 0:
            break
        amount = draw(st.integers(1, left))
        done = done or draw(st.booleans())            # completion falls somewhere between the refunds
        refunds.append(OwedBack(amount, done))
        left -= amount
    return total, refunds


@given(order_refunds())
def test_the_refunds_after_completion_take_back_at_most_what_was_earned_and_all_of_it_when_all_goes_back(case):
    total, refunds = case
    taken = [taken_back(total, refunds, i) for i in range(len(refunds))]
    assert all(t >= 0 for t in taken) and sum(taken) <= earned(total, refunds)
    if sum(r.amount_fen for r in refunds) == total and any(r.after_completion for r in refunds):
        assert sum(taken) == earned(total, refunds)
