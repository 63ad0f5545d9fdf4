"""The refund arithmetic (hub/domain/refunds.py): what may still be asked back, and when an order is
refunded in full — properties over any mix of refunds and statuses (hypothesis)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain import refunds as rules
from hub.domain.errors import BadInput
from hub.domain.refunds import RefundStatus as R

STATUSES = st.sampled_from(list(R))
REFUNDS = st.lists(st.tuples(st.integers(1, 50_000), STATUSES), max_size=8)
PAID = st.integers(1, 200_000)


@given(PAID, REFUNDS)
def test_remaining_is_what_was_paid_minus_what_is_gone_or_on_its_way(paid, refunds):
    held = sum(a for a, s in refunds if s in (R.REQUESTED, R.PROCESSING, R.SUCCESS, R.ABNORMAL))
    assert rules.remaining(paid, refunds) == max(paid - held, 0)
    assert 0 <= rules.remaining(paid, refunds) <= paid


@given(PAID, REFUNDS)
def test_closed_and_refused_refunds_give_their_amount_back_to_ask_for(paid, refunds):
    without = [(a, s) for a, s in refunds if s not in (R.CLOSED, R.FAILED)]
    assert rules.remaining(paid, refunds) == rules.remaining(paid, without)


@given(PAID, REFUNDS, st.one_of(st.none(), st.integers(-10, 250_000)))
def test_a_new_refund_never_takes_more_than_is_left(paid, refunds, asked):
    left = rules.remaining(paid, refunds)
    try:
        amount = rules.amount_to_refund(paid, refunds, asked)
    except BadInput:
        assert left == 0 or (asked is not None and (asked <= 0 or asked > left))
        return
    assert 0 < amount <= left and (asked is None and amount == left or amount == asked)
    # and once it is asked for, paying every requested refund never returns more than was paid
    after = refunds + [(amount, R.REQUESTED)]
    assert sum(a for a, s in after if s in rules.HOLDS_MONEY) <= paid or left == 0


@given(PAID, st.lists(st.integers(1, 50_000), min_size=1, max_size=6))
def test_partial_refunds_that_add_up_refund_the_order_in_full(paid, parts):
    done: list[tuple[int, str]] = []
    for part in parts:
        left = rules.remaining(paid, done)
        if left == 0:
            break
        done.append((min(part, left), R.SUCCESS))
        assert rules.fully_refunded(paid, done) == (rules.refunded(done) == paid)
    # the last fen closes it, never before
    assert rules.fully_refunded(paid, done) == (sum(a for a, _ in done) == paid)


def test_a_100_fen_refund_of_a_25600_fen_payment_is_partial():
    assert not rules.fully_refunded(25600, [(100, R.SUCCESS)])
    assert rules.remaining(25600, [(100, R.SUCCESS)]) == 25500
    assert rules.fully_refunded(25600, [(100, R.SUCCESS), (25500, R.SUCCESS)])
    assert not rules.fully_refunded(25600, [(25600, R.PROCESSING)])       # asked is not paid back


@pytest.mark.parametrize("current,reported,news", [
    (R.REQUESTED, R.PROCESSING, True), (R.REQUESTED, R.SUCCESS, True), (R.PROCESSING, R.SUCCESS, True),
    (R.PROCESSING, R.ABNORMAL, True), (R.ABNORMAL, R.SUCCESS, True), (R.ABNORMAL, R.CLOSED, True),
    (R.FAILED, R.PROCESSING, True),
    (R.SUCCESS, R.PROCESSING, False), (R.SUCCESS, R.CLOSED, False), (R.CLOSED, R.SUCCESS, False),
    (R.PROCESSING, R.PROCESSING, False), (R.ABNORMAL, R.PROCESSING, False), (R.PROCESSING, R.REQUESTED, False),
])
def test_a_refund_moves_only_forward(current, reported, news):
    assert rules.moves_forward(current, reported) is news
