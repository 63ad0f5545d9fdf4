"""The hub's answer to a buyer's after-sales request in a channel (`services/channel_after_sales.py` decided it):
accepted or rejected through the channel's own API (the WeChat shop's `aftersale/acceptapply` / `rejectapply`),
with no transaction open; then the request as the channel holds it now is recorded (an accepted refund is
usually paid back at once: the refund succeeds and, every fen back, the order is refunded). The channel answers
the same decision again ok, so a redelivered event only repeats the call. A channel that refuses (the buyer
withdrew meanwhile) is read again: a request no longer waiting is recorded as it is, anything else parks.
"""
from __future__ import annotations

import logging

from hub.bootstrap import HubContext
from hub.events import ChannelAfterSaleAnswerDue
from hub.ports import ChannelAfterSales, PermanentError
from hub.services import channel_after_sales, orders
from hub.storage.tables import utcnow

log = logging.getLogger(__name__)


def channel_after_sale_answer(ctx: HubContext, event: ChannelAfterSaleAnswerDue) -> None:
    channel = ctx.connectors[event.system]
    if not isinstance(channel, ChannelAfterSales):         # config changed since the request was decided
        raise LookupError(f"{event.system} takes no after-sales answers (no ports.ChannelAfterSales)")
    try:
        if event.accept:
            channel.accept_after_sale(event.after_sale_id)
        else:
            channel.reject_after_sale(event.after_sale_id, event.reason)
    except PermanentError:
        if channel.get_after_sale(event.after_sale_id).status == "requested":
            raise                                   # still waiting and refused: an operator looks
        log.info("after-sale %s was answered meanwhile; recording it as %s holds it", event.after_sale_id,
                 event.system)
    sale = channel.get_after_sale(event.after_sale_id)      # its word now, no transaction open
    with ctx.uow() as uow:
        channel_after_sales.apply(uow, event.system, orders.get(uow, event.order_id, lock=True), sale, utcnow())
        uow.commit()
    log.info("order %s: after-sale %s %s in %s (now %s)", event.order_id, event.after_sale_id,
             "accepted" if event.accept else "rejected", event.system, sale.status)
