"""Screenshot every view of the app at the sizes BD staff use, to look at before a change lands.

    .venv/bin/python tools/screenshots.py [OUT_DIR]     # default artifacts/screens

Starts the app as `python3 tasks.py run` does (`python -m dealmodel.serve run app.py`) on a free
loopback port, opens it in Debian's Chromium (Playwright, no browser download) at 1440x900 and
1280x720, and saves the first screen and each tab.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from dealmodel.proxy import free_port
from dealmodel.serve import answers

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DEALMODEL_CHROMIUM", "/usr/bin/chromium")
SIZES = [(1440, 900), (1280, 720)]
TOGGLES = [("Analyse the gate decisions", "Value of flexibility"),
           ("Show what each candidate is worth to each side", "over the first")]


def main(out: Path) -> list[str]:
    """Shoot every view into ``out``; returns the problems seen (a view showing an error box)."""
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    port = free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "dealmodel.serve", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not answers(url, 120):
            raise RuntimeError("the app did not start")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            for width, height in SIZES:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(url)
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=90_000)
                page.wait_for_timeout(1500)
                page.screenshot(path=out / f"{width}x{height}-first-screen.png")
                tabs = page.get_by_role("tab")
                for i in range(tabs.count()):
                    name = tabs.nth(i).inner_text().strip().lower().replace(" ", "-").replace("&", "and")
                    tabs.nth(i).click()  # the app builds a tab's view when it is opened: wait for that run
                    page.wait_for_timeout(500)
                    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                                           timeout=90_000)
                    page.wait_for_timeout(800)
                    run = page.get_by_role("button", name="Find the zone of agreement")
                    if run.count() and run.first.is_visible():  # the Negotiate view shows its answer on request
                        run.first.click()
                        page.get_by_text("Nash: the largest product").or_(page.get_by_text("No terms in this range")) \
                            .first.wait_for(timeout=120_000)
                        page.wait_for_timeout(1500)
                    for toggle, shown in TOGGLES:  # views that show their analysis on request
                        switch = page.get_by_text(toggle)
                        if switch.count() and switch.first.is_visible():
                            switch.first.click()
                            page.get_by_text(shown).first.wait_for(timeout=120_000)
                            page.wait_for_timeout(1500)
                    panel = page.locator('[role="tabpanel"]:visible').first
                    panel.scroll_into_view_if_needed()
                    page.wait_for_timeout(300)
                    page.screenshot(path=out / f"{width}x{height}-{i + 1}-{name}.png")  # what the user sees there
                    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
                    if errors.count():
                        problems.append(f"{width}x{height} {name}: {errors.first.inner_text()[:200]}")
                    if run.count() and run.first.is_visible():  # and over two terms: the region
                        second = page.get_by_role("combobox", name=re.compile("Second term")).first
                        second.evaluate("e => e.scrollIntoView({block: 'center'})")  # out from under the header
                        second.click()
                        page.get_by_role("option").filter(has_text="Approval").first.click()
                        page.wait_for_timeout(800)
                        run.first.click()
                        page.get_by_text("With two terms each split").or_(page.get_by_text("No pair of values")) \
                            .first.wait_for(timeout=120_000)
                        page.wait_for_timeout(1500)
                        page.get_by_text("Both parties gain on").or_(page.get_by_text("No pair of values")).first \
                            .evaluate("e => e.scrollIntoView({block: 'start'})")
                        page.wait_for_timeout(500)
                        page.screenshot(path=out / f"{width}x{height}-{i + 1}-{name}-two-terms.png")
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"screenshots in {out}")
    for problem in problems:
        print(f"problem: {problem}")
    return problems


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "artifacts" / "screens")
