"""Operations: health (no key, for load balancers), Prometheus metrics, and a small console
with connectors, recent orders and dead letters that can be replayed."""
from __future__ import annotations

import hmac
from html import escape

from sqlalchemy import func, select
from werkzeug import Response

from ..privacy import redact
from ..storage.tables import DeadLetter, OrderRow, OutboxMessage
from .auth import all_secrets, csrf_token
from .http import ApiError, Call, Route, json_response, log
from .shop import iso


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


def metrics(call: Call) -> Response:
    unsent, parked = _backlog(call)
    body = call.deps.metrics.render([
        ("hub_outbox_unsent", "Outbox events not yet confirmed by the broker", unsent),
        ("hub_dead_letters_parked", "Failed work parked for an operator", parked),
    ])
    return Response(body, content_type="text/plain; version=0.0.4; charset=utf-8")


def _last_errors(call: Call, session) -> dict[str, str]:
    """The newest parked error that names each system (connector errors read 'system: ...')."""
    out: dict[str, str] = {}
    for name in call.ctx.config.systems:
        row = session.execute(select(DeadLetter.error).where(DeadLetter.status == "parked",
                                                             DeadLetter.error.like(f"%{name}:%"))
                              .order_by(DeadLetter.last_failed_at.desc()).limit(1)).scalar_one_or_none()
        if row:
            out[name] = row
    return out


def admin(call: Call) -> Response:
    secrets, cfg = all_secrets(call.ctx.config), call.ctx.config

    def cell(value: object) -> str:
        return f"<td>{escape(redact(str(value if value is not None else ''), secrets))}</td>"

    token = csrf_token(cfg)
    with call.ctx.reader() as uow:       # rows are read inside: the unit of work expires them on exit
        recent = uow.session.execute(select(OrderRow).order_by(OrderRow.created_at.desc()).limit(20)).scalars()
        order_rows = "".join(
            f"<tr>{cell(o.id)}{cell(o.channel)}{cell(o.fulfillment_type)}{cell(o.location_id)}{cell(o.status)}"
            f"{cell(o.total_fen)}{cell(iso(call, o.created_at))}</tr>" for o in recent)
        parked = list(uow.session.execute(select(DeadLetter).where(DeadLetter.status == "parked")
                                          .order_by(DeadLetter.id).limit(200)).scalars())
        letters = "".join(
            f"<tr>{cell(d.id)}{cell(d.target)}{cell(d.attempts)}{cell(iso(call, d.last_failed_at))}"
            f"{cell(d.error[:300])}<td><form method='post' action='/admin/dead-letters/{d.id}/replay'>"
            f"<input type='hidden' name='csrf' value='{token}'><button>replay</button></form></td></tr>"
            for d in parked)
        errors = _last_errors(call, uow.session)
    connectors = "".join(
        f"<tr>{cell(name)}{cell(system.kind)}{cell('yes' if name in call.deps.connectors else 'no')}"
        f"{cell(errors.get(name, '')[:300])}</tr>" for name, system in cfg.systems.items())
    note = ""
    if call.query("replayed"):
        ok = call.query("ok") == "1"
        note = f"<p class='{'ok' if ok else 'bad'}'>dead letter {escape(call.query('replayed') or '')} " \
               f"{'replayed' if ok else 'failed again; still parked'}</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>O2O Hub console</title>
<style>body{{font:14px sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.ok{{color:green}}.bad{{color:#b00}}</style></head>
<body><h1>O2O Hub</h1>{note}
<h2>Connectors</h2><table><tr><th>system</th><th>kind</th><th>callbacks served</th><th>last error</th></tr>
{connectors}</table>
<h2>Recent orders</h2><table><tr><th>order</th><th>channel</th><th>fulfilment</th><th>location</th><th>status</th>
<th>total (fen)</th><th>created</th></tr>{order_rows}</table>
<h2>Dead letters ({len(parked)})</h2><table><tr><th>id</th><th>target</th><th>attempts</th><th>last failure</th>
<th>error</th><th></th></tr>{letters}</table></body></html>"""
    return Response(page, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


def replay(call: Call) -> Response:
    raw = call.params["dead_letter_id"]
    if not raw.isdigit():
        raise ApiError(404, "not_found", f"no dead letter {raw!r}")
    if call.caller.via_basic:
        # A browser re-sends basic credentials to any page that posts here: ask for the console's token.
        sent = call.request.form.get("csrf", "")
        if not hmac.compare_digest(sent.encode(), csrf_token(call.ctx.config).encode()):
            raise ApiError(403, "forbidden", "post this from the console (missing or wrong form token)")
    if call.deps.replay_dead_letter is None:
        raise ApiError(503, "replay_unavailable", "replay is not wired in this process")
    dead_letter_id = int(raw)
    with call.ctx.uow() as uow:
        row = uow.session.get(DeadLetter, dead_letter_id)
        if row is None or row.status != "parked":
            raise ApiError(404, "not_found", f"no parked dead letter {dead_letter_id}")
    ok = bool(call.deps.replay_dead_letter(dead_letter_id))
    log.info("dead letter %s replayed by an operator: %s", dead_letter_id, "ok" if ok else "failed again")
    if call.request.form:          # the console's form: back to the page
        return Response(status=303, headers={"Location": f"/admin?replayed={dead_letter_id}&ok={int(ok)}"})
    return json_response({"dead_letter_id": dead_letter_id, "replayed": ok})


ROUTES = [
    Route("GET", "/health", health, "public", "Database reachable, outbox backlog, dead letters",
          responses={200: "healthy", 503: "database unreachable"}),
    Route("GET", "/metrics", metrics, "ops", "Prometheus text exposition", responses={200: "metrics"}),
    Route("GET", "/admin", admin, "admin", "Operations console (HTML)", responses={200: "the console"}),
    Route("POST", "/admin/dead-letters/{dead_letter_id}/replay", replay, "admin", "Replay a parked dead letter",
          responses={200: "replay outcome", 303: "back to the console", 404: "no such parked dead letter",
                     503: "replay not wired"}),
]
