"""The scheduler's timers remember per hub context when they last ran (`workers/scheduler.py` `timer_state`).
A context collected and a new one given its id (CPython reuses the memory) must start afresh: keyed by
`id(ctx)` alone, the new context inherited the old one's times, so its first order pull was skipped."""
from __future__ import annotations

import gc
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from hub.bootstrap import HubContext
from hub.config import DEFAULT_CONFIG_PATH, HubConfig, parse_config
from hub.flows import order_pull
from tests.support import config_env
from workers import scheduler
from workers.scheduler import SchedulerService


@pytest.fixture
def pulls(monkeypatch) -> list[int]:
    """How many times the channels' orders were pulled (the pull itself is not this test's business)."""
    count: list[int] = []
    monkeypatch.setattr(order_pull, "pull_channel_orders", lambda ctx: count.append(1) or [])
    return count


def config() -> HubConfig:
    text = Path(DEFAULT_CONFIG_PATH).read_text()
    return parse_config(text, env=config_env(text))


def test_a_context_keeps_its_timer_state_between_ticks(pulls):
    service = SchedulerService()
    service.hub = HubContext(config(), create_engine("sqlite://"))
    service.pull_channel_orders()                       # the first tick pulls at once
    service.pull_channel_orders()                       # within the interval: not again
    assert len(pulls) == 1


def test_a_context_given_a_collected_contexts_id_does_not_inherit_its_timers(pulls):
    """What CPython's reuse of a collected context's memory leaves behind, set up directly (waiting for the
    allocator to hand the same address out took a gc pass per try, minutes in a full suite): an entry under the
    new context's id whose reference is another context's."""
    cfg, engine = config(), create_engine("sqlite://")
    service = SchedulerService()
    earlier, later = HubContext(cfg, engine), HubContext(cfg, engine)
    service.hub = earlier
    service.pull_channel_orders()                       # pulled, and when remembered
    assert len(pulls) == 1
    scheduler._timer_states[id(later)] = scheduler._timer_states[id(earlier)]   # as if `later` took its id
    service.hub = later
    service.pull_channel_orders()                       # a new context's first tick: pulls at once
    assert len(pulls) == 2
    assert scheduler.timer_state(later) is not scheduler.timer_state(earlier)


def test_a_contexts_timer_state_goes_with_it():
    ctx = HubContext(config(), create_engine("sqlite://"))
    scheduler.timer_state(ctx).bills_done = "2026-12-06"
    assert scheduler.timer_state(ctx).bills_done == "2026-12-06"
    key = id(ctx)
    del ctx
    gc.collect()
    assert key not in scheduler._timer_states
