"""The hostile-client ring: what a careless or malicious HTTP client can send.

`live` serves the real WSGI app over real HTTP on loopback (a threaded server, so requests really run at
once) on PostgreSQL: races between requests are races between database transactions, as in production.
Tests that need no concurrency use `tests/api/conftest.py`'s `api` fixture (SQLite and PostgreSQL)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry
from werkzeug.serving import make_server

from hub.api.app import ApiDeps, build_api, build_deps
from hub.bootstrap import HubContext
from hub.metrics import HubMetrics
from tests.api.conftest import CHANNEL_KEY, Clock, api_ctx
from tests.api.conftest import api as api  # noqa: F401  (the in-process fixture, re-exported for this ring)
from tests.conftest import PG_URL


@dataclass
class Live:
    """The API over HTTP on loopback, on PostgreSQL."""

    base: str
    ctx: HubContext
    deps: ApiDeps
    clock: Clock

    def call(self, method: str, path: str, key: str | None = CHANNEL_KEY, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def post(self, path: str, json: Any = None, key: str | None = CHANNEL_KEY, **kw: Any) -> requests.Response:
        return self.call("POST", path, key, json=json, **kw)

    def get(self, path: str, key: str | None = CHANNEL_KEY, **kw: Any) -> requests.Response:
        return self.call("GET", path, key, **kw)


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together by a barrier; their results in the calls' order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, fn: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = fn()
        except BaseException as exc:       # noqa: BLE001 — handed to the test to assert on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def live(tmp_path) -> Iterator[Live]:
    if not PG_URL:
        pytest.skip("the hostile ring's concurrent tests need PostgreSQL (make test sets HUB_TEST_DATABASE_URL)")
    ctx = api_ctx("postgresql", tmp_path)
    clock = Clock()
    deps = build_deps(ctx, now=clock, metrics=HubMetrics(CollectorRegistry()))
    server = make_server("127.0.0.1", 0, build_api(ctx, deps), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", ctx, deps, clock)
    finally:
        server.shutdown()
        for connector in deps.connectors.values():
            close = getattr(connector, "close", None)
            if close:
                close()
        ctx.engine.dispose()
