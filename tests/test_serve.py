"""The app is private by default: started as the README says, it listens on the loopback address only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.serving import free_port, stop, wait_until_serving

TCP = Path("/proc/net/tcp")



def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) with a socket listening on ``port``."""
    found = set()
    for table in (TCP, TCP.with_name("tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.skipif(not TCP.exists(), reason="reads Linux's /proc/net/tcp")
def test_the_app_listens_on_loopback_only_by_default():
    port = free_port()
    # the project's own settings, no address given: what `streamlit run app.py` gets, here through the launcher
    # `python3 tasks.py run` uses (dealmodel.serve: Streamlit's server with the model loaded while it starts)
    proc = subprocess.Popen([sys.executable, "-m", "dealmodel.serve", "run", str(ROOT / "app.py"), "--server.port",
                             str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", proc)
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and nothing else (no 0.0.0.0, no ::)
    finally:
        stop(proc)
    assert "Network URL" not in (proc.stdout.read() if proc.stdout else "")


@pytest.mark.parametrize("workers", [1, 2], ids=["one app process", "two behind the team proxy"])
def test_three_sessions_over_the_websocket_protocol_have_no_errors(workers):
    """The load benchmark without browsers (benchmarks/bench_load.py --protocol): three sessions open the app,
    move a term slider (the partner's value changes), switch tabs and download a workbook, on one server, and
    through team mode's proxy in front of two app processes."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_load
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    (row,) = bench_load.load([3], protocol=True, workers=workers)
    assert row["errors"] == []
    assert {action: len(times) for action, times in row["times"].items()} == {
        "open": 3, "slider": 3, "tab": 3, "download": 3}
    assert 0 < row["peak_mb"] < 2_048


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _get(url: str, cookie: str | None = None) -> tuple[int, str]:
    """Status and the worker cookie set, of a page load (with a worker cookie, or as a new browser)."""
    request = urllib.request.Request(url, headers={"Cookie": f"dealmodel_worker={cookie}"} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        cookies = answer.headers.get_all("Set-Cookie") or []
        return answer.status, next((c.split(";")[0].split("=")[1] for c in cookies
                                    if c.startswith("dealmodel_worker=")), "")


def test_team_mode_keeps_a_browser_on_one_app_process_and_starts_a_process_again_that_has_gone(tmp_path):
    port = free_port()
    env = {**os.environ, "DEALMODEL_TEAM_DIR": str(tmp_path), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "dealmodel.team", "--workers", "2", "--address", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc)
        assert _listening(port) == {"0100007F"}
        workers = _children(proc.pid)
        assert len(workers) == 2
        first, second = _get(url + "/"), _get(url + "/")
        assert first[0] == second[0] == 200 and {first[1], second[1]} == {"0", "1"}  # one each
        assert _get(url + "/", cookie="1") == (200, "")  # a known browser: no new cookie
        # the app on process 1 goes; the proxy starts it again and that browser's page loads again
        os.kill(workers[1], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(_children(proc.pid)) < 2 or workers[1] in _children(proc.pid)):
            time.sleep(0.5)
        now = _children(proc.pid)
        assert len(now) == 2 and workers[0] in now and workers[1] not in now
        assert _get(url + "/_stcore/health", cookie="1")[0] == 200  # waits for the new process to answer
        # a second team server on the same port says so and exits, starting no app process
        out = subprocess.run([sys.executable, "-m", "dealmodel.team", "--workers", "2", "--address", "127.0.0.1",
                              "--port", str(port)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in out.stderr
        assert "Traceback" not in out.stderr
    finally:
        stop(proc)
    assert proc.returncode == 0 and not any(Path(f"/proc/{w}").exists() for w in now)  # it stopped them first
