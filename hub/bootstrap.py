"""Wire the core together: config -> engine -> session factory -> units of work."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub import privacy
from hub.config import HubConfig, load_config, secret_values
from hub.domain.model import Sku
from hub.ports import AdmissionGate, ConnectorFactory, ConnectorRegistry, SoldOutCache
from hub.storage import migrate
from hub.storage.bindings import SqlBinder
from hub.storage.db import make_engine, make_session_factory
from hub.storage.tables import LocationRow, SkuRow, utcnow
from hub.storage.uow import UnitOfWork

T = TypeVar("T")


@dataclass
class HubContext:
    """What every handler needs: the validated config and a way to open units of work."""

    config: HubConfig
    engine: Engine
    connector_factory: ConnectorFactory | None = None   # wired in by the entrypoint (connectors.registry)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def connectors(self) -> ConnectorRegistry:
        """The adapters to the external systems (built on first use, like cosmicpython's bootstrap)."""
        return ConnectorRegistry(self.config, lambda: SqlBinder(self.session_factory), self.connector_factory)

    @cached_property
    def gate(self) -> AdmissionGate:
        """The flash-sale gate: in-process unless the workers wire Redis (HUB_REDIS_URL) in its place."""
        from hub.domain.flash_gate import MemoryGate

        return MemoryGate()

    @cached_property
    def sold_out(self) -> SoldOutCache:
        """The sold-out cache (`domain/sold_out.py`): in-process unless the workers wire Redis in its place."""
        from hub.domain.sold_out import MemorySoldOut

        return MemorySoldOut()

    @cached_property
    def uow(self) -> Callable[[], UnitOfWork]:
        """Opens a unit of work: `with ctx.uow() as uow`. The factory itself (no method of the context in
        between), so every transaction of every path starts in `storage/uow.py`."""
        return partial(UnitOfWork, self.session_factory)

    def local(self, name: str, make: Callable[[], T]) -> T:
        """State a module keeps per hub context (per process in production), made on first use; it goes
        with the context."""
        held: T | None = self.__dict__.get(name)
        if held is None:
            held = self.__dict__.setdefault(name, make())
        return held

    def reader(self) -> UnitOfWork:
        """A unit of work that only reads: never waits for (nor holds up) a writer."""
        return UnitOfWork(self.session_factory, read_only=True)


def build_context(config: HubConfig | None = None, database_url: str | None = None, *,
                  upgrade: bool = True, connectors: ConnectorFactory | None = None) -> HubContext:
    """Load config, connect, migrate (unless told not to) and mirror the configured locations.
    `connectors` builds a system's connector (the entrypoints pass `connectors.registry.build_connector`)."""
    cfg = config or load_config()
    privacy.protect_root(secret_values(cfg))      # whatever logs in this process, its keys never reach a log
    engine = make_engine(database_url or cfg.hub.database_url)
    ctx = HubContext(cfg, engine, connectors)
    if upgrade:
        migrate.upgrade(engine)
    sync_locations(ctx)
    return ctx


def sync_locations(ctx: HubContext) -> None:
    """config.yaml is the source of truth for locations; the table mirrors it for the ledger."""
    with ctx.uow() as uow:
        for loc in ctx.config.locations:
            row = uow.session.get(LocationRow, loc.id)
            if row is None:
                uow.session.add(LocationRow(id=loc.id, kind=loc.kind, name=loc.name, lat=loc.lat, lng=loc.lng))
            else:
                row.kind, row.name, row.lat, row.lng = loc.kind, loc.name, loc.lat, loc.lng
        uow.commit()


def upsert_skus(uow: UnitOfWork, skus: list[Sku]) -> int:
    """Product master from the ERP: insert new SKUs, update the rest. Returns how many changed."""
    changed = 0
    for sku in skus:
        row = uow.session.get(SkuRow, sku.code)
        values = {"name": sku.name, "barcode": sku.barcode, "unit": sku.unit, "price_fen": sku.price_fen,
                  "bin": sku.bin, "weight_g": sku.weight_g}
        if row is None:
            uow.session.add(SkuRow(code=sku.code, active=True, updated_at=utcnow(), **values))
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = utcnow()
            changed += 1
    return changed
