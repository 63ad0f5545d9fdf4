"""The admission gate's contract, for the in-process gate and the Redis gate alike: quota, the
buyer's limit and pace, a retried attempt, give-back once, and no unit too many under a race."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.domain.flash_gate import MemoryGate
from hub.domain.flash_sale import SaleTerms, Verdict
from tests.redis_support import redis_gate

T = 1_000_000                          # epoch ms inside the sale window


def _terms(quota: int = 3, limit: int = 2, interval: int = 0, sale_id: str = "FS1") -> SaleTerms:
    return SaleTerms(sale_id, quota, limit, interval, T - 1000, T + 60_000)


@pytest.fixture(params=["memory", "redis"])
def gate(request):
    if request.param == "memory":
        yield MemoryGate()
    else:
        with redis_gate() as g:
            yield g


def test_admits_up_to_the_quota_then_sold_out(gate):
    gate.arm(_terms(quota=3, limit=1))
    verdicts = [gate.admit("FS1", f"a{i}", f"b{i}", 1, T) for i in range(5)]
    assert verdicts == [Verdict.ADMITTED] * 3 + [Verdict.SOLD_OUT] * 2
    state = gate.state("FS1")
    assert (state.left, state.taken, state.quota) == (0, 3, 3)


def test_a_retried_attempt_takes_no_second_unit(gate):
    gate.arm(_terms(quota=3))
    assert gate.admit("FS1", "a1", "b1", 1, T) == Verdict.ADMITTED
    assert gate.admit("FS1", "a1", "b1", 1, T) == Verdict.AGAIN
    assert gate.state("FS1").left == 2


def test_per_buyer_limit_and_pace(gate):
    gate.arm(_terms(quota=10, limit=2, interval=500))
    assert gate.admit("FS1", "a1", "b1", 2, T) == Verdict.ADMITTED
    assert gate.admit("FS1", "a2", "b1", 1, T + 100) == Verdict.TOO_FAST
    assert gate.admit("FS1", "a3", "b1", 1, T + 1000) == Verdict.OVER_LIMIT
    assert gate.admit("FS1", "a4", "b2", 1, T + 100) == Verdict.ADMITTED     # another buyer is not slowed
    assert gate.state("FS1").left == 7


def test_window_and_unknown_sale(gate):
    gate.arm(_terms())
    assert gate.admit("FS1", "a1", "b1", 1, T - 5000) == Verdict.NOT_STARTED
    assert gate.admit("FS1", "a1", "b1", 1, T + 60_000) == Verdict.ENDED
    assert gate.admit("NOPE", "a1", "b1", 1, T) == Verdict.UNKNOWN
    gate.end("FS1")
    assert gate.admit("FS1", "a1", "b1", 1, T) == Verdict.ENDED
    assert gate.state("NOPE") is None


def test_give_back_is_once_per_attempt_and_frees_the_buyer(gate):
    gate.arm(_terms(quota=1, limit=1))
    assert gate.admit("FS1", "a1", "b1", 1, T) == Verdict.ADMITTED
    assert gate.admit("FS1", "a2", "b2", 1, T) == Verdict.SOLD_OUT
    assert gate.give_back("FS1", "a1") == 1
    assert gate.give_back("FS1", "a1") == 0                      # a redelivered cancellation
    assert gate.state("FS1").left == 1
    assert gate.admit("FS1", "a3", "b1", 1, T) == Verdict.ADMITTED   # the buyer's limit was freed too


def test_a_race_of_many_attempts_admits_exactly_the_quota(gate):
    """400 attempts from 16 threads (and, for Redis, 16 connections) on 25 units: exactly 25 in."""
    gate.arm(_terms(quota=25, limit=1, interval=0, sale_id="RACE"))
    start = threading.Barrier(16)

    def attempt(worker: int) -> list[Verdict]:
        start.wait()
        return [gate.admit("RACE", f"w{worker}-{i}", f"b{worker}-{i}", 1, T) for i in range(25)]

    with ThreadPoolExecutor(16) as pool:
        verdicts = [v for batch in pool.map(attempt, range(16)) for v in batch]
    assert verdicts.count(Verdict.ADMITTED) == 25
    assert verdicts.count(Verdict.SOLD_OUT) == 400 - 25
    state = gate.state("RACE")
    assert (state.left, state.taken) == (0, 25)


def test_restore_arms_a_lost_sale_with_what_the_ledger_holds_once(gate):
    held = {"a1": ("b1", 2), "a2": ("b2", 1)}
    assert gate.restore(_terms(quota=5, limit=2), held) is True
    state = gate.state("FS1")
    assert (state.left, state.held, state.ended) == (2, {"a1": 2, "a2": 1}, False)
    assert gate.admit("FS1", "a1", "b1", 2, T) == Verdict.AGAIN
    assert gate.admit("FS1", "a3", "b1", 1, T) == Verdict.OVER_LIMIT         # b1 already holds its limit
    assert gate.give_back("FS1", "a1") == 2 and gate.state("FS1").left == 4
    # A second restore (another gateway found it lost too) changes nothing the gate counted since.
    assert gate.restore(_terms(quota=5, limit=2), held) is False
    assert gate.state("FS1").left == 4
    assert gate.restore(_terms(sale_id="FS2"), {}, ended=True) is True
    assert gate.admit("FS2", "a1", "b1", 1, T) == Verdict.ENDED


def test_an_attempt_again_with_another_qty_or_buyer_is_a_conflict_not_a_retry(gate):
    """Issue 19: "again" was answered before any qty, limit or pace check, so a bigger qty under the key of an
    admitted attempt went on to place its order."""
    gate.arm(_terms(quota=5, limit=1))
    assert gate.admit("FS1", "a1", "b1", 1, T) == Verdict.ADMITTED
    assert gate.admit("FS1", "a1", "b1", 1000, T) == Verdict.CONFLICT
    assert gate.admit("FS1", "a1", "b2", 1, T) == Verdict.CONFLICT
    assert gate.admit("FS1", "a1", "b1", 1, T) == Verdict.AGAIN
    assert gate.state("FS1").left == 4 and gate.state("FS1").held == {"a1": 1}
