"""Many people on one app server: per-action latency, errors and the server's memory. Prints figures.

    .venv/bin/python benchmarks/bench_load.py [N ...] [--arrivals S]   # default N: 1 5 10 20

``--arrivals S`` starts each session at a random moment within S seconds (seeded), as people
arrive, instead of all at once. The browsers run on the same machine as the server: on two cores
they take most of the CPU (the figures print how much).

Starts the app as ``python3 tasks.py run`` does (``python -m dealmodel.serve run app.py``) on a free
loopback port with the reference revenue-share deal and,
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
import contextlib
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.async_api import async_playwright

from dealmodel.proxy import free_port
from dealmodel.serve import answers

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DEALMODEL_CHROMIUM", "/usr/bin/chromium")
DEAL = ROOT / "sample_deals" / "reference_revenue_share.yaml"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def family(pid: int) -> list[int]:
    """A process and all its descendants (the proxy and its app processes, in team mode's workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (0 once they have gone)."""
    total = 0.0
    for p in family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time used so far (user + system) by a process and its descendants, or by the whole machine
    when pid is None."""
    tick = os.sysconf("SC_CLK_TCK")
    if pid is None:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        return (int(fields[0]) + int(fields[1]) + int(fields[2])) / tick  # user, nice, system
    total = 0.0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except OSError:
            pass
    return total


class Server:
    """The app on a loopback port, and a thread that keeps its peak memory."""

    def __init__(self, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
        if workers == 1:
            command = [sys.executable, "-m", "dealmodel.serve", "run", str(ROOT / "app.py"), "--server.headless",
                       "true", "--server.address", "127.0.0.1", "--server.port", str(self.port),
                       "--server.fileWatcherType", "none", "--", str(DEAL)]
        else:  # team mode's proxy in front of several app processes (no sign-in: loopback, one local user)
            self._folder = tempfile.TemporaryDirectory(prefix="dealmodel-load.")
            env["DEALMODEL_TEAM_DIR"] = self._folder.name
            command = [sys.executable, "-m", "dealmodel.team", "--workers", str(workers), "--address", "127.0.0.1",
                       "--port", str(self.port), str(DEAL)]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.peak = 0.0
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._sample, daemon=True)
        self._watch.start()
        if not answers(self.url, 90):
            self.close()
            raise RuntimeError("the app did not start")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.proc.pid))
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        others = family(self.proc.pid)[1:]
        self.proc.terminate()  # team mode's proxy stops its app processes itself
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for pid in others:  # none should be left; never leave one behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if hasattr(self, "_folder"):
            self._folder.cleanup()


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


class _Stream:
    """One Streamlit session over its websocket, as the browser's page script would speak to it."""

    def __init__(self, ws):
        self.ws = ws
        self.widgets: dict[str, tuple[str, object]] = {}
        self.metrics: dict[str, str] = {}
        self.errors: list[str] = []
        self.session_id = ""

    async def rerun(self, states: dict[str, tuple[str, object]]) -> None:
        """Send a rerun with these widget values (kind, value) and read until the script has finished."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        back = BackMsg()
        back.rerun_script.page_script_hash = ""
        for wid, (kind, value) in states.items():
            w = back.rerun_script.widget_states.widgets.add()
            w.id = wid
            if kind == "double_array_value":
                w.double_array_value.data.append(value)
            else:
                setattr(w, kind, value)
        await self.ws.send(back.SerializeToString())
        await self.read(lambda msg: msg.WhichOneof("type") == "script_finished")

    async def read(self, done) -> object:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self.ws.recv())
            if msg.WhichOneof("type") == "delta":
                self._element(msg.delta)
            elif msg.WhichOneof("type") == "new_session" and msg.new_session.initialize.session_id:
                self.session_id = msg.new_session.initialize.session_id
            if done(msg):
                return msg

    def _element(self, delta) -> None:
        for part in ("new_element", "add_block"):
            if delta.WhichOneof("type") != part:
                continue
            el = getattr(delta, part)
            kind = el.WhichOneof("type")
            inner = getattr(el, kind) if kind else None
            if inner is None:
                return
            if kind == "metric":
                self.metrics[inner.label] = inner.body
            elif kind == "exception" or (kind == "alert" and inner.format == 1):  # 1: error
                self.errors.append(re.sub(r"\s+", " ", getattr(inner, "message", "") or inner.body)[:200])
            wid = getattr(inner, "id", "")
            if wid:
                self.widgets[wid] = (kind, inner)

    def widget(self, suffix: str) -> str:
        return next(w for w in self.widgets if w.endswith(suffix))


async def protocol_session(url: str, steps: int, times: dict[str, list[float]], errors: list[str]) -> None:
    """One person's visit spoken over Streamlit's websocket: no browser, so no drawing on these cores."""
    import websockets

    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    try:
        # the page first, as a browser loads it: behind team mode's proxy its cookie names this person's worker
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url + "/", timeout=120))
        cookie = "; ".join(c.split(";", 1)[0] for c in page.headers.get_all("Set-Cookie") or [])
        headers = {"Cookie": cookie} if cookie else {}
        async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                      additional_headers=headers) as ws:
            stream = _Stream(ws)
            t = time.perf_counter()
            await stream.rerun({})
            times["open"].append(time.perf_counter() - t)

            before = stream.metrics.get("Partner eNPV, $M")
            slider = (stream.widget("::terms[1].tiers[0].rate"), ("double_array_value", 10.0 + 0.5 * steps))
            t = time.perf_counter()
            await stream.rerun(dict([slider]))
            times["slider"].append(time.perf_counter() - t)
            if stream.metrics.get("Partner eNPV, $M") == before:
                errors.append("the slider did not change the partner's value")

            view = stream.widget("-view")
            t = time.perf_counter()
            await stream.rerun(dict([slider, (view, ("string_value", "Distributions"))]))
            times["tab"].append(time.perf_counter() - t)

            await stream.rerun(dict([slider, (view, ("string_value", "Compare & solve"))]))
            button = stream.widgets[stream.widget("dl_xlsx")][1]
            from streamlit.proto.BackMsg_pb2 import BackMsg

            t = time.perf_counter()
            back = BackMsg()
            back.backend_operation_request.request_id = "workbook"
            back.backend_operation_request.session_id = stream.session_id
            back.backend_operation_request.deferred_file.file_id = button.deferred_file_id
            await ws.send(back.SerializeToString())
            reply = await stream.read(lambda msg: msg.WhichOneof("type") == "backend_operation_response")
            answer = reply.backend_operation_response
            if answer.error_msg:
                errors.append(f"download failed: {answer.error_msg}")
            else:
                link = answer.deferred_file.url
                fetch = urllib.request.Request(url + link, headers=headers)
                data = await asyncio.to_thread(lambda: urllib.request.urlopen(fetch, timeout=120).read())
                if not data.startswith(b"PK"):
                    errors.append("the download is not a workbook")
            times["download"].append(time.perf_counter() - t)
            errors.extend(stream.errors)
    except Exception as exc:  # a step that failed or timed out: counted, the others go on
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


async def _later(delay: float, job) -> None:
    await asyncio.sleep(delay)
    await job


async def run(url: str, n: int, arrivals: float = 0.0, protocol: bool = False
              ) -> tuple[dict[str, list[float]], list[str]]:
    times: dict[str, list[float]] = {"open": [], "slider": [], "tab": [], "download": []}
    errors: list[str] = []
    starts = random.Random(n).uniform  # the same arrival times on every run
    if protocol:
        await asyncio.gather(*(_later(starts(0.0, arrivals) if arrivals else 0.0,
                                      protocol_session(url, 1 + i % 12, times, errors)) for i in range(n)))
        return times, errors
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


def load(counts: list[int], arrivals: float = 0.0, protocol: bool = False, settle: float = 0.0,
         workers: int = 1) -> list[dict]:
    """Each N on a fresh server; returns one row of figures per N. ``settle``: seconds between the server
    answering and the first session (the launcher loads the model meanwhile; 0: people waiting at the door).
    ``workers``: app processes behind team mode's proxy (memory and CPU are then the whole family's)."""
    rows = []
    for n in counts:
        server = Server(workers)
        time.sleep(settle)
        try:
            base = rss_mb(server.proc.pid)
            cpu0, all0, wall0 = cpu_seconds(server.proc.pid), cpu_seconds(), time.monotonic()
            times, errors = asyncio.run(run(server.url, n, arrivals, protocol))
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
              f"{whole:.0f} s", flush=True)
        for e in errors[:5]:
            print(f"       error: {e}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sessions", nargs="*", type=int, default=[1, 5, 10, 20])
    parser.add_argument("--arrivals", type=float, default=0.0, help="sessions start within this many seconds")
    parser.add_argument("--protocol", action="store_true",
                        help="speak Streamlit's websocket protocol instead of driving browsers (no drawing)")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds from the server answering to the first session (default 0)")
    parser.add_argument("--workers", type=int, default=1,
                        help="app processes behind team mode's proxy (python -m dealmodel.team --workers N)")
    args = parser.parse_args()
    print(("sessions over the websocket protocol (no browsers); " if args.protocol else "browser sessions; ")
          + (f"arriving within {args.arrivals:g} s" if args.arrivals else "starting at once")
          + (f"; {args.workers} app processes behind the proxy" if args.workers > 1 else ""), flush=True)
    load(args.sessions, args.arrivals, args.protocol, args.settle, args.workers)
