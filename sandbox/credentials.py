"""The sandbox's own credentials, exported as the env vars config.yaml references.

The hub's own callers' keys are here; each system's come from its simulator module's `SANDBOX`
description (`sandbox/<system>.py`), so a new system brings its own. These are throwaway values
for loopback simulators, not secrets of any real system.
"""
from __future__ import annotations

from .keys import (  # noqa: F401 - the keys' home is sandbox/keys.py; tests read them here
    merchant_private_key_pem,
    merchant_public_key_pem,
    platform_private_key_pem,
    platform_public_key_pem,
)
from .systems import sandbox_systems

# The hub's own: the operators', the channel's and each store's key.
HUB_KEYS: dict[str, str] = {
    "HUB_OPS_KEY": "sandbox-ops-key-0001",
    "HUB_CHANNEL_MINIPROGRAM_KEY": "sandbox-miniprogram-key-0001",
    "HUB_POS_S001_KEY": "sandbox-pos-s001-key",
    "HUB_POS_S002_KEY": "sandbox-pos-s002-key",
    "HUB_POS_S003_KEY": "sandbox-pos-s003-key",
}
STATIC: dict[str, str] = dict(HUB_KEYS)
for _system in sandbox_systems():
    STATIC.update(_system.credentials)


def sandbox_env() -> dict[str, str]:
    """Every credential config.yaml asks for, with the sandbox's values (generated keys included)."""
    env = dict(STATIC)
    for system in sandbox_systems():
        if system.generated is not None:
            env.update(system.generated())
    return env
