"""The sandbox's WeChat Pay refunds driven by the platform's reference client, the official Python SDK
`wechatpayv3`: it signs its requests with the merchant key, refuses any 2xx answer the platform key did
not sign, and verifies and decrypts notifications. If it accepts every answer and notification the
simulator gives, the simulator speaks the real protocol — and so does the hub's connector, which the
same simulator checks (tests/connectors/test_wechat_pay.py)."""
from __future__ import annotations

import json

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from sandbox.credentials import merchant_private_key_pem, platform_public_key_pem
from sandbox.wechat_pay import WeChatPaySimulator
from tests.connectors.conftest import simulator

sim = simulator(WeChatPaySimulator)


@pytest.fixture
def sdk(sim, credentials) -> WeChatPay:
    client = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=credentials["HUB_WECHAT_MCH_ID"],
                       private_key=merchant_private_key_pem().decode(),
                       cert_serial_no=credentials["HUB_WECHAT_MERCHANT_SERIAL"], appid=credentials["HUB_WECHAT_APP_ID"],
                       apiv3_key=credentials["HUB_WECHAT_API_V3_KEY"],
                       notify_url="http://127.0.0.1:9/callbacks/wechat_pay",
                       public_key=platform_public_key_pem(), public_key_id=sim.serial, timeout=(5, 10))
    client._core._gate_way = sim.base_url       # the SDK's gateway is fixed to api.mch.weixin.qq.com
    return client


@pytest.fixture
def paid(sim) -> str:
    sim.knobs.refund_notify_after_s = None
    sim.notification_body("O-4001", 25600, transaction_id="4200004001")
    return "4200004001"


@pytest.mark.parametrize("answer", ["PROCESSING", "SUCCESS", "ABNORMAL", "CLOSED"])
def test_the_sdk_accepts_every_refund_answer(sim, sdk, paid, answer):
    sim.knobs.refund_answer = answer
    code, text = sdk.refund(out_refund_no="RO-4001-1", amount={"refund": 100, "total": 25600, "currency": "CNY"},
                            transaction_id=paid, reason="部分退款")
    assert code == 200, text
    body = json.loads(text)
    assert (body["out_refund_no"], body["status"], body["amount"]["refund"]) == ("RO-4001-1", answer, 100)
    assert ("success_time" in body) == (answer == "SUCCESS")
    code, text = sdk.query_refund("RO-4001-1")                  # signed GET, signed answer
    assert code == 200 and json.loads(text)["refund_id"] == body["refund_id"]


@pytest.mark.parametrize("outcome", ["SUCCESS", "ABNORMAL", "CLOSED"])
def test_the_sdk_verifies_and_decrypts_every_refund_notification(sim, sdk, paid, outcome):
    sim.knobs.refund_outcome = outcome
    code, _ = sdk.refund(out_refund_no="RO-4001-2", amount={"refund": 25600, "total": 25600, "currency": "CNY"},
                         transaction_id=paid)
    assert code == 200
    [(url, body)] = sim.take_refund_notifications()
    assert url == "http://127.0.0.1:9/callbacks/wechat_pay"
    note = sdk.callback(sim.sign(body), body)
    assert note is not None and note["event_type"] == f"REFUND.{outcome}"
    resource = note["resource"]
    assert (resource["out_refund_no"], resource["refund_status"], resource["out_trade_no"]) == (
        "RO-4001-2", outcome, "O-4001")
    assert resource["amount"] == {"total": 25600, "refund": 25600, "payer_total": 25600, "payer_refund": 25600}


def test_the_sdk_refuses_an_unsigned_or_forged_answer_as_the_hub_does(sim, sdk, paid):
    """The knobs the hub's own tests use for untrusted answers are ones the reference client refuses too."""
    amount = {"refund": 1, "total": 25600, "currency": "CNY"}
    sim.knobs.unsigned_answers = True
    with pytest.raises(Exception, match="does not support this algorithm: $"):     # no Wechatpay-* headers
        sdk.refund(out_refund_no="RO-4001-3", amount=amount, transaction_id=paid)
    sim.knobs.unsigned_answers, sim.knobs.bad_signature = False, True
    with pytest.raises(Exception, match="failed to verify the signature"):
        sdk.refund(out_refund_no="RO-4001-3", amount=amount, transaction_id=paid)


def test_the_same_refund_number_from_the_sdk_is_paid_once(sim, sdk, paid):
    for _ in range(2):
        code, _text = sdk.refund(out_refund_no="RO-4001-4", amount={"refund": 500, "total": 25600, "currency": "CNY"},
                                 out_trade_no="O-4001")
        assert code == 200
    assert len(sim.refunds) == 1 and sim.refunds["RO-4001-4"].asked == 2
