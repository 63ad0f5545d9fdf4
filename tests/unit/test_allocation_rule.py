"""The allocation arithmetic (`hub/domain/stock.py`): the condition the ledger's UPDATE applies
(`within_share`, no division) is the figure a channel is shown (`Allocation.allowance`, floored)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.domain.stock import Allocation, channel_figure, within_share

allocations = st.builds(Allocation, share=st.integers(0, 100), cap=st.none() | st.integers(0, 50),
                        listed=st.booleans())


@given(allocations, st.integers(0, 60), st.integers(1, 20), st.integers(0, 5), st.integers(-5, 200))
def test_the_ledgers_condition_is_the_shown_allowance(allocation, held, qty, channel_safety, pool):
    assert within_share(held, qty, channel_safety, pool, allocation) == (
        qty <= allocation.allowance(pool) - held - channel_safety)


@given(allocations, st.integers(0, 200), st.integers(0, 200), st.integers(0, 5), st.integers(0, 5),
       st.integers(0, 60))
def test_a_channel_is_never_shown_more_than_the_store_or_its_share_has(allocation, on_hand, reserved, safety,
                                                                        channel_safety, held):
    figure = channel_figure(on_hand, reserved, safety, channel_safety, allocation, held)
    assert 0 <= figure <= max(on_hand - reserved - safety - channel_safety, 0)
    assert figure <= max(allocation.allowance(on_hand - safety) - held - channel_safety, 0)


def test_examples():
    assert Allocation(share=80).allowance(10) == 8 and Allocation(share=33).allowance(10) == 3
    assert Allocation(cap=5).allowance(10) == 5 and Allocation(listed=False).allowance(10) == 0
    assert channel_figure(10, 0, 0, 1) == 9 and channel_figure(10, 0, 0, 1, Allocation(share=50)) == 4
    assert channel_figure(10, 8, 0, 1, Allocation(share=50), 0) == 1      # the store has 2 left, less 1
