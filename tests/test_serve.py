"""The app is private by default: started as the README says, it listens on the loopback address only."""

from __future__ import annotations

import subprocess
import sys
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
