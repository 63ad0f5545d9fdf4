"""The Grafana dashboard (deploy/grafana/hub.json): a dashboard model Grafana imports (uid, panels on the
grid, the Prometheus datasource as a template variable every query uses), covering what issue 27 lists, and
every PromQL expression parses (promtool) and names only series the hub exports."""
from __future__ import annotations

import json
import re

import yaml

from tests.promql import known_series, metric_names, run_promtool
from workers.launcher import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "hub.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# a series for each thing operators asked to see
COVERED = {"hub_http_requests_total", "hub_http_request_duration_seconds_bucket", "hub_consumer_messages_total",
           "hub_consumer_failures_total", "hub_outbox_unsent", "hub_outbox_oldest_unsent_age_seconds",
           "hub_queue_messages", "hub_dead_letters_parked", "hub_connector_errors_total",
           "hub_connector_call_duration_seconds_bucket", "hub_reconciliation_drift_total",
           "hub_reconciliation_repaired_total", "hub_flash_sale_admissions_total", "hub_refunds",
           "hub_delivery_escalations_total", "hub_courier_cancel_penalty_fen_total"}     # issue 22's escalation


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def as_promql(expr: str) -> str:
    """What Grafana sends: its interval variables become durations, a template variable its 'All' regex."""
    return re.sub(r"\$\{?\w+\}?", ".*", re.sub(r"\$__(rate_)?interval|\$__range", "5m", expr))


def test_the_dashboard_is_a_model_grafana_imports():
    d = dashboard()
    assert d["uid"] and d["title"] and isinstance(d["schemaVersion"], int) and d["panels"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels():
        assert p["datasource"] == DATASOURCE, p["title"]              # never a datasource fixed by name or uid
        assert p["targets"] and all(t["datasource"] == DATASOURCE for t in p["targets"]), p["title"]
        grid = p["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]


def test_panels_do_not_overlap():
    cells: set[tuple[int, int]] = set()
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, p["title"]
        cells |= mine


def test_every_expression_names_only_series_the_hub_exports_and_covers_what_operators_asked_for():
    known, named = known_series(), set()
    for expr in expressions():
        found = metric_names(expr)
        assert found and found <= known, (expr, found - known)
        named |= found
    assert COVERED <= named, COVERED - named
    for v in dashboard()["templating"]["list"][1:]:                   # the label pick lists read hub series too
        assert metric_names(re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", v["definition"])) <= known


def test_promtool_parses_every_expression(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr_{n}", "expr": as_promql(e)}
                                                          for n, e in enumerate(expressions())]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = run_promtool("check", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in done.stdout
