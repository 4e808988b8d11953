"""Many people on one app server: per-action latency, errors and the server's memory. Prints figures.

    .venv/bin/python benchmarks/bench_load.py [N ...] [--arrivals S]   # default N: 1 5 10 20

``--arrivals S`` starts each session at a random moment within S seconds (seeded), as people
arrive, instead of all at once. The browsers run on the same machine as the server: on two cores
they take most of the CPU (the figures print how much).

Starts ``streamlit run app.py`` on a free loopback port with the reference revenue-share deal and,
for each N, drives N browser sessions at once (headless Chromium, one browser context each, so
each is its own Streamlit session) through a scripted visit: open the app, move a term slider
(each session by a different number of steps, so no two ask for the same result), switch to
another tab, download the comparison workbook. Reports the median and 95th percentile of each
action's latency, the errors seen (an exception in a step, or an error box in the page) and the
server's peak resident memory, then its memory 20 s after the sessions have closed, and the CPU
time the server and the whole machine (server and browsers) used.

Targets (issue 17, this 2-core machine): 10 concurrent users with p95 slider-to-redraw <= 2 s, no
errors, server <= 2 GB. The test suite runs a short version (tests/test_serve.py).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DEALMODEL_CHROMIUM", "/usr/bin/chromium")
DEAL = ROOT / "sample_deals" / "reference_revenue_share.yaml"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time used so far by a process (user + system), or by the whole machine when pid is None."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        if pid is None:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            return (int(fields[0]) + int(fields[1]) + int(fields[2])) / tick  # user, nice, system
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    except OSError:
        return 0.0


class Server:
    """The app on a loopback port, and a thread that keeps its peak memory."""

    def __init__(self):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(self.port), "--server.fileWatcherType", "none",
             "--", str(DEAL)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.peak = 0.0
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._sample, daemon=True)
        self._watch.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.close()
        raise RuntimeError("the app did not start")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.proc.pid))
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _idle(page, timeout: float = 120_000) -> None:
    await page.wait_for_selector(IDLE, timeout=timeout)


async def _metric(page, label: str) -> str:
    return await page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue").inner_text()


async def session(browser, url: str, steps: int, times: dict[str, list[float]], errors: list[str]) -> None:
    """One person's visit; each action's seconds go into ``times``, anything wrong into ``errors``."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    try:
        t = time.perf_counter()
        await page.goto(url, wait_until="domcontentloaded")
        await _idle(page)
        await page.get_by_test_id("stMetric").first.wait_for(timeout=120_000)
        times["open"].append(time.perf_counter() - t)

        before = await _metric(page, "Partner eNPV")
        slider = page.get_by_test_id("stSlider").filter(has_text="rate above").get_by_role("slider").first
        await slider.focus()
        t = time.perf_counter()
        for _ in range(steps):
            await slider.press("ArrowRight")
        deadline = time.monotonic() + 120
        while await _metric(page, "Partner eNPV") == before and time.monotonic() < deadline:
            await page.wait_for_timeout(50)
        await _idle(page)
        times["slider"].append(time.perf_counter() - t)

        t = time.perf_counter()
        await page.get_by_role("tab", name="Distributions").click()
        await page.get_by_text("NPV by percentile").first.wait_for(timeout=60_000)
        times["tab"].append(time.perf_counter() - t)

        await page.get_by_role("tab", name="Compare & solve").click()
        t = time.perf_counter()
        async with page.expect_download(timeout=120_000) as info:
            await page.get_by_role("button", name="Download the comparison (Excel)").click()
        download = await info.value
        if await download.failure():
            errors.append(f"download failed: {await download.failure()}")
        times["download"].append(time.perf_counter() - t)

        boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        if await boxes.count():
            errors.append(re.sub(r"\s+", " ", await boxes.first.inner_text())[:200])
    except Exception as exc:  # a step that failed or timed out: counted, the others go on
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        await context.close()


async def _later(delay: float, job) -> None:
    await asyncio.sleep(delay)
    await job


async def run(url: str, n: int, arrivals: float = 0.0) -> tuple[dict[str, list[float]], list[str]]:
    times: dict[str, list[float]] = {"open": [], "slider": [], "tab": [], "download": []}
    errors: list[str] = []
    starts = random.Random(n).uniform  # the same arrival times on every run
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            await asyncio.gather(*(_later(starts(0.0, arrivals) if arrivals else 0.0,
                                          session(browser, url, 1 + i % 12, times, errors)) for i in range(n)))
        finally:
            await browser.close()
    return times, errors


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(0.95 * len(values)) - 1)] if values else float("nan")


def load(counts: list[int], arrivals: float = 0.0) -> list[dict]:
    """Each N on a fresh server; returns one row of figures per N."""
    rows = []
    for n in counts:
        server = Server()
        try:
            base = rss_mb(server.proc.pid)
            cpu0, all0, wall0 = cpu_seconds(server.proc.pid), cpu_seconds(), time.monotonic()
            times, errors = asyncio.run(run(server.url, n, arrivals))
            peak = server.peak
            cpu, whole, wall = (cpu_seconds(server.proc.pid) - cpu0, cpu_seconds() - all0,
                                time.monotonic() - wall0)
            time.sleep(20)  # sessions closed: their memory should go back
            after = rss_mb(server.proc.pid)
        finally:
            server.close()
        rows.append({"sessions": n, "times": times, "errors": errors, "base_mb": base, "peak_mb": peak,
                     "after_mb": after, "server_cpu": cpu, "machine_cpu": whole, "wall": wall})
        cells = "  ".join(f"{a} {statistics.median(v):.2f}/{_p95(v):.2f}s" if v else f"{a} -"
                          for a, v in times.items())
        print(f"N={n:>2}: {cells}  (median/p95)  errors {len(errors)}  server MB: start {base:.0f}, "
              f"peak {peak:.0f}, 20 s after {after:.0f}; CPU over {wall:.0f} s: server {cpu:.0f} s, whole machine "
              f"{whole:.0f} s (the rest is the browsers)", flush=True)
        for e in errors[:5]:
            print(f"       error: {e}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sessions", nargs="*", type=int, default=[1, 5, 10, 20])
    parser.add_argument("--arrivals", type=float, default=0.0, help="sessions start within this many seconds")
    args = parser.parse_args()
    print(f"sessions arrive within {args.arrivals:g} s" if args.arrivals else "sessions start at once", flush=True)
    load(args.sessions, args.arrivals)
