"""WeChat Pay's daily bills, as the simulator serves them (申请交易账单 / 下载账单).

`GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL|SUCCESS|REFUND&tar_type=GZIP` answers, signed,
`{hash_type: "SHA1", hash_value, download_url}`; the file at `download_url` (the merchant signs that GET
too) is the bill: a header line, one row per line whose every field starts with a backquote (so a
spreadsheet keeps long numbers whole), then the totals' header and the totals row. Amounts are yuan
with two decimals; times Beijing time. `hash_value` is the SHA1 of the bill before compression.

Made from what the simulator really processed: the payments it took (`transactions`, by their
success time's day) and the refunds it paid (`refunds` whose success time is that day), with
`BillKnobs` to inject each kind of mismatch and a wrong digest.
"""
from __future__ import annotations

import gzip
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from .base import Request, Response

if TYPE_CHECKING:
    from .wechat_pay import WeChatPaySimulator

CST = timezone(timedelta(hours=8))
TRADE_BILL = "/v3/bill/tradebill"
BILL_DOWNLOAD = "/v3/billdownload/file"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ALL_COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
               "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
               "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
REFUND_COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
                  "付款银行,货币种类,应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
                  "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
TOTALS = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
FEE_RATE = Decimal("0.006")           # 0.60 %, the usual rate; the fee is written with five decimals


@dataclass
class BillKnobs:
    """Mismatches for the next bills. Amounts in fen."""

    unknown_payments: list[tuple[str, int]] = field(default_factory=list)   # (out_trade_no, fen) never notified
    amounts: dict[str, int] = field(default_factory=dict)     # transaction_id -> the amount the bill says
    omit_payments: set[str] = field(default_factory=set)      # transaction_ids left out of the bill
    extra_refunds: list[tuple[str, str, int]] = field(default_factory=list)   # (out_trade_no, out_refund_no, fen)
    omit_refunds: set[str] = field(default_factory=set)       # out_refund_nos left out of the refund bill
    wrong_hash: bool = False                                  # the signed digest does not match the file


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _row(fields: list[str]) -> str:
    return ",".join("`" + f for f in fields)


class BillServer:
    def __init__(self, sim: WeChatPaySimulator):
        self.sim = sim
        self.files: dict[str, tuple[bytes, bool]] = {}    # token -> (the bill, gzip?)
        self.applied: list[dict[str, str]] = []           # the bill requests, for tests

    def clear(self) -> None:
        self.files.clear()
        self.applied.clear()

    # -- the two calls ---------------------------------------------------------------------------
    def apply(self, req: Request) -> Response:
        q = {k: v[-1] for k, v in req.query.items()}
        day, bill_type, tar_type = q.get("bill_date", ""), q.get("bill_type") or "ALL", q.get("tar_type")
        if not _DATE.match(day):
            return Response(400, {"code": "PARAM_ERROR", "message": "bill_date 格式错误，应为 yyyy-MM-DD"})
        try:
            when = datetime.strptime(day, "%Y-%m-%d").date()
        except ValueError:
            return Response(400, {"code": "PARAM_ERROR", "message": "bill_date 不是有效日期"})
        today = datetime.now(CST).date()
        if when > today or when < today - timedelta(days=92):
            return Response(400, {"code": "NO_STATEMENT_EXIST", "message": "账单不存在（仅支持三个月内的账单）"})
        if bill_type not in ("ALL", "SUCCESS", "REFUND") or tar_type not in (None, "GZIP"):
            return Response(400, {"code": "PARAM_ERROR", "message": "bill_type 或 tar_type 取值错误"})
        self.applied.append(q)
        text = self.bill(day, bill_type).encode()
        digest = hashlib.sha1(text).hexdigest()
        if self.sim.knobs.bill.wrong_hash:
            digest = hashlib.sha1(text + b"tampered").hexdigest()
        token = secrets.token_urlsafe(24)
        self.files[token] = (text, tar_type == "GZIP")
        return self.sim._signed(200, {"hash_type": "SHA1", "hash_value": digest,
                                      "download_url": f"{self.sim.base_url}{BILL_DOWNLOAD}?token={token}"})

    def download(self, req: Request) -> Response:
        token = (req.query.get("token") or [""])[-1]
        found = self.files.get(token)
        if found is None:
            return Response(400, {"code": "INVALID_REQUEST", "message": "token 无效或已过期"})
        text, gz = found
        # The file is not signed: its digest in the signed answer vouches for it.
        return Response(200, gzip.compress(text) if gz else text, content_type="application/octet-stream")

    # -- the file --------------------------------------------------------------------------------
    def bill(self, day: str, bill_type: str) -> str:
        sim, knobs = self.sim, self.sim.knobs.bill
        with sim._lock:
            paid = [(tx, dict(p)) for tx, p in sim.transactions.items()
                    if p["at"][:10] == day and tx not in knobs.omit_payments]
            refunds = [r for r in sim.refunds.values()
                       if r.status == "SUCCESS" and (r.success_time or "")[:10] == day
                       and r.refund_no not in knobs.omit_refunds]
        at = f"{day} 12:00:00"
        for order_ref, fen in knobs.unknown_payments:
            paid.append((_made_up_id("4200", order_ref, day), {
                "order_ref": order_ref, "amount_fen": fen, "payer_openid": "oSandboxPayer", "at": at}))
        refund_rows = [(r.order_ref, r.transaction_id, r.refund_id, r.refund_no, r.amount_fen, r.total_fen,
                        r.created, r.success_time or at) for r in refunds]
        for order_ref, refund_no, fen in knobs.extra_refunds:
            refund_rows.append((order_ref, _made_up_id("4200", order_ref, day), _made_up_id("5030", refund_no, day),
                                refund_no, fen, fen, at, at))
        lines: list[str] = []
        fees = Decimal(0)
        paid_total = refund_total = 0
        if bill_type == "REFUND":
            lines.append(REFUND_COLUMNS)
            for order_ref, tx, refund_id, refund_no, fen, total, asked, done in refund_rows:
                fee = -(Decimal(fen) / 100 * FEE_RATE)
                fees += fee
                refund_total += fen
                lines.append(_row([_time(done), sim.app_id, sim.mch_id, "0", "", tx, order_ref, "oSandboxPayer",
                                   "JSAPI", "REFUND", "OTHERS", "CNY", "0.00", "0.00", _time(asked), _time(done),
                                   refund_id, refund_no, yuan(fen), "0.00", "ORIGINAL", "SUCCESS", "sandbox goods",
                                   "", f"{fee:.5f}", "0.60%", yuan(total), yuan(fen), ""]))
            count = len(refund_rows)
        else:
            lines.append(ALL_COLUMNS)
            for tx, p in paid:
                fen = knobs.amounts.get(tx, p["amount_fen"])
                fee = Decimal(fen) / 100 * FEE_RATE
                fees += fee
                paid_total += fen
                lines.append(_row([_time(p["at"]), sim.app_id, sim.mch_id, "0", "", tx, p["order_ref"],
                                   p["payer_openid"], "JSAPI", "SUCCESS", "OTHERS", "CNY", yuan(fen), "0.00", "0",
                                   "0", "0.00", "0.00", "", "", "sandbox goods", "", f"{fee:.5f}", "0.60%",
                                   yuan(fen), "0.00", ""]))
            count = len(paid)
            if bill_type == "ALL":            # ALL also lists the day's refunds, 交易状态 REFUND
                for order_ref, tx, refund_id, refund_no, fen, total, _asked, done in refund_rows:
                    fee = -(Decimal(fen) / 100 * FEE_RATE)
                    fees += fee
                    refund_total += fen
                    lines.append(_row([_time(done), sim.app_id, sim.mch_id, "0", "", tx, order_ref, "oSandboxPayer",
                                       "JSAPI", "REFUND", "OTHERS", "CNY", "0.00", "0.00", refund_id, refund_no,
                                       yuan(fen), "0.00", "ORIGINAL", "SUCCESS", "sandbox goods", "",
                                       f"{fee:.5f}", "0.60%", yuan(total), yuan(fen), ""]))
                count += len(refund_rows)
        lines.append(TOTALS)
        lines.append(_row([str(count), yuan(paid_total), yuan(refund_total), "0.00", f"{fees:.5f}", yuan(paid_total),
                           yuan(refund_total)]))
        return "\r\n".join(lines) + "\r\n"


def _made_up_id(prefix: str, *parts: str) -> str:
    """A stable platform id for an injected line (the same bill asked twice names it the same)."""
    return prefix + str(int(hashlib.sha1("|".join(parts).encode()).hexdigest()[:15], 16)).zfill(18)


def _time(iso: str) -> str:
    """The bill's form of a time: `2024-05-01 10:00:00`, Beijing time."""
    try:
        return datetime.fromisoformat(iso).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso
