from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from tests.support import config_env

TEXT = Path(DEFAULT_CONFIG_PATH).read_text()


def problems(text: str, env: dict[str, str]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, env=env)
    return exc.value.problems


def test_repository_config_loads_with_its_environment():
    cfg = parse_config(TEXT, env=config_env())
    assert {loc.id for loc in cfg.stores} == {"S001", "S002", "S003"}
    assert cfg.warehouses[0].id == "WH01"
    assert cfg.systems["erp"].kind == "erp_soap"
    assert cfg.systems["crm"].get("api_key") == "test-hub_crm_api_key-value"


def test_env_overrides_database_and_broker():
    cfg = parse_config(TEXT, env={**config_env(), "HUB_DATABASE_URL": "postgresql://x/y", "HUB_BROKER_URL": "amqp://b"})
    assert cfg.hub.database_url == "postgresql://x/y"
    assert cfg.hub.broker_url == "amqp://b"


def test_missing_secret_names_key_and_variable():
    env = config_env()
    del env["HUB_CRM_API_KEY"]
    found = problems(TEXT, env)
    assert ("systems.crm.api_key", "environment variable HUB_CRM_API_KEY is not set") in found


def test_literal_secret_is_refused():
    text = TEXT.replace("api_key: ${HUB_CRM_API_KEY}", "api_key: plain-text-secret")
    found = problems(text, config_env())
    assert ("systems.crm.api_key", "a secret must be a ${ENV_VAR} reference, not a literal") in found


def test_every_problem_is_reported_with_its_path():
    text = (TEXT.replace("lat: 31.2291", "lat: 131.2291")
                .replace("delivery_radius_km: 4", "delivery_radius_km: -4")
                .replace("reservation_ttl_minutes: 15", "reservation_ttl_minutes: zero"))
    found = dict(problems(text, config_env()))
    assert "locations[S001].lat" in found
    assert "locations[S002].delivery_radius_km" in found
    assert "hub.reservation_ttl_minutes" in found


def test_duplicate_location_and_unknown_publish_target():
    text = TEXT.replace("id: S002", "id: S001")
    assert any("duplicate id 'S001'" in m for _, m in problems(text, config_env()))
    text = TEXT.replace("publish_to: wechat_shop", "publish_to: nowhere")
    assert any("unknown system 'nowhere'" in m for _, m in problems(text, config_env()))


def test_bad_yaml_and_bad_opening_hours():
    assert "not valid YAML" in problems("hub: [", {})[0][1]
    text = TEXT.replace('open: "09:00"', 'open: "9am"')
    assert ("locations[S001].opening_hours.open", "must be HH:MM") in problems(text, config_env())


def test_unknown_key_is_refused():
    text = TEXT.replace("routing:\n", "routing:\n  tie_brake: [distance]\n")
    assert any(path == "routing.tie_brake" for path, _ in problems(text, config_env()))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def _hub_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=60)


def test_check_config_cli_prints_every_problem_and_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEXT.replace("lat: 31.2291", "lat: 131.2291"))
    env = config_env()
    del env["HUB_DADA_APP_SECRET"]
    result = _hub_cli("check-config", str(bad), env=env)
    assert result.returncode != 0
    assert "locations[S001].lat" in result.stdout
    assert "systems.local_delivery.app_secret" in result.stdout
    assert "plain-text" not in result.stdout


def test_check_config_cli_accepts_the_repository_config():
    result = _hub_cli("check-config", env=config_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout.lower()


def test_check_config_cli_checks_the_erps_flavour():
    ok = _hub_cli("check-config", env={**config_env(), "HUB_ERP_MAPPING": "erp_sap.yaml", "HUB_ERP_AUTH": "basic",
                                       "HUB_ERP_WSDL": "https://sap.example/sap/bc/srt/rfc/sap/"})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _hub_cli("check-config", env={**config_env(), "HUB_ERP_MAPPING": "erp_nav.yaml", "HUB_ERP_AUTH": "kerberos",
                                        "HUB_ERP_WSDL": "https://nav.example/DynamicsNAV/WS/CRONUS"})
    assert bad.returncode != 0
    assert "systems.erp.auth: must be one of wsse, basic, ntlm, not 'kerberos'" in bad.stdout
    assert "systems.erp.wsdl: must end in /" in bad.stdout


def test_split_express_is_refused_because_fulfilment_books_one_waybill():
    # Accepted before, every split order then became a dead letter at the express flow.
    text = TEXT.replace("allow_split_express: false", "allow_split_express: true")
    found = problems(text, config_env())
    assert any(path == "routing.allow_split_express" and "not supported" in why for path, why in found)


def test_a_store_may_ship_parcels_and_a_warehouse_is_not_told_so():
    key = "pos_key: ${HUB_POS_S002_KEY}\n"
    cfg = parse_config(TEXT.replace(key, key + "    ships_express: true\n"), env=config_env())
    assert [x.id for x in cfg.stores if x.ships_express] == ["S002"]
    text = TEXT.replace("    safety_stock: 0\n\nsystems:", "    safety_stock: 0\n    ships_express: true\n\nsystems:")
    assert any("ships_express is a store's" in why for _, why in problems(text, config_env()))


def test_overnight_opening_hours_are_accepted_and_equal_ones_refused():
    overnight = TEXT.replace('{open: "09:00", close: "22:00"}', '{open: "22:00", close: "06:00"}')
    hours = parse_config(overnight, env=config_env()).location("S001").opening_hours
    assert (hours.open, hours.close) == ("22:00", "06:00")
    same = TEXT.replace('{open: "09:00", close: "22:00"}', '{open: "08:00", close: "08:00"}')
    (path, message), = problems(same, config_env())
    assert path == "locations[S001].opening_hours" and "around the clock" in message


def test_check_config_cli_names_a_bad_closing_time(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEXT.replace('close: "22:00"}', 'close: "24:30"}', 1))
    result = _hub_cli("check-config", str(bad), env=config_env())
    assert result.returncode != 0
    assert "locations[S001].opening_hours.close" in result.stdout and "must be HH:MM" in result.stdout


def test_check_config_cli_shows_the_private_ca_bundle_it_trusts(tmp_path):
    """Issue 25 item 9: a private CA is trusted through REQUESTS_CA_BUNDLE, and check-config says so."""
    bundle = tmp_path / "our-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    ok = _hub_cli("check-config", env={**config_env(), "REQUESTS_CA_BUNDLE": str(bundle)})
    assert ok.returncode == 0 and f"trusting the CA bundle at {bundle}" in ok.stdout, ok.stdout + ok.stderr
    bad = _hub_cli("check-config", env={**config_env(), "REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem")})
    assert bad.returncode != 0 and "REQUESTS_CA_BUNDLE: no CA bundle file at" in bad.stdout


def test_a_stores_escalation_policy_is_read_and_an_unbounded_tip_refused():
    policy = "    # escalation: {after_minutes: 10, tip_fen: 200, max_tip_fen: 600, then: next_courier, last: express}"
    assert policy in TEXT
    ok = TEXT.replace(policy, policy.replace("# ", "", 1))
    esc = parse_config(ok, env=config_env()).location("S001").escalation
    assert (esc.after_minutes, esc.tip_fen, esc.max_tip_fen, esc.then, esc.last) == (10, 200, 600, "next_courier",
                                                                                     "express")
    assert parse_config(TEXT, env=config_env()).location("S001").escalation is None
    (path, message), = problems(ok.replace("tip_fen: 200", "tip_fen: 900"), config_env())
    assert path.startswith("locations[S001].escalation") and "max_tip_fen" in message
    (path, _), = problems(ok.replace("then: next_courier", "then: pray"), config_env())
    assert path.startswith("locations[S001].escalation")


ALLOCATION = '''    payment: channel                              # the platform takes and refunds its orders' money
    allocation:
      share: 80
      rules:
        - {sku: POT-003, listed: false}
        - {sku: TEA-001, store: S002, cap: 5}
        - {store: S003, share: 100}
'''


# config.yaml ships Meituan with an allocation (80 %, POT-003 not listed): these tests write their own instead.
SHIPPED_ALLOCATION = re.compile(r"\n    allocation:\n(?:      .*\n|        .*\n)+")
UNALLOCATED = SHIPPED_ALLOCATION.sub("\n", TEXT, count=1)


def allocated(block: str = ALLOCATION) -> str:
    anchor = "    payment: channel                              # the platform takes and refunds its orders' money\n"
    assert anchor in UNALLOCATED and "\n    allocation:" not in UNALLOCATED
    return UNALLOCATED.replace(anchor, block, 1)


def test_the_shipped_config_keeps_a_fifth_back_from_the_platform_and_does_not_list_the_teapot():
    meituan = parse_config(TEXT, env=config_env()).channel("meituan")
    assert meituan is not None
    assert (meituan.allocation_for("S001", "TEA-001").share, meituan.allocation_for("S002", "POT-003").listed) == \
        (80, False)


def test_a_channels_allocation_resolves_the_most_specific_rule():
    meituan = parse_config(allocated(), env=config_env()).channel("meituan")
    assert meituan is not None
    one = meituan.allocation_for
    assert (one("S001", "TEA-001").share, one("S001", "TEA-001").cap) == (80, None)
    assert (one("S002", "TEA-001").share, one("S002", "TEA-001").cap) == (80, 5)
    assert one("S001", "POT-003").listed is False and one("S003", "POT-003").listed is False
    assert one("S003", "CUP-002").share == 100
    assert one("S001", "POT-003").allowance(10) == 0 and one("S002", "TEA-001").allowance(10) == 5
    assert parse_config(UNALLOCATED, env=config_env()).channel("meituan").allocation_for("S001", "TEA-001") is None


@pytest.mark.parametrize("rules, says", [
    ("        - {sku: TEA-001, store: S009, cap: 5}\n", "'S009', which is not a store"),
    ("        - {sku: TEA-001, store: WH01, cap: 5}\n", "'WH01', which is not a store"),
    ("        - {share: 50}\n", "names a sku, a store or both"),
    ("        - {sku: TEA-001}\n", "sets share, cap or listed"),
    ("        - {sku: TEA-001, share: 120}\n", "less than or equal to 100"),
    ("        - {sku: TEA-001, cap: 1}\n        - {sku: TEA-001, share: 5}\n", "two allocation rules"),
])
def test_check_config_refuses_a_bad_allocation(rules, says):
    block = ("    payment: channel                              # the platform takes and refunds its orders' money\n"
             "    allocation:\n      share: 80\n      rules:\n" + rules)
    found = problems(allocated(block), config_env())
    assert any(says in m for _, m in found), found


def test_check_config_wants_an_express_system_for_a_store_whose_escalation_falls_back_to_express():
    from connectors.registry import check_wiring
    policy = "    # escalation: {after_minutes: 10, tip_fen: 200, max_tip_fen: 600, then: next_courier, last: express}"
    lists = "    # couriers: [local_delivery]"
    on = TEXT.replace(policy, policy.replace("# ", "", 1))
    assert check_wiring(parse_config(on, env=config_env())) == []          # every system serves it, express too
    named = on.replace(lists, "    couriers: [local_delivery, sf_same_city]")
    (path, message), = check_wiring(parse_config(named, env=config_env()))
    assert path == "locations[S001].escalation.last" and "list one (express) in its couriers" in message
    assert check_wiring(parse_config(named.replace("sf_same_city]", "sf_same_city, express]"), env=config_env())) == []
    to_operator = named.replace("last: express}", "last: operator}")
    assert check_wiring(parse_config(to_operator, env=config_env())) == []         # no express needed
    (path, _), = check_wiring(parse_config(to_operator.replace("then: next_courier", "then: express"),
                                           env=config_env()))
    assert path == "locations[S001].escalation.then"


def test_check_config_cli_names_a_store_falling_back_to_express_it_cannot_ship_from(tmp_path):
    policy = "    # escalation: {after_minutes: 10, tip_fen: 200, max_tip_fen: 600, then: next_courier, last: express}"
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEXT.replace(policy, policy.replace("# ", "", 1))
                   .replace("    # couriers: [local_delivery]", "    couriers: [local_delivery]"))
    result = _hub_cli("check-config", str(bad), env=config_env())
    assert result.returncode != 0 and "locations[S001].escalation.last: falls back to express" in result.stdout


# -- opening calendars and delivery areas (issue 22) ---------------------------------------------------

S001_HOURS = '    opening_hours: {open: "09:00", close: "22:00"}\n'
S001_RADIUS = "    delivery_radius_km: 5\n"
assert S001_HOURS in TEXT and S001_RADIUS in TEXT


def with_s001(hours_yaml: str | None = None, areas_yaml: str | None = None) -> str:
    text = TEXT
    if hours_yaml is not None:
        text = text.replace(S001_HOURS, "    opening_hours:\n" + hours_yaml, 1)
    if areas_yaml is not None:
        text = text.replace(S001_RADIUS, "    delivery_areas:\n" + areas_yaml, 1)
    return text


CALENDAR_YAML = """\
      periods:
        - {open: "09:00", close: "14:00"}
        - {open: "17:00", close: "02:00"}
      weekly:
        sun: []
        sat: [{open: "00:00", close: "24:00"}]
      closed: [2026-10-01, "2026-10-02"]
      special:
        2026-12-31: [{open: "18:00", close: "03:00"}]
"""

AREA_YAML = """\
      - name: inner
        min_order_fen: 2000
        delivery_fee_fen: 300
        points: [{lat: 31.215, lng: 121.435}, {lat: 31.215, lng: 121.460}, {lat: 31.240, lng: 121.448}]
"""


def test_an_opening_calendar_is_accepted():
    from datetime import date
    hours = parse_config(with_s001(CALENDAR_YAML), env=config_env()).location("S001").opening_hours
    assert [(p.open, p.close) for p in hours.daily] == [("09:00", "14:00"), ("17:00", "02:00")]
    assert hours.weekly["sun"] == [] and hours.closed == [date(2026, 10, 1), date(2026, 10, 2)]
    assert [(p.open, p.close) for p in hours.special[date(2026, 12, 31)]] == [("18:00", "03:00")]
    old = parse_config(TEXT, env=config_env()).location("S001").opening_hours
    assert [(p.open, p.close) for p in old.daily] == [("09:00", "22:00")]     # the old pair: every day


@pytest.mark.parametrize(("change", "path", "message"), [
    (("sun: []", "sunday: []"), "locations[S001].opening_hours.weekly", "unknown weekday(s) 'sunday'"),
    (('{open: "17:00", close: "02:00"}', '{open: "13:00", close: "02:00"}'), "locations[S001].opening_hours",
     "periods: 09:00-14:00 and 13:00-02:00 overlap"),
    (("2026-10-01,", '"2026-13-01",'), "locations[S001].opening_hours.closed[0]", "valid date"),
    (("2026-10-01,", "2026-13-01,"), "config", "a date that is none (month must be in 1..12)"),
    (('{open: "00:00", close: "24:00"}', '{open: "24:00", close: "06:00"}'),
     "locations[S001].opening_hours.weekly.sat[0].open", "must be HH:MM"),
    (('close: "03:00"', 'close: "18:00"'), "locations[S001].opening_hours.special.2026-12-31[0]",
     "open and close are both 18:00"),
])
def test_a_bad_calendar_is_refused_with_its_path(change, path, message):
    found = problems(with_s001(CALENDAR_YAML.replace(*change)), config_env())
    assert any(p == path and message in m for p, m in found), found


def test_a_calendar_that_never_opens_is_refused():
    never = "      periods: []\n      special: {2026-12-31: [{open: \"09:00\", close: \"10:00\"}]}\n"
    (path, message), = problems(with_s001(never), config_env())
    assert path == "locations[S001].opening_hours" and "never open" in message


def test_delivery_areas_are_accepted():
    store = parse_config(with_s001(areas_yaml=AREA_YAML), env=config_env()).location("S001")
    [area] = store.delivery_areas
    assert (area.name, area.min_order_fen, area.delivery_fee_fen, store.delivery_radius_km) == ("inner", 2000, 300, 0)
    assert area.polygon[0] == (31.215, 121.435)


@pytest.mark.parametrize(("areas", "path", "message"), [
    (AREA_YAML.replace(", {lat: 31.240, lng: 121.448}", ""), "locations[S001].delivery_areas[0].points",
     "at least 3 items"),
    (AREA_YAML.replace("{lat: 31.240, lng: 121.448}", "{lat: 31.215, lng: 121.470}"),
     "locations[S001].delivery_areas[0]", "lie on one line"),
    (AREA_YAML.replace("{lat: 31.240, lng: 121.448}]",
                       "{lat: 31.240, lng: 121.435}, {lat: 31.250, lng: 121.470}]"),
     "locations[S001].delivery_areas[0]", "cross"),
    (AREA_YAML.replace("lat: 31.240", "lat: 91.240"), "locations[S001].delivery_areas[0].points[2].lat", "90"),
    (AREA_YAML.replace("min_order_fen: 2000", "min_order_fen: -1"),
     "locations[S001].delivery_areas[0].min_order_fen", "greater than or equal to 0"),
    (AREA_YAML + AREA_YAML, "locations[S001]", "duplicate name(s) inner"),
    (S001_RADIUS.replace("    ", "") + AREA_YAML, None, None),
])
def test_a_bad_delivery_area_is_refused_with_its_path(areas, path, message):
    if path is None:                                      # areas and a radius: which one would count?
        text = TEXT.replace(S001_RADIUS, S001_RADIUS + "    delivery_areas:\n" + AREA_YAML, 1)
        path, message = "locations[S001]", "has no delivery_radius_km"
    else:
        text = with_s001(areas_yaml=areas)
    found = problems(text, config_env())
    assert any(p == path and message in m for p, m in found), found


def test_check_config_cli_names_a_bad_area_and_a_bad_calendar(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(with_s001(CALENDAR_YAML.replace("sun: []", "sunday: []"),
                             AREA_YAML.replace(", {lat: 31.240, lng: 121.448}", "")))
    result = _hub_cli("check-config", str(bad), env=config_env())
    assert result.returncode != 0
    assert "locations[S001].opening_hours.weekly" in result.stdout and "'sunday'" in result.stdout
    assert "locations[S001].delivery_areas[0].points" in result.stdout


def test_check_config_wants_a_channel_whose_buyers_pay_its_shop_to_be_payment_channel():
    """The WeChat shop's orders were the mini-program's (WeChat Pay's): refunds and shipping info asked of a platform
    that never saw them. A channel system that takes its buyers' money (`takes_payment`) must be `payment: channel`,
    and its orders must come in under the channel that publishes to it."""
    from connectors.registry import check_wiring
    assert check_wiring(parse_config(TEXT, env=config_env())) == []
    shop = next(line + "\n" for line in TEXT.splitlines() if "the shop takes and refunds its orders' money" in line)
    (path, message), = check_wiring(parse_config(TEXT.replace(shop, ""), env=config_env()))
    assert path == "channels[wechat_shop].payment" and "set payment: channel" in message
    elsewhere = TEXT.replace("    push_token: ${HUB_WECHAT_PUSH_TOKEN}\n",
                             "    push_token: ${HUB_WECHAT_PUSH_TOKEN}\n    channel: miniprogram\n")
    (path, message), = check_wiring(parse_config(elsewhere, env=config_env()))
    assert path == "systems.wechat_shop.channel" and "does not publish to it" in message


def test_the_gateway_server_is_granian_unless_the_file_or_the_environment_says_otherwise():
    assert parse_config(TEXT, env=config_env()).hub.http.server == "granian"
    assert parse_config(TEXT, env={**config_env(), "HUB_GATEWAY_SERVER": "nameko"}).hub.http.server == "nameko"
    assert parse_config(TEXT, env={**config_env(), "HUB_GATEWAY_SERVER": "gunicorn"}).hub.http.server == "gunicorn"
    named = TEXT.replace("max_body_bytes: 1000000}", "max_body_bytes: 1000000, server: nameko, threads: 4}")
    assert named != TEXT
    cfg = parse_config(named, env=config_env())
    assert (cfg.hub.http.server, cfg.hub.http.threads) == ("nameko", 4)
    assert [p for p, _ in problems(TEXT, {**config_env(), "HUB_GATEWAY_SERVER": "bjoern"})] == ["hub.http.server"]
    assert [p for p, _ in problems(named.replace("threads: 4", "threads: 0"), config_env())] == ["hub.http.threads"]
