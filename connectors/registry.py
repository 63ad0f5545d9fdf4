"""Which connector class serves which `kind` of system in config.yaml, learnt from the classes.

Each connector class declares `kind`, the `role` (port in hub/ports.py) it implements and, when
its system calls back, the `callback` use case and reply shapes. The modules of this package are
read (not imported) to find those classes, and a class is imported when a system of its kind is
first used, so a deployment loads only what it uses. A new system is a new module here plus a
mappings/<system>.yaml — no table to edit.
"""
from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path
from typing import Any

from hub.config import PAID_ON_CHANNEL, HubConfig, SystemConfig
from hub.ports import PORTS, Declaration

from .base import Binder, RetryPolicy

PACKAGE = Path(__file__).resolve().parent


def _declared_kinds(path: Path) -> dict[str, str]:
    """kind -> "module:Class" for each class in the file that assigns `kind = "..."` in its body."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else (
                stmt.target if isinstance(stmt, ast.AnnAssign) else None)
            value = getattr(stmt, "value", None)
            if (isinstance(target, ast.Name) and target.id == "kind" and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)):
                found[value.value] = f"{__package__}.{path.stem}:{node.name}"
    return found


@cache
def connector_kinds() -> dict[str, str]:
    """Every connector kind in this package -> "module:Class"."""
    kinds: dict[str, str] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for kind, target in _declared_kinds(path).items():
            if kind in kinds:
                raise RuntimeError(f"connector kind {kind!r} declared twice: {kinds[kind]} and {target}")
            kinds[kind] = target
    return kinds


def connector_class(kind: str) -> type[Any]:
    """The class serving `kind`, imported now: known only at run time, so typed by what it declares
    (`kind`, `role`, `from_config`), which `Declaration.of` and the tests check."""
    try:
        target = connector_kinds()[kind]
    except KeyError:
        raise KeyError(f"no connector for system kind {kind!r}; known: {sorted(connector_kinds())}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


class ConnectorFactory:
    """The factory the entrypoints wire into the core (`build_context(connectors=build_connector)`)."""

    def __call__(self, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy | None = None) -> Any:
        """Build the connector for the system block `name` of config.yaml."""
        return connector_class(system.kind).from_config(name, system, binder, retry or RetryPolicy())

    def declared(self, kind: str) -> Declaration:
        return _declaration(kind)


@cache
def _declaration(kind: str) -> Declaration:
    return Declaration.of(connector_class(kind))


build_connector = ConnectorFactory()


def check_system(name: str, system: SystemConfig) -> list[tuple[str, str]]:
    """(key path, problem) for one system block, from its connector's own `check_config` if it has one."""
    try:
        cls = connector_class(system.kind)
    except KeyError as exc:
        return [(f"systems.{name}.kind", str(exc.args[0]))]
    check = getattr(cls, "check_config", None)
    return [(f"systems.{name}.{key}", msg) for key, msg in check(system)] if check else []


def check_wiring(cfg: HubConfig) -> list[tuple[str, str]]:
    """(key path, problem) where config.yaml names a system for a role it does not play: a location's
    couriers, a channel's payment and stock publisher; a channel left to "the" payment system
    when there are several; a channel system its buyers pay (`takes_payment`: the WeChat shop, Meituan)
    whose channel is not `payment: channel`, or whose orders come in under a channel that does not publish
    to it; and a store whose escalation falls back to express with no express system to ship from it (its
    `couriers` name none, or none is configured)."""
    roles: dict[str, str] = {}
    paid_there: set[str] = set()                  # channel systems whose buyers pay them (their own checkout)
    for name, system in cfg.systems.items():
        try:
            declared = build_connector.declared(system.kind)
        except KeyError:
            continue                              # check_system reports the unknown kind
        roles[name] = declared.role
        if declared.takes_payment:
            paid_there.add(name)
    problems: list[tuple[str, str]] = []
    for loc in cfg.locations:
        for name in loc.couriers or []:
            if roles.get(name, "local_courier") not in ("local_courier", "express_courier"):
                problems.append((f"locations[{loc.id}].couriers", f"{name} is a {roles[name]}, not a courier"))
        policy = loc.escalation
        if policy is not None and "express" in (policy.then, policy.last):
            express = [name for name, role in roles.items() if role == "express_courier"]
            ships = [name for name in loc.couriers if name in express] if loc.couriers is not None else express
            if not ships:
                step = "then" if policy.then == "express" else "last"
                problems.append((f"locations[{loc.id}].escalation.{step}", "falls back to express, but no express "
                                 "system ships from this store: " + (
                                     f"list one ({', '.join(express)}) in its couriers" if express
                                     else "configure one (a system of kind express_courier)")))
    payments = [name for name, role in roles.items() if role == "payment"]
    for ch in cfg.channels:
        if ch.publish_to and roles.get(ch.publish_to, "channel") != "channel":
            problems.append((f"channels[{ch.id}].publish_to", f"{ch.publish_to} is a {roles[ch.publish_to]}, "
                             "not a channel"))
        if ch.payment and ch.payment != PAID_ON_CHANNEL and roles.get(ch.payment, "payment") != "payment":
            problems.append((f"channels[{ch.id}].payment", f"{ch.payment} is a {roles[ch.payment]}, "
                             "not a payment platform"))
        if ch.publish_to in paid_there and ch.payment != PAID_ON_CHANNEL:
            # else its orders would be WeChat Pay's: refunds and shipping info asked of a platform that never saw them
            problems.append((f"channels[{ch.id}].payment", f"{ch.publish_to} takes its orders' payments itself: "
                             f"set payment: {PAID_ON_CHANNEL}"))
        if ch.payment is None and len(payments) > 1:
            problems.append((f"channels[{ch.id}].payment", f"several payment systems ({', '.join(payments)}): "
                             f"name the one this channel's buyers pay through, or {PAID_ON_CHANNEL!r}"))
    for name in sorted(paid_there):
        # the channel its orders come in under (`channel`, default the system's name) is the one publishing to it,
        # so they carry that channel's `payment`
        under = cfg.systems[name].get("channel", name)
        found = cfg.channel(under)
        if found is None or found.publish_to != name:
            problems.append((f"systems.{name}.channel", f"its orders come in under channel {under!r}, which "
                             f"{'is not configured' if found is None else 'does not publish to it'}: name the "
                             f"channel whose publish_to is {name}"))
    for name, system in cfg.systems.items():
        if name in roles and roles[name] not in PORTS:
            problems.append((f"systems.{name}.kind", f"{system.kind} declares an unknown role {roles[name]!r}"))
    return problems
