"""`/callbacks/{connector}`: systems that call back in their own format. The connector
verifies the system's own signature and maps the payload; the core applies it once.

Dispatch is by the system's `kind` in config.yaml; a system whose connector is not built
here answers 404 "unknown connector". Errors answer in the shape each system expects
(WeChat Pay: {"code": "FAIL"}; Kuaidi100: {"result": false}) beside the hub's own fields."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug import Request, Response

from hub.api.http import ApiError, Call, Route, json_response, log
from hub.bootstrap import HubContext
from hub.domain.errors import IllegalTransition
from hub.domain.model import PaymentNotice
from hub.domain.order_states import OrderStatus, allowed
from hub.services import orders
from hub.services.tracking import apply_tracking
from hub.storage.tables import OrderRow
from hub.storage.uow import UnitOfWork

S = OrderStatus
PAID_IN_SHOP = {"paid", "shipped", "completed"}


def _refund(uow: UnitOfWork, order: OrderRow, source: str, detail: str) -> None:
    """The platform refunded: cancel first if the goods never left, then refunded. Once."""
    if order.status == S.REFUNDED:
        return
    if order.status != S.CANCELLED and not allowed(order.fulfillment_type, order.status, S.REFUNDED):
        if not allowed(order.fulfillment_type, order.status, S.CANCELLED):
            raise IllegalTransition(order.id, order.status, S.REFUNDED, order.fulfillment_type)
        # Not orders.cancel: that would ask for a refund the platform has already made.
        orders.transition(uow, order, S.CANCELLED, source, detail)
    if order.paid_at is None:
        return                         # never paid: cancelled is as far as it goes
    orders.transition(uow, order, S.REFUNDED, source, detail)


def wechat_pay(call: Call, connector: Any) -> Response:
    notice: PaymentNotice = connector.parse_notification(dict(call.request.headers), call.request.get_data())
    source = call.params["connector"]
    with call.ctx.uow() as uow:
        order = orders.get(uow, notice.order_ref, lock=True)
        if notice.event == "paid":
            orders.mark_paid(uow, order, source, notice.transaction_id, notice.amount_fen, notice.at)
        elif notice.event == "refunded":
            _refund(uow, order, source, f"refund of payment {notice.transaction_id}")
        else:
            log.info("%s: ignored notification %s for order %s", source, notice.event, order.id)
        uow.commit()
    return json_response({"code": "SUCCESS"})


def wechat_shop(call: Call, connector: Any) -> Response:
    name, cfg = call.params["connector"], call.ctx.config
    push = connector.parse_push(call.request.args, call.request.get_data())
    shop_order = connector.get_order(push["external_order_id"])   # act on the order as it is now
    key = f"{name}:{shop_order.external_id}"
    with call.ctx.uow() as uow:
        order = orders.find_by_idempotency(uow, shop_order.channel, key)
        if order is None:
            if shop_order.status in ("cancelled", "refunded"):
                return Response("success", content_type="text/plain")   # never reached the hub
            cmd = orders.PlaceOrder(shop_order.channel, key, shop_order.lines, shop_order.buyer,
                                    shop_order.fulfillment, external_id=shop_order.external_id)
            order, _ = orders.place(uow, cfg, cmd, now=call.deps.now())
        if shop_order.status in PAID_IN_SHOP and order.paid_at is None and order.status == S.PENDING_PAYMENT:
            # The shop's total may include freight or discounts: its word on the amount stands.
            orders.mark_paid(uow, order, name, key, None, call.deps.now())
        elif shop_order.status == "cancelled" and order.status not in (S.CANCELLED, S.REFUNDED):
            orders.cancel(uow, order, name, "cancelled in the shop")
        elif shop_order.status == "refunded":
            _refund(uow, order, name, "refunded in the shop")
        uow.commit()
    return Response("success", content_type="text/plain")


def express(call: Call, connector: Any) -> Response:
    events = connector.parse_tracking_push(call.request.form)
    with call.ctx.uow() as uow:
        for event in sorted(events, key=lambda e: e.at):      # a push carries the history, newest first
            apply_tracking(uow, call.ctx.config, event)
        uow.commit()
    return json_response(connector.push_reply(True))


def local_delivery(call: Call, connector: Any) -> Response:
    event = connector.parse_callback(call.request.get_data())
    with call.ctx.uow() as uow:
        apply_tracking(uow, call.ctx.config, event)
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
        raise ApiError(405, "method_not_allowed", "this connector takes POST only")
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
                     404: "unknown connector or order", 422: "payload does not map"}),
    Route("GET", "/callbacks/{connector}", verify_address, "callback",
          "WeChat's server-address check (echostr)", responses={200: "echostr", 401: "bad signature"}),
]
