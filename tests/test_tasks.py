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
    assert rows["dealmodel.engine"] == ["2", "0", "1", "1", "0.0%"]
    assert rows["dealmodel.terms"] == ["3", "2", "1", "0", "66.7%"]  # a timeout counts as caught
    assert rows["core"] == ["5", "2", "40.0%"]
    assert lines[-3:] == ["surviving mutants (2):", "  dealmodel.engine.x_value__mutmut_1",
                          "  dealmodel.terms.x_royalty__mutmut_2"]


def test_survivors_to_run_again_are_those_that_survived_or_that_no_test_reached():
    assert tasks.mutation_survivors(LISTING) == ["dealmodel.terms.x_royalty__mutmut_2",
                                                 "dealmodel.engine.x_value__mutmut_1"]
