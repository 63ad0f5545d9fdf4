"""The console in a real browser: Debian's headless Chromium driven by Playwright (never a downloaded
browser build). An operator logs in, looks a SKU up and reads its ledger history, searches an order and
opens its timeline, and replays a dead letter; the last hour's charts carry their points. Screenshots are
kept in artifacts/console.png and artifacts/console-charts.png."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.api.conftest import OPS_KEY
from tests.contract.serve import served
from workers.launcher import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with served(tmp_path_factory.mktemp("hub")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is not installed (make test installs Debian's package)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_an_operator_looks_up_stock_searches_an_order_and_replays_a_dead_letter(hub_url, browser):
    wrong = browser.new_context(http_credentials={"username": "ops", "password": "not-the-key"})
    assert wrong.new_page().goto(f"{hub_url}/admin").status == 401
    wrong.close()

    context = browser.new_context(http_credentials={"username": "ops", "password": OPS_KEY},
                                  viewport={"width": 1400, "height": 1500}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert page.goto(f"{hub_url}/admin").status == 200
    page.wait_for_selector("#connectors tbody tr td:has-text('wechat_shop')")
    assert "库存查询 Stock lookup" in page.inner_text("#stock h2")

    # stock and its ledger history: the POS sale R-1001 took S001 from 20 to 18
    page.fill("#stock-form input[name=sku]", "TEA-001")
    page.select_option("#stock-form select[name=location]", "S001")
    page.click("#stock-form button")
    sale = page.wait_for_selector("#stock table.history tr:has-text('R-1001')")
    assert "pos:S001" in sale.inner_text() and "20 → 18" in sale.inner_text()
    assert "S002" not in page.inner_text("#stock table.levels")

    # order search by the buyer's phone suffix, then the timeline
    page.fill("#order-form input[name=phone_suffix]", "8000")
    page.click("#order-form button")
    page.click("#orders .result tr.pick")
    page.wait_for_selector("#orders .timeline tr:has-text('pending_payment')")

    # replay one dead letter: it leaves the list, the other stays
    page.wait_for_selector("#letters tr[data-id='1']")
    page.click("#letters tr[data-id='1'] button.replay")
    page.wait_for_selector("#notice:has-text('Replayed: 1')")
    page.wait_for_selector("#letters tr[data-id='1']", state="detached")
    assert page.query_selector("#letters tr[data-id='2']") is not None
    page.wait_for_selector("#flash p")             # the flash-sale panel answers either way
    page.wait_for_selector("#refunds p")           # no refund needs an operator here
    # the shop's order pull took one order its pushes missed; Meituan's has not run here
    pulled = page.wait_for_selector("#drift .pulls tr:has-text('wechat_shop')")
    assert [c.inner_text() for c in pulled.query_selector_all("td")][:2] == ["wechat_shop", "1"]
    assert "not pulled yet" in page.inner_text("#drift .pulls tr:has-text('meituan')")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
    assert errors == []
    context.close()


def test_the_last_hour_is_charted_a_minute_at_a_time(hub_url, browser):
    context = browser.new_context(http_credentials={"username": "ops", "password": OPS_KEY},
                                  viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert page.goto(f"{hub_url}/admin").status == 200
    page.wait_for_selector("#chart-latency svg.chart path.line", state="attached")   # one point: no size
    charts = page.eval_on_selector_all("#charts svg.chart", """svgs => svgs.map(s => ({
        id: s.parentElement.id,
        lines: [...s.querySelectorAll("path.line")].map(p => [p.dataset.series, Number(p.dataset.points),
                                                             p.getAttribute("d").split(/[ML]/).length - 1])}))""")
    by_id = {c["id"]: {name: (points, drawn) for name, points, drawn in c["lines"]} for c in charts}
    assert set(by_id) == {"chart-flow", "chart-backlog", "chart-errors", "chart-latency"}
    # sixty minutes of events from the database: the seeded stock and the order were written, none published
    assert set(by_id["chart-flow"]) == {"written", "published", "consumed", "parked"}
    assert all(points == drawn == 60 for points, drawn in by_id["chart-flow"].values())
    assert by_id["chart-backlog"]["unsent"] == (60, 60)
    # the reconciliation called the shop simulator (one call failing): its error rate and latency are drawn
    assert by_id["chart-errors"]["wechat_shop"][0] >= 1 and by_id["chart-latency"]["wechat_shop"][0] >= 1
    backlog_tail = page.inner_text("#chart-backlog .legend")
    assert "unsent" in backlog_tail and "unsent —" not in backlog_tail          # the newest figure is shown
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#charts").screenshot(path=str(ARTIFACTS / "console-charts.png"))
    assert errors == []
    context.close()
