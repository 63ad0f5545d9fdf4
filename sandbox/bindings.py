"""Bind the hub's SKUs, stores and warehouses to the simulators' own ids, in one call.

Each system's sandbox module knows its ids and set-up (`SANDBOX.bind`, `SANDBOX.prepare`); this only
runs them all, so the demo, the tests and `hub run` on the embedded default bind the same way. Real
systems get their bindings from an import, not from here.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .systems import sandbox_systems


def seed_sandbox_bindings(binder: Any, skus: Iterable[str]) -> Any:
    """Bindings for every simulator that needs them (CRM, WeChat Pay and express need none)."""
    skus = list(skus)
    for system in sandbox_systems():
        if system.bind is not None:
            system.bind(binder, skus)
    return binder


def bind_sandbox(binder: Any, sandbox: Any, skus: Iterable[str]) -> None:
    """The hub's ids bound to the simulators' and the simulators set up to match: the step the
    demo, `hub run` on the embedded default and the tests take once the sandbox is up."""
    skus = list(skus)
    seed_sandbox_bindings(binder, skus)
    prepare_simulators(sandbox, skus)


def prepare_simulators(sandbox: Any, skus: Iterable[str]) -> None:
    """Simulator-side set-up matching the bindings (the shop lists the SKUs, the ERP knows the store
    plants), for each simulator running."""
    skus = list(skus)
    sims = sandbox.simulators
    for system in sandbox_systems():
        if system.prepare is not None and system.name in sims:
            system.prepare(sims[system.name], skus)
