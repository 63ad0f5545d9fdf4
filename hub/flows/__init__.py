"""The outbound side of the three O2O flows: idempotent consumers of the core's events.

One module per flow; each consumer is registered with `hub.consumers.consumer` under the
name of the service that runs it (`fulfilment.*`, `erp_sync.*`), so a dead letter names it.

- pickup.py        order at the store's POS: pushed, PREPARED, COMPLETED, CANCELED
- delivery.py      local courier: quote + book -> dispatched; re-book after a courier gave up; cancel
- express.py       waybill + tracking subscription -> shipped (stock committed)
- shipping_info.py the payment platform's shipping-info upload (pickup, same city, express)
- completed.py     ERP sales order (+ the feed) and CRM points, as two consumers
- refunds.py       a refund that is due, asked of the payment platform by its fixed out_refund_no
- erp_pull.py      product master and warehouse stock from the ERP (timer and `hub resync`)
- reconcile.py     what each channel shows vs what the hub holds, drift repaired

No transaction stays open while an external system is called: a consumer that calls out
(`calls_out=True`) reads what the call needs and commits, calls, then records the result in a
new short transaction that re-reads the state first (another replica may have moved it). Every
external system is idempotent on the hub's order id (or takes absolute figures), so a crash at
any point only repeats a call. A call that fails after its retries parks the event.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..bootstrap import HubContext
from ..config import HubConfig
from ..consumers import Outcome, T, consumer, handle_once

# consumer name -> which events it wants; the others are skipped without a database write.
_WANTS: dict[str, Callable[[dict[str, Any]], bool]] = {}


def reacts(name: str, *, fulfillment: Iterable[str] | None = None, to: Iterable[str] | None = None,
           calls_out: bool = False) -> Callable[[T], T]:
    """Register an order.status_changed consumer for some fulfilment types and target states."""
    types, targets = set(fulfillment or ()), set(to or ())

    def wants(data: dict[str, Any]) -> bool:
        return (not types or data.get("fulfillment") in types) and (not targets or data.get("to") in targets)

    def register(fn: T) -> T:
        _WANTS[name] = wants
        return consumer(name, calls_out=calls_out)(fn)
    return register


def handle(ctx: HubContext, name: str, envelope: dict[str, Any]) -> Outcome | None:
    """Run consumer `name` on an event it wants (once, retried, parked on failure); None if skipped."""
    wants = _WANTS.get(name)
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if wants is not None and isinstance(data, dict) and not wants(data):
        return None
    return handle_once(ctx, name, envelope)


def callback_url(cfg: HubConfig, system: str) -> str:
    """Where a system posts its callbacks to the hub (`/callbacks/{connector}`)."""
    return f"http://{cfg.hub.http.host}:{cfg.hub.http.port}/callbacks/{system}"


def load() -> None:
    """Import every flow module, registering its consumers (for services and `hub dlq replay`)."""
    from . import completed, delivery, express, pickup, refunds, shipping_info  # noqa: F401
