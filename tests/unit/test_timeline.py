"""The buyer's timeline (`hub/domain/timeline.py`), whatever order and however often the inputs arrive."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.timeline import ENDS, Step, merge, without_refs

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
PATHS = [
    ["pending_payment", "paid", "allocated", "dispatched", "rider_assigned", "picked_up", "delivered", "completed"],
    ["pending_payment", "paid", "allocated", "dispatched", "allocated", "dispatched", "rider_assigned", "picked_up",
     "delivered", "completed", "refunded"],
    ["pending_payment", "paid", "allocated", "shipped", "in_transit", "delivered", "completed"],
    ["pending_payment", "paid", "allocated", "dispatched", "cancelled", "refunded"],
    ["pending_payment", "cancelled"],
]
REPORTS = ["booked", "rider_assigned", "rider_at_store", "collected", "in_transit", "out_for_delivery", "delivered",
           "cancelled", "problem"]
REFS = ["DADA-1", "SF1234567"]


@st.composite
def histories(draw):
    path = draw(st.sampled_from(PATHS))
    minutes = draw(st.lists(st.integers(-30, 30), min_size=len(path), max_size=len(path)))
    changes = [Step(T0 + timedelta(minutes=10 * i + m), status, "hub",
                    f"step {status} ({REFS[0]}, fee 5 fen)" if status == "dispatched" else "", i + 1)
               for i, (status, m) in enumerate(zip(path, minutes, strict=True))]
    reports = [Step(T0 + timedelta(minutes=draw(st.integers(-180, 240))), draw(st.sampled_from(REPORTS)),
                    "courier", draw(st.sampled_from(["", "rider Wang 139****2222", f"waybill {REFS[1]} scanned"])),
                    100 + j, draw(st.sampled_from([1, 2])))
               for j in range(draw(st.integers(0, 12)))]
    reports += draw(st.lists(st.sampled_from(reports), max_size=4)) if reports else []    # redelivered
    return changes, reports


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_the_timeline_is_in_order_once_with_the_end_last_whatever_the_input_order(history, rnd: random.Random):
    changes, reports = history
    out = merge(changes, reports, hide=REFS)
    shuffled_c, shuffled_r = changes[:], reports[:]
    rnd.shuffle(shuffled_c)
    rnd.shuffle(shuffled_r)
    assert merge(shuffled_c, shuffled_r, hide=REFS) == out                  # arrival order does not matter
    times = [s.at for s in out]
    assert times == sorted(times)                                            # chronological
    assert [s.seq for s in out if s.booking is None] == [c.seq for c in changes]   # every change, applied order
    assert out[0].status == "pending_payment"
    ends = [i for i, s in enumerate(out) if s.status in ENDS and s.booking is None]   # the order's end, not a courier's
    if ends:
        first_end = ends[0]
        assert all(s.status in ENDS and s.booking is None for s in out[first_end:])   # the end is last
    shown_reports = [(s.booking, s.status) for s in out if s.booking is not None]
    assert len(shown_reports) == len(set(shown_reports))                    # each report once
    assert not {s for _, s in shown_reports} & {c.status for c in changes}   # never beside the same change
    assert not any(ref in s.detail for s in out for ref in REFS)            # no booking or waybill number


def test_references_are_taken_out_of_the_words_around_them():
    refs = ["DADA-77001", "SF1234567"]
    assert without_refs("rider booked from Jing'an Flagship (DADA-77001, fee 500 fen)", refs) == \
        "rider booked from Jing'an Flagship"
    assert without_refs("waybill SF1234567 from Qingpu warehouse", refs) == "from Qingpu warehouse"
    assert without_refs("rider Wang 139****2222", refs) == "rider Wang 139****2222"
