"""Returns and refunds after completion reach the ERP (issue 25 item 8): a return order (SAP RE)
or a credit memo request (G2) with the order's lines and the amount, once per return or refund."""
from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import MemoryBinder, RetryPolicy
from connectors.erp_soap import ErpSoapConnector
from hub import handlers
from hub.domain.refunds import RefundStatus
from hub.services import money_owed, orders
from hub.storage.tables import RefundRow, utcnow
from mappings.engine import load_mapping
from sandbox.credentials import sandbox_env
from sandbox.erp_sap import SapSimulator
from tests.connectors.test_erp_flavours import FAST

from .test_erp_crm import completed_pickup

RETURN = "BAPI_CUSTOMERRETURN_CREATE"


@pytest.fixture
def sap(flow):
    with SapSimulator.from_env(sandbox_env()) as sim:
        binder = MemoryBinder()
        binder.bind("erp", "location", "1000", "S001")
        flow.ctx.connectors.overrides["erp"] = ErpSoapConnector(
            "erp", sim.wsdl_url, sim.username, sim.password, binder, RetryPolicy(attempts=3, **FAST),
            load_mapping("erp_sap"), auth="basic")
        try:
            yield sim
        finally:
            flow.ctx.connectors.overrides.pop("erp", None)


def move(flow, order_id: str, target: str) -> None:
    with flow.ctx.uow() as uow:
        orders.transition(uow, orders.get(uow, order_id, lock=True), target, "test", "handed back")
        uow.commit()


def returns_sent(sap: SapSimulator) -> list[dict]:
    return [o for o in sap.received_orders if o["operation"] == RETURN]


def test_a_return_after_completion_is_one_sap_return_order_with_the_orders_lines(flow, sap):
    order_id = completed_pickup(flow, key="ret-1")
    flow.deliver(handlers.ERP_SALES_ORDER, "order.status_changed", order_id=order_id, to="completed")
    move(flow, order_id, "returned")
    for _ in range(2):                                       # redelivered: still one return
        flow.deliver(handlers.ERP_RETURN_ORDER, "order.status_changed", order_id=order_id, to="returned")
    [sent] = returns_sent(sap)
    assert (sent["header"]["DOC_TYPE"], sent["header"]["PURCH_NO_C"], sent["header"]["REF_1"]) == \
        ("RE", f"{order_id}-return", order_id)
    assert sent["header"]["ZZREFUND_AMOUNT"] == Decimal("301.00")
    assert [(i["MATERIAL"], i["TARGET_QTY"]) for i in sent["items"]] == [("TEA-001", 2), ("CUP-002", 1)]
    assert len(sap.documents_for(f"{order_id}-return")) == 1


def test_a_refund_after_completion_is_a_credit_memo_with_the_refund_amount(flow, sap):
    order_id = completed_pickup(flow, key="ref-1")
    with flow.ctx.uow() as uow:
        uow.session.add(RefundRow(refund_no=f"R{order_id}-X1", order_id=order_id, payment_ref="tx", paid_fen=30100,
                                  amount_fen=30100, cause="asked", source="ops", status=RefundStatus.SUCCESS,
                                  created_at=utcnow(), updated_at=utcnow()))
        uow.commit()
        assert [r.refund_no for r in money_owed.of_order(uow, order_id)] == [f"R{order_id}-X1"]
    move(flow, order_id, "refunded")
    flow.deliver(handlers.ERP_RETURN_ORDER, "order.status_changed", order_id=order_id, to="refunded")
    flow.deliver(handlers.ERP_RETURN_ORDER, "order.status_changed", order_id=order_id, to="refunded")
    [sent] = returns_sent(sap)
    assert (sent["header"]["DOC_TYPE"], sent["header"]["PURCH_NO_C"]) == ("G2", f"R{order_id}-X1")
    assert sent["header"]["ZZREFUND_AMOUNT"] == Decimal("301.00")


def test_a_refund_before_completion_sends_nothing_to_the_erp(flow, sap):
    order_id = flow.place("pickup", [("TEA-001", 1, 12800)], store_id="S001", key="ref-early")
    flow.pay(order_id)
    move(flow, order_id, "cancelled")
    move(flow, order_id, "refunded")
    flow.deliver(handlers.ERP_RETURN_ORDER, "order.status_changed", order_id=order_id, to="refunded")
    assert returns_sent(sap) == []
