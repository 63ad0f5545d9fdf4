"""Property: final stock does not depend on message order or duplication."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.bootstrap import upsert_skus
from hub.domain.model import Sku, StockCount, StockDelta
from hub.services import inventory
from tests.support import at

_ids = itertools.count()

deltas = st.lists(st.tuples(st.integers(-6, 6).filter(bool), st.integers(0, 60)), max_size=12)
counts = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 60)), max_size=4, unique_by=lambda c: c[1])


def expected(delta_list, count_list) -> int:
    if not count_list:
        return sum(q for q, _ in delta_list)
    value, when = max(count_list, key=lambda c: c[1])
    return value + sum(q for q, t in delta_list if t > when)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delta_list=deltas, count_list=counts, data=st.data())
def test_final_on_hand_is_independent_of_order_and_redelivery(ctx, delta_list, count_list, data):
    sku = f"P{next(_ids)}"
    with ctx.uow() as uow:
        upsert_skus(uow, [Sku(sku, "property test sku")])
        uow.commit()
    messages = [StockDelta("pos", f"d{i}", sku, "S002", q, at(t)) for i, (q, t) in enumerate(delta_list)]
    messages += [StockCount("pos", f"c{i}", sku, "S002", v, at(t)) for i, (v, t) in enumerate(count_list)]
    redelivered = data.draw(st.lists(st.sampled_from(messages), max_size=6)) if messages else []
    arrival = data.draw(st.permutations(messages + redelivered))
    for msg in arrival:
        with ctx.uow() as uow:
            if isinstance(msg, StockCount):
                inventory.apply_count(uow, msg)
            else:
                inventory.apply_delta(uow, msg)
            uow.commit()
    with ctx.uow() as uow:
        held = inventory.stock_at(uow.session, ctx.config, sku, "S002").on_hand
    assert held == expected(delta_list, count_list)
