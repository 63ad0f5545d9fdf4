"""scripts/flow_length.py's counting, on made-up sequences (the flows themselves are run by the script)."""
from __future__ import annotations

from scripts.flow_length import ROOT, cross_file, fold_repeats, measure, tracked_file


def test_consecutive_entries_into_one_file_are_one():
    assert fold_repeats(["a", "a", "b", "b", "b", "a"]) == ["a", "b", "a"]


def test_a_return_is_an_entry_into_a_file_left_before():
    length = measure(["gw", "app", "app", "store", "uow", "store", "uow", "uow", "relay", "app"])
    assert length.files == ["gw", "app", "store", "uow", "relay"]          # first-entry order
    assert length.sequence == ["gw", "app", "store", "uow", "store", "uow", "relay", "app"]
    assert length.returns == 3                                                # store, uow, app once each
    assert length.returns_into == {"app": 1, "store": 1, "uow": 1}


def test_no_returns_on_a_straight_path():
    length = measure(["a", "b", "b", "c"])
    assert (len(length.files), length.returns) == (3, 0)
    assert measure([]).returns == 0 and measure([]).files == []


def test_returns_are_counted_per_entry_and_ranked():
    length = measure(["a", "b", "a", "b", "a"])
    assert length.returns == 3 and list(length.returns_into.items()) == [("a", 2), ("b", 1)]


def test_coming_back_up_to_a_caller_is_no_entry_when_only_calls_from_another_file_count():
    # a calls b; back in a, a calls its own helper (caller a), then c
    entries, callers = ["a", "b", "a", "c"], [None, "a", "a", "a"]
    assert cross_file(entries, callers) == ["a", "b", "c"]
    assert measure(cross_file(entries, callers)).returns == 0
    assert measure(entries).returns == 1


def test_only_the_hubs_own_files_count_and_not_the_observability_modules():
    assert tracked_file(str(ROOT / "hub/storage/uow.py")) == "hub/storage/uow.py"
    assert tracked_file(str(ROOT / "workers/relay.py")) == "workers/relay.py"
    for left_out in ("hub/logs.py", "hub/metrics.py", "hub/tracing.py", "hub/privacy.py", "hub/metered.py",
                     "workers/telemetry.py", "sandbox/pos.py", "tests/support.py"):
        assert tracked_file(str(ROOT / left_out)) is None, left_out
    assert tracked_file("/usr/lib/python3.11/json/__init__.py") is None
