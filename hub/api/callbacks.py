"""`/callbacks/{connector}`: systems that call back in their own format. The connector
verifies the system's own signature and maps the payload; the core applies it once.

Dispatch is by the system's `kind` in config.yaml; a system whose connector is not built
here answers 404 "unknown connector". Errors answer in the shape each system expects
(WeChat Pay: {"code": "FAIL"}; Kuaidi100: {"result": false}) beside the hub's own fields."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug import Request, Response

from hub.api.http import ApiError, Call, Route, json_response
from hub.bootstrap import HubContext
from hub.flows import express as express_flow
from hub.metrics import METRICS
from hub.ports import ChannelStockPublisher, ExpressCourier, LocalCourier, PaymentPlatform
from hub.services import courier_claims, payments, shop_orders
from hub.services.tracking import apply_tracking


def wechat_pay(call: Call, connector: PaymentPlatform) -> Response:
    notice = connector.parse_notification(dict(call.request.headers), call.request.get_data())
    with call.ctx.uow() as uow:
        payments.apply_notice(uow, notice, call.params["connector"])
        uow.commit()
    return json_response({"code": "SUCCESS"})


def wechat_shop(call: Call, connector: ChannelStockPublisher) -> Response:
    push = connector.parse_push(call.request.args, call.request.get_data())
    shop_order = connector.get_order(push["external_order_id"])   # act on the order as it is now
    with call.ctx.uow() as uow:
        shop_orders.sync(uow, call.ctx.config, call.params["connector"], shop_order, call.deps.now())
        uow.commit()
    return Response("success", content_type="text/plain")


def express(call: Call, connector: ExpressCourier) -> Response:
    events = connector.parse_tracking_push(call.request.form)
    stopped = getattr(connector, "tracking_stopped", lambda form: None)(call.request.form)
    with call.ctx.uow() as uow:
        for event in sorted(events, key=lambda e: e.at):      # a push carries the history, newest first
            apply_tracking(uow, call.ctx.config, event)
        if stopped is not None:                                # no more pushes: the hub polls instead
            express_flow.push_stopped(uow, connector.name, *stopped)
        uow.commit()
    return json_response(connector.push_reply(True))


def local_delivery(call: Call, connector: LocalCourier) -> Response:
    """A rider's status: a claim (its signature is public), confirmed with the courier's query API.

    Its order must be its booking's (else 422: a genuine courier never mixes them up, so only a
    forger or a broken sender gets it, and nothing is recorded); then only what the query says is
    applied, and the answer is 200 even when the query contradicts the claim — a genuine report can
    be overtaken by the next step, and a retry would be contradicted the same way. A courier that
    cannot be asked answers 502, so the courier sends its callback again later."""
    claim = connector.parse_callback(call.request.get_data())
    with call.ctx.reader() as uow:
        booking = courier_claims.booking_of(uow, claim)
    if not booking.active:
        # A dropped booking: the query answers for the order's current one, so this one cannot be confirmed.
        METRICS.courier_claims.labels(claim.carrier, "stale_booking").inc()
        return json_response(connector.callback_reply())
    truth = connector.query(booking.order_id)
    report = courier_claims.confirmed(claim, truth, call.deps.now())
    if report is not None:
        with call.ctx.uow() as uow:
            apply_tracking(uow, call.ctx.config, report)
            uow.commit()
    return json_response(connector.callback_reply())


# system kind (config.yaml) -> handler
HANDLERS: dict[str, Callable[[Call, Any], Response]] = {
    "wechat_pay": wechat_pay,
    "wechat_shop": wechat_shop,
    "express_courier": express,
    "local_courier": local_delivery,
}


def _connector(call: Call) -> tuple[str, Any]:
    name = call.params["connector"]
    system = call.ctx.config.systems.get(name)
    connector = call.deps.connectors.get(name)
    if system is None or connector is None or system.kind not in HANDLERS:
        raise ApiError(404, "unknown_connector", f"unknown connector {name!r}")
    return system.kind, connector


def receive(call: Call) -> Response:
    kind, connector = _connector(call)
    return HANDLERS[kind](call, connector)


def verify_address(call: Call) -> Response:
    """WeChat's server-address check: GET with echostr, answered with echostr once verified."""
    kind, connector = _connector(call)
    if not hasattr(connector, "echo"):
        raise ApiError(405, "method_not_allowed", "this connector takes POST only", allowed=["POST"],
                       _headers={"Allow": "POST"})
    return Response(connector.echo(call.request.args), content_type="text/plain")


def error_reply(ctx: HubContext, request: Request, body: dict[str, Any], status: int,
                headers: dict[str, str]) -> Response:
    """An error in the shape the calling system understands, with the hub's error and message."""
    name = request.path.split("/")[2] if request.path.count("/") >= 2 else ""
    system = ctx.config.systems.get(name)
    kind = system.kind if system is not None else ""
    if kind == "wechat_pay":
        body = {"code": "FAIL", **body}
    elif kind == "express_courier":
        body = {"result": False, "returnCode": "500", **body}
    return json_response(body, status, headers)


ROUTES = [
    Route("POST", "/callbacks/{connector}", receive, "callback",
          "A system's own push (payment notification, shop order event, courier tracking), signature-verified",
          responses={200: "accepted (in the system's reply format)", 401: "bad signature, nothing changed",
                     404: "unknown connector or order", 409: "the order cannot move that way",
                     422: "payload does not map", 502: "the system's query API did not answer"}),
    Route("GET", "/callbacks/{connector}", verify_address, "callback",
          "WeChat's server-address check (echostr)",
          responses={200: "echostr", 401: "bad signature", 404: "unknown connector",
                     405: "this connector takes POST only"}),
]
