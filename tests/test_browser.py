"""A real browser against `streamlit run app.py`: move a slider, see the metric change, keep a screenshot.

Uses Debian's Chromium (/usr/bin/chromium, installed by `python3 tasks.py test`) driven by Playwright;
no browser is downloaded. The server listens on a free loopback port only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import REFERENCE, ROOT
from tests.serving import free_port, stop, wait_until_serving

CHROMIUM = Path(os.environ.get("DEALMODEL_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts"
pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: `python3 tasks.py test` installs it", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed (python3 tasks.py test installs it)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none",
         "--", str(REFERENCE["revenue_share"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, proc)
    yield url
    stop(proc)


def _wait_idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=60_000)


def _metric(page, label: str) -> float:
    value = page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue").inner_text()
    return float(re.sub(r"[^0-9.\-−]", "", value).replace("−", "-"))


def test_moving_a_slider_in_a_real_browser_changes_the_partners_value(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            page.goto(server, wait_until="domcontentloaded")
            _wait_idle(page)
            before = _metric(page, "Partner eNPV")
            slider = page.get_by_test_id("stSlider").filter(has_text="rate above").get_by_role(
                "slider")
            slider.focus()
            for _ in range(6):
                slider.press("ArrowRight")
            page.wait_for_timeout(500)
            _wait_idle(page)
            expect(page.get_by_test_id("stMetric").filter(has_text="Partner eNPV")
                   .get_by_test_id("stMetricValue")).not_to_have_text(f"{before:,.1f}", timeout=30_000)
            _wait_idle(page)
            after = _metric(page, "Partner eNPV")
            assert after > before
            page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)

            # the comparison workbook downloads, built on click, and opens with the edited numbers
            page.get_by_role("tab", name="Compare & solve").click()
            with page.expect_download(timeout=60_000) as info:
                page.get_by_role("button", name="Download the comparison (Excel)").click()
            saved = ARTIFACTS / "comparison.xlsx"
            info.value.save_as(saved)
            wb = openpyxl.load_workbook(saved)
            assert wb.sheetnames[:2] == ["Summary", "Comparison"]
            rows = {r[0].value: r for r in wb["Comparison"].iter_rows(min_row=3)}
            header = [c.value for c in wb["Comparison"][2]]
            partner = rows["Reference program — revenue share"][header.index("partner expected NPV")].value
            assert f"{partner:,.1f}" == f"{after:,.1f}"
        finally:
            browser.close()
    assert (ARTIFACTS / "app.png").stat().st_size > 50_000


def test_the_key_figures_and_the_main_chart_are_on_the_first_screen(server):
    """At 1440 x 900 and 1280 x 720, without scrolling: the metrics and most of the overview chart."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            for width, height in ((1440, 900), (1280, 720)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(server, wait_until="domcontentloaded")
                _wait_idle(page)
                chart = page.locator('[data-testid="stVegaLiteChart"]').first
                expect(chart).to_be_visible(timeout=60_000)
                box = chart.bounding_box()
                assert box is not None and box["height"] >= 250
                visible = min(box["y"] + box["height"], height) - max(box["y"], 0)
                assert visible >= 0.6 * box["height"], (width, height, box)
                for metric in page.get_by_test_id("stMetric").all():
                    m = metric.bounding_box()
                    assert m is not None and m["y"] + m["height"] <= height, (width, height, m)
                page.close()
        finally:
            browser.close()


def test_every_view_renders_at_both_sizes_and_is_kept_as_an_artefact():
    """tools/screenshots.py in CI: every tab (the on-request analyses opened) at 1440x900 and 1280x720,
    saved under artifacts/screens for a person to look at, with no view showing an error."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import screenshots
    finally:
        sys.path.remove(str(ROOT / "tools"))
    out = ARTIFACTS / "screens"
    problems = screenshots.main(out)
    assert problems == []
    tabs = ["value-bridge", "distributions", "risk-vs-return", "cash-flow", "sensitivity", "compare-and-solve",
            "negotiate", "decisions"]
    for width, height in screenshots.SIZES:
        assert (out / f"{width}x{height}-first-screen.png").stat().st_size > 50_000
        for i, tab in enumerate(tabs):
            assert (out / f"{width}x{height}-{i + 1}-{tab}.png").stat().st_size > 30_000, tab


def test_three_people_at_once_get_through_a_visit_without_errors():
    """The load benchmark's short version (benchmarks/bench_load.py): three sessions at once open the app,
    move a term slider, switch tabs and download the workbook, on one server."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_load
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    (row,) = bench_load.load([3])
    assert row["errors"] == []
    assert {action: len(times) for action, times in row["times"].items()} == {
        "open": 3, "slider": 3, "tab": 3, "download": 3}
    assert 0 < row["peak_mb"] < 2_048
