"""The deal file: a development program plus the terms that share its risk and reward.

Money, everywhere in a deal file and in every output, is in **millions of the deal currency**
(``currency``). Times are in years from the valuation date (1 January of ``valuation_year``).
Rates are fractions per year (0.15 is 15%).

All models are frozen and reject unknown keys. Field-level checks live on the fields; checks
that relate several fields live in ``model_validator`` methods and report every problem they
find, each prefixed with the path of the field it concerns.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from dealmodel import limits
from dealmodel.distributions import Fixed, Quantity, in_range
from dealmodel.timing import Timing

PHASES: tuple[str, ...] = ("preclinical", "phase1", "phase2", "phase3", "filing")
"""Development phases in order. ``filing`` is regulatory review; its success is approval."""

Phase = Literal["preclinical", "phase1", "phase2", "phase3", "filing"]
Party = Literal["sponsor", "partner"]

Probability = Annotated[Quantity, AfterValidator(in_range(0.0, 1.0))]
NonNegative = Annotated[Quantity, AfterValidator(in_range(0.0))]
Fraction = Annotated[Quantity, AfterValidator(in_range(0.0, 1.0))]


class _Model(BaseModel):
    # strict: true/false is not a number and "12" is not 12; whole numbers are still numbers
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_max_length=limits.MAX_TEXT,
                              strict=True)


class _Problems:
    """Collects cross-field problems so one validator reports all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}" if where else message)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValueError("\n".join(self.items))


# --------------------------------------------------------------------------- parties, levers


class PartySpec(_Model):
    name: str = Field(min_length=1, description="Display name of the party.")
    discount_rate: float = Field(
        ge=limits.MIN_RATE, le=limits.MAX_RATE,
        description="Annual discount rate for this party's cash flows (0.15 = 15%), from -0.5 to 1.",
    )
    risk_tolerance: float | None = Field(
        None, gt=0.0, le=limits.MAX_MONEY,
        description="Risk tolerance R in millions (exponential utility): the party values an uncertain NPV X at "
        "its certainty equivalent -R ln E[exp(-X/R)]. None: risk-neutral (the expected NPV).",
    )


class Parties(_Model):
    sponsor: PartySpec = Field(description="The biotech that owns the candidates.")
    partner: PartySpec = Field(description="The CRO/CDMO doing development and manufacturing.")


class BiomarkerLever(_Model):
    """Biomarker-driven trials: 'a 20% higher probability of success in Phase III' (article)."""

    enabled: bool = False
    phase3_success_uplift: float = Field(
        0.20, ge=0.0, le=5.0, description="Relative uplift of phase 3 success for biomarker-selected candidates."
    )


class AIRecruitmentLever(_Model):
    """AI-driven patient matching: 'a 30% reduction in patient recruitment timelines' and 'per-patient
    costs lower by an average of $5,000' (article).

    The cut applies to the recruitment part of each clinical phase (phase 1-3): a phase of
    duration d whose recruitment share is s lasts ``d (1 - recruitment_time_reduction x s)``.
    A share of 1 is the article's other reading, "trial timelines cut by up to 30%".
    """

    enabled: bool = False
    recruitment_time_reduction: float = Field(
        0.30, ge=0.0, lt=1.0, description="Relative cut of the recruitment time of phases 1-3."
    )
    recruitment_share: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Share of a clinical phase's duration spent recruiting, where the phase does not "
        "give its own recruitment_share.",
    )
    saving_per_patient: float = Field(
        0.005, ge=0.0, le=1.0, description="Sponsor cost saved per patient of a phase's 'patients' (millions)."
    )
    saving_per_month: float = Field(
        0.0, ge=0.0, le=100.0, description="Sponsor cost saved per month the phase is shortened (millions)."
    )


class QbDLever(_Model):
    """Quality by Design: 'reducing batch failures by up to 30%' (article)."""

    enabled: bool = False
    batch_failure_reduction: float = Field(
        0.30, ge=0.0, le=1.0, description="Relative reduction of every candidate's batch failure rate."
    )


class Levers(_Model):
    biomarker_selection: BiomarkerLever = BiomarkerLever()
    ai_recruitment: AIRecruitmentLever = AIRecruitmentLever()
    qbd: QbDLever = QbDLever()


class Correlation(_Model):
    """Latent correlation of phase outcomes among candidates of one platform group.

    Candidates with the same ``platform`` (or none) form a group; within a group every pair of
    candidates has latent correlation ``rho`` (or the group's own value in ``groups``) through a
    one-factor Gaussian copula per phase. Different groups are independent.
    """

    rho: float = Field(0.0, ge=0.0, lt=1.0, description="Pairwise latent correlation within a group.")
    groups: dict[str, Annotated[float, Field(ge=0.0, lt=1.0)]] = Field(
        default_factory=dict, max_length=limits.MAX_CANDIDATES, description="Per-platform override of rho."
    )


# --------------------------------------------------------------------------- candidates


class PhaseSpec(_Model):
    success_probability: Probability = Field(description="Probability the phase succeeds.")
    duration_years: NonNegative = Field(description="Years from the start to the end of the phase.")
    cost: NonNegative = Field(default_factory=lambda: Fixed(value=0.0),
                              description="Sponsor's own cost of the phase (millions).")
    partner_cost: NonNegative = Field(
        default_factory=lambda: Fixed(value=0.0),
        description="Partner's cost of its services in the phase (millions), before failed batches.",
    )
    recruitment_share: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Share of the phase's duration spent recruiting patients (for the AI recruitment lever); "
        "none = the lever's recruitment_share.",
    )
    patients: float = Field(0.0, ge=0.0, le=1e6, description="Patients enrolled (for the lever's per-patient saving).")


class Phases(_Model):
    preclinical: PhaseSpec | None = None
    phase1: PhaseSpec | None = None
    phase2: PhaseSpec | None = None
    phase3: PhaseSpec | None = None
    filing: PhaseSpec | None = None


DEFAULT_LAUNCH_CURVE = (0.11, 0.31, 0.58, 0.76, 0.89, 1.0)
"""Share of peak sales in launch years 1-6 for the median drug (Robey & David 2017)."""


class Commercial(_Model):
    peak_sales: NonNegative = Field(description="Peak annual net sales (millions).")
    launch_curve: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = Field(
        None, max_length=limits.MAX_CURVE_YEARS,
        description="Share of peak sales in each launch year (1.0 after the list ends). "
        "Give this or years_to_peak; neither means the Robey & David 2017 median curve.",
    )
    years_to_peak: Annotated[float, Field(gt=0.0, le=30.0)] | None = Field(
        None, description="Linear ramp: sales reach peak after this many years."
    )
    exclusivity_years: NonNegative = Field(description="Years of market exclusivity from launch.")
    erosion_after_loe: Fraction = Field(
        description="Fraction of sales lost each year after loss of exclusivity."
    )
    cogs_fraction: Fraction = Field(description="Cost of goods as a fraction of net sales.")
    opex_fraction: Fraction = Field(
        description="Other operating cost (sales, marketing, G&A) as a fraction of net sales."
    )

    @model_validator(mode="after")
    def _one_ramp(self) -> Commercial:
        if self.launch_curve is not None and self.years_to_peak is not None:
            raise ValueError("give launch_curve or years_to_peak, not both")
        if self.launch_curve is not None and len(self.launch_curve) == 0:
            raise ValueError("launch_curve: must list at least one year")
        return self

    def curve(self) -> tuple[float, ...]:
        """Share of peak in each launch year until the ramp reaches 1 (then 1 for ever)."""
        if self.years_to_peak is not None:
            n = math.ceil(self.years_to_peak)
            return tuple(min(1.0, (k + 1) / self.years_to_peak) for k in range(n))
        return tuple(self.launch_curve) if self.launch_curve is not None else DEFAULT_LAUNCH_CURVE


class Candidate(_Model):
    name: str = Field(min_length=1)
    modality: str = Field(min_length=1, description="e.g. cell_therapy, adc, antibody, mrna_vaccine.")
    biomarker_selected: bool = False
    platform: str | None = Field(None, description="Platform group for outcome correlation.")
    start_phase: Phase = Field(description="The phase the candidate is in at the valuation date.")
    phases: Phases = Field(description="Every phase from start_phase to filing, each with its numbers.")
    commercial: Commercial
    batch_failure_rate: Annotated[Quantity, AfterValidator(in_range(0.0, 0.95))] = Field(
        default_factory=lambda: Fixed(value=0.0),
        description="Share of manufactured batches that fail and are remade; inflates the "
        "partner's service cost and the cost of goods by 1/(1 - rate).",
    )

    @model_validator(mode="after")
    def _phases_present(self) -> Candidate:
        problems = _Problems()
        start = PHASES.index(self.start_phase)
        for i, phase in enumerate(PHASES):
            given = getattr(self.phases, phase) is not None
            if i >= start and not given:
                problems.add(
                    f"phases.{phase}",
                    f"missing: a candidate starting in {self.start_phase} needs every phase up to filing",
                )
            if i < start and given:
                problems.add(f"phases.{phase}", f"comes before start_phase {self.start_phase}; remove it")
        problems.raise_if_any()
        return self

    def remaining_phases(self) -> list[tuple[str, PhaseSpec]]:
        start = PHASES.index(self.start_phase)
        return [(p, getattr(self.phases, p)) for p in PHASES[start:]]


# --------------------------------------------------------------------------- terms

Candidates = Literal["all"] | list[str]

MILESTONE_EVENTS = (
    "phase1_start",
    "phase2_start",
    "phase3_start",
    "filing",
    "approval",
    "first_sale",
    "annual_sales",
    "cumulative_sales",
    "approval_count",
)
MilestoneEvent = Literal[
    "phase1_start", "phase2_start", "phase3_start", "filing", "approval", "first_sale", "annual_sales",
    "cumulative_sales", "approval_count",
]
Escalation = Annotated[Quantity, AfterValidator(in_range(-0.5, 1.0)), Field(
    default_factory=lambda: Fixed(value=0.0),
    description="Yearly price index, a number or a distribution (drawn once per path): prices in calendar "
    "year i from the valuation date are x (1 + escalation)^i.")]


class _Term(_Model):
    label: str | None = Field(None, description="Optional display name of this piece.")
    payer: Party = "sponsor"
    payee: Party = "partner"

    @model_validator(mode="after")
    def _two_parties(self):
        if self.payer == self.payee:
            raise ValueError(f"payer and payee are both {self.payer}; a payment goes between the two parties")
        return self


class _CandidateTerm(_Term):
    candidates: Candidates = Field("all", description='"all" or a list of candidate names.')


class ServiceFees(_CandidateTerm):
    """The partner bills its cost x (1 + markup) as incurred; an at-risk part is deferred.

    The at-risk fraction of each phase's fees is paid only on success (of that phase, or of
    approval), increased by the success premium.
    """

    kind: Literal["service_fees"]
    markup: float = Field(gt=-1.0, le=10.0, description="Margin on the partner's cost (0.2 = cost + 20%).")
    failed_batches_paid_by: Party = Field(
        "partner",
        description="Who pays for batches remade after failing specification: the partner (the usual CDMO "
        "warranty: fees are billed on the nominal cost) or the sponsor (fees billed on the actual cost).",
    )
    at_risk_fraction: float = Field(0.0, ge=0.0, le=1.0)
    success_premium: float = Field(0.0, ge=0.0, le=10.0, description="Uplift on the deferred part when paid.")
    deferred_until: Literal["phase_success", "approval"] = "phase_success"
    escalation: Escalation


class Upfront(_Term):
    """A payment at signing (the valuation date)."""

    kind: Literal["upfront"]
    amount: float = Field(ge=0.0, le=limits.MAX_MONEY)
    creditable: bool = Field(False, description="Credited against the service fees that come after it, until used.")


class Milestone(_CandidateTerm):
    """A payment when a candidate reaches an event.

    Events: ``phase1_start``, ``phase2_start``, ``phase3_start``, ``filing`` (submission, i.e.
    phase 3 success), ``approval``, ``first_sale`` (launch, at approval), ``annual_sales`` (paid
    at the end of the first royalty year, 12 months from launch, whose net sales reach ``threshold``),
    ``cumulative_sales`` (paid the moment the candidate's net sales since launch reach
    ``threshold``), and the program-level ``approval_count`` (paid once, when the ``count``-th of
    the covered candidates is approved: ``count: 1`` is "first approval of any candidate").
    """

    kind: Literal["milestone"]
    event: MilestoneEvent
    amount: float = Field(ge=0.0, le=limits.MAX_MONEY, description="Paid once per candidate that reaches the event.")
    threshold: float | None = Field(None, gt=0.0, le=limits.MAX_MONEY,
                                    description="Net sales, for events annual_sales and cumulative_sales.")
    count: int | None = Field(None, ge=1, le=limits.MAX_CANDIDATES,
                              description="For approval_count: paid when this many covered candidates are approved.")
    creditable: bool = Field(False, description="Credited against the service fees that come after it, until used.")

    @model_validator(mode="after")
    def _threshold(self) -> Milestone:
        sales = ("annual_sales", "cumulative_sales")
        if self.event in sales and self.threshold is None:
            raise ValueError(f"threshold: required for event {self.event}")
        if self.event not in sales and self.threshold is not None:
            raise ValueError(f"threshold: only used with events annual_sales and cumulative_sales "
                             f"(event is {self.event})")
        if self.event == "approval_count" and self.count is None:
            raise ValueError("count: required for event approval_count (1 = the first approval of any candidate)")
        if self.event != "approval_count" and self.count is not None:
            raise ValueError(f"count: only used with event approval_count (event is {self.event})")
        return self


class RoyaltyTier(_Model):
    above: float = Field(ge=0.0, le=limits.MAX_MONEY,
                         description="The rate applies to a royalty year's net sales above this level.")
    rate: float = Field(ge=0.0, le=1.0)


class Royalty(_CandidateTerm):
    """Tiered share of net sales by royalty year (marginal tiers, like tax brackets).

    A royalty year is 12 months from the product's launch (for aggregate tiers, from the first
    launch of any covered product). Tiers apply to the net sales counted in that royalty year so
    far; only sales inside the royalty term count; the step-down applies from the exclusivity
    date, and a floor keeps each stepped-down rate at or above ``floor_rate``.
    """

    kind: Literal["royalty"]
    tiers: list[RoyaltyTier] = Field(min_length=1, max_length=limits.MAX_TIERS)
    tier_basis: Literal["product", "aggregate"] = Field(
        "product", description="product: tiers on each product's sales; aggregate: on all covered products' sales."
    )
    term_years: float | None = Field(None, gt=0.0, le=100.0, description="Years from first sale; none = for ever.")
    term_end: Literal["years", "later_of_years_and_exclusivity"] = Field(
        "years", description="years: the term ends term_years after launch; later_of_years_and_exclusivity: "
        "at the later of that and loss of exclusivity.",
    )
    loe_step_down: float = Field(
        0.0, ge=0.0, le=1.0, description="Relative cut of the rate from loss of exclusivity on."
    )
    floor_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="After the step-down no tier's rate falls below this (nor rises above "
        "its own rate).",
    )
    cap: float | None = Field(
        None, gt=0.0, le=limits.MAX_MONEY, description="Cumulative royalty cap per product (per stream when aggregate)."
    )

    @model_validator(mode="after")
    def _tiers(self) -> Royalty:
        problems = _Problems()
        _check_ascending(self.tiers, "tiers", problems)
        problems.raise_if_any()
        return self


class SupplyTier(_Model):
    above: float = Field(ge=0.0, le=limits.MAX_MONEY, description="Annual net sales above which this markup applies.")
    markup: float = Field(gt=-1.0, le=10.0)


def _check_ascending(tiers, name: str, problems: _Problems) -> None:
    if tiers[0].above != 0:
        problems.add(f"{name}[0].above", f"the first tier must start at 0 (got {tiers[0].above:g})")
    for i in range(1, len(tiers)):
        if not tiers[i].above > tiers[i - 1].above:
            problems.add(f"{name}[{i}].above",
                         f"tiers must be ascending (got {tiers[i].above:g} after {tiers[i - 1].above:g})")


class Supply(_CandidateTerm):
    """Commercial supply: the partner makes the marketed product and sells it at COGS x (1 + markup)."""

    kind: Literal["supply"]
    markup: float = Field(gt=-1.0, le=10.0)
    failed_batches_paid_by: Party = Field(
        "partner",
        description="partner: the supply price is the nominal cost of goods x (1 + markup) and the partner "
        "bears remade batches; sponsor: the price follows the actual cost, remakes included.",
    )
    markup_tiers: list[SupplyTier] | None = Field(
        None, max_length=limits.MAX_TIERS,
        description="Volume-tiered pricing instead of one markup: each tier's markup applies to the cost of goods "
        "of the royalty year's sales above its 'above' (first tier at 0, ascending).",
    )
    escalation: Escalation

    @model_validator(mode="after")
    def _tiers(self) -> Supply:
        if self.markup_tiers is not None:
            problems = _Problems()
            _check_ascending(self.markup_tiers, "markup_tiers", problems)
            problems.raise_if_any()
        return self


class CostShare(_CandidateTerm):
    """Co-development: the payer funds a share of the payee's development cost for a profit share.

    The payer (by default the partner) pays ``cost_fraction`` of the payee's own development
    cost as it is incurred; the payee pays back ``profit_fraction`` of operating profit (net
    sales - COGS - other operating cost) after launch.
    """

    kind: Literal["cost_share"]
    payer: Party = "partner"
    payee: Party = "sponsor"
    cost_fraction: float = Field(ge=0.0, le=1.0)
    profit_fraction: float = Field(ge=0.0, le=1.0)


class CapacityReservation(_CandidateTerm):
    """Reserved manufacturing capacity, paid for whether used or not (take-or-pay).

    The sponsor pays ``fee_per_year`` from ``start_years`` to ``end_years`` for each covered
    candidate (``scope: candidate``) or once for the program (``scope: program``). When the
    candidate fails (for the program: when every covered candidate has failed) the reservation is
    released ``notice_years`` later; if the fees paid by then are below ``minimum_commitment`` the
    difference is due at release. The partner bears ``partner_cost_per_year`` for the reserved
    capacity to the end, and after a release resells ``resale_utilisation`` of it at the same fee.
    """

    kind: Literal["capacity_reservation"]
    fee_per_year: float = Field(ge=0.0, le=limits.MAX_MONEY)
    start_years: float = Field(0.0, ge=0.0, le=100.0)
    end_years: float = Field(gt=0.0, le=100.0)
    notice_years: float = Field(0.0, ge=0.0, le=100.0)
    minimum_commitment: float = Field(0.0, ge=0.0, le=limits.MAX_MONEY)
    scope: Literal["candidate", "program"] = "candidate"
    partner_cost_per_year: float = Field(0.0, ge=0.0, le=limits.MAX_MONEY)
    resale_utilisation: float = Field(0.0, ge=0.0, le=1.0)
    escalation: Escalation

    @model_validator(mode="after")
    def _window(self) -> CapacityReservation:
        problems = _Problems()
        if not self.end_years > self.start_years:
            problems.add("end_years", f"must be after start_years ({self.start_years:g}) (got {self.end_years:g})")
        elif self.minimum_commitment > self.fee_per_year * (self.end_years - self.start_years) + 1e-9:
            problems.add("minimum_commitment", f"{self.minimum_commitment:g} is more than the whole reservation "
                         f"costs ({self.fee_per_year * (self.end_years - self.start_years):g})")
        problems.raise_if_any()
        return self


class CancellationFee(_CandidateTerm):
    """Paid when a covered candidate fails: ``amount``, plus ``fraction_of_next_phase`` of the fees at
    list price (nominal partner cost x (1 + markup)) of the phase it will now never run."""

    kind: Literal["cancellation_fee"]
    amount: float = Field(0.0, ge=0.0, le=limits.MAX_MONEY)
    fraction_of_next_phase: float = Field(0.0, ge=0.0, le=1.0)
    markup: float = Field(0.0, gt=-1.0, le=10.0)

    @model_validator(mode="after")
    def _something(self) -> CancellationFee:
        if self.amount == 0 and self.fraction_of_next_phase == 0:
            raise ValueError("fraction_of_next_phase: give it or an amount above 0 (the fee would be 0)")
        return self


class SuccessRebate(_CandidateTerm):
    """On a covered candidate's approval, the payer rebates ``fraction`` of the service fees paid for it
    (at list price, deferred parts and premiums included). By default the partner pays the sponsor."""

    kind: Literal["success_rebate"]
    payer: Party = "partner"
    payee: Party = "sponsor"
    fraction: float = Field(gt=0.0, le=1.0)


class Option(_CandidateTerm):
    """An option to convert a fee-for-service candidate into a revenue-share one.

    The holder (the payer, by default the partner) pays ``option_fee`` at signing. When a covered
    candidate reaches ``exercise_at`` the option is exercised — a decision that uses only what is
    known then on the path — and the holder pays ``exercise_fee``; from that phase on, the service
    fees for the candidate are billed ``markup_given_up`` markup points lower (on the nominal cost),
    and the holder receives ``royalty_rate`` of the candidate's net sales for ``royalty_years``
    after launch (none = for ever).
    """

    kind: Literal["option"]
    payer: Party = "partner"
    payee: Party = "sponsor"
    exercise_at: Literal["phase2_start", "phase3_start", "filing", "approval"]
    option_fee: float = Field(0.0, ge=0.0, le=limits.MAX_MONEY)
    exercise_fee: float = Field(0.0, ge=0.0, le=limits.MAX_MONEY)
    markup_given_up: float = Field(0.0, ge=0.0, le=10.0)
    royalty_rate: float = Field(ge=0.0, le=1.0)
    royalty_years: float | None = Field(None, gt=0.0, le=100.0)


Term = Annotated[
    ServiceFees | Upfront | Milestone | Royalty | Supply | CostShare | CapacityReservation | CancellationFee
    | SuccessRebate | Option,
    Field(discriminator="kind"),
]
TERM_KINDS = ("service_fees", "upfront", "milestone", "royalty", "supply", "cost_share", "capacity_reservation",
              "cancellation_fee", "success_rebate", "option")


# --------------------------------------------------------------------------- the deal

_EVENT_PHASE = {"phase1_start": "phase1", "phase2_start": "phase2", "phase3_start": "phase3", "filing": "filing"}


class ForecastNoise(_Model):
    """How far off the peak-sales forecast is at the start of each phase: the standard deviation of
    log(forecast / true peak sales). A **marked assumption** (no sourced figure; docs/methodology.md):
    set your own. It may only shrink from one phase to the next."""

    phase1: float = Field(0.9, ge=0.0, le=5.0)
    phase2: float = Field(0.7, ge=0.0, le=5.0)
    phase3: float = Field(0.5, ge=0.0, le=5.0)
    filing: float = Field(0.3, ge=0.0, le=5.0)

    @model_validator(mode="after")
    def _shrinks(self) -> ForecastNoise:
        values = [("phase1", self.phase1), ("phase2", self.phase2), ("phase3", self.phase3), ("filing", self.filing)]
        for (a, x), (b, y) in itertools.pairwise(values):
            if y > x:
                raise ValueError(f"{b} ({y}) is above {a} ({x}): a forecast only sharpens as development goes on")
        return self


class Decisions(_Model):
    """Go/no-go at the start of each remaining phase but the first (docs/methodology.md).

    ``optimal``: the owner continues where its expected value of continuing, under the deal's terms,
    exceeds that of stopping, given the forecast it sees (least-squares Monte Carlo, fitted on
    ``fit_paths`` separate paths). ``threshold``: it continues where the forecast of peak sales is at
    least ``threshold``. ``owner``: whose value decides; ``program`` is both parties as one (the
    decisions the program's owner would make with no deal).
    """

    rule: Literal["none", "threshold", "optimal"] = "optimal"
    owner: Literal["sponsor", "partner", "program"] = "sponsor"
    owners: dict[str, Literal["sponsor", "partner", "program"]] = Field(
        default_factory=dict, max_length=limits.MAX_CANDIDATES,
        description="Per candidate, who decides where the contract gives another party the say (e.g. a partner "
        "that funds a candidate's development); the others follow owner.")
    threshold: float | None = Field(None, ge=0.0, le=limits.MAX_MONEY,
                                    description="Threshold rule: the least forecast peak sales (millions a year) "
                                    "at which a candidate goes on.")
    forecast_noise: ForecastNoise = ForecastNoise()
    fit_paths: int = Field(16_384, ge=1_024, le=1_000_000, description="Paths the optimal rule is fitted on.")

    @model_validator(mode="after")
    def _threshold_given(self) -> Decisions:
        if self.rule == "threshold" and self.threshold is None:
            raise ValueError("threshold: the threshold rule needs a threshold (forecast peak sales, millions a year)")
        return self


def _decisions_shorthand(value):
    """``decisions: optimal`` is ``decisions: {rule: optimal}``."""
    return {"rule": value} if isinstance(value, str) else value


class Deal(_Model):
    """A development program and the terms of one deal structure for it."""

    name: str = Field(min_length=1)
    description: str | None = None
    currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="ISO code. All money in the file and in outputs is in millions of it.",
    )
    valuation_year: int = Field(ge=1900, le=2200, description="Cash flows are valued at 1 January of this year.")
    timing: Timing = Field(
        "exact",
        description="How cash flows are discounted: exact (continuous time, default), or a spreadsheet's "
        "end_of_year, mid_year or start_of_year (each calendar year's flows valued at its end, middle or start).",
    )
    horizon_years: int = Field(ge=1, le=100, description="Years simulated after the valuation date.")
    parties: Parties
    program_discount_rate: float | None = Field(
        None, ge=limits.MIN_RATE, le=limits.MAX_RATE, description="Rate for whole-program NPV; default the sponsor's."
    )
    correlation: Correlation = Correlation()
    levers: Levers = Levers()
    decisions: Annotated[Decisions | None, BeforeValidator(_decisions_shorthand)] = Field(
        None, description="Go/no-go decisions at the gates: none (default: every candidate that passes a phase "
        "goes on), threshold or optimal.")
    candidates: list[Candidate] = Field(min_length=1, max_length=limits.MAX_CANDIDATES)
    terms: list[Term] = Field(default_factory=list, max_length=limits.MAX_TERMS)

    @property
    def decision_rule(self) -> str:
        return "none" if self.decisions is None else self.decisions.rule

    @property
    def program_rate(self) -> float:
        if self.program_discount_rate is not None:
            return self.program_discount_rate
        return self.parties.sponsor.discount_rate

    def candidate_names(self) -> list[str]:
        return [c.name for c in self.candidates]

    def covered(self, term: _CandidateTerm) -> list[int]:
        """Indices of the candidates a term applies to."""
        if term.candidates == "all":
            return list(range(len(self.candidates)))
        names = self.candidate_names()
        return [names.index(n) for n in term.candidates if n in names]

    @model_validator(mode="after")
    def _cross_checks(self) -> Deal:
        problems = _Problems()
        names = self.candidate_names()
        seen: set[str] = set()
        for i, n in enumerate(names):
            if n in seen:
                problems.add(f"candidates[{i}].name", f"duplicate candidate name {n!r}")
            seen.add(n)
        for n in self.decisions.owners if self.decisions is not None else ():
            if n not in names:
                problems.add(f"decisions.owners.{n}", f"unknown candidate {n!r}{_did_you_mean(n, names)} "
                             f"(candidates: {', '.join(names)})")
        platforms = {c.platform for c in self.candidates if c.platform is not None}
        for g in self.correlation.groups:
            if g not in platforms:
                problems.add(
                    f"correlation.groups.{g}",
                    f"no candidate has platform {g!r} (platforms: {', '.join(sorted(platforms)) or 'none'})",
                )
        for i, c in enumerate(self.candidates):
            dev_years = sum(spec.duration_years.mean() for _, spec in c.remaining_phases())
            if self.horizon_years < math.ceil(dev_years) + 1:
                problems.add(
                    "horizon_years",
                    f"{self.horizon_years} is too short for candidates[{i}] ({c.name}), whose expected "
                    f"development takes {dev_years:.1f} years; use at least {math.ceil(dev_years) + 1}",
                )
        for t, term in enumerate(self.terms):
            if not isinstance(term, _CandidateTerm) or term.candidates == "all":
                continue
            if not term.candidates:
                problems.add(f"terms[{t}].candidates", 'empty list; write "all" or name candidates')
            for j, n in enumerate(term.candidates):
                if n not in names:
                    hint = _did_you_mean(n, names)
                    problems.add(
                        f"terms[{t}].candidates[{j}]",
                        f"unknown candidate {n!r}{hint} (candidates: {', '.join(names)})",
                    )
        supplied: dict[int, int] = {}
        for t, term in enumerate(self.terms):
            if isinstance(term, Supply):
                for k in self.covered(term):
                    if k in supplied:
                        problems.add(
                            f"terms[{t}].candidates",
                            f"{names[k]} is already supplied under terms[{supplied[k]}]; one maker per product",
                        )
                    supplied.setdefault(k, t)
        for t, term in enumerate(self.terms):
            if isinstance(term, Milestone) and term.event in _EVENT_PHASE:
                phase = _EVENT_PHASE[term.event]
                reachable = [
                    k for k in self.covered(term)
                    if PHASES.index(self.candidates[k].start_phase) < PHASES.index(phase)
                ]
                if not reachable:
                    which = "no candidate it covers" if term.candidates == "all" else "none of its candidates"
                    problems.add(
                        f"terms[{t}].event",
                        f"{term.event} can never happen: {which} starts before {phase}",
                    )
                elif term.candidates != "all":
                    for k in self.covered(term):
                        if k not in reachable:
                            c = self.candidates[k]
                            problems.add(
                                f"terms[{t}].event",
                                f"{term.event} never happens for {c.name}, which starts in {c.start_phase}",
                            )
        problems.raise_if_any()
        return self


def _did_you_mean(word: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
