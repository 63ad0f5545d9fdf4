"""The store staff screen in a real browser (Debian's headless Chromium driven by Playwright, as the
console's test does): a store logs in with its key, sees its paid orders oldest first, picks one with a
line short, hands a pickup over against its code, and pauses taking orders. The screenshot is kept in
artifacts/store-screen.png."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.api.conftest import CHANNEL_KEY, POS_KEYS
from tests.browser.test_console import ARTIFACTS, browser, hub_url  # noqa: F401 - the same fixtures

CHANNEL = {"Authorization": f"Bearer {CHANNEL_KEY}"}
STORE = {"Authorization": f"Bearer {POS_KEYS['S001']}"}


def _paid_pickup(base: str, lines: list[tuple[str, int]], note: str = "") -> str:
    body = {"lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
            "buyer": {"id": "b-store", "name": "Han Meimei", "phone": "13900001111"},
            "fulfillment": {"type": "pickup", "store_id": "S001"}}
    if note:
        body["note"] = note
    r = requests.post(f"{base}/api/v1/orders", json=body, timeout=10,
                      headers={**CHANNEL, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    r = requests.post(f"{base}/api/v1/orders/{order_id}/pay", json={"payment_ref": f"tx-{order_id}"},
                      headers=CHANNEL, timeout=10)
    assert r.status_code == 200, r.text
    return order_id


def _store_order(base: str, order_id: str) -> dict:
    r = requests.get(f"{base}/api/v1/stores/S001/orders", headers=STORE, timeout=10,
                     params={"status": "ready_for_pickup"})
    assert r.status_code == 200, r.text
    return next(o for o in r.json()["orders"] if o["order_id"] == order_id)


@pytest.fixture(scope="module")
def orders(hub_url):  # noqa: F811 - the console test's fixture
    return {"short": _paid_pickup(hub_url, [("TEA-001", 3), ("CUP-002", 1)]),
            "handover": _paid_pickup(hub_url, [("TEA-001", 1)]),
            "waiting": _paid_pickup(hub_url, [("TEA-001", 2), ("CUP-002", 1)])}


def test_the_page_is_served_without_a_key_and_loads_nothing_from_elsewhere(hub_url):  # noqa: F811
    r = requests.get(f"{hub_url}/store", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http://" not in r.text and "https://" not in r.text       # no CDN, no external font
    assert POS_KEYS["S001"] not in r.text


def test_a_store_picks_short_hands_over_a_pickup_and_pauses(hub_url, browser, orders):  # noqa: F811
    context = browser.new_context(viewport={"width": 1180, "height": 1400}, locale="zh-CN", has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert page.goto(f"{hub_url}/store").status == 200
    assert page.inner_text("#login h2") == "门店登录"            # Chinese from the browser's language
    page.click("#lang")
    assert page.inner_text("#login h2") == "Store login"

    # a wrong key: the API's refusal shown, nothing else
    page.fill("#login input[name=store_id]", "S001")
    page.fill("#login input[name=store_key]", "not-the-key")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#error.show:has-text('Wrong store ID or key')")
    assert page.is_visible("#login")

    page.fill("#login input[name=store_id]", "s001")
    page.fill("#login input[name=store_key]", POS_KEYS["S001"])
    page.fill("#login input[name=staff]", "Wang")
    page.click("#login button[type=submit]")
    page.wait_for_selector(f"#to-pick .card[data-order='{orders['short']}']")
    assert not page.is_visible("#error")
    assert page.evaluate("sessionStorage.getItem('store_id')") == "S001"
    assert POS_KEYS["S001"] not in page.url
    # oldest first (the served hub may hold an order of its own before ours)
    listed = page.eval_on_selector_all("#to-pick .card", "cards => cards.map(c => c.dataset.order)")
    assert [x for x in listed if x in orders.values()] == [orders["short"], orders["handover"], orders["waiting"]]

    # pick with one line short: 2 of 3 teas, the cup in full
    card = f"#to-pick .card[data-order='{orders['short']}']"
    page.click(f"{card} button.start")
    tea, cup = f"{card} .line[data-sku='TEA-001']", f"{card} .line[data-sku='CUP-002']"
    page.wait_for_selector(f"{tea} button.plus")
    page.click(f"{tea} button.all")
    page.click(f"{tea} button.minus")
    assert page.inner_text(f"{tea} .qty") == "2 / 3"
    page.click(f"{cup} button.all")
    assert page.is_disabled(f"{card} button.confirm")          # a line under its quantity must be marked short
    page.click(f"{tea} button.short")
    assert page.inner_text(f"{card} button.confirm") == "Confirm pick (1 short)"
    assert "refunded" in page.inner_text(f"{card} .summary")
    page.click(f"{card} button.confirm")
    page.wait_for_selector(card, state="detached")
    page.wait_for_selector("#notice.show:has-text('Picked')")
    picked = _store_order(hub_url, orders["short"])
    assert {x["sku"]: x["qty_picked"] for x in picked["lines"]} == {"TEA-001": 2, "CUP-002": 1}
    assert picked["picked_by"].endswith("Wang")                 # the staff named at login

    # the second pickup picked in full, then handed over with its code (a wrong code first)
    card = f"#to-pick .card[data-order='{orders['handover']}']"
    page.click(f"{card} button.start")
    page.click(f"{card} .line[data-sku='TEA-001'] button.all")
    page.click(f"{card} button.confirm")
    page.wait_for_selector(card, state="detached")
    ready = f"#handover .card[data-order='{orders['handover']}']"
    code = requests.get(f"{hub_url}/api/v1/orders/{orders['handover']}", headers=CHANNEL, timeout=10
                        ).json()["pickup_code"]
    page.fill(f"{ready} input.code", "000000" if code != "000000" else "111111")
    page.click(f"{ready} button.collect")
    page.wait_for_selector("#error.show:has-text('attempts left')")
    page.fill(f"{ready} input.code", code)
    page.click(f"{ready} button.collect")
    page.wait_for_selector(ready, state="detached")
    assert not page.is_visible("#error")
    done = requests.get(f"{hub_url}/api/v1/orders/{orders['handover']}", headers=CHANNEL, timeout=10).json()
    assert done["status"] in ("collected", "completed")

    # the filter: delivery hides the store's pickups
    page.click("#filter button[data-f=delivery]")
    page.wait_for_selector("#to-pick .empty")
    page.click("#filter button[data-f='']")
    page.wait_for_selector(f"#to-pick .card[data-order='{orders['waiting']}']")

    # pause taking orders for half an hour, busy
    page.select_option("#pauseform select", "30")
    page.fill("#pauseform input[name=reason]", "lunch rush")
    page.click("#pause")
    page.wait_for_selector("#state.paused:has-text('lunch rush')")
    assert page.is_visible("#resume")
    status = requests.get(f"{hub_url}/api/v1/stores/S001/status", headers=STORE, timeout=10).json()
    assert status["paused"] is True and status["reason"] == "lunch rush" and status["paused_until"]

    # back to Chinese, the waiting order being picked: what the screenshot shows
    page.click("#lang")
    page.wait_for_selector("#state.paused:has-text('已暂停接单')")
    card = f"#to-pick .card[data-order='{orders['waiting']}']"
    page.click(f"{card} button.start")
    page.click(f"{card} .line[data-sku='TEA-001'] button.all")
    page.click(f"{card} .line[data-sku='CUP-002'] button.short")
    assert page.inner_text(f"{card} button.confirm") == "确认拣货（缺 1 件）"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "store-screen.png"), full_page=True)
    assert errors == []
    context.close()
