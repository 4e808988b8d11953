"""tasks.py's mutation report: kill rates per module and the survivors, read from mutmut's listing."""

from __future__ import annotations

import tasks

LISTING = """
    dealmodel.terms.x_royalty__mutmut_1: killed
    dealmodel.terms.x_royalty__mutmut_2: survived
    dealmodel.terms.xǁTierǁrate__mutmut_3: timeout
    dealmodel.engine.x_value__mutmut_1: no tests
    dealmodel.engine.x_value__mutmut_2: not checked
    dealmodel.engine.x_value__mutmut_3: segfault
"""


def test_the_report_counts_caught_survived_and_unreached_mutants_per_module():
    lines = tasks.mutation_report(LISTING).splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:4]}
    # engine: 'not checked' is not counted; a segfault is neither caught nor survived ("other")
    assert rows["dealmodel.engine"] == ["2", "0", "0", "1", "1", "0.0%"]
    assert rows["dealmodel.terms"] == ["3", "2", "0", "1", "0", "66.7%"]  # a timeout counts as caught
    assert rows["core"] == ["5", "2", "0", "40.0%"]
    assert lines[-3:] == ["surviving mutants (2):", "  dealmodel.engine.x_value__mutmut_1",
                          "  dealmodel.terms.x_royalty__mutmut_2"]


def test_survivors_to_run_again_are_those_that_survived_or_that_no_test_reached():
    assert tasks.mutation_survivors(LISTING) == ["dealmodel.terms.x_royalty__mutmut_2",
                                                 "dealmodel.engine.x_value__mutmut_1"]


MUTANTS = """
import numpy as np


def x_royalty__mutmut_orig(sales, rate=0.1):
    base = np.asarray(sales, dtype=float)
    return base * rate


def x_royalty__mutmut_2(sales, rate=0.1):
    base = np.asarray(sales, dtype=None)
    return base * rate


def x_royalty__mutmut_4(sales, rate=1.1):
    base = np.asarray(sales, dtype=float)
    return base * rate


class Tier:
    def xǁTierǁrate__mutmut_orig(self):
        total = 1.0
        total += 2.0
        return total

    def xǁTierǁrate__mutmut_3(self):
        total = 1.0
        return total
"""


def test_a_survivor_listed_as_equivalent_leaves_the_kill_rate_and_the_others_show_their_change(tmp_path):
    (tmp_path / "dealmodel").mkdir()
    (tmp_path / "dealmodel" / "terms.py").write_text(MUTANTS, encoding="utf-8")
    listing = "dealmodel.terms.x_royalty__mutmut_1: killed\ndealmodel.terms.x_royalty__mutmut_2: survived\n" \
              "dealmodel.terms.xǁTierǁrate__mutmut_3: survived\n"
    changes = tasks.mutation_changes(tmp_path, tasks.mutation_survivors(listing))
    assert changes == {"dealmodel.terms.x_royalty__mutmut_2": "base = np.asarray(sales, dtype=None)",
                       "dealmodel.terms.xǁTierǁrate__mutmut_3": "- total += 2.0"}
    # a mutated default shows in the definition's line (its name left out)
    assert tasks.mutation_changes(tmp_path, ["dealmodel.terms.x_royalty__mutmut_4"]) == {
        "dealmodel.terms.x_royalty__mutmut_4": "def NAME(sales, rate=1.1):"}
    assert tasks.function_name("dealmodel.terms.xǁTierǁrate__mutmut_3") == "dealmodel.terms.Tier.rate"
    assert tasks.function_name("dealmodel.decisions.x__fit__mutmut_7") == "dealmodel.decisions._fit"
    listed = tmp_path / "equivalents.toml"
    listed.write_text('[[equivalent]]\nfunction = "dealmodel.terms.royalty"\n'
                      'changes = ["base = np.asarray(sales, dtype=None)"]\nreason = "sales are floats"\n')
    lines = tasks.mutation_report(listing, changes, tasks.load_equivalents(listed)).splitlines()
    # 3 mutants, 1 killed, 1 equivalent: 1 of the 2 that can be caught is (50%)
    assert lines[1].split() == ["dealmodel.terms", "3", "1", "1", "1", "0", "50.0%"]
    assert lines[-2:] == ["  dealmodel.terms.xǁTierǁrate__mutmut_3", "      - total += 2.0"]
    # without the list, both survivors count against the rate
    assert tasks.mutation_report(listing, changes, {}).splitlines()[1].split()[-1] == "33.3%"


# --------------------------------------------------------------------------- the kernel's planter
# mutmut leaves decorated (compiled) functions alone; tools/kernel_mutants.py plants in them itself


def _planter():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("kernel_mutants", tasks.ROOT / "tools" / "kernel_mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


KERNEL_LIKE = '''
LIMIT = 3


@njit(cache=True, nogil=True)
def book(a: float, b, flag=2):
    """Docstring 1 + 1 < 2."""
    total = a + b  # a comment with + and < in it
    if a < b and not flag:
        total -= min(a, 0.5)
    label = "é" * 2
    return -total


class Plan:
    def size(self, n):
        return n % 4 == 0
'''


def test_the_kernel_planter_mutates_every_operator_and_number_in_function_bodies_only():
    km = _planter()
    found = {(m.function, m.change) for m in km.mutants(KERNEL_LIKE)}
    book, size = "dealmodel.kernel.book", "dealmodel.kernel.Plan.size"
    # by hand: the default, each operator, the bool operator, not, min, the numbers, the unary minus; not
    # the module constant, the decorator's arguments, the annotation, the docstring or the comment
    assert found == {
        (book, 'def book(a: float, b, flag=3):'),
        (book, "total = a - b  # a comment with + and < in it"),
        (book, "if a <= b and not flag:"),
        (book, "if a < b or not flag:"),
        (book, "if a < b and flag:"),
        (book, "total += min(a, 0.5)"),
        (book, "total -= max(a, 0.5)"),
        (book, "total -= min(a, 1.5)"),
        (book, 'label = "é" / 2'),  # after a non-ASCII character: offsets are characters, not bytes
        (book, 'label = "é" * 3'),
        (book, "return total"),
        (size, "return n // 4 == 0"),
        (size, "return n % 5 == 0"),
        (size, "return n % 4 != 0"),
        (size, "return n % 4 == 1"),
    }
    original = KERNEL_LIKE.splitlines()
    for m in km.mutants(KERNEL_LIKE):  # each mutant is valid Python and changes exactly its own line
        mutated = m.apply(KERNEL_LIKE).splitlines()
        compile("\n".join(mutated), "kernel", "exec")
        differ = [i for i, (a, b) in enumerate(zip(original, mutated, strict=True)) if a != b]
        assert differ == [m.line - 1] and mutated[m.line - 1].strip() == m.change


def test_a_kernel_mutants_key_survives_edits_elsewhere_but_not_in_its_own_function():
    km = _planter()
    keys = {m.change: m.key for m in km.mutants(KERNEL_LIKE)}
    head = "    def size(self, n):\n"
    edited = "\n# a new comment\n" + KERNEL_LIKE.replace(head, head + "        n += 0\n")
    moved = {m.change: m.key for m in km.mutants(edited)}
    book = "total = a - b  # a comment with + and < in it"
    assert moved[book] == keys[book]  # lines moved, its function unchanged: the kept result still holds
    # Plan.size changed: its mutants are new, even one whose line reads the same
    assert moved["return n % 5 == 0"] != keys["return n % 5 == 0"]
    assert keys["return n % 5 == 0"].startswith("Plan.size#") and keys["return total"].startswith("book#")


def test_the_kernel_sample_is_seeded_and_its_rate_has_a_wilson_interval():
    km = _planter()
    everything = km.mutants(KERNEL_LIKE)
    first = km.sample(everything, 5, seed=1)
    assert first == km.sample(list(reversed(everything)), 5, seed=1) and len(first) == 5
    assert set(first) <= set(everything) and km.sample(everything, 0, seed=1) == km.sample(everything, 99, seed=1)
    # 18 of 20: p = 0.9, centre (0.9 + 1.96^2/40) / (1 + 1.96^2/20) = 0.83555, half-width
    # 1.96 sqrt(0.9 * 0.1 / 20 + 1.96^2 / 1600) / (1 + 1.96^2/20) = 0.13659
    lo, hi = km.wilson(18, 20)
    assert abs(lo - 0.69896) < 1e-4 and abs(hi - 0.97213) < 1e-4


def test_the_kernel_report_leaves_listed_equivalents_out_of_the_rate():
    km = _planter()
    everything = km.mutants(KERNEL_LIKE)
    by_change = {m.change: m for m in everything}
    results = {m.key: "killed" for m in everything}
    results[by_change["total -= min(a, 1.5)"].key] = "survived"
    results[by_change["return n % 4 == 1"].key] = "survived"
    results[by_change["return total"].key] = "timeout"  # caught
    equivalents = {("dealmodel.kernel.Plan.size", "return n % 4 == 1"): "a reason"}
    text = km.report(everything, results, 100, equivalents)
    n = len(everything)
    assert f"{n} of a seeded sample of {n} from 100 mutants run: killed {n - 2}, equivalent 1, survived 1" in text
    assert f"kill rate {(n - 2) / (n - 1):.1%}" in text
    assert text.splitlines()[-2:] == ["  dealmodel.kernel.book line 10", "      total -= min(a, 1.5)"]


def test_kept_kernel_results_run_survivors_again_after_a_change_unless_listed_equivalent(tmp_path, monkeypatch):
    km = _planter()
    monkeypatch.setattr(km, "RESULTS", tmp_path / "kernel-mutants.json")
    by_change = {m.change: m for m in km.mutants(KERNEL_LIKE)}
    listed, unlisted, caught = (by_change[c].key for c in ("return n % 4 == 1", "return total", "return n % 5 == 0"))
    km.save_results("digest-1", {listed: "survived", unlisted: "survived", caught: "killed"})
    equivalents = {("dealmodel.kernel.Plan.size", "return n % 4 == 1"): "a reason"}
    assert km.load_results("digest-1", equivalents) == {listed: "survived", unlisted: "survived", caught: "killed"}
    # the core or the tests changed: a survivor may be caught now, so it runs again; a listed one cannot be
    assert km.load_results("digest-2", equivalents) == {listed: "survived", caught: "killed"}
    assert km.load_results("digest-2", {}) == {caught: "killed"}


def test_a_mutation_run_rebuilds_the_map_and_reruns_earlier_survivors_only_when_the_code_or_tests_changed():
    # (rebuild the test map, run earlier survivors again, stamp the map as current)
    assert tasks.mutation_plan(None, "d1", []) == (True, False, True)  # the first run: nothing earlier
    assert tasks.mutation_plan("d1", "d1", []) == (False, False, True)  # nothing changed
    assert tasks.mutation_plan("d0", "d1", []) == (True, True, True)  # changed: earlier survivors again
    # named mutants after a change: the map is rebuilt for them, but the stamp is left for the full run,
    # which still has the earlier survivors to run again
    assert tasks.mutation_plan("d0", "d1", ["dealmodel.terms.*"]) == (True, False, False)
    assert tasks.mutation_plan("d1", "d1", ["dealmodel.terms.*"]) == (False, False, True)
