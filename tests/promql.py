"""What the deploy files' PromQL names, and promtool to check it: shared by the alert rules' test and the
Grafana dashboard's test. promtool is Debian's `prometheus` package (`make promtool`); without it the
checks skip on a developer's machine and fail under CI=true, where `make test` installed it."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hub.metrics import HubMetrics

# Prometheus's own series a rule may name beside the hub's
PROMETHEUS_OWN = frozenset({"up"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                      "group_right", "inf", "nan", "Inf", "NaN"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MODIFIER = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][\w:]*+)(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (label matchers, ranges, grouping labels, function
    names, keywords and Grafana's `$variables` are not names)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _MODIFIER.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    return {name for name in _IDENT.findall(text) if name not in KEYWORDS}


def known_series() -> set[str]:
    """Every series the hub exports (hub/metrics.py), and Prometheus's own."""
    return HubMetrics(CollectorRegistry()).exported_series() | PROMETHEUS_OWN


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package (make promtool)")
    pytest.skip("promtool is not installed (make promtool: apt-get install prometheus)")


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)
