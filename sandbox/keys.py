"""The simulated WeChat Pay platform's and the merchant's RSA keys, generated once and cached under
var/sandbox/ (gitignored) so the hub and a separately started `python -m sandbox` agree on them.

Throwaway values for loopback simulators, not secrets of any real system.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DIR = Path(os.environ.get("HUB_SANDBOX_DIR") or REPO_ROOT / "var" / "sandbox")


def platform_private_key_pem() -> bytes:
    """The simulated WeChat Pay platform's private key (PEM), generated on first use."""
    return _cached_key("wechat_platform_key.pem")


def merchant_private_key_pem() -> bytes:
    """The merchant's API key (apiclient_key.pem) the hub signs WeChat Pay requests with; the
    simulator verifies them with its public half, as the platform does with the uploaded certificate."""
    return _cached_key("wechat_merchant_key.pem")


def merchant_public_key_pem() -> bytes:
    key = serialization.load_pem_private_key(merchant_private_key_pem(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _cached_key(name: str) -> bytes:
    path = SANDBOX_DIR / name
    if path.exists():
        return path.read_bytes()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(pem)
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)           # fails if another process got there first: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def platform_public_key_pem() -> str:
    key = serialization.load_pem_private_key(platform_private_key_pem(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
