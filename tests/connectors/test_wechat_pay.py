"""WeChat Pay connector against its simulator: notifications in, refunds and shipping info out."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.base import MappingError, PermanentError, SignatureError, TransientError
from hub.domain.model import Buyer, Fulfillment, FulfillmentType, OrderLine, OrderSnapshot, RefundRequest
from sandbox.wechat_pay import WeChatPaySimulator
from tests.connectors.conftest import simulator

sim = simulator(WeChatPaySimulator)


@pytest.fixture
def pay(make_connector, sim):
    return make_connector("wechat_pay", sim, app_id=sim.app_id, app_secret="sandbox-wechat-app-secret")


class Hub:
    """A stand-in for the hub's /callbacks/wechat_pay endpoint: verifies with the connector,
    answers as WeChat expects, and keeps what it accepted."""

    def __init__(self, connector):
        self.connector, self.accepted, self.refused = connector, [], []
        hub = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    notice = hub.connector.parse_notification(dict(self.headers), body)
                    hub.accepted.append(notice)
                    status, reply = 200, {"code": "SUCCESS"}
                except (SignatureError, MappingError) as exc:
                    hub.refused.append(str(exc))
                    status, reply = 401 if isinstance(exc, SignatureError) else 400, {
                        "code": "FAIL", "message": str(exc)}
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/wechat_pay"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(pay):
    h = Hub(pay)
    yield h
    h.close()


def order(buyer_id="oSandboxPayer", openid="", phone="13800001111") -> OrderSnapshot:
    return OrderSnapshot(order_id="O-1001", channel="miniprogram", status="shipped",
                         fulfillment=Fulfillment(FulfillmentType.EXPRESS),
                         lines=(OrderLine("SKU-A", 2, 500), OrderLine("SKU-B", 1, 900)),
                         buyer=Buyer(buyer_id, phone=phone, openid=openid), total_fen=1900, location_id="WH01",
                         created_at=datetime(2024, 5, 1, tzinfo=UTC))


# -- notifications ---------------------------------------------------------------------------

def test_payment_notification_over_http(sim, hub):
    resp = sim.notify(hub.url, "O-1001", 1900, transaction_id="4200000001")
    assert resp.status_code == 200 and resp.json() == {"code": "SUCCESS"}
    [notice] = hub.accepted
    assert (notice.event, notice.order_ref, notice.transaction_id, notice.amount_fen) == (
        "paid", "O-1001", "4200000001", 1900)
    assert notice.external_id.startswith("EV-") and notice.at.tzinfo is not None


def test_refund_notification(sim, pay):
    body = sim.notification_body("O-1001", 1900, "REFUND.SUCCESS", transaction_id="4200000002")
    notice = pay.parse_notification(sim.sign(body), body)
    assert (notice.event, notice.order_ref, notice.amount_fen) == ("refunded", "O-1001", 1900)


def test_replayed_notification_is_refused(sim, hub):
    sim.faults.duplicate_callbacks = True
    first = sim.notify(hub.url, "O-1002", 100)
    assert first.status_code == 200
    assert [d.status for d in sim.deliveries] == [200, 401]
    assert len(hub.accepted) == 1 and "replayed" in hub.refused[0]


def test_renotification_with_fresh_signature_keeps_the_same_id(sim, pay):
    # WeChat re-sends an unanswered notification signed anew: it verifies, and the hub
    # dedupes it by PaymentNotice.external_id.
    body = sim.notification_body("O-1003", 100)
    a = pay.parse_notification(sim.sign(body), body)
    b = pay.parse_notification(sim.sign(body), body)
    assert a.external_id == b.external_id


@pytest.mark.parametrize("knob,reason", [("bad_signature", "bad signature"),
                                         ("stale_timestamp", "stale timestamp"),
                                         ("wrong_serial", "unknown platform certificate serial")])
def test_untrusted_notifications_refused_with_reason(sim, hub, knob, reason):
    setattr(sim.knobs, knob, True)
    resp = sim.notify(hub.url, "O-1004", 100)
    assert resp.status_code == 401 and resp.json()["code"] == "FAIL"
    assert reason in resp.json()["message"]
    assert hub.accepted == []


def test_tampered_body_fails_signature(sim, pay):
    body = sim.notification_body("O-1005", 100)
    headers = sim.sign(body)
    with pytest.raises(SignatureError, match="bad signature"):
        pay.parse_notification(headers, body.replace(b"\"EV-", b"\"EX-"))


def test_missing_headers(sim, pay):
    body = sim.notification_body("O-1005", 100)
    headers = sim.sign(body)
    del headers["Wechatpay-Signature"]
    with pytest.raises(SignatureError, match="missing signature header.*wechatpay-signature"):
        pay.parse_notification(headers, body)


def test_clock_window_uses_now(sim, pay):
    body = sim.notification_body("O-1007", 100)
    headers = sim.sign(body)
    later = datetime.now(UTC) + timedelta(seconds=301)
    with pytest.raises(SignatureError, match="stale"):
        pay.parse_notification(headers, body, now=later)
    # within the window it is fine (and only then is the nonce remembered)
    assert pay.parse_notification(headers, body, now=later - timedelta(seconds=10)).order_ref == "O-1007"


def test_wrong_api_key_cannot_decrypt(credentials, make_connector, sim):
    other = make_connector("wechat_pay", sim, api_v3_key="X" * 32)
    body = sim.notification_body("O-1008", 100)
    with pytest.raises(MappingError, match="cannot decrypt"):
        other.parse_notification(sim.sign(body), body)


def test_unknown_event_type_is_a_mapping_error(sim, pay):
    body = sim.notification_body("O-1009", 100, event="TRANSACTION.CLOSED")
    with pytest.raises(MappingError, match="TRANSACTION.CLOSED"):
        pay.parse_notification(sim.sign(body), body)


def test_malformed_body(sim, pay):
    body = b"not json"
    with pytest.raises(MappingError, match="not JSON"):
        pay.parse_notification(sim.sign(body), body)
    body = json.dumps({"id": "EV-1", "event_type": "TRANSACTION.SUCCESS"}).encode()
    with pytest.raises(MappingError, match="missing required field") as err:
        pay.parse_notification(sim.sign(body), body)
    assert err.value.field == "resource.algorithm"


def test_nonce_memory_is_bounded(sim, make_connector):
    pay = make_connector("wechat_pay", sim)
    pay._nonce_cap = 3
    for i in range(5):
        body = sim.notification_body(f"O-2{i}", 1)
        pay.parse_notification(sim.sign(body), body)
    assert len(pay._nonces) == 3


# -- shipping info -----------------------------------------------------------------------------

def test_upload_shipping_info_express(sim, pay):
    sim.notification_body("O-1001", 1900, transaction_id="4200000010")   # the platform knows the payment
    pay.upload_shipping_info(order(), "4200000010", "express", tracking_no="SF100", express_company="sf")
    [upload] = sim.shipping_uploads
    assert upload["order_key"] == {"order_number_type": 2, "transaction_id": "4200000010"}
    assert upload["logistics_type"] == 1 and upload["delivery_mode"] == 1
    assert upload["shipping_list"] == [{"tracking_no": "SF100", "express_company": "SF",
                                        "item_desc": "SKU-A x2, SKU-B x1",
                                        "contact": {"receiver_contact": "138****1111"}}]
    assert upload["payer"] == {"openid": "oSandboxPayer"}
    datetime.fromisoformat(upload["upload_time"])


@pytest.mark.parametrize("kind,code", [("same_city", 2), ("pickup", 4)])
def test_upload_shipping_info_without_waybill(sim, pay, kind, code):
    sim.notification_body("O-1001", 1900, transaction_id="4200000011")
    pay.upload_shipping_info(order(), "4200000011", kind)
    assert sim.shipping_uploads[-1]["logistics_type"] == code
    assert "tracking_no" not in sim.shipping_uploads[-1]["shipping_list"][0]


def test_expired_token_is_refreshed(sim, pay):
    sim.notification_body("O-1001", 1900, transaction_id="4200000012")
    pay.upload_shipping_info(order(), "4200000012", "pickup")
    issued = sim.tokens.issued
    sim.tokens.expire_all()
    pay.upload_shipping_info(order(), "4200000012", "pickup")
    assert sim.tokens.issued == issued + 1 and len(sim.shipping_uploads) == 2


def test_transient_errors_are_retried(sim, pay):
    sim.notification_body("O-1001", 1900, transaction_id="4200000013")
    sim.faults.fail_next, sim.faults.only_paths = 2, ("/wxa/",)
    pay.upload_shipping_info(order(), "4200000013", "pickup")
    assert len(sim.requests_to("/wxa/sec/order/upload_shipping_info")) == 3
    assert len(sim.shipping_uploads) == 1


def test_busy_errcode_is_transient(sim, pay):
    sim.notification_body("O-1001", 1900, transaction_id="4200000014")
    sim.faults.fail_next, sim.faults.only_paths = 1, ("/wxa/",)
    sim.faults.error_status, sim.faults.error_body = 200, {"errcode": -1, "errmsg": "system error"}
    pay.upload_shipping_info(order(), "4200000014", "pickup")
    assert len(sim.requests_to("/wxa/sec/order/upload_shipping_info")) == 2


def test_rate_limit_exhausts_retries(sim, pay):
    sim.notification_body("O-1001", 1900, transaction_id="4200000015")
    sim.faults.fail_next, sim.faults.only_paths = 10, ("/wxa/",)
    sim.faults.error_status, sim.faults.error_body = 200, {"errcode": 45009, "errmsg": "reach max api daily quota"}
    with pytest.raises(TransientError, match="45009"):
        pay.upload_shipping_info(order(), "4200000015", "pickup")
    assert len(sim.requests_to("/wxa/sec/order/upload_shipping_info")) == 4   # the policy's attempts


def test_payment_not_yet_visible_10060001_is_to_be_tried_again_later_not_slept_through(sim, pay):
    """10060001 used to be permanent: every upload right after a payment became a dead letter. WeChat says
    to wait up to about a minute: the error says so, and the connector does not sleep through it in-line
    (the consumer tries again later: tests/flows/test_shipping_info_later.py)."""
    sim.notification_body("O-1001", 1900, transaction_id="4200000016")
    sim.knobs.payment_invisible_next = 1
    with pytest.raises(TransientError, match="10060001") as raised:
        pay.upload_shipping_info(order(), "4200000016", "pickup")
    assert raised.value.wait_up_to == 60
    assert len(sim.requests_to("/wxa/sec/order/upload_shipping_info")) == 1
    pay.upload_shipping_info(order(), "4200000016", "pickup")
    assert len(sim.shipping_uploads) == 1


def test_a_payment_the_platform_never_saw_is_to_be_tried_again_later(sim, pay):
    with pytest.raises(TransientError, match="10060001") as raised:
        pay.upload_shipping_info(order(), "4200009999", "pickup")
    assert raised.value.wait_up_to == 60       # then the consumer tries again until then, and parks it
    assert len(sim.requests_to("/wxa/sec/order/upload_shipping_info")) == 1


def test_express_company_is_wechats_delivery_id_not_kuaidi100s(sim, pay):
    """The flow used to send Kuaidi100's code (shunfeng), which WeChat refuses."""
    sim.notification_body("O-1001", 1900, transaction_id="4200000017")
    pay.upload_shipping_info(order(), "4200000017", "express", tracking_no="ZT1", express_company="zto")
    assert sim.shipping_uploads[-1]["shipping_list"][0]["express_company"] == "ZTO"
    assert "contact" not in sim.shipping_uploads[-1]["shipping_list"][0]        # only SF needs one
    with pytest.raises(MappingError, match="delivery_id"):
        pay.upload_shipping_info(order(), "4200000017", "express", tracking_no="X1", express_company="shunfeng")


def test_sf_without_a_contact_phone_is_refused_before_calling(sim, pay):
    sim.notification_body("O-1001", 1900, transaction_id="4200000018")
    with pytest.raises(MappingError, match="receiver's phone"):
        pay.upload_shipping_info(order(phone=""), "4200000018", "express", tracking_no="SF2", express_company="sf")
    assert sim.requests_to("/wxa/sec/order/upload_shipping_info") == []


def test_simulator_refuses_sf_without_contact_and_kuaidi100_codes(sim, pay):
    sim.notification_body("O-1001", 1900, transaction_id="4200000019")
    body = {"order_key": {"order_number_type": 2, "transaction_id": "4200000019"}, "logistics_type": 1,
            "delivery_mode": 1, "upload_time": "2026-11-25T10:00:00+08:00", "payer": {"openid": "oSandboxPayer"},
            "shipping_list": [{"tracking_no": "SF3", "express_company": "SF", "item_desc": "x"}]}
    with pytest.raises(PermanentError, match="contact is required for SF"):
        pay._api.post("upload_shipping_info", body)
    body["shipping_list"][0]["express_company"] = "shunfeng"
    with pytest.raises(PermanentError, match="invalid express_company"):
        pay._api.post("upload_shipping_info", body)


def test_upload_names_the_payer_the_notification_named(sim, pay):
    body = sim.notification_body("O-1001", 1900, transaction_id="4200000020", payer_openid="oPayerFromWeChat")
    notice = pay.parse_notification(sim.sign(body), body)
    assert notice.payer_id == "oPayerFromWeChat"
    pay.upload_shipping_info(order(buyer_id="U-77", openid=notice.payer_id), "4200000020", "pickup")
    assert sim.shipping_uploads[-1]["payer"] == {"openid": "oPayerFromWeChat"}
    with pytest.raises(PermanentError, match="payer openid does not match"):
        pay.upload_shipping_info(order(buyer_id="U-77"), "4200000020", "pickup")


def test_express_needs_a_waybill(sim, pay):
    with pytest.raises(MappingError, match="tracking number"):
        pay.upload_shipping_info(order(), "4200000010", "express")
    with pytest.raises(MappingError, match="unknown canonical value"):
        pay.upload_shipping_info(order(), "4200000010", "drone")
    assert sim.received == []


def test_wrong_app_secret_is_permanent(sim, make_connector):
    pay = make_connector("wechat_pay", sim, app_id=sim.app_id, app_secret="wrong")
    with pytest.raises(PermanentError, match="40125"):
        pay.upload_shipping_info(order(), "4200000010", "pickup")
    assert len(sim.requests_to("/cgi-bin/token")) == 1


def test_without_app_credentials_upload_is_refused(sim, make_connector):
    pay = make_connector("wechat_pay", sim, app_id="", app_secret="")
    with pytest.raises(PermanentError, match="app_id/app_secret"):
        pay.upload_shipping_info(order(), "4200000010", "pickup")


# -- platform keys as WeChat rotates them -------------------------------------------------------

def _other_platform(credentials, serial: str) -> WeChatPaySimulator:
    """A second platform key pair (a new certificate, or a public key with its id)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
    key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return WeChatPaySimulator(mch_id=credentials["HUB_WECHAT_MCH_ID"], app_id=credentials["HUB_WECHAT_APP_ID"],
                              app_secret=credentials["HUB_WECHAT_APP_SECRET"],
                              api_v3_key=credentials["HUB_WECHAT_API_V3_KEY"], serial=serial, private_key_pem=pem)


def _public_pem(sim: WeChatPaySimulator) -> str:
    from cryptography.hazmat.primitives import serialization
    return sim._key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_sandbox_serial_has_the_real_format(sim):
    assert len(sim.serial) == 40 and int(sim.serial, 16) > 0


def test_certificate_serial_is_compared_as_a_number_so_case_does_not_matter(sim, make_connector):
    pay = make_connector("wechat_pay", sim, platform_cert_serial=sim.serial.lower())
    body = sim.notification_body("O-2001", 100)
    assert pay.parse_notification(sim.sign(body), body).order_ref == "O-2001"


def test_old_certificate_and_new_public_key_id_verify_side_by_side(sim, make_connector, credentials):
    """During the platform's switch-over notifications come signed with either key."""
    new = _other_platform(credentials, "PUB_KEY_ID_0114232134912410000000000000")
    pay = make_connector("wechat_pay", sim, platform_keys=[
        {"serial": new.serial, "public_key": _public_pem(new)}])
    old_body, new_body = sim.notification_body("O-2002", 100), new.notification_body("O-2003", 100)
    assert pay.parse_notification(sim.sign(old_body), old_body).order_ref == "O-2002"
    assert pay.parse_notification(new.sign(new_body), new_body).order_ref == "O-2003"
    # A key is used only for its own serial: the new key's signature under the old serial fails.
    body = new.notification_body("O-2004", 100)
    forged = new.sign(body) | {"Wechatpay-Serial": sim.serial}
    with pytest.raises(SignatureError, match="bad signature"):
        pay.parse_notification(forged, body)


def test_a_key_id_the_hub_does_not_hold_is_refused(sim, pay, credentials):
    other = _other_platform(credentials, "PUB_KEY_ID_0999999999999999999999999999")
    body = other.notification_body("O-2005", 100)
    with pytest.raises(SignatureError, match="unknown platform certificate serial"):
        pay.parse_notification(other.sign(body), body)


# -- refunds: the hub asking, signed; the platform's signed answer; its notifications ----------------

def refund_of(tx: str, refund_no: str = "RO-3001-A", amount: int = 1900, paid: int = 1900) -> RefundRequest:
    return RefundRequest(refund_no=refund_no, order_ref="O-3001", payment_ref=tx, paid_fen=paid, amount_fen=amount,
                         reason="buyer cancelled", notify_url="http://127.0.0.1:9/callbacks/wechat_pay")


@pytest.fixture
def paid(sim):
    """A payment the platform knows (1900 fen), refund notifications held for the test."""
    sim.knobs.refund_notify_after_s = None
    sim.notification_body("O-3001", 1900, transaction_id="4200003001")
    return "4200003001"


def test_refund_request_is_signed_and_answered_processing_then_notified(sim, pay, paid):
    answer = pay.request_refund(refund_of(paid))
    assert (answer.refund_no, answer.status, answer.amount_fen) == ("RO-3001-A", "PROCESSING", 1900)
    [req] = sim.requests_to("/v3/refund/domestic/refunds")
    assert req.headers["Authorization"].startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000001",')
    assert json.loads(req.body) == {"out_refund_no": "RO-3001-A", "transaction_id": paid, "reason": "buyer cancelled",
                                    "notify_url": "http://127.0.0.1:9/callbacks/wechat_pay",
                                    "amount": {"refund": 1900, "total": 1900, "currency": "CNY"}}
    [(url, body)] = sim.take_refund_notifications()
    notice = pay.parse_notification(sim.sign(body), body)
    assert (notice.event, notice.refund_no, notice.refund_id, notice.refund_status) == (
        "refunded", "RO-3001-A", answer.refund_id, "SUCCESS")
    assert (notice.order_ref, notice.transaction_id, notice.amount_fen, notice.paid_fen) == ("O-3001", paid, 1900, 1900)


def test_the_same_refund_number_asked_again_is_the_same_refund_paid_once(sim, pay, paid):
    first = pay.request_refund(refund_of(paid))
    again = pay.request_refund(refund_of(paid))            # e.g. the hub crashed before recording the answer
    assert again.refund_id == first.refund_id
    assert len(sim.refunds) == 1 and sim.refunds["RO-3001-A"].asked == 2
    assert len(sim.take_refund_notifications()) == 1


def test_partial_refunds_add_up_and_the_platform_refuses_more_than_was_paid(sim, pay, paid):
    pay.request_refund(refund_of(paid, "R-P1", amount=1000))
    pay.request_refund(refund_of(paid, "R-P2", amount=900))
    with pytest.raises(PermanentError, match="INVALID_REQUEST"):
        pay.request_refund(refund_of(paid, "R-P3", amount=1))


def test_an_unsigned_or_forged_answer_is_not_trusted(sim, pay, paid):
    sim.knobs.unsigned_answers = True
    with pytest.raises(SignatureError, match="missing signature header"):
        pay.request_refund(refund_of(paid))
    sim.knobs.unsigned_answers, sim.knobs.bad_signature = False, True
    with pytest.raises(SignatureError, match="bad signature"):
        pay.request_refund(refund_of(paid))


def test_the_platform_refuses_a_request_the_merchant_key_did_not_sign(sim, make_connector, paid):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
    other = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    forger = make_connector("wechat_pay", sim, merchant_private_key=other)
    with pytest.raises(PermanentError, match="SIGN_ERROR"):
        forger.request_refund(refund_of(paid))
    assert sim.refunds == {}


def test_a_busy_platform_is_retried_by_the_same_number(sim, pay, paid):
    sim.faults.fail_next, sim.faults.error_status = 2, 503
    sim.faults.error_body = {"code": "SYSTEM_ERROR", "message": "系统繁忙"}
    assert pay.request_refund(refund_of(paid)).status == "PROCESSING"
    assert len(sim.requests_to("/v3/refund/domestic/refunds")) == 3 and len(sim.refunds) == 1


def test_an_unknown_payment_is_a_refusal(sim, pay, paid):
    with pytest.raises(PermanentError, match="RESOURCE_NOT_EXISTS"):
        pay.request_refund(refund_of("4200009999"))


@pytest.mark.parametrize("outcome,event", [("ABNORMAL", "refund_abnormal"), ("CLOSED", "refund_closed")])
def test_abnormal_and_closed_refund_notifications_map(sim, pay, paid, outcome, event):
    sim.knobs.refund_outcome = outcome
    pay.request_refund(refund_of(paid))
    [(_, body)] = sim.take_refund_notifications()
    notice = pay.parse_notification(sim.sign(body), body)
    assert (notice.event, notice.refund_status, notice.refund_no) == (event, outcome, "RO-3001-A")
    assert notice.at.tzinfo is not None                    # no success_time: the notification's own time


def test_refunds_need_the_merchant_key(sim, make_connector, paid):
    pay = make_connector("wechat_pay", sim, merchant_private_key="")
    with pytest.raises(PermanentError, match="merchant_private_key"):
        pay.request_refund(refund_of(paid))


def test_a_refund_is_queried_signed_and_its_answer_verified(sim, pay, paid):
    taken = pay.request_refund(refund_of(paid))
    sim.take_refund_notifications()
    now = pay.query_refund("RO-3001-A")
    assert (now.refund_id, now.status, now.amount_fen) == (taken.refund_id, "SUCCESS", 1900) and now.at
    [req] = sim.requests_to("/v3/refund/domestic/refunds/RO-3001-A")
    assert req.method == "GET" and req.headers["Authorization"].startswith("WECHATPAY2-SHA256-RSA2048 ")
    with pytest.raises(PermanentError, match="RESOURCE_NOT_EXISTS"):
        pay.query_refund("RO-NEVER")
    sim.knobs.unsigned_answers = True
    with pytest.raises(SignatureError):
        pay.query_refund("RO-3001-A")


def test_a_payment_takes_one_upload_and_one_re_upload_then_refuses(sim, pay):
    """WeChat's rule (每笔支付单仅有一次重新发货机会), which the simulator keeps so the hub's flow is held to it."""
    sim.notification_body("O-1001", 1900, transaction_id="4200000018")
    pay.upload_shipping_info(order(), "4200000018", "pickup")
    pay.upload_shipping_info(order(), "4200000018", "pickup")            # the one re-upload
    with pytest.raises(PermanentError, match="10060003"):
        pay.upload_shipping_info(order(), "4200000018", "pickup")
    assert len(sim.shipping_uploads) == 2
    assert len(sim.requests_to("/wxa/sec/order/upload_shipping_info")) == 3      # refused, not retried
