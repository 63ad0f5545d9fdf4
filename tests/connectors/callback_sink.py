"""A stand-in for the hub's /callbacks endpoint: simulators post to it over real HTTP.

Courier tests import `sink` from here (a fixture) rather than from a shared conftest."""
from __future__ import annotations

import pytest

from sandbox.base import Request, Response, Simulator


class CallbackSink(Simulator):
    """Records what couriers post to /callbacks/...; `handler` decides the answer."""

    name = "callback-sink"

    def __init__(self) -> None:
        self.handler = lambda req: Response(200, {"ok": True})
        super().__init__()

    def setup_routes(self) -> None:
        self.route("POST", "/callbacks/*", lambda req: self.handler(req))

    def url(self, connector: str) -> str:
        return f"{self.base_url}/callbacks/{connector}"

    def posts(self) -> list[Request]:
        with self._lock:
            return list(self.received)


@pytest.fixture
def sink():
    with CallbackSink() as s:
        yield s
