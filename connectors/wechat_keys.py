"""The WeChat Pay platform's verification keys, by the `Wechatpay-Serial` a notification names.

The platform rotates them: a platform certificate's serial is 40 hex digits (written in either
case, so it is compared as a number), and the newer platform public keys are named by an id
`PUB_KEY_ID_…`. During a switch-over notifications come signed with either, so the hub holds
both side by side, and a serial it does not hold is refused.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_CERT_SERIAL = re.compile(r"^[0-9A-Fa-f]{1,40}$")
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"


def serial_key(serial: str) -> str:
    """The form serials are compared in: a certificate serial as its number, a key id as is."""
    text = serial.strip()
    if text.startswith(PUBLIC_KEY_ID_PREFIX):
        return text
    if _CERT_SERIAL.match(text):
        return f"cert:{int(text, 16):x}"
    raise ValueError(f"{serial!r} is neither a certificate serial (hex) nor a public key id ({PUBLIC_KEY_ID_PREFIX}…)")


class PlatformKeys:
    """serial -> RSA public key."""

    def __init__(self, keys: Iterable[tuple[str, str]]):
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        for serial, pem in keys:
            public = serialization.load_pem_public_key(pem.encode())
            if not isinstance(public, rsa.RSAPublicKey):
                raise ValueError(f"the key for {serial} is not an RSA public key")
            self._keys[serial_key(serial)] = public
        if not self._keys:
            raise ValueError("no platform key configured")

    def get(self, serial: str) -> rsa.RSAPublicKey | None:
        try:
            return self._keys.get(serial_key(serial))
        except ValueError:
            return None

    def __len__(self) -> int:
        return len(self._keys)
