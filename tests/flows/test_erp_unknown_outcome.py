"""A sales order whose create cannot be looked up and whose answer was lost is parked at once
as "unknown outcome" (issue 25 item 5): sent once, never by the consumer's retries, and replay
asks first whether to resend."""
from __future__ import annotations

import pytest

from hub import consumers, handlers
from hub.consumers import handle_once
from sandbox.credentials import sandbox_env
from sandbox.erp_sap import SapSimulator
from tests.connectors.test_erp_real_styles import sap_without_lookup

from .test_erp_crm import completed_pickup, feed_entry

CREATE = "BAPI_SALESORDER_CREATEFROMDAT2"


def test_a_lost_answer_is_parked_once_as_unknown_outcome_and_replay_asks_before_resending(flow, tmp_path):
    order_id = completed_pickup(flow)
    envelope = flow.events("order.status_changed", order_id=order_id, to="completed")[0]
    with SapSimulator.from_env(sandbox_env()) as sap:
        flow.ctx.connectors.overrides["erp"] = sap_without_lookup(sap, tmp_path, locations=("S001",))
        try:
            sap.faults.lose_answer_next = 1
            outcome = handle_once(flow.ctx, handlers.ERP_SALES_ORDER, envelope, sleep=lambda s: None)
            assert outcome.status == "parked" and "check the ERP before resending" in outcome.error
            assert len(sap.calls_to(CREATE)) == 1 and len(sap.documents_for(order_id)) == 1   # not doubled
            [letter] = consumers.dead_letters(flow.ctx)
            assert (letter.kind, letter.target) == ("unknown_outcome", handlers.ERP_SALES_ORDER.name)

            with pytest.raises(consumers.ResendNotConfirmed):       # asked first
                consumers.replay(flow.ctx, letter.id, handlers.BY_NAME)
            assert len(sap.calls_to(CREATE)) == 1 and consumers.dead_letters(flow.ctx)

            # The operator found nothing in the ERP (here: it was cancelled there) and says resend.
            sap.documents.clear()
            assert consumers.replay(flow.ctx, letter.id, handlers.BY_NAME, resend=True)
            assert feed_entry(flow, order_id).erp_document_no == sap.documents_for(order_id)[0]
            assert consumers.dead_letters(flow.ctx) == []
        finally:
            flow.ctx.connectors.overrides.pop("erp", None)


def test_resync_of_an_erp_without_product_list_skips_it_and_asks_stock_for_the_hubs_skus(flow):
    """Issue 25 items 1-2: `hub resync` against a codeunit-only NAV: no traceback, stock per hub SKU."""
    from hub.flows import erp_pull
    from sandbox.erp_nav import NavSimulator
    from tests.connectors.test_erp_real_styles import codeunit

    with NavSimulator.from_env(sandbox_env()) as nav:
        nav.set_stock("ZENTRALE", "POT-003", 7)
        flow.ctx.connectors.overrides["erp"] = codeunit(nav)
        try:
            assert erp_pull.pull_products(flow.ctx) == 0
            assert erp_pull.pull_warehouse_stock(flow.ctx) >= 1
        finally:
            flow.ctx.connectors.overrides.pop("erp", None)
        asked = len(nav.calls_to("Codeunit/Lagerabfrage.GetItemInventory"))
    from sqlalchemy import select

    from hub.storage.tables import StockLevel
    with flow.ctx.reader() as uow:
        level = uow.session.execute(select(StockLevel).where(StockLevel.sku == "POT-003",
                                                             StockLevel.location_id == "WH01")).scalar_one()
    assert level.on_hand == 7 and asked >= 4          # every active hub SKU was asked for


def test_a_failed_letter_whose_replay_loses_its_answer_becomes_unknown_outcome(flow, tmp_path):
    order_id = completed_pickup(flow, key="uo-2")
    envelope = flow.events("order.status_changed", order_id=order_id, to="completed")[0]
    with SapSimulator.from_env(sandbox_env()) as sap:
        flow.ctx.connectors.overrides["erp"] = sap_without_lookup(sap, tmp_path, attempts=1, locations=("S001",))
        try:
            sap.faults.lock_next = 10                    # locked: an answer, so a plain failed letter
            assert handle_once(flow.ctx, handlers.ERP_SALES_ORDER, envelope, sleep=lambda s: None).status == "parked"
            [letter] = consumers.dead_letters(flow.ctx)
            assert letter.kind == "failed"
            sap.faults.lock_next, sap.faults.lose_answer_next = 0, 1
            assert not consumers.replay(flow.ctx, letter.id, handlers.BY_NAME)          # saved, answer lost
            [letter] = consumers.dead_letters(flow.ctx)
            assert letter.kind == "unknown_outcome"
            with pytest.raises(consumers.ResendNotConfirmed):
                consumers.replay(flow.ctx, letter.id, handlers.BY_NAME)
            assert len(sap.documents_for(order_id)) == 1
        finally:
            flow.ctx.connectors.overrides.pop("erp", None)
