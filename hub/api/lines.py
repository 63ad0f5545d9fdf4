"""An order line as the API shows it: its price and its amount after the order's discounts."""
from __future__ import annotations

from typing import Any

from hub.domain.refunds import line_amount_fen
from hub.storage.tables import OrderLineRow


def line_view(line: OrderLineRow) -> dict[str, Any]:
    return {"sku": line.sku, "qty": line.qty, "unit_price_fen": line.unit_price_fen,
            "amount_fen": line_amount_fen(line)}
