"""`/callbacks/{connector}`: systems that call back in their own format. The connector
verifies the system's own signature and maps the payload; the core applies it once.

Dispatch is by the callback use case the system's connector declares (`callback`: a payment
notice, a channel's order push, an express tracking push, a courier's claim); a system whose
connector declares none, or is not built here, answers 404 "unknown connector". Replies come
from the connector's declaration: the body it accepts (WeChat Pay's `{"code": "SUCCESS"}`, the
shop's plain `success`), and an error's fields beside the hub's own (WeChat Pay: {"code": "FAIL"};
Kuaidi100: {"result": false, "returnCode": "500"})."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from werkzeug import Request, Response

from hub.api.http import ApiError, Call, Route, json_response
from hub.bootstrap import HubContext
from hub.domain.errors import InsufficientStock, StoreCannotFill
from hub.domain.model import PlaceOrder
from hub.flows import express as express_flow
from hub.ports import ChannelOrderRefusal, ChannelRefunds, ChannelRiders, Declaration, PermanentError
from hub.services import channel_refunds, courier_claims, payments, shop_orders
from hub.services.tracking import apply_platform_rider, apply_tracking

log = logging.getLogger(__name__)


def accepted(declared: Declaration) -> Response:
    """The body the system expects when its callback is taken."""
    if isinstance(declared.accepted, str):
        return Response(declared.accepted, content_type="text/plain")
    return json_response(dict(declared.accepted))


def payment_notice(call: Call, name: str) -> None:
    notice = call.deps.connectors.payment_notices(name).parse_notification(dict(call.request.headers),
                                                                            call.request.get_data())
    with call.ctx.uow() as uow:
        payments.apply_notice(uow, notice, name)
        uow.commit()


def channel_order_push(call: Call, name: str) -> None:
    connector = call.deps.connectors.channel_pushes(name)
    push = connector.parse_push(call.request.args, call.request.get_data())
    if push.get("kind") == RIDER_PUSH and isinstance(connector, ChannelRiders):
        report = connector.rider_report(push)         # the platform's own rider: its signed word on him
        with call.ctx.uow() as uow:
            apply_platform_rider(uow, call.ctx.config, report)
            uow.commit()
        return
    if push.get("kind") in REFUND_PUSHES and isinstance(connector, ChannelRefunds):
        _channel_refund(call, connector, push)
        return
    try:
        shop_order = connector.get_order(push["external_order_id"])   # act on the order as it is now
        # An after-sales push: the request as the channel holds it now, read before the transaction opens.
        read_after_sale = getattr(connector, "get_after_sale", None)
        after_sale = read_after_sale(push["after_sale_id"]) if read_after_sale and push.get("after_sale_id") \
            else None
    except PermanentError as exc:
        # The channel itself refuses what its push names (no such order or after-sale): the push is bad input,
        # a 422 — not the 502 of a channel that failed to answer.
        raise ApiError(422, "channel_refused", f"{name} refuses what the push names: {exc}") from None
    try:
        for attempt in range(2):
            try:
                with call.ctx.uow() as uow:
                    shop_orders.sync(uow, call.ctx.config, name, shop_order, call.deps.now(), after_sale)
                    uow.commit()
                break
            except IntegrityError:
                # The same push delivered at once (or the order pull) placed it meanwhile, and the unique key
                # refused ours: synced again, it finds that order, so every copy is answered ok, not 409.
                if attempt:
                    raise
    except (StoreCannotFill, InsufficientStock) as exc:
        if not shop_order.channel_store or not isinstance(connector, ChannelOrderRefusal):
            raise                                      # the hub's own routing: a 409 with the reasons
        _refuse(connector, shop_order, exc)


def _refuse(connector: ChannelOrderRefusal, order: PlaceOrder, exc: StoreCannotFill | InsufficientStock) -> None:
    """The store the channel chose cannot fill its order (nothing was reserved, the transaction is gone): the
    channel is told to cancel it, with the cause, and the push is answered ok. A re-push then finds the order
    cancelled at the channel and never placed here; a failed cancel answers the push with an error, so the
    channel's re-push asks again."""
    cause = exc.cause if isinstance(exc, StoreCannotFill) else "sold_out"   # lost the last units to a rush
    connector.cancel_order(order.external_id or "", cause, str(exc))
    log.info("%s order %s refused back to the channel (%s): %s", connector.name, order.external_id, cause, exc)


RIDER_PUSH = "logistics_status"          # a channel's push kind (its mapping's `push` values) for its rider
REFUND_PUSHES = ("part_refund", "refund")      # ... and for a refund its buyer asked of it


def _channel_refund(call: Call, connector: ChannelRefunds, push: dict[str, Any]) -> None:
    """Decide (and apply) once, commit, then answer the platform with no transaction open; the push is
    answered ok only once the platform took the answer, so a failed answer is asked again by its re-push."""
    request = connector.refund_request(push)
    with call.ctx.uow() as uow:
        row = channel_refunds.decide(uow, connector.name, request, call.deps.now())
        agreed, reason, told = row.agreed, row.reason, row.told_at is not None
        uow.commit()
    if told:
        return
    connector.answer_refund(request.external_order_id, request.refund_id, agreed, reason)
    with call.ctx.uow() as uow:
        channel_refunds.told(uow, request.channel, request.refund_id, call.deps.now())
        uow.commit()


def express_tracking_push(call: Call, name: str) -> None:
    connector = call.deps.connectors.tracking_pushes(name)
    events = connector.parse_tracking_push(call.request.form)
    # optional: a carrier that says its pushes stopped (Kuaidi100's `abort`), so the hub polls instead
    stopped = getattr(connector, "tracking_stopped", lambda form: None)(call.request.form)
    with call.ctx.uow() as uow:
        for event in sorted(events, key=lambda e: e.at):      # a push carries the history, newest first
            apply_tracking(uow, call.ctx.config, event)
        if stopped is not None:                                # no more pushes: the hub polls instead
            waybill, why = stopped
            express_flow.push_stopped(uow, connector.name, waybill, why, call.deps.now())
        uow.commit()


def courier_claim(call: Call, name: str) -> None:
    """A rider's status: a claim, confirmed with the courier's query API (`services/courier_claims.settle`)."""
    connector = call.deps.connectors.courier_callbacks(name)
    claim = connector.parse_callback(call.request.get_data(), call.request.args)
    courier_claims.settle(call.ctx, connector, claim, call.deps.now())


# callback use case (a connector's `callback`) -> handler, which looks the system's connector up typed by the
# use case's Protocol (`hub.ports.CALLBACK_PORTS`); each answers the connector's `accepted` body
HANDLERS: dict[str, Callable[[Call, str], None]] = {
    "payment_notice": payment_notice,
    "channel_order_push": channel_order_push,
    "express_tracking_push": express_tracking_push,
    "courier_claim": courier_claim,
}


def _declaration(call: Call) -> Declaration:
    """What the system named in the path declares; 404 for one with no callback handled here, or whose
    connector is not built (`deps.connectors`)."""
    name = call.params["connector"]
    declared = _declared(call.ctx, name) if name in call.deps.connectors else None
    if declared is None or declared.callback not in HANDLERS:
        raise ApiError(404, "unknown_connector", f"unknown connector {name!r}")
    return declared


def _declared(ctx: HubContext, name: str) -> Declaration | None:
    try:
        return ctx.connectors.declared(name)
    except KeyError:                      # a kind no connector declares: check-config reports it
        return None


def receive(call: Call) -> Response:
    declared = _declaration(call)
    HANDLERS[declared.callback or ""](call, call.params["connector"])
    return accepted(declared)


def verify_address(call: Call) -> Response:
    """WeChat's server-address check: GET with echostr, answered with echostr once verified."""
    _declaration(call)
    echo = getattr(call.deps.connectors[call.params["connector"]], "echo", None)   # the shop's only
    if echo is None:
        raise ApiError(405, "method_not_allowed", "this connector takes POST only", allowed=["POST"],
                       _headers={"Allow": "POST"})
    return Response(echo(call.request.args), content_type="text/plain")


def error_reply(ctx: HubContext, request: Request, body: dict[str, Any], status: int,
                headers: dict[str, str]) -> Response:
    """An error in the shape the calling system understands, with the hub's error and message."""
    name = request.path.split("/")[2] if request.path.count("/") >= 2 else ""
    declared = _declared(ctx, name)
    if declared is not None and declared.callback in HANDLERS:
        body = {**declared.error_body, **body}
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
