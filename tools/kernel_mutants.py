"""Mutation testing of the compiled kernel (``dealmodel/kernel.py``), which mutmut cannot do.

mutmut leaves decorated functions alone (it wraps each function it mutates in a trampoline, and a
decorator runs at definition time), so every compiled (``@njit``) function of the kernel would go
unmutated. This script plants the same kinds of change itself, one at a time, in a copy of the
tree: an arithmetic or comparison operator swapped (``+``/``-``, ``*``/``/``, ``<``/``<=``,
``==``/``!=`` ...), ``and``/``or`` swapped, ``min``/``max`` swapped, a ``not`` or a unary minus
dropped, a number n made n + 1. It then runs the kernel's tests against the NumPy reference
engine (path by path, 1e-9 relative; :data:`TESTS`, fastest first, stopping at the first failure).

The kernel runs as plain Python here (``NUMBA_DISABLE_JIT=1``): the same source and arithmetic,
without a 60-second compile per mutant. A mutant numba would refuse to compile can only be counted
as a survivor this way, never wrongly as caught.

There are about two thousand such mutants; a seeded random sample of them is run (``--sample``),
and the kill rate is printed with its 95% interval. Results are kept in
``mutants/kernel-mutants.json`` (by function source, change and occurrence), so a rerun only runs
what is new; after a change to the core or the tests, survivors are run again.

    .venv/bin/python tools/kernel_mutants.py [--sample N] [--seed S] [--jobs J] [--list]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "dealmodel" / "kernel.py"
MODULE = "dealmodel.kernel"
RESULTS = ROOT / "mutants" / "kernel-mutants.json"
# the kernel against the reference engine, the quickest first (a caught mutant stops at its first failure)
TESTS = [
    "tests/test_kernel.py::test_a_credit_used_up_after_two_fees_fall_due_at_the_same_moment",
    "tests/test_kernel.py::test_every_samples_program_packs_bit_for_bit",
    "tests/test_kernel.py::test_every_sample_agrees_path_by_path",
    "tests/test_kernel.py::test_structures_valued_together_agree_with_each_alone",
    "tests/test_kernel.py::test_rarely_drawn_mechanics_agree_path_by_path",
    "tests/test_kernel.py::test_rarely_drawn_mechanics_agree_when_valued_together",
    "tests/test_kernel.py::test_generated_programs_pack_bit_for_bit",
    "tests/test_kernel.py::test_generated_deals_agree_path_by_path",
    "tests/test_kernel.py::test_without_flows_only_the_npvs_are_kept_per_path",
]
COPY = ("dealmodel", "tests", "sample_deals", "tools", "examples", "pyproject.toml")

BINARY = {ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*", ast.FloorDiv: "/", ast.Mod: "//", ast.Pow: "*"}
COMPARE = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "=="}
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
          ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
          ast.And: "and", ast.Or: "or"}


@dataclass(frozen=True)
class Mutant:
    """One planted change: ``source[start:end]`` replaced by ``text`` (character offsets)."""

    function: str  # dealmodel.kernel.NAME (the innermost function)
    line: int
    start: int
    end: int
    text: str
    change: str  # the mutated line(s), stripped: how it is printed and listed as equivalent
    key: str  # stable across edits elsewhere: function source digest | change | occurrence

    def apply(self, source: str) -> str:
        return source[:self.start] + self.text + source[self.end:]


def _offsets(source: str) -> tuple[list[int], list[str]]:
    lines = source.splitlines(keepends=True)
    starts, at = [], 0
    for line in lines:
        starts.append(at)
        at += len(line)
    return starts, lines


def mutants(source: str) -> list[Mutant]:
    """Every mutant of the functions in ``source`` (the kernel module's text), in source order."""
    tree = ast.parse(source)
    starts, lines = _offsets(source)

    def pos(line: int, col_bytes: int) -> int:  # ast columns are UTF-8 byte offsets
        return starts[line - 1] + len(lines[line - 1].encode()[:col_bytes].decode())

    tokens = [(starts[t.start[0] - 1] + t.start[1], starts[t.end[0] - 1] + t.end[1], t.string)
              for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type in (tokenize.OP, tokenize.NAME)]

    def token(symbol: str, lo: int, hi: int) -> tuple[int, int] | None:
        for a, b, s in tokens:
            if lo <= a and b <= hi and s == symbol:
                return a, b
        return None

    found: list[tuple[str, int, int, str]] = []  # function, start, end, replacement

    def plant(func: str, span: tuple[int, int] | None, text: str) -> None:
        if span is not None:
            found.append((func, span[0], span[1], text))

    def start(node: ast.AST) -> int:
        return pos(node.lineno, node.col_offset)

    def end(node: ast.AST) -> int:
        return pos(node.end_lineno, node.end_col_offset)

    def visit(node: ast.AST, func: str | None, owner: str = "") -> None:
        if isinstance(node, ast.ClassDef):
            for child in node.body:
                visit(child, func, f"{node.name}.")
            return
        if isinstance(node, ast.FunctionDef):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            for child in [*node.args.defaults, *body]:  # not the decorators or annotations
                visit(child, owner + node.name)
            return
        if func is not None:
            if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
                plant(func, token(SYMBOL[type(node.op)], end(node.left), start(node.right)), BINARY[type(node.op)])
            elif isinstance(node, ast.AugAssign) and type(node.op) in BINARY:
                plant(func, token(SYMBOL[type(node.op)] + "=", end(node.target), start(node.value)),
                      BINARY[type(node.op)] + "=")
            elif isinstance(node, ast.Compare):
                left = node.left
                for op, right in zip(node.ops, node.comparators, strict=True):
                    if type(op) in COMPARE:
                        plant(func, token(SYMBOL[type(op)], end(left), start(right)), COMPARE[type(op)])
                    left = right
            elif isinstance(node, ast.BoolOp):
                other = "or" if isinstance(node.op, ast.And) else "and"
                for a, b in zip(node.values, node.values[1:], strict=False):
                    plant(func, token(SYMBOL[type(node.op)], end(a), start(b)), other)
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
                plant(func, (start(node), start(node.operand)), "")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
                plant(func, (start(node.func), end(node.func)), "max" if node.func.id == "min" else "min")
            elif (isinstance(node, ast.Constant) and type(node.value) in (int, float)
                  and not isinstance(node.value, bool)):
                plant(func, (start(node), end(node)), repr(node.value + 1))
        for child in ast.iter_child_nodes(node):
            if not isinstance(node, ast.FunctionDef):
                visit(child, func)

    for node in tree.body:
        visit(node, None)

    defs = {}
    for n in ast.walk(tree):
        for f in (n.body if isinstance(getattr(n, "body", None), list) else []):
            if isinstance(f, ast.FunctionDef):
                name = f"{n.name}.{f.name}" if isinstance(n, ast.ClassDef) else f.name
                defs[name] = ast.get_source_segment(source, f) or ""
    out: list[Mutant] = []
    seen: dict[str, int] = {}
    for func, a, b, text in sorted(found, key=lambda f: (f[1], f[2], f[3])):
        line = source.count("\n", 0, a) + 1
        last = source.count("\n", 0, max(a, b - 1))  # 0-based: the line of the span's last character
        mutated = source[:a] + text + source[b:]
        stop = starts[last] + len(lines[last]) + len(text) - (b - a)
        change = " ".join(part.strip() for part in mutated[starts[line - 1]:stop].splitlines())
        digest = hashlib.sha256(defs.get(func, "").encode()).hexdigest()[:10]
        base = f"{func}#{digest}|{change}"
        seen[base] = seen.get(base, 0) + 1
        out.append(Mutant(f"{MODULE}.{func}", line, a, b, text, change, f"{base}|{seen[base]}"))
    return out


def sample(all_mutants: list[Mutant], n: int, seed: int) -> list[Mutant]:
    """A seeded random sample of ``n`` mutants (all of them when ``n`` is 0 or more than there are)."""
    order = sorted(all_mutants, key=lambda m: m.key)
    random.Random(seed).shuffle(order)
    return order if n <= 0 else order[:n]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def load_results(current: str, equivalents: dict[tuple[str, str], str] | None = None) -> dict[str, str]:
    """Kept results; survivors of other code or tests are dropped (run again) unless listed as equivalent
    (no test can catch those), kills are kept."""
    try:
        kept = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    results = kept.get("results", {})
    if kept.get("digest") != current:
        listed = equivalents or {}
        results = {k: v for k, v in results.items() if v != "survived" or _listed(k, listed)}
    return results


def _listed(key: str, equivalents: dict[tuple[str, str], str]) -> bool:
    """Whether the mutant of this results key is listed as equivalent (key: function#digest|change|n)."""
    function, change = key.split("#", 1)[0], key.split("|", 1)[1].rsplit("|", 1)[0]
    return (f"{MODULE}.{function}", change) in equivalents


def save_results(current: str, results: dict[str, str]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps({"digest": current, "results": results}, indent=0, sort_keys=True))
    tmp.replace(RESULTS)


def _environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "NUMBA_DISABLE_JIT": "1", "DEALMODEL_FAST_TESTS": "1", "DEALMODEL_THREADS": "1",
            "DEALMODEL_MUTATION": "1", "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def _copy_tree(into: Path) -> Path:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, into / name, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
        elif src.exists():
            shutil.copy2(src, into / name)
    return into


def run_tests(tree: Path, cpu_limit: int | None) -> tuple[str, float]:
    """``killed``, ``survived`` or ``timeout`` for the kernel in ``tree``, and the CPU seconds taken.

    The limit is on CPU time only, not on the clock (mutmut also stops a run after half its CPU limit
    of wall clock): a run paused or slowed by other work is not taken for a mutant stuck in a loop."""
    shutil.rmtree(tree / ".hypothesis", ignore_errors=True)  # no failing example carried to the next mutant

    def limit() -> None:  # in the child, before pytest starts
        if cpu_limit is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit + 5))

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
                          cwd=tree, env=_environment(tree), capture_output=True, check=False, preexec_fn=limit)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "timeout", seconds
    return ("survived" if proc.returncode == 0 else "killed"), seconds


def report(planted: list[Mutant], results: dict[str, str], total: int, equivalents: dict[tuple[str, str], str]) -> str:
    """The kernel's line of the mutation report and its survivors (with their change)."""
    done = [m for m in planted if m.key in results]
    killed = sum(results[m.key] in ("killed", "timeout") for m in done)
    survivors = [m for m in done if results[m.key] == "survived"]
    equivalent = [m for m in survivors if (m.function, m.change) in equivalents]
    lost = [m for m in survivors if m not in equivalent]
    n = len(done) - len(equivalent)
    lo, hi = wilson(killed, n)
    rate = f"{killed / n:.1%} (95% interval {lo:.1%}-{hi:.1%})" if n else "—"
    lines = [f"{MODULE}: {len(done)} of a seeded sample of {len(planted)} from {total} mutants run: killed "
             f"{killed}, equivalent {len(equivalent)}, survived {len(lost)}; kill rate {rate}",
             f"surviving kernel mutants ({len(lost)}):"]
    for m in sorted(lost, key=lambda m: m.line):
        lines += [f"  {m.function} line {m.line}", f"      {m.change}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=200, help="mutants to run (0: all); default 200")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the sample (default 2026)")
    parser.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1), help="mutants run at once")
    parser.add_argument("--list", action="store_true", help="print the sample's mutants and stop")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tasks import load_equivalents, sources_digest

    source = KERNEL.read_text(encoding="utf-8")
    everything = mutants(source)
    planted = sample(everything, args.sample, args.seed)
    if args.list:
        for m in planted:
            print(f"{m.function} line {m.line}: {m.change}")
        return 0
    current = sources_digest()
    equivalents = load_equivalents()
    results = load_results(current, equivalents)
    todo = [m for m in planted if m.key not in results]
    print(f"kernel: {len(everything)} mutants, a sample of {len(planted)} (seed {args.seed}); "
          f"{len(planted) - len(todo)} already run, {len(todo)} to run on {args.jobs} worker(s)", flush=True)
    if todo:
        with tempfile.TemporaryDirectory(prefix="kernel-mutants.") as scratch:
            trees = [_copy_tree(Path(scratch) / f"w{i}") for i in range(min(args.jobs, len(todo)))]
            status, seconds = run_tests(trees[0], None)  # the unchanged kernel must pass, and sets the limit
            if status != "survived":
                print("the kernel's tests fail on the unchanged kernel: fix them first", file=sys.stderr)
                return 1
            timeout = int(1.5 * seconds + 20)  # a survivor uses about `seconds`; CPU time hardly varies with load
            print(f"tests of the unchanged kernel: {seconds:.0f} CPU seconds (a mutant using {timeout} counts as "
                  "caught, a timeout)", flush=True)
            free = list(trees)
            began, done = time.monotonic(), 0

            def one(m: Mutant) -> tuple[Mutant, str]:
                tree = free.pop()
                try:
                    (tree / "dealmodel" / "kernel.py").write_text(m.apply(source), encoding="utf-8")
                    return m, run_tests(tree, timeout)[0]
                finally:
                    free.append(tree)

            with ThreadPoolExecutor(max_workers=len(trees)) as pool:
                for m, status in pool.map(one, todo):
                    results[m.key] = status
                    done += 1
                    save_results(current, results)  # nothing lost when stopped
                    rate = done / (time.monotonic() - began) * 60
                    print(f"[{done}/{len(todo)}] {status:8} {m.function} line {m.line}  ({rate:.1f}/min)", flush=True)
    print(report(planted, results, len(everything), equivalents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
