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
