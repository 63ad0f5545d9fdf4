"""Issue 19, a flash sale's Idempotency-Keys and sale ids from hostile clients (in-process, SQLite and
PostgreSQL, both gates): a key whose order was cancelled and refunded, one key in two sales, made-up sale ids.
No gate unit is ever left without an order holding it."""
from __future__ import annotations

import uuid

from tests.api.conftest import OPS_KEY
from tests.api.test_callbacks import notify, pay_sim  # noqa: F401  (the payment simulator's fixture)
from tests.api.test_flash_sales import SALES, arm, attempt, drawn, gated, give_backs  # noqa: F401
from tests.support import statements_run


def test_a_retry_of_a_refunded_order_gives_its_new_unit_back(gated, pay_sim):  # noqa: F811  (fixtures)
    """Old code gave the unit back only for a cancelled order: cancelled then refunded, the retry's unit had no
    order, the buyer was over the limit and others were told sold out."""
    sale = arm(gated, quota=2, limit=1)
    first = attempt(gated, sale, "b1", key="k1")
    oid, total = first.json["order_id"], first.json["total_fen"]
    notify(gated, pay_sim, pay_sim.notification_body(oid, total, transaction_id="4200000101"))
    refunded = pay_sim.notification_body(oid, total, "REFUND.SUCCESS", transaction_id="4200000101")
    assert notify(gated, pay_sim, refunded).status_code == 200
    give_backs(gated)
    assert gated.ctx.gate.state(sale).left == 2
    again = attempt(gated, sale, "b1", key="k1")
    assert again.status_code == 200 and again.json["order_id"] == oid and again.json["status"] == "refunded"
    assert gated.ctx.gate.state(sale).left == 2 and drawn(gated, sale) == 0
    assert attempt(gated, sale, "b1").status_code == 201                 # not over the limit
    assert attempt(gated, sale, "b2").status_code == 201                 # not sold out
    result = gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY).json["result"]
    assert result == {**result, "sold_in_ledger": 2, "held_by_gate": 2, "agree": True}


def test_one_key_in_two_sales_is_a_conflict_and_strands_no_unit(gated):  # noqa: F811
    """Old code answered sale 2 with sale 1's order (the same SKU, store and price: the same fingerprint) and
    kept sale 2's unit for it."""
    one, two = arm(gated, quota=5), arm(gated, quota=5)
    assert attempt(gated, one, "b1", key="k1").status_code == 201
    other = attempt(gated, two, "b1", key="k1")
    assert other.status_code == 422 and other.json["error"] == "idempotency_conflict", other.json
    assert gated.ctx.gate.state(two).left == 5 and drawn(gated, two) == 0
    assert attempt(gated, two, "b1", key="k2").status_code == 201


def test_a_made_up_sale_id_is_answered_without_the_order_database(gated):  # noqa: F811
    """Old code read the database (`restore_gate`) on every attempt at a sale the gate did not know."""
    junk = f"FS-{uuid.uuid4().hex[:10]}"
    assert attempt(gated, junk, "b1").status_code == 404
    with statements_run(gated.ctx.engine) as statements:
        answers = [attempt(gated, junk, f"b{i}") for i in range(5)]
    assert [a.status_code for a in answers] == [404] * 5 and statements == []
    assert gated.ctx.gate.state(junk) is None
