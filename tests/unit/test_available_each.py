"""`available_each` (the stock query's figures for a thousand locations at once) gives, location by location,
what `available` gives: on-hand less reserved (negative too: reservations over a count), then the location's
safety stock and the channel's held back, never below 0."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.domain.stock import available, available_each

locations = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300), st.integers(0, 20)), max_size=40)


@given(locations, st.integers(0, 20))
def test_each_figure_is_the_single_rule(rows, channel_safety):
    sellable = [on_hand - reserved for on_hand, reserved, _ in rows]
    held_back = [safety + channel_safety for _, _, safety in rows]
    assert available_each(sellable, held_back) == [
        available(on_hand, reserved, safety, channel_safety) for on_hand, reserved, safety in rows]


def test_examples():
    assert available_each([10, 3, -2, 5], [1, 3, 0, 7]) == [9, 0, 0, 0]
