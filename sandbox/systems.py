"""The systems the sandbox simulates, each described by its own module (`SANDBOX = SandboxSystem(...)`
in `sandbox/<system>.py`): a new system is its own file, and the runner, the credentials and the
bindings find it here. Modules are read first and imported only when they describe a system, so
the demo and the plumbing modules are never loaded by the search."""
from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path

from .base import SandboxSystem

PACKAGE = Path(__file__).resolve().parent


def _describes_a_system(path: Path) -> bool:
    return any(isinstance(node, ast.Assign | ast.AnnAssign)
               and any(isinstance(t, ast.Name) and t.id == "SANDBOX"
                       for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
               for node in ast.parse(path.read_text()).body)


@cache
def sandbox_systems() -> tuple[SandboxSystem, ...]:
    """Every simulated system, in port order (8701 up: the order `hub sandbox` lists them)."""
    found = [importlib.import_module(f"{__package__}.{path.stem}").SANDBOX
             for path in sorted(PACKAGE.glob("*.py")) if _describes_a_system(path)]
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two sandbox modules describe one system: {sorted(names)}")
    return tuple(sorted(found, key=lambda s: s.port))
