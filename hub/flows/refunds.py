"""A refund that is due (a paid order cancelled, or paid after it expired).

The hub has no refund call to make yet (the payment platform's refund is an operator's step),
and the order's state machine has no place for a note beside its state, so this consumer
logs the refund for operations and counts it in the metrics; the order's timeline already
shows the cancellation or refund that caused it.
"""
from __future__ import annotations

import logging
from typing import Any

from hub.bootstrap import HubContext
from hub.consumers import consumer
from hub.metrics import METRICS
from hub.services import orders
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@consumer("fulfilment.refund_due")
def note_refund_due(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    order = orders.get(uow, data["order_id"])
    log.warning("refund due: order %s (%s, %d fen), payment %s", order.id, order.status, order.total_fen,
                data.get("payment_ref") or order.payment_ref)
    METRICS.refunds_due.labels(order.channel).inc()
