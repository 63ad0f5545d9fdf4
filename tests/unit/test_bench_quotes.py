"""The quotes bench part's arithmetic (bench/quotes.py): the pace, the percentiles, the share of orders with every
courier's quote, CPU per order, and the table's verdicts beside the targets."""
from __future__ import annotations

from bench.quotes import COURIERS, TARGET_P99_MS, Round, percentile, rows, schedule, summarize


def test_the_pace_is_even_and_counts_rate_times_seconds():
    due = schedule(50, 20)
    assert len(due) == 1000 and due[0] == 0 and due[1] == 0.02 and due[-1] == 999 / 50


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50, 99, 100)
    assert percentile([7.0], 99) == 7 and percentile([], 99) == 0


def test_an_order_counts_only_with_every_couriers_quote_and_an_unfinished_one_counts_against():
    three = frozenset(COURIERS)
    rounds = [Round(0.010, three)] * 7 + [Round(0.020, three - {"shansong"}, ("shansong: no quote within 3.0s",)),
                                          Round(0.400, three)]
    out = summarize(rounds, couriers=COURIERS, cpu_s=0.045, wall_s=2.0, asked=10)     # one never came back
    assert out["quotes_share_all"] == 0.8                      # 8 of the 10 asked, not of the 9 done
    assert (out["quotes_p50_ms"], out["quotes_p99_ms"], out["quotes_max_ms"]) == (10, 400, 400)
    assert out["quotes_cpu_ms_per_order"] == 5.0 and out["quotes_orders_per_s"] == 4.5
    assert out["quotes_missed"] == {"shansong": 1}


def test_the_table_says_where_a_figure_misses_its_target():
    ok = {**summarize([Round(0.01, frozenset(COURIERS))] * 100, couriers=COURIERS, cpu_s=0.2, wall_s=2, asked=100),
          "quotes_deadline_ms": 3000, "quotes_rate_asked": 50}
    assert [line[3].endswith("(ok)") for line in rows(ok)] == [True, True, True]
    slow = {**ok, "quotes_share_all": 0.5, "quotes_p99_ms": TARGET_P99_MS, "quotes_cpu_ms_per_order": 9.0}
    assert [line[3].split("(")[-1] for line in rows(slow)] == ["BELOW)", "OVER)", "OVER)"]
    assert rows({}) == []
