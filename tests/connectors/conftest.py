"""Shared fixtures for connector tests: each connector is built from config.yaml exactly as
the hub builds it, with the sandbox's credentials and the simulator's address."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.base import Binder, MemoryBinder, RetryPolicy
from connectors.registry import build_connector
from hub.config import SystemConfig, load_config
from sandbox.base import Request, Response, Simulator
from sandbox.credentials import sandbox_env
from sandbox.runner import SIMULATORS

FAST_RETRY = dict(attempts=4, initial=0.01, maximum=0.05, jitter=0.0)


def fast_retry(**overrides: Any) -> RetryPolicy:
    return RetryPolicy(**{**FAST_RETRY, **overrides})


def system_config(name: str, sim: Simulator | None = None, **overrides: Any) -> SystemConfig:
    """config.yaml's block for `name`, resolved with the sandbox env pointed at `sim`."""
    env = sandbox_env()
    if sim is not None:
        spec = next(s for s in SIMULATORS if s.name == name)
        env[spec.url_var] = sim.base_url + spec.url_path
    block = load_config(env=env).systems[name]
    return SystemConfig(**{**block.model_dump(), **overrides})


@pytest.fixture(scope="session")
def credentials() -> dict[str, str]:
    return sandbox_env()


@pytest.fixture
def make_connector() -> Callable[..., Any]:
    def make(name: str, sim: Simulator | None = None, binder: Binder | None = None,
             retry: RetryPolicy | None = None, **overrides: Any) -> Any:
        return build_connector(name, system_config(name, sim, **overrides), binder or MemoryBinder(),
                               retry or fast_retry())
    return make


@pytest.fixture
def retry() -> RetryPolicy:
    """Small waits so retried tests stay fast."""
    return fast_retry()


# -- courier callbacks: a stand-in for the hub's /callbacks endpoint -------------------------

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


@pytest.fixture(scope="module")
def module_sink():
    with CallbackSink() as s:      # one per module: stopping a server takes half a second
        yield s


@pytest.fixture
def sink(module_sink):
    module_sink.reset()
    module_sink.handler = lambda req: Response(200, {"ok": True})
    return module_sink


def simulator(cls: type) -> Any:
    """A module-scoped `sim` fixture running `cls` with the sandbox credentials; reset before each test."""
    @pytest.fixture(scope="module")
    def sim(credentials):
        running = cls.from_env(credentials).start()
        yield running
        running.stop()
    return sim


@pytest.fixture(autouse=True)
def _reset_simulator(request):
    """Each test starts from a clean simulator (records cleared, fault knobs off)."""
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").reset()
