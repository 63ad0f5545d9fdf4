"""`/admin/api`: what the operations console shows, as JSON — connector health over the last hour,
event flow and backlog (both a minute at a time for the charts: charts.py), stock per SKU and location
with the ledger's history, order search with the timeline, dead letters with filter and replay (one or
many), reconciliation drift.

Everything here is read-only except replay. A browser that holds the console's basic credentials
must also send the console's token in `X-Console-Token` to replay, so no other site can post here."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from hub.api import charts, schemas
from hub.api.http import ApiError, Call, Param, Route, log
from hub.api.letters import letter_kind, may_replay, parked_letter_id, queue_depths, replay_letter, unknown_outcome
from hub.api.lines import line_view
from hub.api.pipeline import all_secrets
from hub.api.views import iso, refund_list, shipment_list, timeline
from hub.domain.errors import UnknownSku
from hub.domain.order_states import OrderStatus
from hub.privacy import mask_phone, redact
from hub.services import inventory, money_owed
from hub.storage.tables import (
    UNKNOWN_OUTCOME,
    ChannelOrderPull,
    DeadLetter,
    OrderRow,
    OutboxMessage,
    ProcessedMessage,
    SkuRow,
    StockMovement,
    utcnow,
)

HISTORY = 50          # ledger rows shown per lookup
STATUSES = tuple(str(s) for s in OrderStatus)


# -- connectors and flow ---------------------------------------------------------------------------

def _last_errors(call: Call, session: Any) -> dict[str, str]:
    """The newest parked error naming each system (connector errors read 'system: ...')."""
    out: dict[str, str] = {}
    for name in call.ctx.config.systems:
        row = session.execute(select(DeadLetter.error).where(DeadLetter.status == "parked",
                                                             DeadLetter.error.like(f"%{name}:%"))
                              .order_by(DeadLetter.last_failed_at.desc()).limit(1)).scalar_one_or_none()
        if row:
            out[name] = redact(row, all_secrets(call.ctx.config))[:300]
    return out


def connectors(call: Call) -> dict:
    cfg = call.ctx.config
    with call.ctx.uow() as uow:
        errors = _last_errors(call, uow.session)
    health = call.deps.health.report(cfg.systems)
    for row in health:
        row["kind"] = cfg.systems[row["system"]].kind
        row["last_success_at"], row["last_failure_at"] = iso(call, row["last_success_at"]), iso(call,
                                                                                              row["last_failure_at"])
        row["last_error"] = errors.get(row["system"], "")
    return {"connectors": health}


def _counts(session: Any, column: Any, time_column: Any, since: Any, *where: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(time_column >= since, *where).group_by(column))
    return {str(k): int(n) for k, n in rows}


def flow(call: Call) -> dict:
    now = utcnow()
    with call.ctx.uow() as uow:
        s = uow.session
        unsent = s.execute(select(func.count()).select_from(OutboxMessage)
                           .where(OutboxMessage.sent_at.is_(None))).scalar_one()
        oldest = s.execute(select(func.min(OutboxMessage.created_at))
                           .where(OutboxMessage.sent_at.is_(None))).scalar_one()
        parked = s.execute(select(func.count()).select_from(DeadLetter)
                           .where(DeadLetter.status == "parked")).scalar_one()
        events_5m = _counts(s, OutboxMessage.event_type, OutboxMessage.created_at, now - timedelta(minutes=5))
        events_1h = _counts(s, OutboxMessage.event_type, OutboxMessage.created_at, now - timedelta(hours=1))
        consumed_5m = _counts(s, ProcessedMessage.consumer, ProcessedMessage.processed_at, now - timedelta(minutes=5))
        consumed_1h = _counts(s, ProcessedMessage.consumer, ProcessedMessage.processed_at, now - timedelta(hours=1))
    return {
        "outbox_unsent": int(unsent), "outbox_oldest_unsent_at": iso(call, oldest), "dead_letters_parked": int(parked),
        "queues": queue_depths(call),
        "events": [{"type": t, "last_5m": events_5m.get(t, 0), "last_1h": n, "per_min_5m": round(
            events_5m.get(t, 0) / 5, 2)} for t, n in sorted(events_1h.items())],
        "consumers": [{"consumer": c, "last_5m": consumed_5m.get(c, 0), "last_1h": n} for c, n in
                      sorted(consumed_1h.items())],
    }


def reconciliation(call: Call) -> dict:
    metrics = call.deps.metrics
    found = {labels["channel"]: v for labels, v in metrics.samples("hub_reconciliation_drift_total")}
    repaired = {labels["channel"]: v for labels, v in metrics.samples("hub_reconciliation_repaired_total")}
    channels = sorted({c.id for c in call.ctx.config.channels} | set(found) | set(repaired))
    return {"channels": [{"channel": c, "drift_found": int(found.get(c, 0)), "repaired": int(repaired.get(c, 0))}
                         for c in channels],
            "note": "since the hub's processes started",
            "orders": order_pulls(call)}


def order_pulls(call: Call) -> list[dict[str, Any]]:
    """Each channel's order pull: its cursor, when it last ran, what it failed with, and the orders the pull
    found that the pushes never delivered (kept in the database: since the pull began, across restarts)."""
    with call.ctx.reader() as uow:
        rows = {r.channel: r for r in uow.session.execute(select(ChannelOrderPull)).scalars()}
    pulled = [c for c in call.ctx.config.channels if c.publish_to]
    return [{"channel": c.id, "system": c.publish_to, "cursor_at": iso(call, r.cursor_at) if r else None,
             "last_pull_at": iso(call, r.last_pull_at) if r else None, "listed": r.listed if r else 0,
             "missed": r.missed if r else 0, "last_missed_at": iso(call, r.last_missed_at) if r else None,
             "last_error": r.last_error if r else None}
            for c in pulled for r in [rows.get(c.id)]]


# -- stock with the ledger's history ----------------------------------------------------------------

def stock(call: Call) -> dict:
    cfg, sku = call.ctx.config, call.params["sku"]
    location = call.query("location")
    if location is not None and location not in {loc.id for loc in cfg.locations}:
        raise ApiError(404, "unknown_location", f"unknown location {location!r}")
    with call.ctx.uow() as uow:
        row = uow.session.get(SkuRow, sku)
        if row is None:
            raise ApiError(404, "unknown_sku", f"unknown SKU {sku!r}")
        try:
            levels = inventory.stock_of(uow.session, cfg, sku)
        except UnknownSku:
            raise ApiError(404, "unknown_sku", f"unknown SKU {sku!r}") from None
        stmt = select(StockMovement).where(StockMovement.sku == sku)
        if location:
            stmt = stmt.where(StockMovement.location_id == location)
        moves = list(uow.session.execute(stmt.order_by(StockMovement.id.desc()).limit(HISTORY)).scalars())
        history = _history(call, uow.session, moves)
        return {"sku": sku, "name": row.name,
                "locations": [{"location_id": lv.location_id, "on_hand": lv.on_hand, "reserved": lv.reserved,
                               "safety_stock": lv.safety_stock, "available": lv.available}
                              for lv in levels if location in (None, lv.location_id)],
                "history": history}


def _history(call: Call, session: Any, moves: list[StockMovement]) -> list[dict]:
    """Newest first, each with on-hand before and after it at its location (recording order)."""
    out = []
    for m in moves:
        before = session.execute(
            select(StockMovement.on_hand_after).where(StockMovement.sku == m.sku,
                                                      StockMovement.location_id == m.location_id,
                                                      StockMovement.id < m.id, StockMovement.on_hand_after.is_not(None))
            .order_by(StockMovement.id.desc()).limit(1)).scalar_one_or_none()
        out.append({"at": iso(call, m.occurred_at), "recorded_at": iso(call, m.recorded_at),
                    "location_id": m.location_id, "kind": m.kind, "qty": m.qty, "source": m.source,
                    "document_id": m.external_id, "before": before or 0,
                    # a reservation or its release moves no on-hand: after is before
                    "after": m.on_hand_after if m.on_hand_after is not None else before or 0,
                    "applied": m.applied, "note": m.note or ""})
    return out


# -- orders ------------------------------------------------------------------------------------------

def _summary(call: Call, o: OrderRow) -> dict:
    buyer = o.buyer or {}
    return {"order_id": o.id, "channel": o.channel, "status": o.status, "fulfillment": o.fulfillment_type,
            "location_id": o.location_id, "total_fen": o.total_fen, "buyer_phone": mask_phone(buyer.get("phone")),
            "created_at": iso(call, o.created_at), "updated_at": iso(call, o.updated_at)}


def order_search(call: Call) -> dict:
    stmt = select(OrderRow)
    if call.query("order_id"):
        stmt = stmt.where(OrderRow.id.like(f"%{call.query('order_id')}%"))
    if call.query("phone_suffix"):
        stmt = stmt.where(OrderRow.buyer["phone"].as_string().like(f"%{call.query('phone_suffix')}"))
    if call.query("store"):
        stmt = stmt.where(OrderRow.location_id == call.query("store"))
    if call.query("status"):
        stmt = stmt.where(OrderRow.status == call.query("status"))
    limit = call.query("limit") or 50
    with call.ctx.uow() as uow:
        rows = uow.session.execute(stmt.order_by(OrderRow.created_at.desc(), OrderRow.id).limit(limit)).scalars()
        return {"orders": [_summary(call, o) for o in rows]}


def order_detail(call: Call) -> dict:
    with call.ctx.uow() as uow:
        order = uow.session.get(OrderRow, call.params["order_id"])
        if order is None:
            raise ApiError(404, "not_found", f"no order {call.params['order_id']!r}")
        return {**_summary(call, order),
                "lines": [line_view(x) for x in order.lines],
                "routing": order.routing or {}, "timeline": timeline(call, uow, order, for_buyer=False),
                "refunds": refund_list(call, money_owed.of_order(uow, order.id)),
                "shipments": shipment_list(call, uow, order.id)}


# -- dead letters -------------------------------------------------------------------------------------

def _letter(call: Call, d: DeadLetter, secrets: list[str]) -> dict:
    return {"id": d.id, "target": d.target, "message_id": d.message_id, "attempts": d.attempts,
            "first_failed_at": iso(call, d.first_failed_at), "last_failed_at": iso(call, d.last_failed_at),
            "error": redact(d.error, secrets)[:500], "kind": d.kind}


def dead_letters(call: Call) -> dict:
    stmt = select(DeadLetter).where(DeadLetter.status == "parked")
    if call.query("target"):
        stmt = stmt.where(DeadLetter.target == call.query("target"))
    if call.query("q"):
        stmt = stmt.where(DeadLetter.error.like(f"%{call.query('q')}%"))
    secrets = all_secrets(call.ctx.config)
    with call.ctx.uow() as uow:
        rows = uow.session.execute(stmt.order_by(DeadLetter.id).limit(call.query("limit") or 200)).scalars()
        letters = [_letter(call, d, secrets) for d in rows]
        targets = sorted(uow.session.execute(select(DeadLetter.target).where(DeadLetter.status == "parked")
                                             .distinct()).scalars())
    return {"dead_letters": letters, "targets": targets}


def _replay(call: Call, ids: list[int], resend: bool = False) -> list[dict]:
    results = [{"dead_letter_id": i, "replayed": replay_letter(call, i, resend=resend)} for i in ids]   # a failure
    # is its answer
    log.info("operator replayed %d dead letter(s): %d ok", len(ids), sum(r["replayed"] for r in results))
    return results


def replay_one(call: Call) -> dict:
    body = call.body()
    dead_letter_id = parked_letter_id(call)          # an unknown or non-numeric id: 404 before anything else
    may_replay(call, call.request.headers.get("X-Console-Token", ""))
    resend = bool(body.get("resend"))
    if letter_kind(call, dead_letter_id) == UNKNOWN_OUTCOME and not resend:
        raise unknown_outcome(dead_letter_id)        # asked first: the ERP may hold it already
    return _replay(call, [dead_letter_id], resend)[0]


def replay_many(call: Call) -> dict:
    body = call.body()
    may_replay(call, call.request.headers.get("X-Console-Token", ""))
    stmt = select(DeadLetter.id, DeadLetter.kind).where(DeadLetter.status == "parked")
    if body["ids"] is not None:
        stmt = stmt.where(DeadLetter.id.in_(body["ids"]))
    elif body["target"] is not None:
        stmt = stmt.where(DeadLetter.target == body["target"])
    else:
        raise schemas.invalid("ids", "name the dead letters (ids) or their consumer (target)")
    with call.ctx.uow() as uow:
        rows = list(uow.session.execute(stmt.order_by(DeadLetter.id).limit(1000)))
    # Letters of unknown outcome are left for one-by-one replay with resend, never resent in bulk.
    ids = [i for i, kind in rows if kind != UNKNOWN_OUTCOME]
    held = [i for i, kind in rows if kind == UNKNOWN_OUTCOME]
    results = _replay(call, ids)
    return {"replayed": sum(r["replayed"] for r in results), "failed": sum(not r["replayed"] for r in results),
            "results": results, "unknown_outcome": held}


# -- the route table -------------------------------------------------------------------------------

TEXT = schemas.Str(required=False, max_len=64)
LIMIT = schemas.Int(required=False, minimum=1, maximum=500)
REPLAY_ONE = schemas.Obj(fields={
    "resend": schemas.Bool(required=False, description="a letter of unknown outcome: the operator checked the "
                                                      "other system and says send it again"),
})
REPLAY_MANY = schemas.Obj(fields={
    "ids": schemas.Arr(required=False, item=schemas.Int(minimum=1, maximum=2**62), min_items=1, max_items=1000),
    "target": schemas.Str(required=False, max_len=96, description="every parked letter of this consumer"),
})
A = "/admin/api"
ROUTES = [
    Route("GET", A + "/connectors", connectors, "admin",
          "Connector health: calls, errors, error rate and latency over the last hour; last success and failure"),
    Route("GET", A + "/flow", flow, "admin", "Event flow rates, outbox and queue backlog, dead letters parked"),
    Route("GET", A + "/charts", charts.charts, "admin",
          "The last hour a minute at a time: events written, published, consumed and parked; outbox backlog; "
          "each connector's calls, errors, error rate and latency"),
    Route("GET", A + "/reconciliation", reconciliation, "admin",
          "Channel stock drift found and repaired; each channel's order pull (cursor, last run, orders missed)"),
    Route("GET", A + "/stock/{sku}", stock, "admin", "Stock of a SKU per location, with the ledger's history",
          query=(Param("location", schemas.Str(required=False, max_len=32), "one location only"),),
          responses={200: "levels and history (newest first)", 404: "unknown SKU or location"}),
    Route("GET", A + "/orders", order_search, "admin", "Search orders (newest first)",
          query=(Param("order_id", TEXT, "part of the order id"),
                 Param("phone_suffix", schemas.Str(required=False, max_len=11, pattern="[0-9]+"),
                       "last digits of the buyer's phone"),
                 Param("store", schemas.Str(required=False, max_len=32), "location id"),
                 Param("status", schemas.Str(required=False, enum=STATUSES)), Param("limit", LIMIT, "default 50"))),
    Route("GET", A + "/orders/{order_id}", order_detail, "admin",
          "An order with its timeline, refunds and shipments (fee, tips, penalty, escalation)",
          responses={200: "the order", 404: "unknown order"}),
    Route("GET", A + "/dead-letters", dead_letters, "admin", "Parked dead letters, filtered",
          query=(Param("target", schemas.Str(required=False, max_len=96), "consumer"),
                 Param("q", TEXT, "text in the error"), Param("limit", LIMIT, "default 200"))),
    Route("POST", A + "/dead-letters/{dead_letter_id}/replay", replay_one, "admin", "Replay one dead letter",
          body=REPLAY_ONE, responses={200: "replayed, or failed again (kept)", 403: "console token missing",
                                      404: "no such parked dead letter",
                                      409: "unknown outcome: check the other system, then replay with resend"}),
    Route("POST", A + "/dead-letters/replay", replay_many, "admin",
          "Replay many dead letters: by ids, or every one of a consumer", body=REPLAY_MANY,
          responses={200: "counts and per-letter results", 403: "console token missing"}),
]
