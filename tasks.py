"""Set-up and run tasks that need nothing but Python.

    python3 tasks.py run     # create .venv if missing, install, start the app on the reference deal
    python3 tasks.py test    # create .venv if missing, install, lint and run the whole test suite
    python3 tasks.py mutate  # mutation-test the model core and the compiled kernel (slow; not part of CI)

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

    The compiled kernel follows: mutmut leaves decorated functions alone, so a sample of mutants of
    ``dealmodel/kernel.py`` is planted by ``tools/kernel_mutants.py`` (``python3 tasks.py mutate kernel
    [--sample N ...]`` runs that part alone).
    """
    ensure_venv()
    planter = [str(PYTHON), str(ROOT / "tools" / "kernel_mutants.py")]
    if sys.argv[2:3] == ["kernel"]:
        subprocess.run([*planter, *sys.argv[3:]], cwd=ROOT, check=True)
        return
    # one thread: mutmut learns which tests reach a function only from calls on the main thread;
    # the NumPy reference engine: the compiled kernel is checked against it path by path (test_kernel)
    env = {**os.environ, "DEALMODEL_FAST_TESTS": "1", "DEALMODEL_THREADS": "1", "DEALMODEL_ENGINE": "numpy",
           "DEALMODEL_MUTATION": "1"}  # hypothesis: the same examples for every mutant, no shrinking (conftest)
    mutmut = str(BIN / "mutmut")
    workers = str(max(1, os.cpu_count() or 1))
    names = sys.argv[2:]  # mutant names or globs: rerun those even if they have a result (after new tests)

    def results() -> str:
        return subprocess.run([mutmut, "results", "--all", "true"], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True).stdout

    def run_mutmut(selected: list[str]) -> str:
        print("+ mutmut run", *selected[:3], "..." if len(selected) > 3 else "", flush=True)
        subprocess.run([mutmut, "run", "--max-children", workers, *selected], cwd=ROOT, env=env, check=False)
        return results()

    # mutmut maps each function to the tests that reach it once, and afterwards only adds new tests:
    # a function added or changed since has no tests in the map and its mutants would be reported
    # "no tests" without running (see mutation_plan)
    digest = sources_digest()
    stamp = ROOT / "mutants" / "sources.sha256"
    rebuild, rerun_earlier, restamp = mutation_plan(stamp.read_text() if stamp.exists() else None, digest, names)
    if rebuild:
        (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    earlier = mutation_survivors(results()) if rerun_earlier else []
    listing = run_mutmut(names)
    if (ROOT / "mutants" / "mutmut-stats.json").exists() and restamp:
        stamp.write_text(digest)
    survivors = mutation_survivors(listing)
    changes, equivalents = mutation_changes(ROOT / "mutants", survivors), load_equivalents()
    # survivors reviewed as equivalent cannot be caught by any test: not worth their run time
    still = set(survivors)
    stale = [m for m in earlier if m in still and (function_name(m), changes.get(m, "")) not in equivalents]
    if stale:
        print(f"{len(stale)} survivors of earlier runs, found under other code or tests: running them again",
              flush=True)
        listing = run_mutmut(stale)  # survivors can only become fewer: the changes read above cover them
    print(mutation_report(listing, changes, equivalents), flush=True)
    if not names:
        subprocess.run(planter, cwd=ROOT, check=True)


def mutation_plan(stamped: str | None, digest: str, names: list[str]) -> tuple[bool, bool, bool]:
    """What a mutation run does about earlier results: (rebuild the test map, run the earlier
    survivors again after the rest, stamp the map as current), from the digest the map was made
    under (None: never) and today's.

    mutmut keeps a mutant's result until its function changes, so a survivor of an earlier run may
    be caught under today's tests; it maps each function to the tests that reach it once, so the
    map is rebuilt when the core or the tests changed. A run of named mutants only leaves the stamp
    alone: the earlier survivors still wait for the next full run.
    """
    changed = stamped is not None and stamped != digest
    return changed or stamped is None, changed and not names, not (changed and names)


def sources_digest() -> str:
    """One digest of the core and the tests: mutation results of other code or tests are not trusted as
    they stand (mutmut's and the kernel planter's)."""
    files = sorted((ROOT / "dealmodel").glob("*.py")) + sorted((ROOT / "tests").glob("*.py"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


SURVIVING = ("survived", "no tests")  # mutmut's statuses of a mutant no test caught
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"


def mutants(listing: str) -> list[tuple[str, str]]:
    """(mutant, status) pairs from ``mutmut results --all true``."""
    pairs = (line.strip().rpartition(": ") for line in listing.splitlines())
    return [(name, status) for name, sep, status in pairs if sep and "__mutmut_" in name]


def mutation_survivors(listing: str) -> list[str]:
    """Mutants that survived or that no test reached."""
    return [name for name, status in mutants(listing) if status in SURVIVING]


def function_name(mutant: str) -> str:
    """``dealmodel.cashflows.xǁLedgerǁspan__mutmut_4`` -> ``dealmodel.cashflows.Ledger.span``."""
    module, _, func = mutant.rpartition(".")
    func = func.rpartition("__mutmut_")[0][1:]  # x_name (a function) or xǁClassǁname (a method)
    return f"{module}.{func[1:] if func.startswith('_') else func.strip('ǁ').replace('ǁ', '.')}"


def mutation_changes(root: Path, names: list[str]) -> dict[str, str]:
    """Each named mutant's change, read from mutmut's copy of the source in ``root`` (its mutants/).

    The change is the mutated lines, stripped and joined by newlines (``- `` and the lines removed
    when the mutant only removes): the key under which an equivalent mutant is listed, which
    stays the same when other mutants of the module are added or renumbered.
    """
    import ast
    import difflib

    wanted: dict[str, set[str]] = {}
    for name in names:
        module, _, func = name.rpartition(".")
        wanted.setdefault(module, set()).add(func)
    changes: dict[str, str] = {}
    for module, funcs in wanted.items():
        path = root / Path(*module.split(".")).with_suffix(".py")
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        # each definition's lines, its own name in the first one replaced (a mutated default shows)
        defs = {node.name: [lines[node.lineno - 1].replace(node.name, "NAME", 1), *lines[node.lineno:node.end_lineno]]
                for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name}
        for func in funcs:
            original = defs.get(func.rpartition("__mutmut_")[0] + "__mutmut_orig")
            if func not in defs or original is None:
                continue
            diff = list(difflib.unified_diff(original, defs[func], n=0, lineterm=""))[2:]
            added = [d[1:].strip() for d in diff if d.startswith("+")]
            removed = [d[1:].strip() for d in diff if d.startswith("-")]
            changes[f"{module}.{func}"] = "\n".join(added) if added else "- " + "\n".join(removed)
    return changes


def load_equivalents(path: Path = EQUIVALENTS) -> dict[tuple[str, str], str]:
    """(function, change) -> reason, from the reviewed list of equivalent mutants."""
    import tomllib

    if not path.exists():
        return {}
    listed = {}
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", []):
        for change in entry["changes"]:
            listed[(entry["function"], change.strip())] = entry["reason"]
    return listed


def mutation_report(listing: str, changes: dict[str, str] | None = None,
                    equivalents: dict[tuple[str, str], str] | None = None) -> str:
    """Kill rate per module and the surviving mutants, from ``mutmut results --all true``.

    A survivor whose change is listed in ``equivalents`` (reviewed: the program cannot behave
    differently) is counted apart and left out of the kill rate's denominator; every other
    survivor is printed with its change.
    """
    changes, equivalents = changes or {}, equivalents or {}
    by_module: dict[str, dict[str, list[str]]] = {}
    for name, status in mutants(listing):
        if status in SURVIVING and (function_name(name), changes.get(name, "")) in equivalents:
            status = "equivalent"
        parts = name.split(".")
        module = ".".join(p for p in parts[:-1] if not p.startswith("x"))
        by_module.setdefault(module, {}).setdefault(status, []).append(name)
    lines = [f"{'module':28}{'mutants':>9}{'killed':>9}{'equivalent':>12}{'survived':>10}{'other':>7}"
             f"{'kill rate':>11}"]
    survivors: list[str] = []
    total = caught = same = 0
    for module, statuses in sorted(by_module.items()):
        n = sum(len(v) for k, v in statuses.items() if k != "not checked")
        killed = len(statuses.get("killed", [])) + len(statuses.get("timeout", []))
        equivalent = len(statuses.get("equivalent", []))
        lost = [m for status in SURVIVING for m in statuses.get(status, [])]
        survived = len(lost)
        survivors += lost
        total, caught, same = total + n, caught + killed, same + equivalent
        rate = f"{killed / (n - equivalent):.1%}" if n > equivalent else "—"
        other = n - killed - equivalent - survived
        lines.append(f"{module:28}{n:>9}{killed:>9}{equivalent:>12}{survived:>10}{other:>7}{rate:>11}")
    if total > same:
        lines.append(f"{'core':28}{total:>9}{caught:>9}{same:>12}{'':>10}{'':>7}{caught / (total - same):>11.1%}")
    lines += ["", "kill rate: killed / (mutants checked - equivalent); equivalent: listed in "
              "tests/mutation_equivalents.toml with the reason", "",
              f"surviving mutants ({len(survivors)}):"]
    for s in sorted(survivors):
        lines.append(f"  {s}")
        lines += [f"      {c}" for c in changes.get(s, "").splitlines()]
    return "\n".join(lines)


TASKS = {"run": run, "team": team, "test": test, "mutate": mutate}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(TASKS)}}} [pytest args]")
    try:
        TASKS[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
