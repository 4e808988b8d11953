"""Set-up and run tasks that need nothing but Python.

    python3 tasks.py run     # create .venv if missing, install, start the app on the reference deal
    python3 tasks.py test    # create .venv if missing, install, lint and run the whole test suite
    python3 tasks.py mutate  # mutation-test the model core (slow; not part of CI)

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
    """The app on this machine only (127.0.0.1); DEALMODEL_ADDRESS=0.0.0.0 serves it to the network."""
    ensure_venv()
    address = os.environ.get("DEALMODEL_ADDRESS", "127.0.0.1")
    if address not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: serving on {address}: anyone who can reach this machine can open the app and the deals "
              f"uploaded to it; there is no sign-in", flush=True)
    # dealmodel.serve: Streamlit's own server, the model loaded while it starts (a faster first page)
    _run(PYTHON, "-m", "dealmodel.serve", "run", "app.py", "--server.address", address, "--", REFERENCE_DEAL)


def team() -> None:
    """The app for a team: sign-in (.streamlit/secrets.toml [auth]), each user's files on the server.

    Listens on DEALMODEL_ADDRESS (default 0.0.0.0) and refuses a network address without sign-in;
    see docs/serving.md. Arguments after ``team`` go to ``python -m dealmodel.team``.
    """
    ensure_venv()
    result = subprocess.run([str(PYTHON), "-m", "dealmodel.team", *sys.argv[2:]], cwd=ROOT, check=False)
    sys.exit(result.returncode)


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


def mutate() -> None:
    """Plant one bug at a time in the model core (mutmut) and report what the fast tests catch.

    The core modules and the tests that run are in ``[tool.mutmut]`` of pyproject.toml. Closed-form
    tests run on fewer paths (DEALMODEL_FAST_TESTS=1): still four standard errors, just wider ones.
    Prints the kill rate per module and every surviving mutant; ``.venv/bin/mutmut show NAME``
    shows one. Results are kept in mutants/ and a rerun only retests what changed; name mutants
    (globs allowed, e.g. ``'dealmodel.breakdown.*'``) to retest them after adding tests.
    """
    ensure_venv()
    # one thread: mutmut learns which tests reach a function only from calls on the main thread;
    # the NumPy reference engine: the compiled kernel is checked against it path by path (test_kernel)
    env = {**os.environ, "DEALMODEL_FAST_TESTS": "1", "DEALMODEL_THREADS": "1", "DEALMODEL_ENGINE": "numpy"}
    mutmut = str(BIN / "mutmut")
    workers = str(max(1, os.cpu_count() or 1))
    names = sys.argv[2:]  # mutant names or globs: rerun those even if they have a result (after new tests)

    def run_mutmut(selected: list[str]) -> str:
        print("+ mutmut run", *selected[:3], "..." if len(selected) > 3 else "", flush=True)
        subprocess.run([mutmut, "run", "--max-children", workers, *selected], cwd=ROOT, env=env, check=False)
        return subprocess.run([mutmut, "results", "--all", "true"], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True).stdout

    listing = run_mutmut(names)
    if not names:
        # mutmut keeps a mutant's result until its function changes: after the tests change, a
        # survivor may be caught now, so survivors found under other tests are run again
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((ROOT / "tests").glob("*.py")))).hexdigest()
        stamp = ROOT / "mutants" / "tests.sha256"
        stale = mutation_survivors(listing)
        if stale and (not stamp.exists() or stamp.read_text() != digest):
            print(f"the tests changed since {len(stale)} survivors were found: running them again", flush=True)
            listing = run_mutmut(stale)
        if (ROOT / "mutants").is_dir():
            stamp.write_text(digest)
    print(mutation_report(listing))


SURVIVING = ("survived", "no tests")  # mutmut's statuses of a mutant no test caught


def mutants(listing: str) -> list[tuple[str, str]]:
    """(mutant, status) pairs from ``mutmut results --all true``."""
    pairs = (line.strip().rpartition(": ") for line in listing.splitlines())
    return [(name, status) for name, sep, status in pairs if sep and "__mutmut_" in name]


def mutation_survivors(listing: str) -> list[str]:
    """Mutants that survived or that no test reached."""
    return [name for name, status in mutants(listing) if status in SURVIVING]


def mutation_report(listing: str) -> str:
    """Kill rate per module and the surviving mutants, from ``mutmut results --all true``."""
    by_module: dict[str, dict[str, list[str]]] = {}
    for name, status in mutants(listing):
        parts = name.split(".")
        module = ".".join(p for p in parts[:-1] if not p.startswith("x"))
        by_module.setdefault(module, {}).setdefault(status, []).append(name)
    lines = [f"{'module':28}{'mutants':>9}{'killed':>9}{'survived':>10}{'other':>7}{'kill rate':>11}"]
    survivors: list[str] = []
    total = caught = 0
    for module, statuses in sorted(by_module.items()):
        n = sum(len(v) for k, v in statuses.items() if k != "not checked")
        killed = len(statuses.get("killed", [])) + len(statuses.get("timeout", []))
        lost = [m for status in SURVIVING for m in statuses.get(status, [])]
        survived = len(lost)
        survivors += lost
        total, caught = total + n, caught + killed
        rate = f"{killed / n:.1%}" if n else "—"
        lines.append(f"{module:28}{n:>9}{killed:>9}{survived:>10}{n - killed - survived:>7}{rate:>11}")
    if total:
        lines.append(f"{'core':28}{total:>9}{caught:>9}{'':>10}{'':>7}{caught / total:>11.1%}")
    lines += ["", f"surviving mutants ({len(survivors)}):", *(f"  {s}" for s in sorted(survivors))]
    return "\n".join(lines)


TASKS = {"run": run, "team": team, "test": test, "mutate": mutate}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(TASKS)}}} [pytest args]")
    try:
        TASKS[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
