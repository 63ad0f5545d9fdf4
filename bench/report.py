"""The bench table: each figure beside the limit measured in the same run, and the target."""
from __future__ import annotations

from typing import Any

from . import quotes


def _f(r: dict[str, Any], key: str, fmt: str = "{:.0f}") -> str:
    return fmt.format(r[key]) if key in r else "-"


# The CPU budgets (26): cost per unit of work, which moves with the machine far less than a rate does.
BUDGET_SINGLE_MS = 1.5          # all hub processes, per single receipt carried to the shop
BUDGET_BATCHED_MS = 0.3         # all hub processes, per batched event
BUDGET_FLASH_MS = 0.3           # gateway, per flash-sale attempt
BUDGET_QUERY_MS = 1.0           # gateway, per stock query


def _budget(r: dict[str, Any], key: str, limit: float) -> str:
    if key not in r:
        return f"<= {limit} ms"
    return f"<= {limit} ms ({'ok' if r[key] <= limit else 'OVER'})"


def _steps(r: dict[str, Any], label: str) -> list[tuple[str, str, str, str]]:
    """Each step of the receipt's path: the processes of each role, then the shop simulator taking the push."""
    prefix = f"{label}_step_ms_"
    order = {"gateway": 0, "relay": 1, "channel_sync": 2}          # the receipt's path; anything else after
    names = sorted((k[len(prefix):] for k in r if k.startswith(prefix)),
                   key=lambda n: (order.get(n.split(" ")[0], 3), n))      # "gateway (gunicorn)" first too
    rows = [(f"    step {n}", _f(r, prefix + n, "{:.3f}"), "CPU ms per event, /proc over the window", "")
            for n in names if n != "shop"]
    if "shop" in names:
        rows.append(("    step the push (shop simulator's end)", _f(r, prefix + "shop", "{:.3f}"),
                     "the bench process's CPU: outside the hub", ""))
    return rows


def print_table(results: dict[str, dict[str, Any]], load_before: tuple[float, ...] = (),
                load_after: tuple[float, ...] = (), cores: int = 0) -> None:
    if load_before:
        # Wall-clock figures depend on what else runs; the CPU ms per unit of work much less so.
        print(f"\nmachine: {cores} cores; load average (1/5/15 min) at the start "
              f"{' '.join(f'{x:.2f}' for x in load_before)}, at the end {' '.join(f'{x:.2f}' for x in load_after)}")
    for mode, r in results.items():
        gateways = f", {r['gateways']:.0f} gateway processes" if "gateways" in r else ""
        print(f"\n== {mode}{gateways} ==")
        pg = r.get("pgbench_tps")
        limit = f"pgbench sale tx/s {pg:.0f}" if pg else "-"
        rows = [
            ("stock events/s, single receipts", _f(r, "single_events_per_s"), limit, ">= 400"),
            ("  p99 ms / not 201", f"{_f(r, 'single_p99_ms', '{:.1f}')} / {_f(r, 'single_failed')}", "", ""),
            ("  gateway CPU ms per event", _f(r, "single_cpu_ms_per_event", "{:.2f}"), "2 cores: 2000 ms/s", ""),
            ("  all hub processes' CPU ms per event", _f(r, "single_hub_cpu_ms_per_event", "{:.2f}"),
             "gateways + relay + channel sync, to the shop", _budget(r, "single_hub_cpu_ms_per_event",
                                                                     BUDGET_SINGLE_MS)),
            *_steps(r, "single"),
            ("stock events/s, batched (100 per request)", _f(r, "batched_events_per_s"), limit, ""),
            ("  batched, end to end to the shop", _f(r, "batched_e2e_events_per_s"), limit, ">= 1,500"),
            ("  p99 ms / not 200", f"{_f(r, 'batched_p99_ms', '{:.1f}')} / {_f(r, 'batched_failed')}", "", ""),
            ("  gateway CPU ms per event", _f(r, "batched_cpu_ms_per_event", "{:.3f}"), "", ""),
            ("  all hub processes' CPU ms per event", _f(r, "batched_hub_cpu_ms_per_event", "{:.3f}"), "",
             _budget(r, "batched_hub_cpu_ms_per_event", BUDGET_BATCHED_MS)),
            *_steps(r, "batched"),
            ("flash rush attempts/s answered", _f(r, "rush_per_s"),
             f"{_f(r, 'rush_attempts')} attempts, 64 connections", ">= 2,000"),
            ("  rush p50 / p99 ms", f"{_f(r, 'rush_p50_ms', '{:.1f}')} / {_f(r, 'rush_p99_ms', '{:.1f}')}", "",
             "p99 < 250"),
            ("  gateway CPU ms per attempt", _f(r, "rush_cpu_ms_per_attempt", "{:.2f}"), "",
             _budget(r, "rush_cpu_ms_per_attempt", BUDGET_FLASH_MS)),
            ("  admitted / orders / sold out / other", f"{_f(r, 'rush_admitted')} / {_f(r, 'rush_orders')} / "
             f"{_f(r, 'rush_sold_out')} / {_f(r, 'rush_other')}", "quota 100", ""),
            ("  oversold (gate = ledger at the end)", f"{_f(r, 'rush_oversold')} "
             f"({'yes' if r.get('rush_gate_agrees') else 'NO'})", "", "0"),
            ("plain-order rush attempts/s answered", _f(r, "plain_per_s"),
             f"{_f(r, 'plain_attempts')} attempts, 64 connections, no flash sale", ">= 1,500"),
            ("  plain rush p50 / p99 ms", f"{_f(r, 'plain_p50_ms', '{:.1f}')} / {_f(r, 'plain_p99_ms', '{:.1f}')}",
             "", "p99 < 250"),
            ("  gateway CPU ms per attempt", _f(r, "plain_cpu_ms_per_attempt", "{:.2f}"), "", ""),
            ("  admitted / sold out / other", f"{_f(r, 'plain_admitted')} / {_f(r, 'plain_sold_out')} / "
             f"{_f(r, 'plain_other')}", "100 units", ""),
            ("  oversold (from the ledger)", _f(r, "plain_oversold"), "", "0"),
            ("sync latency p50 / p95 / p99 ms", f"{_f(r, 'p50', '{:.1f}')} / {_f(r, 'p95', '{:.1f}')} / "
             f"{_f(r, 'p99', '{:.1f}')}", f"{_f(r, 'samples')} samples under {_f(r, 'load_per_s')}/s sales+orders "
             f"of {_f(r, 'load_asked')}/s asked ({_f(r, 'load_errors')} failed, backlog <= {_f(r, 'load_behind')})",
             "p99 < 250"),
            ("pickup orders/s", _f(r, "orders_per_s"), "", ""),
            ("broker raw publish->consume msg/s", _f(r, "broker_raw_per_s"), "", ""),
            ("1,000 events outbox->relay->consumer /s",
             f"{1000 / r['events_1000_s']:.0f}" if "events_1000_s" in r else "-", "", ""),
        ]
        if "stock_query_p99_ms" in r:
            rows += [("stock query p50 / p99 ms", f"{_f(r, 'stock_query_p50_ms', '{:.1f}')} / "
                      f"{_f(r, 'stock_query_p99_ms', '{:.1f}')}",
                      f"{r['scale_stores']} stores, {r['scale_stock_rows']:,} stock rows, "
                      f"{r['scale_ledger_rows']:,} ledger rows", "p99 < 20"),
                     ("  stock queries/s (4 connections)", _f(r, "stock_query_per_s"), "", ""),
                     ("  gateway CPU ms per query", _f(r, "stock_query_cpu_ms", "{:.2f}"), "",
                      _budget(r, "stock_query_cpu_ms", BUDGET_QUERY_MS))]
        if all(k.startswith("quotes_") or k == "gateways" for k in r):
            rows = []                       # `--only quotes`: none of the mode's hub figures were measured
        rows += quotes.rows(r)
        width = max(len(x[0]) for x in rows)
        print(f"{'figure':<{width}}  {'hub':>18}  {'limit / conditions':<48} target")
        for name, value, lim, target in rows:
            print(f"{name:<{width}}  {value:>18}  {lim:<48} {target}")
