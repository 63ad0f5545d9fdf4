"""Logs never carry keys, secrets or signatures; phones and addresses are masked."""
from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys

import pytest

from hub.privacy import RedactingFilter, mask_address, mask_phone, redact
from sandbox.credentials import sandbox_env

from .conftest import ADDRESS, OPS_KEY, POS_KEYS


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


# -- every logger, not four: the filter on the root logger's handlers ---------------------------------------

def _root_capture() -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    return handler, out


def test_every_loggers_records_are_redacted_at_the_root_handlers(api):
    """urllib3 logs the WeChat token URL (appid + secret) and every access_token at DEBUG; no hub
    logger filter saw those records. build_context put the filter on the root handlers."""
    from hub import privacy
    handler, out = _root_capture()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    try:
        privacy.protect_root()          # what build_context and logs.configure do for the handlers they find
        root.setLevel(logging.DEBUG)
        secret = sandbox_env()["HUB_WECHAT_APP_SECRET"]
        logging.getLogger("urllib3.connectionpool").debug(
            '%s "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=%s HTTP/1.1" 200 80',
            "http://127.0.0.1:1", secret)
        logging.getLogger("urllib3.connectionpool").debug(
            '"POST /wxa/sec/order/upload_shipping_info?access_token=mlkUyHQ2CrTTt7ra6coR HTTP/1.1" 200 30')
        logging.getLogger("nameko.messaging").info("payload %s", {"buyer": {"phone": "13912345678"},
                                                                   "address": {"text": ADDRESS["text"], "lat": 1}})
        logging.getLogger("some.library").warning("shipping to Address(text=%r, lat=31.2)", ADDRESS["text"])
        logging.getLogger("some.library").warning("key %s", OPS_KEY)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = out.getvalue()
    for leaked in (secret, "mlkUyHQ2CrTTt7ra6coR", "13912345678", ADDRESS["text"], "100 Huashan Road", OPS_KEY):
        assert leaked not in text, leaked
    assert "access_token=[redacted]" in text and "139****5678" in text and "Near Jing'an" in text


def test_addresses_in_logged_reprs_are_masked():
    import json
    as_json = json.dumps({"receiver_address": "Room 301, 100 Huashan Road"})
    text = redact(f"{ {'address': {'text': ADDRESS['text']}} } {as_json} Address(text='1 Songze Avenue, Qingpu')")
    assert "Huashan Road" not in text and "Songze Avenue" not in text and "****" in text


def test_sql_parameters_stay_out_of_database_errors(api):
    from sqlalchemy import text as sql
    from sqlalchemy.exc import DBAPIError
    assert api.ctx.engine.hide_parameters
    with pytest.raises(DBAPIError) as caught, api.ctx.engine.connect() as conn:
        # (the parameter on its own line: PostgreSQL quotes the statement's line where the error is)
        conn.execute(sql("SELECT * FROM no_such_table\n WHERE phone = :p"), {"p": "13800138000, 100 Huashan Road"})
    assert "13800138000" not in str(caught.value) and "Huashan" not in str(caught.value)


def test_a_scripted_day_at_debug_leaks_no_secret_token_phone_or_address(tmp_path):
    """`hub demo` at DEBUG, every simulator on loopback: orders placed, paid (signed notifications), picked up
    with the code, delivered by a rider (callbacks), express with tracking pushes, POS counts and sales, ERP
    over SOAP, CRM points, a forged notification. Its whole log is searched."""
    from hub.privacy import _MOBILE
    from sandbox.demo import BUYER, NEAR_S002, QINGPU
    env = {**os.environ, "HUB_LOG_LEVEL": "DEBUG", "HUB_LOG_FORMAT": "text"}
    for k in [k for k in env if k.startswith("HUB_") and k not in ("HUB_LOG_LEVEL", "HUB_LOG_FORMAT")]:
        del env[k]
    done = subprocess.run([sys.executable, "-m", "workers.cli", "demo"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    log = done.stderr
    assert "DEBUG urllib3.connectionpool" in log and "access_token=[redacted]" in log   # the day was logged
    secrets = [v for v in sandbox_env().values() if v and len(v) >= 6]
    leaked = [s for s in secrets if s in log]
    leaked += re.findall(r"(?:access_token|secret|appid)=(?!\[redacted\])[^\s&\"]+", log)
    leaked += [m.group(0) for m in _MOBILE.finditer(log)]
    leaked += [x for x in (BUYER["phone"], QINGPU["phone"], NEAR_S002["text"], QINGPU["text"]) if x in log]
    assert leaked == []
