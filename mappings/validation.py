"""Start-up checks beyond config.yaml: the mapping files every connector relies on."""
from __future__ import annotations

import importlib.util


def validate_mappings() -> list[tuple[str, str]]:
    """Every mappings/*.yaml must load; returns (file, problem) pairs."""
    if importlib.util.find_spec("mappings.engine") is None:
        return []
    from mappings.engine import validate_all

    out: list[tuple[str, str]] = []
    for problem in validate_all():
        where, _, what = str(problem).partition(": ")
        out.append((where, what or where))
    return out
