"""The sold-out cache's rules (`hub/domain/sold_out.py`) and its in-process store, on a clock the test moves."""
from __future__ import annotations

from hub.domain.sold_out import MemorySoldOut, figure_from_refusal, is_low, short_lines


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_line_is_short_only_when_its_known_figure_cannot_serve_the_channel():
    known = {("S001", "A"): 1, ("S001", "B"): 5}
    assert short_lines([("A", 1)], "S001", known, channel_safety=1) == [
        {"sku": "A", "location_id": "S001", "wanted": 1, "available": 0}]
    assert short_lines([("A", 1)], "S001", known, channel_safety=0) == []          # 1 left for this channel
    assert short_lines([("B", 3), ("B", 2)], "S001", known, channel_safety=1) == [  # lines of a SKU add up
        {"sku": "B", "location_id": "S001", "wanted": 5, "available": 4}]
    assert short_lines([("C", 1)], "S001", known, channel_safety=1) == []          # unknown: the ledger decides


def test_low_means_some_channel_may_sell_nothing_there():
    assert is_low(1, [1, 0]) and is_low(0, []) and not is_low(2, [1, 1])


def test_a_refusal_tells_an_upper_bound_of_the_stores_figure():
    assert figure_from_refusal(0, channel_safety=1) == 1
    assert short_lines([("A", 1)], "S001", {("S001", "A"): figure_from_refusal(0, 1)}, channel_safety=0) == []


def test_a_low_figure_is_believed_for_its_ttl_and_forgotten_when_told():
    clock = Clock()
    cache = MemorySoldOut(clock)
    cache.note({("S001", "A"): 0, ("S001", "B"): 0}, ttl_ms=2000)
    assert cache.lookup([("S001", "A"), ("S001", "B")], "k") == ({("S001", "A"): 0, ("S001", "B"): 0}, False)
    cache.note({}, other=[("S001", "B")])
    assert cache.lookup([("S001", "A"), ("S001", "B")], "k") == ({("S001", "A"): 0}, False)
    clock.t += 2.5
    assert cache.lookup([("S001", "A")], "k") == ({}, False)


def test_a_placed_key_is_known_for_its_ttl():
    clock = Clock()
    cache = MemorySoldOut(clock)
    cache.placed("miniprogram:k1", ttl_s=10)
    assert cache.lookup([], "miniprogram:k1") == ({}, True) and cache.lookup([], "miniprogram:k2") == ({}, False)
    clock.t += 11
    assert cache.lookup([], "miniprogram:k1") == ({}, False)


def test_the_in_process_store_stays_bounded(monkeypatch):
    from hub.domain import sold_out

    monkeypatch.setattr(sold_out, "BOUND", 10)
    cache = MemorySoldOut(Clock())
    for i in range(25):
        cache.placed(f"k{i}")
        cache.note({("S001", f"sku{i}"): 0})
    assert len(cache._placed) <= 10 and len(cache._low) <= 10
    assert cache.lookup([("S001", "sku24")], "k24") == ({("S001", "sku24"): 0}, True)    # the newest are kept
