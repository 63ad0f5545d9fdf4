"""The sandbox's own credentials, exported as the env vars config.yaml references.

These are throwaway values for loopback simulators, not secrets of any real system.
The WeChat Pay platform key pair is generated once and cached under var/sandbox/
(gitignored) so the hub and a separately started `python -m sandbox` agree on it.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DIR = Path(os.environ.get("HUB_SANDBOX_DIR") or REPO_ROOT / "var" / "sandbox")

STATIC: dict[str, str] = {
    "HUB_OPS_KEY": "sandbox-ops-key-0001",
    "HUB_CHANNEL_MINIPROGRAM_KEY": "sandbox-miniprogram-key-0001",
    "HUB_POS_S001_KEY": "sandbox-pos-s001-key",
    "HUB_POS_S002_KEY": "sandbox-pos-s002-key",
    "HUB_POS_S003_KEY": "sandbox-pos-s003-key",
    "HUB_ERP_USER": "hub",
    "HUB_ERP_PASSWORD": "sandbox-erp-password",
    "HUB_ERP_KEY": "sandbox-erp-feed-key-0001",
    "HUB_CRM_API_KEY": "sandbox-crm-hmac-secret-0001",
    "HUB_WECHAT_MCH_ID": "1900000001",
    "HUB_WECHAT_API_V3_KEY": "SandboxApiV3Key0123456789abcdef0",   # exactly 32 bytes (AES-256)
    "HUB_WECHAT_SERIAL": "3F1B7C2A9E0D4B6C8A5E2F1D0C9B8A7E6D5C4B3A",   # 40 hex digits, like a real platform cert
    "HUB_WECHAT_APP_ID": "wxsandbox0001",
    "HUB_WECHAT_APP_SECRET": "sandbox-wechat-app-secret",
    "HUB_WECHAT_MERCHANT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",   # the merchant's API certificate
    "HUB_WECHAT_PUSH_TOKEN": "sandboxpushtoken",
    "HUB_POS_API_KEY": "sandbox-pos-api-key-0001",
    "HUB_KUAIDI100_CUSTOMER": "SANDBOXCUSTOMER",
    "HUB_KUAIDI100_KEY": "sandbox-kuaidi100-key",
    "HUB_KUAIDI100_SALT": "sandbox-kuaidi100-salt",
    "HUB_SF_PARTNER_ID": "SFSANDBOX",
    "HUB_SF_CHECKWORD": "sandbox-sf-checkword",
    "HUB_DADA_APP_KEY": "sandbox-dada-app-key",
    "HUB_DADA_APP_SECRET": "sandbox-dada-app-secret",
    "HUB_DADA_SOURCE_ID": "73753",
}
assert len(STATIC["HUB_WECHAT_API_V3_KEY"].encode()) == 32


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


def sandbox_env() -> dict[str, str]:
    """Every credential config.yaml asks for, with the sandbox's values."""
    return {**STATIC, "HUB_WECHAT_PLATFORM_PUBLIC_KEY": platform_public_key_pem(),
            "HUB_WECHAT_MERCHANT_PRIVATE_KEY": merchant_private_key_pem().decode()}
