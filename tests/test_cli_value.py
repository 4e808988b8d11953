"""`dealmodel value`: the readable table and the exact --json shape."""

from __future__ import annotations

import json
import re

import pytest

import dealmodel as dm
from dealmodel.cli import main
from tests.conftest import REFERENCE, SINGLE

PARTY_KEYS = {"expected_npv", "std_npv", "p5", "p50", "p95", "prob_loss", "expected_shortfall_5",
              "risk_share", "value_share"}


def test_value_json_has_exactly_the_documented_shape(capsys):
    assert main(["value", str(REFERENCE["hybrid"]), "--paths", "5000", "--seed", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"deal", "paths", "seed", "currency", "timing", "biobucks", "total_contract_value",
                        "expected_pv_to_partner", "parties", "candidates", "certainty_equivalents", "payments", "notes"}
    assert (doc["paths"], doc["seed"], doc["currency"]) == (5000, 3, "USD")
    assert set(doc["parties"]) == {"sponsor", "partner", "program"}
    for party in doc["parties"].values():
        assert set(party) == PARTY_KEYS
    assert set(doc["candidates"]) == {"ONC-101", "ONC-102", "ONC-201", "ONC-202", "ONC-301"}
    for row in doc["candidates"].values():
        assert set(row) == {"prob_approval", "expected_launch_year"}
    assert set(doc["payments"]) == {"service_fees", "upfront", "milestone", "royalty", "supply"}
    assert doc["total_contract_value"] == pytest.approx(2100, rel=0.02)
    assert doc["timing"] == "exact"
    assert doc["expected_pv_to_partner"] == pytest.approx(sum(doc["payments"].values()), rel=1e-12)


def test_value_json_equals_the_python_api(capsys):
    main(["value", str(SINGLE), "--paths", "4000", "--seed", "9", "--json"])
    doc = json.loads(capsys.readouterr().out)
    result = dm.simulate(dm.load_deal(SINGLE), paths=4000, seed=9)
    assert doc == json.loads(json.dumps(result.to_dict()))


def test_value_table_is_readable(capsys):
    assert main(["value", str(SINGLE), "--paths", "2000"]) == 0
    out = capsys.readouterr().out
    # single_candidate.yaml by hand: biobucks = the approval milestone 40; contract value adds the fees at
    # list price 123.75 (see test_deal_files)
    assert re.search(r"Biobucks .*\s40\.0\n", out)
    assert re.search(r"Total contract value .*\s163\.8\n", out)
    assert "sponsor" in out and "partner" in out and "program" in out
    assert "MAB-1" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--paths", "0"], "must be at least 1"),
    (["--paths", "many"], "expected a whole number"),
    (["--seed", "-4"], "must be >= 0"),
])
def test_value_rejects_bad_arguments_with_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(["value", str(SINGLE), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_value_on_a_bad_file_exits_2(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("name: 3\n")
    assert main(["value", str(path)]) == 2
    assert "parties: required field is missing" in capsys.readouterr().err
