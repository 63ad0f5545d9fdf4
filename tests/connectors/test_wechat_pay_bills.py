"""WeChat Pay's daily bills against the simulator: the signed answer, the GZIP file, its SHA1, the rows."""
from __future__ import annotations

import gzip
import hashlib
from datetime import datetime, timedelta

import pytest

from connectors import wechat_bill_file
from connectors.base import PermanentError
from hub.ports import BillIntegrityError
from sandbox.wechat_bills import CST
from sandbox.wechat_pay import WeChatPaySimulator
from tests.connectors.conftest import simulator

sim = simulator(WeChatPaySimulator)


@pytest.fixture
def pay(make_connector, sim):
    return make_connector("wechat_pay", sim)


def today():
    return datetime.now(CST).date()


def test_the_day_bill_lists_what_the_platform_took_and_paid_back(sim, pay):
    tx = sim.take_payment("O-1", 1990)
    sim.take_payment("O-2", 500)
    sim.take_payment("O-old", 700, at=(datetime.now(CST) - timedelta(days=1)).isoformat())
    sim.knobs.refund_answer = "SUCCESS"
    sim.knobs.refund_notify_after_s = None
    refund = pay.request_refund(_refund(tx, 990))
    assert refund.status == "SUCCESS"

    bill = pay.daily_bill(today())

    assert sorted((p.order_ref, p.amount_fen, p.status) for p in bill.payments) == [
        ("O-1", 1990, "SUCCESS"), ("O-2", 500, "SUCCESS")]
    assert [(r.order_ref, r.refund_no, r.amount_fen, r.status) for r in bill.refunds] == [
        ("O-1", "RF-1", 990, "SUCCESS")]
    asked = [(q["bill_type"], q["tar_type"]) for q in sim.bills.applied]
    assert asked == [("ALL", "GZIP"), ("REFUND", "GZIP")]


def test_the_file_is_gzip_of_backquoted_rows_with_the_signed_sha1(sim, pay):
    sim.take_payment("O-9", 12345, transaction_id="4200000000000000009")
    text = sim.bills.bill(today().isoformat(), "ALL")
    lines = text.splitlines()
    assert lines[0].startswith("交易时间,公众账号ID,商户号") and lines[-2].startswith("总交易单数")
    assert lines[1].startswith("`") and "`4200000000000000009" in lines[1] and "`123.45" in lines[1]
    assert lines[-1].split(",")[:2] == ["`1", "`123.45"]
    resp = sim.bills.apply(_request(today().isoformat()))
    assert resp.body  # signed bytes
    token = next(iter(sim.bills.files))
    served = sim.bills.download(_request(token=token))
    assert hashlib.sha1(gzip.decompress(served.body)).hexdigest() == hashlib.sha1(text.encode()).hexdigest()


def test_a_bill_whose_hash_does_not_match_is_refused(sim, pay):
    sim.take_payment("O-1", 100)
    sim.knobs.bill.wrong_hash = True
    with pytest.raises(BillIntegrityError, match="SHA1"):
        pay.daily_bill(today())


def test_a_day_the_platform_has_no_bill_for_is_a_refusal(sim, pay):
    with pytest.raises(PermanentError, match="NO_STATEMENT_EXIST"):
        pay.daily_bill(today() + timedelta(days=1))


def test_rows_are_read_by_column_name_and_amounts_exactly(pay):
    text = ("商户订单号,交易状态,多余的列,微信订单号,应结订单金额,交易时间\r\n"
            "`O-7,`SUCCESS,`x,`42001,`0.10,`2024-05-01 10:00:00\r\n"
            "总交易单数,应结订单总金额\r\n`1,`0.10\r\n")
    [p] = wechat_bill_file.payments(pay.mapping, text)
    assert (p.order_ref, p.transaction_id, p.amount_fen) == ("O-7", "42001", 10)


def _refund(tx: str, fen: int):
    from hub.domain.model import RefundRequest
    return RefundRequest(order_ref="O-1", refund_no="RF-1", payment_ref=tx, amount_fen=fen, paid_fen=1990,
                         reason="test", notify_url="http://127.0.0.1:9/callbacks/wechat_pay")


def _request(day: str = "", token: str = ""):
    from sandbox.base import Request
    query = {"token": [token]} if token else {"bill_date": [day], "bill_type": ["ALL"], "tar_type": ["GZIP"]}
    return Request("GET", "/", query, {}, b"")
