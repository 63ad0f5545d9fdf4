"""Bindings are keyed by the system's name in config.yaml, not by its mapping file's name.

A mapping file is named for a protocol (`erp_soap`) and may serve several systems; the
engine looks cross-references up under the mapping's name, so connectors hand it this
adapter, which asks the real binder under the connector's own system name (`erp`).

`fixed` are bindings written in config.yaml (the system's `bindings:` block, kind -> {hub id:
the system's code}); they are asked first, so a retailer binds its warehouses without code.
"""
from __future__ import annotations

from .base import Binder


class SystemBinder:
    def __init__(self, binder: Binder, system: str, fixed: dict[str, dict[str, str]] | None = None):
        self._binder, self.system = binder, system
        self._out = {kind: {str(k): str(v) for k, v in ids.items()} for kind, ids in (fixed or {}).items()}
        self._in = {kind: {v: k for k, v in ids.items()} for kind, ids in self._out.items()}

    def to_internal(self, system: str, kind: str, external_id: str) -> str | None:
        found = self._in.get(kind, {}).get(str(external_id))
        return found if found is not None else self._binder.to_internal(self.system, kind, external_id)

    def to_external(self, system: str, kind: str, internal_id: str) -> str | None:
        found = self._out.get(kind, {}).get(str(internal_id))
        return found if found is not None else self._binder.to_external(self.system, kind, internal_id)

    def bind(self, system: str, kind: str, external_id: str, internal_id: str) -> None:
        self._binder.bind(self.system, kind, external_id, internal_id)
