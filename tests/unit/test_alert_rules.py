"""The Prometheus alert rules (deploy/prometheus/alerts.yml): promtool finds them valid, their unit tests
(alerts_test.yml) pass — each alert fires on its figures and stays quiet just short of them — and every
series they name is one the hub exports."""
from __future__ import annotations

import yaml

from tests.promql import known_series, metric_names, run_promtool
from workers.launcher import ROOT

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# what issue 27 asks to wake someone for, each by its alert
REQUIRED = {"HubDeadLettersGrowing", "HubOutboxBacklog", "HubOutboxStale", "HubConnectorFailing",
            "HubDriftRepairedRepeatedly", "HubRefundStuck", "HubRefundNeedsOperator"}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_finds_the_rules_valid():
    done = run_promtool("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_each_alert_fires_and_stays_quiet_as_its_unit_tests_say():
    done = run_promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test_and_what_must_wake_someone_pages():
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"] if case.get("exp_alerts")}
    alerts = {r["alert"]: r for r in rules()}
    assert tested == set(alerts)                    # each one seen firing (and its quiet cases beside it)
    assert REQUIRED <= set(alerts)
    assert all(alerts[name]["labels"]["severity"] == "page" for name in REQUIRED)
    assert all(r["annotations"]["summary"] and r["annotations"]["description"] for r in alerts.values())


def test_the_rules_name_only_series_the_hub_exports():
    known = known_series()
    for rule in rules():
        named = metric_names(rule["expr"])
        assert named, rule["alert"]
        assert named <= known, (rule["alert"], named - known)


def test_the_example_prometheus_config_loads_the_rules():
    done = run_promtool("check", "config", "--syntax-only", CONFIG)     # the key file lives on the server only
    assert done.returncode == 0, done.stdout + done.stderr
    assert "alerts.yml" in yaml.safe_load(CONFIG.read_text())["rule_files"][0]


def test_metric_names_reads_selectors_not_labels_functions_or_variables():
    expr = ('sum by (system) (rate(hub_connector_errors_total{system=~"$system", kind!="x"}[$__rate_interval])) '
            '/ on (system) group_left sum(rate(hub_connector_call_duration_seconds_count[5m])) > bool 0.2 '
            'unless histogram_quantile(0.95, hub_http_request_duration_seconds_bucket offset 1h) and up')
    assert metric_names(expr) == {"hub_connector_errors_total", "hub_connector_call_duration_seconds_count",
                                  "hub_http_request_duration_seconds_bucket", "up"}
    assert "hub_outbox_unsent" in known_series() and "hub_http_requests_total" in known_series()
    assert "hub_http_requests" not in known_series()          # a counter is scraped as …_total
