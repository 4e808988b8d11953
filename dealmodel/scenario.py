"""Scenarios: a named state of a comparison, saved to a versioned YAML file and valued anywhere.

A scenario holds every structure as written, each structure's term edits (parameter path ->
value), the program changes applied to all of them alike (the app's sidebar: x peak sales,
x phase success, + percentage points on each party's discount rate and on the correlation, lever
switches and the discounting convention), and the paths and seed. :meth:`Scenario.deals` gives
the deals exactly as the app values them, so a scenario saved in the app and loaded in Python
(``dm.load_scenario``) or the CLI (``dealmodel scenario``) gives the same figures.

A scenarios file is a YAML mapping ``{dealmodel_scenarios: 1, scenarios: {NAME: SCENARIO}}``;
the version is checked on reading.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dealmodel import limits
from dealmodel.edit import ParameterError, scale_all, set_values
from dealmodel.io import DealError, atomic_write, deal_to_dict, format_validation_error, parse_text, read_text_file
from dealmodel.schema import PHASES, Deal
from dealmodel.timing import Timing

SCENARIOS_VERSION = 1
LEVER_NAMES = ("biomarker_selection", "ai_recruitment", "qbd")

_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ProgramChanges(BaseModel):
    """Changes applied to every structure's own program and parties, alike."""

    model_config = _CONFIG
    peak_scale: float = Field(1.0, gt=0.0, le=10.0, description="x every candidate's peak sales")
    prob_scale: float = Field(1.0, gt=0.0, le=10.0, description="x every phase's success probability (capped at 1)")
    sponsor_rate_delta: float = Field(0.0, ge=-50.0, le=50.0, description="+ percentage points on the sponsor's rate")
    partner_rate_delta: float = Field(0.0, ge=-50.0, le=50.0, description="+ percentage points on the partner's rate")
    rho_delta: float = Field(0.0, ge=-1.0, le=1.0, description="+ the correlation (kept within 0 to 0.95)")
    timing: Timing | None = Field(None, description="a discounting convention for all; absent: each deal's own")
    levers: dict[Literal["biomarker_selection", "ai_recruitment", "qbd"], bool] = Field(
        default_factory=dict, description="levers switched on or off for all; absent: each deal's own")
    decisions: Literal["none", "sponsor", "partner", "program"] | None = Field(
        None, description="gate decisions for all: none, or the optimal rule decided by that party (program: both "
        "together); absent: each deal's own")

    def apply(self, deal: Deal) -> Deal:
        """``deal`` under these changes (relative to its own inputs)."""
        if self.peak_scale != 1.0:
            deal = scale_all(deal, "commercial.peak_sales", self.peak_scale)
        if self.prob_scale != 1.0:
            for phase in PHASES:
                try:
                    deal = scale_all(deal, f"phases.{phase}.success_probability", self.prob_scale, upper=1.0)
                except ParameterError:
                    continue  # no candidate has this phase ahead of it
        changes: dict[str, object] = {}
        for party, delta in (("sponsor", self.sponsor_rate_delta), ("partner", self.partner_rate_delta)):
            if delta:
                own = getattr(deal.parties, party).discount_rate
                changes[f"parties.{party}.discount_rate"] = max(own + delta / 100.0, -0.5)
        if self.rho_delta:
            changes["correlation.rho"] = min(max(deal.correlation.rho + self.rho_delta, 0.0), 0.95)
            for group, rho in deal.correlation.groups.items():
                changes[f"correlation.groups.{group}"] = min(max(rho + self.rho_delta, 0.0), 0.95)
        for lever, on in self.levers.items():
            changes[f"levers.{lever}.enabled"] = on
        if self.timing is not None:
            changes["timing"] = self.timing
        deal = set_values(deal, changes) if changes else deal
        if self.decisions is not None:
            from dealmodel.decisions import _with

            deal = _with(deal, rule="none") if self.decisions == "none" else _with(deal, rule="optimal",
                                                                                     owner=self.decisions)
        return deal


class Structure(BaseModel):
    """One structure of a scenario: the deal as written and its term edits."""

    model_config = _CONFIG
    deal: Deal
    edits: dict[str, float] = Field(default_factory=dict, max_length=limits.MAX_TERMS * 10)


class Scenario(BaseModel):
    """A named state of a comparison (see the module docstring)."""

    model_config = _CONFIG
    name: str = Field(min_length=1, max_length=limits.MAX_TEXT)
    paths: int = Field(20_000, ge=1, le=20_000_000)
    seed: int = Field(0, ge=0)
    selected: str | None = Field(None, description="the structure being edited")
    program: ProgramChanges = Field(default_factory=ProgramChanges)
    structures: dict[str, Structure] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _selected_is_a_structure(self) -> Scenario:
        if self.selected is not None and self.selected not in self.structures:
            raise ValueError(f"selected: {self.selected!r} is not one of the structures "
                             f"({', '.join(self.structures)})")
        return self

    def deals(self) -> dict[str, Deal]:
        """Each structure as valued: the program changes, then its term edits."""
        out = {}
        for name, s in self.structures.items():
            deal = self.program.apply(s.deal)
            try:
                out[name] = set_values(deal, dict(s.edits)) if s.edits else deal
            except ParameterError as exc:
                raise ValueError(f"scenario {self.name!r}, structure {name!r}: {exc}") from None
        return out

    def compare(self, baseline: str | None = None, **kwargs: Any):
        """:func:`dealmodel.compare` of the scenario's structures at its paths and seed."""
        from dealmodel.compare import compare

        return compare(self.deals(), paths=self.paths, seed=self.seed, baseline=baseline, **kwargs)


class _File(BaseModel):
    model_config = _CONFIG
    dealmodel_scenarios: Literal[1]
    scenarios: dict[str, Scenario] = Field(default_factory=dict, max_length=200)


def parse_scenarios(data: Any, source: str = "<scenarios>") -> dict[str, Scenario]:
    """Validate a scenarios document (already parsed); every problem named with its field."""
    if not isinstance(data, dict) or "dealmodel_scenarios" not in data:
        raise DealError(source, [f"not a scenarios file: expected a mapping with dealmodel_scenarios: "
                                 f"{SCENARIOS_VERSION} and scenarios"])
    if data.get("dealmodel_scenarios") != SCENARIOS_VERSION:
        raise DealError(source, [f"dealmodel_scenarios: version {data.get('dealmodel_scenarios')!r} is not one "
                                 f"this dealmodel reads (it reads {SCENARIOS_VERSION})"])
    try:
        return dict(_File.model_validate(data).scenarios)
    except ValidationError as exc:
        raise DealError(source, format_validation_error(exc)) from None


def scenarios_text(scenarios: dict[str, Scenario]) -> str:
    """The YAML of a scenarios file holding ``scenarios``."""
    data = {"dealmodel_scenarios": SCENARIOS_VERSION, "scenarios": {
        name: {**s.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"structures"}),
               "structures": {k: {"deal": deal_to_dict(v.deal), "edits": dict(v.edits)}
                              for k, v in s.structures.items()}}
        for name, s in scenarios.items()}}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def load_scenarios(path: str | os.PathLike[str]) -> dict[str, Scenario]:
    """Every scenario of a scenarios file, by name."""
    source = str(path)
    return parse_scenarios(parse_text(read_text_file(Path(path), "scenarios file"), source, "yaml"), source)


def load_scenario(path: str | os.PathLike[str], name: str | None = None) -> Scenario:
    """One scenario of a file: ``name``, or the only one (or the last saved when there are several)."""
    scenarios = load_scenarios(path)
    if not scenarios:
        raise DealError(str(path), ["scenarios: the file holds no scenario"])
    if name is None:
        return list(scenarios.values())[-1]
    if name not in scenarios:
        raise DealError(str(path), [f"scenarios: no scenario named {name!r} (there are: {', '.join(scenarios)})"])
    return scenarios[name]


def save_scenario(scenario: Scenario, path: str | os.PathLike[str]) -> None:
    """Add ``scenario`` to a scenarios file (replacing one of the same name), atomically."""
    target = Path(path)
    existing = load_scenarios(target) if target.exists() else {}
    existing[scenario.name] = scenario
    atomic_write(target, scenarios_text(existing))
