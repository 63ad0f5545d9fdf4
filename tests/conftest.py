"""Fixtures. `ctx` runs each storage test on SQLite and, when HUB_TEST_DATABASE_URL is set
(`make test` sets it), on PostgreSQL too."""
from __future__ import annotations

import os
import warnings

import pytest
from sqlalchemy import text

warnings.filterwarnings("ignore", category=DeprecationWarning, module="eventlet")

from collections.abc import Callable  # noqa: E402

from connectors.registry import build_connector  # noqa: E402
from hub.bootstrap import HubContext, build_context, sync_locations  # noqa: E402
from hub.config import HubConfig  # noqa: E402
from hub.storage.tables import Base  # noqa: E402

from .parallel import isolate_this_worker  # noqa: E402
from .support import make_config, seed_catalog  # noqa: E402

# Under pytest-xdist each worker gets its own database and vhost (tests/parallel.py), so workers that truncate
# and purge never disturb each other; subprocesses the tests start inherit the rewritten variables.
isolate_this_worker()
PG_URL = os.environ.get("HUB_TEST_DATABASE_URL")
BROKER_URL = os.environ.get("HUB_TEST_BROKER_URL")

_BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_pg_migrated = False


def _truncate_pg(ctx: HubContext) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with ctx.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def make_ctx(backend: str, tmp_path, config: Callable[[str], HubConfig] = make_config) -> HubContext:
    """A migrated, empty database with the test catalogue; `config` builds the config for its URL."""
    global _pg_migrated
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/hub.sqlite"
        ctx = build_context(config(url), url, connectors=build_connector)
    else:
        ctx = build_context(config(PG_URL), PG_URL, upgrade=not _pg_migrated, connectors=build_connector)
        _pg_migrated = True
        _truncate_pg(ctx)
        sync_locations(ctx)
    seed_catalog(ctx)
    return ctx


@pytest.fixture(params=_BACKENDS)
def ctx(request, tmp_path):
    c = make_ctx(request.param, tmp_path)
    yield c
    c.engine.dispose()


@pytest.fixture
def pg_ctx(tmp_path):
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set HUB_TEST_DATABASE_URL (make test does)")
    c = make_ctx("postgresql", tmp_path)
    yield c
    c.engine.dispose()
