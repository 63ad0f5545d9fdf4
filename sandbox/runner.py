"""Start every simulator together: for `hub sandbox`, the demo and the tests.

Each system's module declares how it runs (`SANDBOX`, found by `sandbox/systems.py`): its simulator
class (`from_env(env, port, callback_base) -> Simulator`), port, address variable and credentials.
A new system is its own sandbox file; nothing here names one.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from .base import SandboxSystem, Simulator
from .credentials import sandbox_env
from .systems import sandbox_systems

log = logging.getLogger(__name__)


SimSpec = SandboxSystem            # the name the tests and tools knew it by
SIMULATORS: list[SandboxSystem] = list(sandbox_systems())


class Sandbox:
    """The running simulators; `sandbox.crm`, `sandbox.pos`, ... are the Simulator objects."""

    def __init__(self, simulators: dict[str, Simulator], specs: list[SimSpec], credentials: dict[str, str]):
        self.simulators, self._specs, self._credentials = simulators, specs, credentials

    def __getattr__(self, name: str) -> Any:
        sims = self.__dict__.get("simulators", {})
        if name in sims:
            return sims[name]
        raise AttributeError(f"no simulator {name!r} in this sandbox (running: {sorted(sims)})")

    def env(self) -> dict[str, str]:
        """Credentials plus every address config.yaml reads, pointing at the running simulators."""
        env = dict(self._credentials)
        for spec in self._specs:
            sim = self.simulators.get(spec.name)
            if sim is not None:
                env[spec.url_var] = sim.base_url + spec.url_path
        return env

    def reset(self) -> None:
        for sim in self.simulators.values():
            sim.reset()

    def stop(self) -> None:
        # In parallel: each server takes up to its poll interval (half a second) to stop.
        threads = [threading.Thread(target=sim.stop) for sim in self.simulators.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(callback_base: str | None = None, fixed_ports: bool = False,
                  only: list[str] | None = None) -> Sandbox:
    """Start the simulators (fixed ports: each system's `SANDBOX` port, or free ports), each knowing the credentials.

    `callback_base` is the hub's URL, where simulators post their callbacks.
    """
    credentials = sandbox_env()
    specs = [s for s in SIMULATORS if only is None or s.name in only]
    started: dict[str, Simulator] = {}
    try:
        for spec in specs:
            port = spec.port if fixed_ports else 0
            sim = spec.simulator.from_env(credentials, port=port, callback_base=callback_base)
            started[spec.name] = sim.start()
    except BaseException:
        for sim in started.values():
            sim.stop()
        raise
    return Sandbox(started, specs, credentials)
