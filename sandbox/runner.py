"""Start every simulator together: for `hub sandbox`, the demo and the tests.

Each simulator class offers `from_env(env, port, callback_base) -> Simulator`. A new
simulator is one line in SIMULATORS; a module that does not exist yet is skipped.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from dataclasses import dataclass
from typing import Any

from .base import Simulator
from .credentials import sandbox_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimSpec:
    name: str          # the system's name in config.yaml, and the attribute on Sandbox
    target: str        # "module:Class"
    port: int          # fixed port (config.yaml defaults), used by `hub sandbox` and the demo
    url_var: str       # the env var config.yaml reads this system's address from
    url_path: str = ""  # appended to the base URL (the ERP's WSDL)


SIMULATORS: list[SimSpec] = [
    SimSpec("erp", "sandbox.erp_soap:ErpSimulator", 8701, "HUB_ERP_WSDL", "/erp?wsdl"),
    SimSpec("crm", "sandbox.crm:CrmSimulator", 8702, "HUB_CRM_URL"),
    SimSpec("wechat_pay", "sandbox.wechat_pay:WeChatPaySimulator", 8703, "HUB_WECHAT_PAY_URL"),
    SimSpec("wechat_shop", "sandbox.wechat_shop:WeChatShopSimulator", 8704, "HUB_WECHAT_SHOP_URL"),
    SimSpec("pos", "sandbox.pos:PosSimulator", 8705, "HUB_POS_URL"),
    SimSpec("express", "sandbox.express:ExpressSimulator", 8706, "HUB_EXPRESS_URL"),
    SimSpec("local_delivery", "sandbox.local_delivery:LocalDeliverySimulator", 8707, "HUB_DADA_URL"),
]


def _available(spec: SimSpec) -> bool:
    return importlib.util.find_spec(spec.target.split(":")[0]) is not None


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
    """Start the simulators (fixed ports 8701-8707, or free ports), each knowing the credentials.

    `callback_base` is the hub's URL, where simulators post their callbacks.
    """
    credentials = sandbox_env()
    specs = [s for s in SIMULATORS if only is None or s.name in only]
    started: dict[str, Simulator] = {}
    try:
        for spec in specs:
            if not _available(spec):
                log.warning("sandbox: simulator %s (%s) is not available; skipped", spec.name, spec.target)
                continue
            module, cls_name = spec.target.split(":")
            cls = getattr(importlib.import_module(module), cls_name)
            sim = cls.from_env(credentials, port=spec.port if fixed_ports else 0, callback_base=callback_base)
            started[spec.name] = sim.start()
    except BaseException:
        for sim in started.values():
            sim.stop()
        raise
    return Sandbox(started, specs, credentials)
