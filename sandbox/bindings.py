"""Bind the hub's SKUs, stores and warehouses to the simulators' own ids, in one call.

Each simulator module knows its ids (`seed_binder`); this only runs them all, so the demo,
the tests and `hub run` on the embedded default bind the same way. Real systems get their
bindings from an import, not from here.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import erp_soap, local_delivery, pos, wechat_shop

# The ERP's plants: the warehouse it already knows, and one per store for the sales orders
# the stores' pickups and deliveries become.
ERP_PLANTS = {**erp_soap.PLANTS, "S001": "1101", "S002": "1102", "S003": "1103"}


def seed_sandbox_bindings(binder: Any, skus: Iterable[str]) -> Any:
    """Bindings for every simulator that needs them (CRM, WeChat Pay and express need none)."""
    skus = list(skus)
    pos.seed_binder(binder, skus)
    wechat_shop.seed_binder(binder, skus)
    local_delivery.seed_binder(binder, skus)
    erp_soap.seed_binder(binder, skus, plants=ERP_PLANTS)
    return binder


def bind_sandbox(binder: Any, sandbox: Any, skus: Iterable[str]) -> None:
    """The hub's ids bound to the simulators' and the simulators set up to match: the step the
    demo, `hub run` on the embedded default and the tests take once the sandbox is up."""
    skus = list(skus)
    seed_sandbox_bindings(binder, skus)
    prepare_simulators(sandbox, skus)


def prepare_simulators(sandbox: Any, skus: Iterable[str]) -> None:
    """Simulator-side set-up matching the bindings: the shop lists the SKUs, the ERP knows the
    store plants (it refuses a sales order for a plant it holds no stock line for)."""
    skus = list(skus)
    sims = sandbox.simulators
    if "wechat_shop" in sims:
        sims["wechat_shop"].seed_catalog(skus)
    if "erp" in sims:
        # Zero lines: the hub pulls warehouse plants only, a store's on-hand comes from its POS.
        for plant in set(ERP_PLANTS.values()) - set(erp_soap.PLANTS.values()):
            for sku in skus:
                sims["erp"].set_stock(plant, sku, 0)
