"""The attempts of one order request at the CRM (SQLite and PostgreSQL): each holds under its own order_no, a
new one first gives back the one before, and only the current attempt's holds can be adopted by the order."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.domain.errors import BadInput, MemberRefused
from hub.services import member_holds as mh
from hub.storage.tables import OutboxMessage


def claim(ctx, key="K1", coupon="CPN-1", points=100):
    with ctx.uow() as uow:
        step, attempt = mh.claim(uow, key, "M1", coupon, points)
        uow.commit()
        return step, attempt


def releases(ctx) -> list[dict]:
    with ctx.reader() as uow:
        return [r.payload["data"] for r in uow.session.execute(
            select(OutboxMessage).where(OutboxMessage.event_type == "member.holds_release_due")
            .order_by(OutboxMessage.id)).scalars()]


def test_a_second_attempt_gives_the_first_back_then_holds_under_its_own_order_no(ctx):
    step, first = claim(ctx)
    assert step == "hold" and first.order_no == "K1" and not first.points_asked      # the coupon comes first
    with ctx.uow() as uow:
        mh.points_asked(uow, first)
        uow.commit()
    step, again = claim(ctx)                      # the first neither placed nor given back: give it back first
    assert step == "give_back" and again.order_no == "K1" and again.points_asked
    assert releases(ctx) == [{"order_key": "K1", "member_id": "M1", "coupon_code": "CPN-1", "hold_id": None,
                              "points": 100}]      # kept in the outbox too, in case this request fails as well
    with ctx.uow() as uow:
        mh.released(uow, "K1")
        uow.commit()
    step, second = claim(ctx)
    assert step == "hold" and second.order_no == "K1.1" and len(releases(ctx)) == 1
    with ctx.uow() as uow:                        # the first attempt, still running, can no longer place
        with pytest.raises(MemberRefused, match="took over"):
            mh.adopt(uow, first.order_no)
    with ctx.uow() as uow:
        mh.adopt(uow, second.order_no)
        uow.commit()
    with ctx.reader() as uow:
        assert mh.placed_order_no(uow, "K1") == "K1.1"
    assert claim(ctx) == ("placed", None)         # the order exists: nothing more is held


def test_a_failed_attempt_is_given_back_once_and_a_late_release_leaves_the_next_alone(ctx):
    _, first = claim(ctx, points=0)
    with ctx.uow() as uow:
        mh.releasing(uow, first.order_no, "M1", "CPN-1", None, 0)
        uow.commit()
    assert claim(ctx, points=0)[0] == "give_back" and len(releases(ctx)) == 1       # no second give-back due
    with ctx.uow() as uow:
        mh.released(uow, first.order_no)
        uow.commit()
    _, second = claim(ctx, points=0)
    with ctx.uow() as uow:
        mh.released(uow, first.order_no)          # the consumer's give-back of the first, arriving late
        mh.adopt(uow, second.order_no)            # ... does not touch the second
        uow.commit()


def test_the_same_key_with_another_coupon_is_refused_before_anything_is_held(ctx):
    claim(ctx)
    with ctx.uow() as uow, pytest.raises(BadInput, match="another coupon"):
        mh.claim(uow, "K1", "M1", "CPN-2", 100)


def test_housekeeping_removes_old_attempts_placed_or_given_back_never_an_open_hold(ctx):
    from datetime import timedelta

    from hub.services import housekeeping
    from hub.storage.tables import MemberHold, utcnow

    for key in ("PLACED", "GIVEN", "HOLDING", "RELEASING", "RECENT"):
        claim(ctx, key=key)
    with ctx.uow() as uow:
        mh.adopt(uow, "PLACED")
        mh.adopt(uow, "RECENT")
        mh.releasing(uow, "GIVEN", "M1", "CPN-1", None, 100)
        mh.released(uow, "GIVEN")
        mh.releasing(uow, "RELEASING", "M1", "CPN-1", None, 100)
        uow.commit()
    keep = ctx.config.hub.member_holds_keep_days
    with ctx.uow() as uow:                        # all but RECENT last changed before the retention
        for row in uow.session.execute(select(MemberHold).where(MemberHold.order_key != "RECENT")).scalars():
            row.updated_at = utcnow() - timedelta(days=keep + 1)
        uow.commit()
    assert housekeeping.remove_old_member_holds(ctx) == 2
    assert housekeeping.remove_old_member_holds(ctx) == 0          # the timer again: nothing more
    with ctx.reader() as uow:
        left = {r.order_key: r.state for r in uow.session.execute(select(MemberHold)).scalars()}
    assert left == {"HOLDING": "holding", "RELEASING": "releasing", "RECENT": "placed"}
    # much later, the open ones still stay; RECENT goes once it is old too
    assert housekeeping.remove_old_member_holds(ctx, now=utcnow() + timedelta(days=keep + 1)) == 1
    with ctx.reader() as uow:
        assert {r.order_key for r in uow.session.execute(select(MemberHold)).scalars()} == {"HOLDING", "RELEASING"}
