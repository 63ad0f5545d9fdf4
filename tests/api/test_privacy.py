"""Logs never carry keys, secrets or signatures; phones and addresses are masked."""
from __future__ import annotations

import logging

from hub.privacy import RedactingFilter, mask_address, mask_phone, redact

from .conftest import OPS_KEY, POS_KEYS


def test_masks():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("") == "" and mask_phone("123") == "****"
    assert mask_address("上海市静安区南京西路1号3楼301室") == "上海市静安区****"     # district kept, door hidden
    assert mask_address("") == ""


def test_redact_removes_credentials_signatures_and_phones():
    text = ("GET /callbacks/wechat_shop?signature=abc123def&timestamp=1&nonce=n Authorization: Bearer "
            "sk-live-0123456789abcdef {'api_key': 'hunter2hunter2', 'Wechatpay-Signature': 'ZmFrZXNpZw=='} "
            "buyer 13800138000")
    out = redact(text, ["hunter2hunter2"])
    for secret in ("abc123def", "sk-live-0123456789abcdef", "hunter2hunter2", "ZmFrZXNpZw==", "13800138000"):
        assert secret not in out
    assert "138****8000" in out and "timestamp=1" in out


def test_the_api_logger_is_filtered(api, caplog):
    log = logging.getLogger("hub.api")
    assert any(isinstance(f, RedactingFilter) for f in log.filters)
    with caplog.at_level(logging.INFO, logger="hub.api"):
        log.warning("caller sent %s and %s for 13912345678", OPS_KEY, {"Authorization": f"Bearer {POS_KEYS['S001']}"})
        api.get("/api/v1/stock/TEA-001", key=OPS_KEY)       # refused: the ops key is not a channel key
    text = caplog.text
    assert OPS_KEY not in text and POS_KEYS["S001"] not in text and "13912345678" not in text
    assert "139****5678" in text and "refused" in text
