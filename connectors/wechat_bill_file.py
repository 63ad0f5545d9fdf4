"""WeChat Pay's bill file, read: the header line names the columns (read by name, not position, so a column
added later moves nothing), each row's fields start with a backquote, the totals' header and row end it.

The columns the hub reads are named in the mapping (`values.bill_column`: the file's name -> a key), and each
row is mapped like any payload (`entities.bill_payment` / `bill_refund`: yuan "12.30" -> 1230 fen exactly)."""
from __future__ import annotations

import csv
import io

from hub.domain.payment_bills import BillPayment, BillRefund
from mappings import Mapping

from .base import MappingError


def rows(mapping: Mapping, text: str) -> list[dict[str, str]]:
    """The detail rows as {key: value}, backquotes stripped, only the columns the mapping names."""
    system = mapping.system
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise MappingError(system, "bill", "", "the bill is empty (no header line)")
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = [h.strip() for h in next(reader)]
    where: dict[str, int] = {}
    for i, name in enumerate(header):
        try:
            where[mapping.value("bill_column", name)] = i
        except MappingError:
            continue                                   # a column the hub does not read
    totals = mapping.operation("bill_totals_marker")
    out = []
    for fields in reader:
        if fields and fields[0].strip() == totals:
            break
        if len(fields) < len(header):
            raise MappingError(system, "bill row", ",".join(fields)[:80], "a row with fewer fields than the header")
        out.append({key: fields[i].strip().removeprefix("`") for key, i in where.items()})
    return out


def payments(mapping: Mapping, text: str) -> list[BillPayment]:
    """The trade bill's payments (its refund rows are left to the refund bill)."""
    refund_row = mapping.operation("bill_refund_row_status")
    return [BillPayment(**mapping.inbound("bill_payment", r)) for r in rows(mapping, text)
            if r.get("trade_status") != refund_row]


def refunds(mapping: Mapping, text: str) -> list[BillRefund]:
    return [BillRefund(**mapping.inbound("bill_refund", r)) for r in rows(mapping, text)]
