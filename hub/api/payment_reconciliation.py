"""Payment reconciliation over HTTP: run it for a day (`POST /admin/api/reconciliation/payments`, ops key),
list the runs and show one with the lines to look at (admin, for the console's panel)."""
from __future__ import annotations

from datetime import date

from hub.api import schemas
from hub.api.http import ApiError, Call, Param, Route
from hub.api.views import iso
from hub.services import payment_reconciliation

RUN = schemas.Obj(fields={
    "date": schemas.Str(max_len=10, pattern=r"\d{4}-\d{2}-\d{2}",
                        description="the bill's day, YYYY-MM-DD (Beijing calendar); today at the latest"),
    "system": schemas.Str(required=False, max_len=32, description="one payment system (default every one)"),
})


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "invalid", f"date: {text!r} is not a calendar day (YYYY-MM-DD)", field="date") from None


def run(call: Call) -> dict:
    b = call.body()
    runs = payment_reconciliation.reconcile(call.ctx, _day(b["date"]), trigger="operator", system=b["system"],
                                            now=call.deps.now())
    return {"runs": [r.as_dict() for r in runs]}


def _times(call: Call, view: dict) -> dict:
    return {**view, "started_at": iso(call, view["started_at"]), "finished_at": iso(call, view["finished_at"])}


def listing(call: Call) -> dict:
    limit = call.query("limit") or 30
    return {"runs": [_times(call, r) for r in payment_reconciliation.recent_runs(call.ctx, limit)]}


def show(call: Call) -> dict:
    text = call.params["run_id"]
    # Only a number a BIGINT holds can name a run (a longer one would fail in the database, not be unknown).
    run_id = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
    view = payment_reconciliation.run_detail(call.ctx, run_id) if run_id is not None else None
    if view is None:
        raise ApiError(404, "not_found", "no such reconciliation run")
    return _times(call, view)


P = "/admin/api/reconciliation/payments"
ROUTES = [
    Route("POST", P, run, "ops", "Compare the payment systems' daily bills of a day with the hub's payments and "
          "refunds; repair the payments the hub missed", body=RUN,
          responses={200: "one run per payment system (ok, or error: no usable bill)",
                     422: "a malformed date, or one in the future"}),
    Route("GET", P, listing, "admin", "Payment reconciliation runs, newest first",
          query=(Param("limit", schemas.Int(required=False, minimum=1, maximum=200), "default 30"),)),
    Route("GET", P + "/{run_id}", show, "admin", "A payment reconciliation run with its difference lines "
          "(those for an operator first)", responses={200: "the run", 404: "unknown run"}),
]
