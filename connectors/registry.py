"""Which connector class serves which `kind` of system in config.yaml.

A new system is a new adapter module plus a mappings/<system>.yaml, and a line here.
"""
from __future__ import annotations

import importlib
from typing import Any

from hub.config import SystemConfig

from .base import Binder, RetryPolicy

# kind -> "module:Class"; imported lazily so a deployment loads only what it uses.
CONNECTOR_KINDS: dict[str, str] = {
    "wechat_pay": "connectors.wechat_pay:WeChatPayConnector",
    "wechat_shop": "connectors.wechat_shop:WeChatShopConnector",
    "crm_rest": "connectors.crm:CrmConnector",
    "pos_rest": "connectors.pos:PosConnector",
    "erp_soap": "connectors.erp_soap:ErpSoapConnector",
    "express_courier": "connectors.express:ExpressConnector",
    "local_courier": "connectors.local_delivery:LocalDeliveryConnector",
}


def connector_class(kind: str) -> type:
    try:
        target = CONNECTOR_KINDS[kind]
    except KeyError:
        raise KeyError(f"no connector for system kind {kind!r}; known: {sorted(CONNECTOR_KINDS)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def build_connector(name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy | None = None) -> Any:
    """Build the connector for the system block `name` of config.yaml."""
    return connector_class(system.kind).from_config(name, system, binder, retry or RetryPolicy())


def check_system(name: str, system: SystemConfig) -> list[tuple[str, str]]:
    """(key path, problem) for one system block, from its connector's own `check_config` if it has one."""
    try:
        cls = connector_class(system.kind)
    except KeyError as exc:
        return [(f"systems.{name}.kind", str(exc.args[0]))]
    check = getattr(cls, "check_config", None)
    return [(f"systems.{name}.{key}", msg) for key, msg in check(system)] if check else []
