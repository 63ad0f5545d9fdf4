"""Bindings are keyed by the system's name in config.yaml, not by its mapping file's name.

A mapping file is named for a protocol (`erp_soap`) and may serve several systems; the
engine looks cross-references up under the mapping's name, so connectors hand it this
adapter, which asks the real binder under the connector's own system name (`erp`).
"""
from __future__ import annotations

from .base import Binder


class SystemBinder:
    def __init__(self, binder: Binder, system: str):
        self._binder, self.system = binder, system

    def to_internal(self, system: str, kind: str, external_id: str) -> str | None:
        return self._binder.to_internal(self.system, kind, external_id)

    def to_external(self, system: str, kind: str, internal_id: str) -> str | None:
        return self._binder.to_external(self.system, kind, internal_id)

    def bind(self, system: str, kind: str, external_id: str, internal_id: str) -> None:
        self._binder.bind(self.system, kind, external_id, internal_id)
