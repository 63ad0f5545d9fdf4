"""Operations: health (no key, for load balancers), Prometheus metrics, and the console page
(`console.html`, which reads `/admin/api` — see console.py)."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from werkzeug import Response

from hub.api.http import Call, Route, json_response, log
from hub.api.letters import letter_kind, may_replay, parked_letter_id, queue_depths, replay_letter, unknown_outcome
from hub.api.pipeline import csrf_token
from hub.domain.order_states import OrderStatus
from hub.domain.refunds import RefundStatus
from hub.metrics import CONTENT_TYPE, gauge
from hub.storage.tables import UNKNOWN_OUTCOME, DeadLetter, OutboxMessage, RefundRow

# Refunds the platform has not answered for good yet: one that stays here long is stuck.
OPEN_REFUNDS = (RefundStatus.REQUESTED, RefundStatus.PROCESSING)


def _backlog(call: Call) -> tuple[int, int]:
    with call.ctx.reader() as uow:
        unsent = uow.session.execute(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.sent_at.is_(None))).scalar_one()
        parked = uow.session.execute(select(func.count()).select_from(DeadLetter)
                                     .where(DeadLetter.status == "parked")).scalar_one()
    return int(unsent), int(parked)


def health(call: Call) -> Response:
    try:
        unsent, parked = _backlog(call)       # a reader: a health check never queues behind a writer
    except Exception as exc:  # noqa: BLE001 - any failure here means "not healthy"
        log.error("health check failed: %s", type(exc).__name__)
        return json_response({"status": "unavailable", "database": "unreachable"}, 503)
    return json_response({"status": "ok", "database": "ok", "outbox_unsent": unsent, "dead_letters": parked})


def _refunds_by_status(call: Call) -> dict[str, float]:
    with call.ctx.reader() as uow:
        rows = uow.session.execute(select(RefundRow.status, func.count()).group_by(RefundRow.status)).all()
    found = {str(status): float(n) for status, n in rows}
    return {str(s): found.get(str(s), 0.0) for s in RefundStatus} | found


def _age_s(now: datetime, then: datetime | None) -> float:
    """Seconds since `then` (0 when there is none); SQLite hands datetimes back without their UTC zone."""
    if then is None:
        return 0.0
    return max((now - (then if then.tzinfo else then.replace(tzinfo=UTC))).total_seconds(), 0.0)


def _oldest_waiting(call: Call) -> tuple[float, dict[str, float]]:
    """Ages of the oldest unsent outbox event and of the oldest refund in each status that still waits on
    the platform: what "stuck" alerts compare with a threshold."""
    now = call.deps.now()
    with call.ctx.reader() as uow:
        s = uow.session
        oldest = s.execute(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.sent_at.is_(None))
                           ).scalar_one()
        refunds: dict[str, datetime | None] = {
            status: at for status, at in s.execute(select(RefundRow.status, func.min(RefundRow.updated_at))
                                                   .where(RefundRow.status.in_([str(x) for x in OPEN_REFUNDS]))
                                                   .group_by(RefundRow.status))}
    return _age_s(now, oldest), {str(x): _age_s(now, refunds.get(str(x))) for x in OPEN_REFUNDS}


def metrics(call: Call) -> Response:
    unsent, parked = _backlog(call)
    oldest_unsent, oldest_refunds = _oldest_waiting(call)
    gauges = [gauge("hub_outbox_unsent", unsent),
              gauge("hub_outbox_oldest_unsent_age_seconds", oldest_unsent),
              gauge("hub_dead_letters_parked", parked),
              gauge("hub_refunds", _refunds_by_status(call), "status"),
              gauge("hub_refunds_oldest_open_age_seconds", oldest_refunds, "status")]
    depths = queue_depths(call)
    if depths:
        gauges.append(gauge("hub_queue_messages", depths, "queue"))
    return Response(call.deps.metrics.render(gauges), content_type=CONTENT_TYPE)


CONSOLE = Path(__file__).with_name("console.html")


def admin(call: Call) -> Response:
    """The console: a static page that reads /admin/api; the form token and the pick lists are filled in."""
    cfg = call.ctx.config
    meta = {"locations": [loc.id for loc in cfg.locations], "stores": [loc.id for loc in cfg.stores],
            "statuses": [str(s) for s in OrderStatus]}
    page = (CONSOLE.read_text(encoding="utf-8").replace("{{CONSOLE_TOKEN}}", csrf_token(cfg))
            .replace("{{CONSOLE_META}}", json.dumps(meta).replace("</", "<\\/")))
    return Response(page, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                             "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                                        "style-src 'unsafe-inline'; frame-ancestors 'none'"})


def replay(call: Call) -> Response:
    dead_letter_id = parked_letter_id(call)
    may_replay(call, call.request.form.get("csrf", ""))
    resend = call.request.form.get("resend") == "1"
    if letter_kind(call, dead_letter_id) == UNKNOWN_OUTCOME and not resend:
        raise unknown_outcome(dead_letter_id)
    ok = replay_letter(call, dead_letter_id, resend=resend)
    log.info("dead letter %s replayed by an operator: %s", dead_letter_id, "ok" if ok else "failed again")
    if call.request.form:          # a plain HTML form: back to the console
        return Response(status=303, headers={"Location": f"/admin?replayed={dead_letter_id}&ok={int(ok)}"})
    return json_response({"dead_letter_id": dead_letter_id, "replayed": ok})


ROUTES = [
    Route("GET", "/health", health, "public", "Database reachable, outbox backlog, dead letters",
          responses={200: "healthy", 503: "database unreachable"}),
    Route("GET", "/metrics", metrics, "ops", "Prometheus text exposition", responses={200: "metrics"}),
    Route("GET", "/admin", admin, "admin", "Operations console (HTML)", responses={200: "the console"}),
    Route("POST", "/admin/dead-letters/{dead_letter_id}/replay", replay, "admin", "Replay a parked dead letter",
          responses={200: "replay outcome", 303: "back to the console", 403: "form token missing",
                     404: "no such parked dead letter"}),
]
