"""Who is calling: keys from config.yaml, compared in constant time.

Each audience has its own keys — channel keys for the mini-program paths, a store's
pos_key for that store's paths only, the ERP's key, the operations key. A missing or
wrong key is 401; a store key on another store's path is 403 and the answer names no
store. Callbacks carry no key: each system's own signature is checked by its connector.
"""
from __future__ import annotations

import base64
import binascii
import hmac

from werkzeug import Request

from ..config import HubConfig, secret_values
from .http import ApiError, Caller, Route

UNAUTHORIZED = "missing or wrong key; send this caller's key as a bearer token"


ANONYMOUS = Caller("anonymous")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _match(presented: str, candidates: list[tuple[str, str]]) -> str | None:
    """The id whose key equals `presented`; every candidate is compared, so timing says nothing."""
    found = None
    for ident, key in candidates:
        if key and _same(presented, key):
            found = ident
    return found


def presented_key(request: Request, allow_basic: bool = False) -> tuple[str | None, bool]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    if allow_basic and scheme.lower() == "basic":
        try:
            _user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, ValueError):      # ValueError: a non-ASCII value ("Basic é")
            return None, False
        return (password or None), True
    return None, False


def channel_keys(cfg: HubConfig) -> list[tuple[str, str]]:
    return [(ch.id, ch.key) for ch in cfg.channels]


def store_keys(cfg: HubConfig) -> list[tuple[str, str]]:
    return [(loc.id, loc.pos_key or "") for loc in cfg.stores]


def erp_key(cfg: HubConfig) -> str:
    erp = cfg.systems.get("erp")
    return str(erp.get("key") or "") if erp is not None else ""


def all_secrets(cfg: HubConfig) -> list[str]:
    """Every key the API knows, for the log filter to redact verbatim."""
    return secret_values(cfg)


def authenticate(cfg: HubConfig, request: Request, route: Route, params: dict[str, str]) -> Caller:
    """The caller of `route`, or ApiError 401/403."""
    if route.audience in ("public", "callback"):
        return ANONYMOUS
    key, via_basic = presented_key(request, allow_basic=route.audience == "admin")
    if not key:
        raise _unauthorized(route)
    if route.audience in ("channel", "channel_or_ops"):
        ident = _match(key, channel_keys(cfg))
        if ident:
            return Caller("channel", ident)
        if route.audience == "channel_or_ops" and _same(key, cfg.hub.ops_key):
            return Caller("ops", "ops")
    elif route.audience == "store":
        ident = _match(key, store_keys(cfg))
        if ident:
            # Valid key, but is it this store's? Say nothing about the store asked for.
            if not _same(params.get("store_id", ""), ident):
                raise ApiError(403, "forbidden", "this key is not valid for this store")
            return Caller("store", ident)
    elif route.audience == "erp":
        wanted = erp_key(cfg)
        if wanted and _same(key, wanted):
            return Caller("erp", "erp")
    elif route.audience in ("ops", "admin"):
        if _same(key, cfg.hub.ops_key):
            return Caller("ops", "ops", via_basic)
    raise _unauthorized(route)


def _unauthorized(route: Route) -> ApiError:
    err = ApiError(401, "unauthorized", UNAUTHORIZED)
    if route.audience == "admin":
        err.extra["_headers"] = {"WWW-Authenticate": 'Basic realm="o2o-hub admin"'}
    else:
        err.extra["_headers"] = {"WWW-Authenticate": "Bearer"}
    return err


def csrf_token(cfg: HubConfig) -> str:
    """The console's form token: a browser with basic credentials must also prove it loaded /admin."""
    return hmac.new(cfg.hub.ops_key.encode(), b"admin-console-form", "sha256").hexdigest()[:32]
