"""Shared test helpers: a config with test credentials, catalog seeding, time helpers."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, event

from hub.bootstrap import HubContext, upsert_skus
from hub.config import DEFAULT_CONFIG_PATH, HubConfig, parse_config
from hub.domain.model import Sku, StockCount

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)   # 10:00 in Shanghai: every store is open

CATALOG = [          # as the sandbox ERP keeps it (its shelves, weights in grams)
    Sku("TEA-001", "Longjing green tea 250g", "6901234567001", "box", 12800, bin="A-03", weight_g=320),
    Sku("CUP-002", "Celadon tea cup", "6901234567002", "pcs", 4500, bin="B-12", weight_g=180),
    Sku("POT-003", "Yixing clay teapot", "6901234567003", "pcs", 36000, weight_g=650),
    Sku("SET-004", "Travel tea set", "6901234567004", "set", 19900, weight_g=1200),
]


def config_env(text: str | None = None) -> dict[str, str]:
    """A value for every ${VAR} the config references (secrets included), like an operator would set;
    a choice with a default (the ERP's mapping, auth, endpoint) keeps its default."""
    text = text if text is not None else Path(DEFAULT_CONFIG_PATH).read_text()
    env = {name: f"test-{name.lower()}-value" for name in re.findall(r"\$\{([A-Z0-9_]+)(?::-[^}]*)?\}", text)
           if "URL" not in name and "WSDL" not in name and name not in CHOICES}
    return env


CHOICES = {"HUB_ERP_MAPPING", "HUB_ERP_AUTH", "HUB_ERP_ENDPOINT"}


def always_open(config_text: str) -> str:
    """The config with every store open around the clock: routing tests that do not test opening
    hours must not depend on the hour the suite runs."""
    return re.sub(r"\n\s*opening_hours: \{[^}]*\}", "", config_text)


def make_config(database_url: str = "sqlite://", *, open_all_day: bool = True, **hub_overrides: object) -> HubConfig:
    text = Path(DEFAULT_CONFIG_PATH).read_text()
    if open_all_day:
        text = always_open(text)
    cfg = parse_config(text, env={**config_env(text), "HUB_DATABASE_URL": database_url})
    if hub_overrides:
        cfg = cfg.model_copy(update={"hub": cfg.hub.model_copy(update=hub_overrides)})
    return cfg


def seed_catalog(ctx: HubContext) -> None:
    with ctx.uow() as uow:
        upsert_skus(uow, CATALOG)
        uow.commit()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def count(sku: str, location: str, on_hand: int, minutes: float = 0, ext: str | None = None) -> StockCount:
    return StockCount("test", ext or f"count-{sku}-{location}-{minutes}", sku, location, on_hand, at(minutes))


def make_order_row(uow, order_id: str, status: str = "pending_payment", fulfillment: str = "pickup",
                   location_id: str | None = "S001") -> None:
    """A bare order row, for ledger tests that need something for reservations to point at."""
    from hub.storage.tables import OrderRow

    uow.session.add(OrderRow(id=order_id, channel="miniprogram", idempotency_key=order_id, request_hash="-",
                             status=status, fulfillment_type=fulfillment, location_id=location_id,
                             buyer={"id": "b1"}, created_at=T0, updated_at=T0))
    uow.session.flush()


@contextmanager
def statements_run(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends inside the block, lower-cased with its whitespace folded."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(" ".join(statement.lower().split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
