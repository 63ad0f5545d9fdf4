"""The table of who handles what is the one truth: the events the core emits (typed, checked at
`emit`, the same envelope on the wire), who consumes each, and the workers, queues and subscriptions
generated from it."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from nameko.events import EventHandler

from hub import events, handlers
from hub.consumers import Consumer
from hub.storage.uow import UnitOfWork
from workers.broker import event_queues
from workers.runner import SERVICES, all_service_classes
from workers.subscribe import method_name

CORE = Path(__file__).resolve().parents[2] / "hub"
TABLED = {(c.event.TYPE, c.name) for c in handlers.TABLE}


def _subscriptions() -> dict[tuple[str, str], tuple[str, str]]:
    """(event type, consumer name) -> (service, method) for every event handler of every worker."""
    found = {}
    for cls in all_service_classes():
        for method_name_, method in inspect.getmembers(cls, inspect.isfunction):
            for entrypoint in getattr(method, "nameko_entrypoints", ()):
                if isinstance(entrypoint, EventHandler):
                    consumer = getattr(method, "consumer", None)
                    key = (entrypoint.event_type, consumer.name if consumer else method.__qualname__)
                    assert key not in found, f"{key} is subscribed twice"
                    found[key] = (cls.name, method_name_)
    return found


def test_workers_subscribe_exactly_the_table():
    assert set(_subscriptions()) == TABLED


def test_each_consumer_runs_in_the_worker_the_table_names():
    subs = _subscriptions()
    assert {c.name: subs[(c.event.TYPE, c.name)] for c in handlers.TABLE} == \
        {c.name: (c.service, method_name(c)) for c in handlers.TABLE}
    assert {c.service for c in handlers.TABLE} <= set(SERVICES)


def test_consumer_names_are_unique_and_are_their_functions_names():
    names = [c.name for c in handlers.TABLE + handlers.REPLAY_ONLY]
    assert len(names) == len(set(names))
    assert [c.run.__name__ for c in handlers.TABLE + handlers.REPLAY_ONLY] == names
    assert all(c.batch is None or c.batch.__name__.startswith(c.name) for c in handlers.TABLE)


def test_every_constant_of_the_table_is_in_it():
    constants = {v for v in vars(handlers).values() if isinstance(v, Consumer)}
    assert constants == set(handlers.TABLE) | set(handlers.REPLAY_ONLY)
    assert not set(handlers.TABLE) & set(handlers.REPLAY_ONLY)          # replay-only: no queue, no subscription
    assert all(handlers.BY_NAME[c.name] is c for c in handlers.REPLAY_ONLY)


def test_queue_names_are_the_ones_a_deployed_broker_has():
    """Before the table each consumer's method (and so its queue) had its own name; they are kept."""
    queues = {q.name for q in event_queues(all_service_classes())}
    assert queues == {
        "evt-hub-stock.changed--channel_sync.on_stock_changed",
        "evt-hub-order.status_changed--fulfilment.pickup_at_pos",
        "evt-hub-order.status_changed--fulfilment.local_delivery",
        "evt-hub-order.status_changed--fulfilment.express_waybill",
        "evt-hub-order.status_changed--fulfilment.shipping_info",
        "evt-hub-shipment.rebook_needed--fulfilment.rebook_courier",
        "evt-hub-order.refund_due--fulfilment.refund_due",
        "evt-hub-order.status_changed--erp_sync.sales_order",
        "evt-hub-order.status_changed--erp_sync.return_order",
        "evt-hub-order.status_changed--erp_sync.crm_points",
        "evt-hub-order.status_changed--scheduler.flash_sale_give_back",
        # issue 24's member steps, new with the table: named after their consumers
        "evt-hub-order.status_changed--erp_sync.crm_redeem",
        "evt-hub-order.status_changed--erp_sync.crm_give_back",
        "evt-hub-order.refunded--erp_sync.crm_refund_points",  # on the money back, every path (was refund_due)
        "evt-hub-member.holds_release_due--erp_sync.crm_release_holds",
        "evt-hub-order.status_changed--fulfilment.channel_order_progress",     # issue 23's, after the table
        "evt-hub-order.status_changed--fulfilment.channel_delivery_send",
        "evt-hub-channel.after_sale_answer_due--fulfilment.channel_after_sale_answer",
        "evt-hub-shipment.changed--fulfilment.rider_to_channel",               # issue 23's rider sync
        "evt-hub-channel.refund_agreed--erp_sync.erp_refund_lines",            # ... and credit memos
    }


def test_dead_letters_under_the_old_names_find_their_consumer():
    new = {handlers.CRM_REDEEM, handlers.CRM_GIVE_BACK, handlers.CRM_REFUND_POINTS, handlers.CRM_RELEASE_HOLDS,
           handlers.CHANNEL_ORDER_PROGRESS, handlers.CHANNEL_DELIVERY_SEND,
           handlers.CHANNEL_AFTER_SALE_ANSWER, handlers.RIDER_TO_CHANNEL,
           handlers.ERP_REFUND_LINES}              # consumers added after the table have no old name
    assert len(set(handlers.OLD_TARGETS.values())) == len(handlers.TABLE) - len(new)
    assert {handlers.BY_NAME[old] for old in handlers.OLD_TARGETS} == set(handlers.TABLE) - new
    assert handlers.BY_NAME["fulfilment.pickup_pos"] is handlers.STORE_ORDER_TO_POS
    assert handlers.BY_NAME["pickup_to_pos"] is handlers.STORE_ORDER_TO_POS      # its name before issue 21's
    assert handlers.BY_NAME["erp_sync.return_order"] is handlers.ERP_RETURN_ORDER     # issue 25's, before the table
    assert all(handlers.BY_NAME[c.name] is c for c in handlers.TABLE)


def test_every_event_has_a_consumer_and_every_consumer_a_catalogued_event():
    assert [e.TYPE for e in events.CATALOGUE if not handlers.consumers_of(e.TYPE)] == []
    assert {c.event for c in handlers.TABLE} <= set(events.CATALOGUE)


def test_filters_pick_fulfilment_types_and_target_states():
    allocated = {"order_id": "O-1", "from": "paid", "to": "allocated", "fulfillment": "pickup"}
    assert handlers.STORE_ORDER_TO_POS.wants(allocated)
    assert handlers.STORE_ORDER_TO_POS.wants({**allocated, "fulfillment": "delivery", "to": "picked"})   # every type
    assert not handlers.DELIVERY_TO_COURIER.wants(allocated)          # another fulfilment type
    assert not handlers.ERP_SALES_ORDER.wants(allocated)              # another target state
    assert handlers.ERP_SALES_ORDER.wants({**allocated, "to": "completed"})
    assert not handlers.ERP_RETURN_ORDER.wants({**allocated, "to": "completed"})     # only after completion
    assert handlers.ERP_RETURN_ORDER.wants({**allocated, "from": "completed", "to": "returned"})
    assert handlers.ERP_RETURN_ORDER.wants({**allocated, "to": "refunded", "fulfillment": "express"})   # any type
    assert not handlers.ERP_SALES_ORDER.wants({**allocated, "to": "returned"})
    assert handlers.STOCK_TO_SHOP.wants({"sku": "A", "location_id": "S001", "cause": "sale"})


SAMPLES = (
    events.StockChanged("TEA-001", "S001", "sale"),
    events.OrderStatusChanged("O-1", "paid", "allocated", "pickup", "S001", "routing"),
    events.ShipmentRebookNeeded("O-1", 7, "local_delivery", "DADA-1", "cancelled"),
    events.OrderRefundDue("O-1", "wx-1", 300, "returned", "R-1"),
    events.ChannelAfterSaleAnswerDue("O-1", "wechat_shop", "9100001", False, "asks too much"),
    events.OrderRefunded("O-1", "R-1", 300, True),
)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_an_event_reads_back_from_its_wire_data(event):
    assert type(event).from_data(event.data()) == event


def test_the_wire_keeps_the_envelope_keys_a_queued_message_of_the_old_hub_has():
    assert set(SAMPLES[0].data()) == {"sku", "location_id", "cause"}
    assert set(SAMPLES[1].data()) == {"order_id", "from", "to", "fulfillment", "location_id", "source"}
    assert set(SAMPLES[2].data()) == {"order_id", "shipment_id", "carrier", "shipment_ref", "reason"}
    assert set(SAMPLES[3].data()) == {"order_id", "payment_ref", "amount_fen", "reason", "refund_no"}
    old = {"order_id": "O-1", "from": "paid", "to": "allocated", "fulfillment": "pickup", "location_id": "S001",
           "source": "routing"}
    assert events.OrderStatusChanged.from_data(old) == SAMPLES[1]
    bare = events.OrderRefundDue.from_data({"order_id": "O-1", "payment_ref": "wx-1"})     # optional keys absent
    assert (bare.amount_fen, bare.reason, bare.refund_no) == (None, None, None)
    assert set(SAMPLES[-1].data()) == {"order_id", "refund_no", "amount_fen", "after_completion"}
    # a refund_due parked under crm_refund_points before order.refunded took its place still reads, replayed
    parked = events.OrderRefunded.from_data(SAMPLES[3].data())
    assert (parked.order_id, parked.refund_no, parked.amount_fen) == ("O-1", "R-1", 300)


def test_events_are_frozen_and_need_their_fields():
    with pytest.raises(AttributeError):
        SAMPLES[0].sku = "OTHER"                     # type: ignore[misc]
    with pytest.raises(TypeError):
        events.StockChanged("TEA-001", "S001")       # type: ignore[call-arg]  (no cause)


class _NoSession:
    def __call__(self):
        raise AssertionError("emit must not need the database")


def test_emit_refuses_what_is_not_an_event_and_coalesces_once_per():
    uow = UnitOfWork(_NoSession())
    uow.emitted, uow._once, uow._outbox = [], {}, []
    with pytest.raises(TypeError):
        uow.emit({"sku": "TEA-001", "location_id": "S001", "cause": "sale"})     # type: ignore[arg-type]
    with pytest.raises(TypeError):
        uow.emit(events.StockChanged.TYPE)                                     # type: ignore[arg-type]
    first = uow.emit(SAMPLES[0], once_per=("s", "TEA-001"))
    assert uow.emit(SAMPLES[0], once_per=("s", "TEA-001")) == first
    [row] = uow._outbox
    assert row["event_type"] == "stock.changed" and row["payload"]["data"] == SAMPLES[0].data()
    assert set(row["payload"]) == {"id", "type", "occurred_at", "data"}


def test_the_core_emits_only_catalogued_events_built_in_place():
    """`uow.emit(events.X(...))` everywhere in the core: a name, a dict or an unknown class fails."""
    bad = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit" \
                    and node.args:
                first = node.args[0]
                built = first.func if isinstance(first, ast.Call) else None
                name = built.attr if isinstance(built, ast.Attribute) else None
                if name is None or getattr(events, name, None) not in events.CATALOGUE:
                    bad.append(f"{path.relative_to(CORE.parent)}:{node.lineno}")
    assert bad == []
