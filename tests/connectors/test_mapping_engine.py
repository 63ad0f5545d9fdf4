"""The mapping engine: paths both ways, value maps, conversions, xref, errors, round trips."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import MappingError, MemoryBinder
from mappings import MappingConfigError, load_mapping, parse_mapping, validate_all

SHOP = """
system: shop
operations:
  order_get: /channels/ec/order/get
values:
  order_status: {10: pending_payment, 20: paid, 30: shipped, 100: completed, 250: cancelled}
  state: {"0": in_transit, "4": returned, "6": returned}
entities:
  order:
    external_id: {path: order_id, convert: str, required: true}
    status: {path: status, map: order_status, required: true}
    total_fen: {path: order_detail.price_info.order_price, convert: yuan_fen}
    weight_g: {path: order_detail.weight_kg, convert: kg_g}
    created_at: {path: create_time, convert: unix_datetime}
    updated_at: {path: update_time, convert: iso_datetime}
    buyer.phone: order_detail.delivery_info.address_info.tel_number
    store_id: {path: order_detail.ext_info.store_id, xref: store}
    version: {path: v, const: 2, direction: out}
    lines:
      path: order_detail.product_infos[]
      required: true
      children:
        sku: {path: sku_id, xref: sku, required: true}
        qty: {path: sku_cnt, convert: int_str}
        unit_price_fen: {path: sale_price, convert: yuan_str_fen}
  waybill:
    tracking_no: {path: "shipping_list[0].tracking_no", required: true}
    picked_at: {path: ftime, convert: local_datetime, tz: "+08:00"}
"""
CST = timezone(timedelta(hours=8))


@pytest.fixture
def shop():
    return parse_mapping(SHOP, "shop")


@pytest.fixture
def binder():
    b = MemoryBinder()
    b.bind("shop", "sku", "90001", "SKU-A")
    b.bind("shop", "sku", "90002", "SKU-B")
    b.bind("shop", "store", "WX-S1", "S001")
    return b


def test_inbound_maps_paths_units_codes_and_xref(shop, binder):
    payload = {
        "order_id": 3705115058471208928, "status": 20, "create_time": 1714550400,
        "update_time": "2024-05-01T16:00:00+08:00",
        "order_detail": {
            "price_info": {"order_price": 12.3}, "weight_kg": "1.25",
            "delivery_info": {"address_info": {"tel_number": "13800000000"}},
            "ext_info": {"store_id": "WX-S1"},
            "product_infos": [{"sku_id": 90001, "sku_cnt": "2", "sale_price": "4.10"},
                              {"sku_id": "90002", "sku_cnt": 1, "sale_price": 4.1}],
        },
    }
    got = shop.inbound("order", payload, binder)
    assert got["external_id"] == "3705115058471208928"
    assert got["status"] == "paid"
    assert got["total_fen"] == 1230
    assert got["weight_g"] == 1250
    assert got["created_at"] == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert got["updated_at"] == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert got["buyer"] == {"phone": "13800000000"}
    assert got["store_id"] == "S001"
    assert got["lines"] == [{"sku": "SKU-A", "qty": 2, "unit_price_fen": 410},
                            {"sku": "SKU-B", "qty": 1, "unit_price_fen": 410}]
    assert "version" not in got


def test_outbound_builds_nested_payload(shop, binder):
    payload = shop.outbound("order", {
        "external_id": "42", "status": "shipped", "total_fen": 1999, "store_id": "S001",
        "created_at": datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        "lines": [{"sku": "SKU-B", "qty": 3, "unit_price_fen": 5}],
    }, binder)
    assert payload["status"] == 30
    assert payload["create_time"] == 1714550400
    assert payload["order_detail"]["price_info"]["order_price"] == 19.99
    assert payload["order_detail"]["ext_info"]["store_id"] == "WX-S1"
    assert payload["order_detail"]["product_infos"] == [{"sku_id": "90002", "sku_cnt": "3",
                                                         "sale_price": "0.05"}]
    assert payload["v"] == 2                       # a const goes out only
    assert "weight_kg" not in payload["order_detail"]  # absent optional fields are left out


def test_indexed_path_and_local_time(shop):
    payload = shop.outbound("waybill", {"tracking_no": "SF1", "picked_at": datetime(2024, 5, 1, 4, tzinfo=UTC)})
    assert payload == {"shipping_list": [{"tracking_no": "SF1"}], "ftime": "2024-05-01 12:00:00"}
    back = shop.inbound("waybill", payload)
    assert back["picked_at"] == datetime(2024, 5, 1, 12, tzinfo=CST)


def test_unknown_status_code_names_system_field_and_value(shop, binder):
    with pytest.raises(MappingError) as err:
        shop.inbound("order", {"order_id": "1", "status": 77,
                               "order_detail": {"product_infos": [{"sku_id": "90001"}]}}, binder)
    assert err.value.field == "status" and err.value.value == 77
    assert "shop" in str(err.value) and "unknown status code" in str(err.value)


def test_missing_required_field(shop, binder):
    with pytest.raises(MappingError, match="missing required field") as err:
        shop.inbound("order", {"status": 10, "order_detail": {"product_infos": [{"sku_id": "90001"}]}},
                     binder)
    assert err.value.field == "order_id"


def test_missing_required_child_field_names_its_index(shop, binder):
    with pytest.raises(MappingError) as err:
        shop.inbound("order", {"order_id": "1", "status": 10,
                               "order_detail": {"product_infos": [{"sku_id": "90001"}, {"sku_cnt": 1}]}},
                     binder)
    assert err.value.field == "order_detail.product_infos[1].sku_id"


def test_unmapped_sku_both_ways(shop, binder):
    with pytest.raises(MappingError, match="unmapped sku") as err:
        shop.inbound("order", {"order_id": "1", "status": 10,
                               "order_detail": {"product_infos": [{"sku_id": "99999"}]}}, binder)
    assert err.value.value == "99999"
    with pytest.raises(MappingError, match="unmapped sku"):
        shop.outbound("order", {"external_id": "1", "status": "paid", "lines": [{"sku": "NOPE"}]}, binder)


def test_xref_without_binder_is_an_error_not_a_pass_through(shop):
    with pytest.raises(MappingError, match="no binder"):
        shop.inbound("order", {"order_id": "1", "status": 10,
                               "order_detail": {"product_infos": [{"sku_id": "90001"}]}})


def test_bad_conversions_are_mapping_errors(shop, binder):
    base = {"order_id": "1", "status": 10, "order_detail": {"product_infos": [{"sku_id": "90001"}]}}
    for path, bad, reason in ((("order_detail", "price_info"), {"order_price": "12.345"}, "precision"),
                              (("order_detail", "product_infos"), [{"sku_id": "90001", "sku_cnt": "2.5"}],
                               "whole number"),
                              ((), None, "ISO")):
        payload = {**base, "order_detail": dict(base["order_detail"])}
        if path:
            payload["order_detail"][path[1]] = bad
        else:
            payload["update_time"] = "yesterday"
        with pytest.raises(MappingError, match=reason):
            shop.inbound("order", payload, binder)


def test_a_huge_amount_is_refused_not_multiplied_out(shop, binder):
    """A forged "1e999999999" yuan became a billion-digit integer (minutes of CPU, then a 500 at the database);
    "1e30" passed as 10^32 fen. Both are mapping errors now."""
    base = {"order_id": "1", "status": 10, "order_detail": {"product_infos": [{"sku_id": "90001"}]}}
    for huge in ("1e30", 1e30, "1e999999999"):
        payload = {**base, "order_detail": {**base["order_detail"], "price_info": {"order_price": huge}}}
        with pytest.raises(MappingError, match="too large"):
            shop.inbound("order", payload, binder)
    for huge in ("1" + "0" * 20, 1e30, float("inf"), float("nan")):
        line = {"sku_id": "90001", "sku_cnt": huge}
        payload = {**base, "order_detail": {**base["order_detail"], "product_infos": [line]}}
        with pytest.raises(MappingError, match="too large"):
            shop.inbound("order", payload, binder)


def test_naive_datetime_refused(shop):
    with pytest.raises(MappingError, match="naive"):
        shop.outbound("order", {"external_id": "1", "status": "paid", "lines": [],
                                "created_at": datetime(2024, 1, 1)})
    with pytest.raises(MappingError, match="naive"):
        shop.inbound("order", {"order_id": "1", "status": 10, "update_time": "2024-01-01T00:00:00",
                               "order_detail": {"product_infos": [{"sku_id": "1"}]}}, MemoryBinder())


def test_value_lookup_both_directions(shop):
    assert shop.value("order_status", 250) == "cancelled"
    assert shop.value("order_status", "250") == "cancelled"
    assert shop.value("order_status", "cancelled", "out") == 250
    assert shop.value("state", "6") == "returned"
    assert shop.value("state", "returned", "out") == "4"      # the first code wins outbound
    with pytest.raises(MappingError, match="unknown code"):
        shop.value("order_status", 11)
    with pytest.raises(MappingError, match="unknown canonical value"):
        shop.value("order_status", "lost", "out")


def test_operation(shop):
    assert shop.operation("order_get") == "/channels/ec/order/get"
    with pytest.raises(MappingConfigError, match="operations.nope"):
        shop.operation("nope")


def test_outbound_accepts_objects():
    from hub.domain.model import Buyer
    m = parse_mapping("entities: {member: {id: {path: memberId, required: true}, phone: mobile}}", "x")
    assert m.outbound("member", Buyer(id="B1", phone="139")) == {"memberId": "B1", "mobile": "139"}


@pytest.mark.parametrize("text,key,problem", [
    ("entities: {order: {a: {path: x, convert: furlongs}}}", "entities.order.a.convert", "unknown conversion"),
    ("entities: {order: {a: {path: x, map: nope}}}", "entities.order.a.map", "no value map"),
    ("entities: {order: {a: {pth: x}}}", "entities.order.a", "unknown keys"),
    ("entities: {order: {a: {path: 'x..y'}}}", "entities.order.a.path", "bad path segment"),
    ("entities: {order: {a: {path: 'x[]'}}}", "entities.order.a.path", "needs children"),
    ("entities: {order: {a: {path: x, required: maybe}}}", "entities.order.a.required", "true or false"),
    ("values: {s: {1: a, '1': b}}", "values.s.1", "duplicate code"),
    ("operations: {token: 3}", "operations.token", "non-empty string"),
    ("system: other", "system", "says 'other'"),
    ("entities: [", "(file)", "not valid YAML"),
])
def test_broken_mapping_names_file_key_and_problem(text, key, problem):
    with pytest.raises(MappingConfigError) as err:
        parse_mapping(text, "shop", source="mappings/shop.yaml")
    assert err.value.file == "mappings/shop.yaml"
    assert err.value.key == key
    assert problem in err.value.problem


def test_load_and_validate_all(tmp_path):
    (tmp_path / "shop.yaml").write_text(SHOP)
    (tmp_path / "broken.yaml").write_text("entities: {order: {a: {path: x, convert: furlongs}}}")
    assert load_mapping("shop", tmp_path).system == "shop"
    problems = validate_all(tmp_path)
    assert len(problems) == 1 and "broken.yaml" in problems[0] and "furlongs" in problems[0]
    with pytest.raises(MappingConfigError, match="cannot read"):
        load_mapping("absent", tmp_path)


def test_repository_mappings_are_valid():
    assert validate_all() == []


# -- round trips: canonical -> system -> canonical is the identity ------------------------

aware = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.sampled_from([UTC, CST]))
line = st.fixed_dictionaries({"sku": st.sampled_from(["SKU-A", "SKU-B"]),
                              "qty": st.integers(0, 10**6), "unit_price_fen": st.integers(0, 10**9)})
order = st.fixed_dictionaries({
    "external_id": st.text(min_size=1, max_size=20),
    "status": st.sampled_from(["pending_payment", "paid", "shipped", "completed", "cancelled"]),
    "total_fen": st.integers(-(2**31), 2**31 - 1),      # what an INTEGER column holds: beyond, a mapping error
    "weight_g": st.integers(0, 10**9),
    "created_at": aware.map(lambda d: d.replace(microsecond=0)),
    "updated_at": aware,
    "buyer": st.fixed_dictionaries({"phone": st.text(max_size=15)}),
    "store_id": st.just("S001"),
    "lines": st.lists(line, min_size=1, max_size=4),
})


@settings(max_examples=150, deadline=None)
@given(order)
def test_round_trip_identity(canonical):
    shop_mapping = parse_mapping(SHOP, "shop")
    b = MemoryBinder()
    b.bind("shop", "sku", "90001", "SKU-A")
    b.bind("shop", "sku", "90002", "SKU-B")
    b.bind("shop", "store", "WX-S1", "S001")
    assert shop_mapping.inbound("order", shop_mapping.outbound("order", canonical, b), b) == canonical


@settings(max_examples=100, deadline=None)
@given(aware.map(lambda d: d.replace(microsecond=0)))
def test_local_time_round_trip(when):
    m = parse_mapping(SHOP, "shop")
    back = m.inbound("waybill", m.outbound("waybill", {"tracking_no": "T", "picked_at": when}))
    assert back["picked_at"] == when


# -- YAML scalars, line positions, parent fields, one field to many (issue 12) -------------------

def test_yaml_yes_no_on_and_leading_zeros_stay_text():
    """YAML 1.1 read `No`, `On`, `Yes` as booleans and `000010` as octal 8: codes changed silently."""
    m = parse_mapping("""
values:
  flag: {No: open, Yes: blocked, On: active, "X": flagged}
  item: {000010: first}
entities:
  e: {f: {path: F, map: flag}}
""", "x")
    assert m.value("flag", "No") == "open" and m.value("flag", "Yes") == "blocked"
    assert m.value("flag", "On") == "active"
    assert m.value("item", "000010") == "first"
    with pytest.raises(MappingError):
        m.value("flag", False)       # a boolean is not the code No


def test_a_flag_written_as_yes_is_refused_with_a_message_to_write_true():
    with pytest.raises(MappingConfigError) as err:
        parse_mapping("entities: {e: {f: {path: F, required: yes}}}", "x", source="mappings/x.yaml")
    assert err.value.key == "entities.e.f.required"
    assert "'yes' is read as text here: write true or false" in str(err.value)


ORDER_MAPPING = """
entities:
  order:
    order_id: {path: [HEADER.PURCH_NO, HEADER.REF_1], required: true}
    lines:
      path: ITEMS.item[]
      children:
        item_no: {path: ITM_NUMBER, position: {start: 10, step: 10, format: "{:06d}"}}
        sku: {path: MATERIAL, required: true}
        ^.location_id: {path: PLANT, xref: location, required: true}
        qty: {path: TARGET_QTY, convert: int}
    schedules:
      canonical: lines
      path: SCHEDULES.item[]
      children:
        item_no: {path: ITM_NUMBER, position: {start: 10, step: 10, format: "{:06d}"}}
        qty: {path: REQ_QTY, convert: int}
"""


def test_line_positions_parent_fields_and_one_field_feeding_two_system_fields():
    m = parse_mapping(ORDER_MAPPING, "sap")
    b = MemoryBinder()
    b.bind("sap", "location", "1000", "WH01")
    order = {"order_id": "O-1", "location_id": "WH01",
             "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 5}, {"sku": "C", "qty": 1}]}
    out = m.outbound("order", order, b)
    assert out["HEADER"] == {"PURCH_NO": "O-1", "REF_1": "O-1"}
    assert out["ITEMS"]["item"] == [
        {"ITM_NUMBER": "000010", "MATERIAL": "A", "PLANT": "1000", "TARGET_QTY": 2},
        {"ITM_NUMBER": "000020", "MATERIAL": "B", "PLANT": "1000", "TARGET_QTY": 5},
        {"ITM_NUMBER": "000030", "MATERIAL": "C", "PLANT": "1000", "TARGET_QTY": 1}]
    assert out["SCHEDULES"]["item"] == [{"ITM_NUMBER": "000010", "REQ_QTY": 2}, {"ITM_NUMBER": "000020", "REQ_QTY": 5},
                                        {"ITM_NUMBER": "000030", "REQ_QTY": 1}]
    back = m.inbound("order", out, b)            # positions and parent fields are outbound only
    assert back["order_id"] == "O-1" and back["lines"][1] == {"sku": "B", "qty": 5}


def test_a_missing_parent_field_names_where():
    m = parse_mapping(ORDER_MAPPING, "sap")
    with pytest.raises(MappingError, match=r"lines\[0\]\.\^\.location_id"):
        m.outbound("order", {"order_id": "O-1", "lines": [{"sku": "A", "qty": 1}]}, MemoryBinder())


@pytest.mark.parametrize("text,key,problem", [
    ("entities: {e: {^.x: {path: X}}}", "entities.e.^.x", "only under children"),
    ("entities: {e: {n: {path: N, position: {start: a}}}}", "entities.e.n.position", "whole numbers"),
    ("entities: {e: {n: {path: N, position: {format: '{:q}'}}}}", "entities.e.n.position.format", "format"),
    ("entities: {e: {n: {path: [N, '']}}}", "entities.e.n.path", "list of them"),
    ("calls: {c: {args: {}}}", "calls.c.operation", "required"),
    ("calls: {c: {operation: Op, args: {a: '${what}'}}}", "calls.c.args", "unknown placeholder ${what}"),
    ("calls: {c: {operation: Op, args: {p: '${page}'}}}", "calls.c.paging", "needs a paging block"),
    ("calls: {c: {operation: Op, paging: {size: 10, bookmark: Key}}}", "calls.c.paging", "${bookmark}"),
    ("calls: {c: {operation: Op, lookup: d}}", "calls.c.lookup", "no call 'd'"),
    ("calls: {c: {operation: Op, result: nope}}", "calls.c.result", "no entity 'nope'"),
    ("calls: {c: {operation: Op, errors: {table: R, type: T, id: [I], kinds: nope}}}", "calls.c.errors.kinds",
     "no value map"),
])
def test_broken_calls_and_field_extras_name_the_key(text, key, problem):
    with pytest.raises(MappingConfigError) as err:
        parse_mapping(text, "x", source="mappings/x.yaml")
    assert err.value.key == key and problem in err.value.problem


def test_call_templates_fill_placeholders_and_leave_absent_arguments_out():
    from mappings.calls import render
    args = {"filter": [{"Field": "No", "Criteria": "${order.order_id}"}], "setSize": "${page_size}",
            "bookmarkKey": "${bookmark}", "note": "order ${order.order_id} p${page}"}
    assert render(args, {"order": {"order_id": "O-9"}, "page_size": 50, "bookmark": None, "page": 2}) == {
        "filter": [{"Field": "No", "Criteria": "O-9"}], "setSize": 50, "note": "order O-9 p2"}


def test_a_number_read_into_an_integer_column_must_fit_it():
    """Issue 19 item 5: 3e9 (a POS count, an ERP on-hand) was accepted up to 10^16 and failed in the database."""
    from mappings.engine import CONVERSIONS
    for name, value in (("int", 3_000_000_000), ("int_str", "3000000000"), ("yuan_fen", "21474836.48"),
                        ("int", -(2**31) - 1)):
        with pytest.raises(ValueError, match="out of range"):
            CONVERSIONS[name][0](value)
    assert CONVERSIONS["int"][0](2**31 - 1) == 2**31 - 1 and CONVERSIONS["yuan_fen"][0]("21474836.47") == 2**31 - 1
