"""Set-up and run tasks that need nothing but Python.

    python3 tasks.py run    # create .venv if missing, install, start the app on the reference deal
    python3 tasks.py test   # create .venv if missing, install, lint and run the whole test suite

The virtual environment is reinstalled only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".dealmodel-installed"
REFERENCE_DEAL = "sample_deals/reference_hybrid.yaml"


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_venv() -> None:
    """Create .venv and install the package with its dev extras when needed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def run() -> None:
    ensure_venv()
    _run(PYTHON, "-m", "streamlit", "run", "app.py", "--", REFERENCE_DEAL)


CHROMIUM = Path("/usr/bin/chromium")


def ensure_browser() -> None:
    """Debian's Chromium for the real-browser app test (Playwright never downloads a browser here)."""
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        print("note: no apt-get; install Chromium at /usr/bin/chromium for the browser test", flush=True)
        return
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        print("note: not root and no sudo; install Debian's chromium for the browser test", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, apt, "-qq", "update"], check=True, env=env)
    subprocess.run([*prefix, apt, "-qq", "install", "-y", "--no-install-recommends", "chromium"], check=True, env=env)


def test() -> None:
    ensure_venv()
    ensure_browser()
    _run(PYTHON, "-m", "ruff", "check", ".")
    _run(PYTHON, "-m", "pytest", *sys.argv[2:])


TASKS = {"run": run, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(TASKS)}}} [pytest args]")
    try:
        TASKS[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
