"""The outbound side of the three O2O flows: idempotent consumers of the core's events.

One module per flow; which function consumes which event, with what filter, in which worker, is
the table in `hub/handlers.py` (a consumer's name there is its function's name here); `hub/consumers.py`
`handle` runs one on an event (its filter, once, retried, parked on failure).

- store_pos.py     every store's order (pickup, delivery, a store's parcel) at its POS: pushed, PREPARED,
                   COMPLETED, CANCELED
- delivery.py      local courier: quote + book -> dispatched; re-book after a courier gave up; cancel
- express.py       waybill + tracking subscription -> shipped (stock committed); waybills the courier
                   stopped tracking polled (a scheduler timer)
- shipping_info.py the payment platform's shipping-info upload (pickup, same city, express)
- completed.py     ERP sales order (+ the feed) and CRM points, as two consumers; a return or refund
                   after completion as an ERP return order, once per return id
- refunds.py       a refund that is due, asked of the payment platform by its fixed out_refund_no
- erp_pull.py      product master and warehouse stock from the ERP (timer and `hub resync`)
- reconcile.py     what each channel shows vs what the hub holds, drift repaired
- channel_orders.py a channel that takes its own orders told the hub accepted (confirm) and picked them

No transaction stays open while an external system is called: a consumer that calls out
(`calls_out=True`) reads what the call needs and commits, calls, then records the result in a
new short transaction that re-reads the state first (another replica may have moved it). Every
external system is idempotent on the hub's order id (or takes absolute figures), so a crash at
any point only repeats a call. A call that fails after its retries parks the event.
"""
from __future__ import annotations

from ..config import HubConfig


def callback_url(cfg: HubConfig, system: str) -> str:
    """Where a system posts its callbacks to the hub (`/callbacks/{connector}`)."""
    return f"http://{cfg.hub.http.host}:{cfg.hub.http.port}/callbacks/{system}"
