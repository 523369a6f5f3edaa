"""Validated parameters of the cohort simulator: disease biology and site profiles.

The biology (flare and progression rates, timing, findings, ALP course) is shared by all
sites and read from ``configs/simulation/biology/literature.yaml``; each site profile
(``configs/simulation/<site>.yaml``) sets case mix, therapy mix, visit schedule, lab units,
missingness and label noise. Every block carries its ``source`` so that the provenance of
each number travels with it; pydantic rejects unknown keys and impossible values with a
message naming the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from flare_ml.config_io import CONFIG_ROOT, StrictModel, load_config
from flare_ml.data import contract as c
from flare_ml.errors import ConfigError

SIMULATION_DIR = CONFIG_ROOT / "simulation"
BIOLOGY_PATH = SIMULATION_DIR / "biology" / "literature.yaml"

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]

#: the courses a patient can follow; the first three produce index rows
COURSES = (
    "flare",
    "acquired_progression",
    "primary_progression",
    "responder_no_event",
    "non_responder_no_event",
)
PROGRESSION_COURSES = ("acquired_progression", "primary_progression")
INDEX_COURSES = ("flare", *PROGRESSION_COURSES)
RESPONSES = ("CR", "PR", "SD", "PD", "NE")
LESION_MORPHOLOGIES = ("blastic", "lytic", "mixed")


def _check_distribution(values: dict[str, float], what: str) -> dict[str, float]:
    total = sum(values.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"{what} must sum to 1 (got {total:.4f})")
    return values


class SourcedValue(StrictModel):
    source: str
    value: float


class ByTherapy(StrictModel):
    source: str
    values: dict[str, Probability]
    overrides: dict[str, dict[str, Probability]] = {}

    @field_validator("values")
    @classmethod
    def _all_therapies(cls, v: dict[str, float]) -> dict[str, float]:
        missing = set(c.THERAPY_CLASSES) - set(v)
        unknown = set(v) - set(c.THERAPY_CLASSES)
        if missing or unknown:
            raise ValueError(
                f"needs exactly the therapy classes {list(c.THERAPY_CLASSES)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        return v

    def lookup(self, cancer: str, therapy: str) -> float:
        """Return the value for a therapy, with a cancer-specific override if any."""
        return self.overrides.get(cancer, {}).get(therapy, self.values[therapy])


class LogNormalTime(StrictModel):
    source: str
    median: Positive
    sigma: Positive
    minimum: float = 0.0


class FlareTiming(StrictModel):
    source: str
    median_by_cancer: dict[str, Positive]
    median_overrides_by_therapy: dict[str, Positive] = {}
    sigma: Positive

    def median(self, cancer: str, therapy: str) -> float:
        """Median latent onset in months for a cancer type and therapy class."""
        return self.median_overrides_by_therapy.get(therapy, self.median_by_cancer[cancer])


class Timing(StrictModel):
    flare: FlareTiming
    primary_progression: LogNormalTime
    acquired_progression: LogNormalTime
    progression_after_flare_gap: LogNormalTime
    extraosseous_only_progression: LogNormalTime


class PhaseCategorical(StrictModel):
    source: str
    pre: dict[str, dict[str, Probability]]
    index: dict[str, dict[str, Probability]]

    @model_validator(mode="after")
    def _sums(self) -> PhaseCategorical:
        for phase, table in (("pre", self.pre), ("index", self.index)):
            for group, dist in table.items():
                _check_distribution(dist, f"{phase}.{group}")
        return self


class PhaseBernoulli(StrictModel):
    source: str
    pre: dict[str, Probability]
    index: dict[str, Probability]
    #: cancer-specific index rates that replace ``index`` for that cancer type (a
    #: cancer-by-finding interaction; empty in the literature biology, and then left out
    #: of the dump so that configs and digests without it are unchanged)
    index_by_cancer: dict[str, dict[str, Probability]] = {}

    @field_validator("index_by_cancer")
    @classmethod
    def _known_cancers(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        unknown = set(v) - set(c.CANCER_TYPES)
        if unknown:
            raise ValueError(f"unknown cancer types {sorted(unknown)}")
        return v

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict:
        out = handler(self)
        if not self.index_by_cancer:
            out.pop("index_by_cancer", None)
        return out

    def index_rate(self, cancer: str, course: str) -> float:
        """Index-scan rate of a course, with the cancer-specific value if any."""
        return self.index_by_cancer.get(cancer, {}).get(course, self.index[course])


class CountMeans(StrictModel):
    source: str
    flare: Annotated[float, Field(ge=0)]
    acquired_progression: Annotated[float, Field(ge=0)]
    primary_progression: Annotated[float, Field(ge=0)]


class Morphology(StrictModel):
    source: str
    flare: dict[str, Probability]
    progression: dict[str, dict[str, Probability]]

    @model_validator(mode="after")
    def _sums(self) -> Morphology:
        _check_distribution(self.flare, "flare")
        for cancer, dist in self.progression.items():
            _check_distribution(dist, f"progression.{cancer}")
        return self


class Marrow(StrictModel):
    source: str
    flare: Probability
    other: Probability


class Sld(StrictModel):
    source: str
    baseline_median_mm: Positive
    baseline_sigma: Positive
    ratio_by_response: dict[str, tuple[float, float]]


class Equivocal(StrictModel):
    source: str
    probability: Probability
    progressive_lysis: Probability
    known_lesion_sclerosis: Probability
    morphology: dict[str, Probability]

    @model_validator(mode="after")
    def _sums(self) -> Equivocal:
        _check_distribution(self.morphology, "morphology")
        return self


class Findings(StrictModel):
    extraosseous_response: PhaseCategorical
    progressive_lysis: PhaseBernoulli
    known_lesion_sclerosis: PhaseBernoulli
    clinical_deterioration: PhaseBernoulli
    equivocal_presentation: Equivocal
    new_extraosseous_lesion_given_pd: SourcedValue
    new_bone_lesion_count_extra_poisson_mean: CountMeans
    morphology: Morphology
    baseline_marrow_involvement: Marrow
    sld: Sld


class CourseAlp(StrictModel):
    s1_mean: float
    s1_sd: Positive
    s2_mean: float
    s2_sd: Positive


class AlpCourses(StrictModel):
    source: str
    flare: CourseAlp
    acquired_progression: CourseAlp
    primary_progression: CourseAlp
    responder_no_event: CourseAlp
    non_responder_no_event: CourseAlp


class BaselineAlp(StrictModel):
    source: str
    values: dict[str, Positive]


class Resistance(StrictModel):
    source: str
    mean: float
    sd: Positive
    lead_months: Positive


class Bounce(StrictModel):
    source: str
    flare: Probability
    other: Probability


class BounceShape(StrictModel):
    source: str
    value: Annotated[float, Field(gt=-1.0)]
    sigma: Positive
    peak_day: Positive
    width_days: Positive


class Alp(StrictModel):
    median_baseline_u_l: BaselineAlp
    baseline_sigma: SourcedValue
    early_change_time_constant_months: SourcedValue
    late_rise_onset_months: SourcedValue
    course: AlpCourses
    resistance_rise_per_month: Resistance
    bounce_probability: Bounce
    bounce_rise: BounceShape
    noise_sigma: SourcedValue


class Biology(StrictModel):
    """Disease biology shared by every site (``biology/literature.yaml``)."""

    response_probability: ByTherapy
    flare_probability_given_response: ByTherapy
    primary_bone_progression_probability: SourcedValue
    acquired_bone_progression_probability: SourcedValue
    progression_after_flare_probability: SourcedValue
    timing_months: Timing
    findings: Findings
    alp: Alp


class CaseMix(StrictModel):
    source: str
    values: dict[str, Probability]

    @field_validator("values")
    @classmethod
    def _valid(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(c.CANCER_TYPES)
        if unknown:
            raise ValueError(f"unknown cancer types {sorted(unknown)}")
        return _check_distribution(v, "case mix")


class TherapyMix(StrictModel):
    source: str
    values: dict[str, dict[str, Probability]]

    @field_validator("values")
    @classmethod
    def _valid(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for cancer, dist in v.items():
            unknown = set(dist) - set(c.THERAPY_CLASSES)
            if unknown:
                raise ValueError(f"{cancer}: unknown therapy classes {sorted(unknown)}")
            _check_distribution(dist, f"therapy mix of {cancer}")
        return v


class Schedule(StrictModel):
    source: str
    scan_interval_days: Annotated[int, Field(ge=14)]
    scan_jitter_days: Annotated[int, Field(ge=0)]
    lab_interval_days: Annotated[int, Field(ge=7)]
    lab_jitter_days: Annotated[int, Field(ge=0)]
    lab_before_scan_max_days: Annotated[int, Field(ge=0, le=30)]
    followup_months: tuple[Positive, Positive]

    @model_validator(mode="after")
    def _jitter(self) -> Schedule:
        if 2 * self.scan_jitter_days >= self.scan_interval_days:
            raise ValueError("scan_jitter_days must be less than half of scan_interval_days")
        if 2 * self.lab_jitter_days >= self.lab_interval_days:
            raise ValueError("lab_jitter_days must be less than half of lab_interval_days")
        if self.followup_months[0] > self.followup_months[1]:
            raise ValueError("followup_months must be [shortest, longest]")
        return self


class Labs(StrictModel):
    test_name: str
    unit: str
    missing_fraction: Probability


class Missingness(StrictModel):
    source: str
    sld_mm: Probability
    new_extraosseous_lesion: Probability
    progressive_lysis: Probability
    known_lesion_sclerosis: Probability
    clinical_deterioration: Probability
    baseline_marrow_involvement: Probability


class SiteProfile(StrictModel):
    """One site: case mix, schedule, lab units, missingness (``<site>.yaml``)."""

    name: str
    description: str
    case_mix: CaseMix
    therapy_mix: TherapyMix
    schedule: Schedule
    labs: Labs
    missingness: Missingness
    label_noise: SourcedValue

    @model_validator(mode="after")
    def _therapy_for_every_cancer(self) -> SiteProfile:
        missing = [k for k, p in self.case_mix.values.items() if p > 0]
        missing = [k for k in missing if k not in self.therapy_mix.values]
        if missing:
            raise ValueError(f"therapy_mix needs an entry for cancer types {missing}")
        if not 0.0 <= self.label_noise.value < 0.5:
            raise ValueError("label_noise.value must be in [0, 0.5)")
        return self


def available_sites() -> list[str]:
    """Names of the site profiles shipped in ``configs/simulation``.

    Examples
    --------
    >>> "default" in available_sites()
    True

    """
    return sorted(p.stem for p in SIMULATION_DIR.glob("*.yaml"))


def load_site(site: str | Path) -> SiteProfile:
    """Load a site profile by name (shipped) or by path to a YAML file.

    Examples
    --------
    >>> load_site("community").schedule.scan_interval_days
    84

    """
    path = Path(site)
    if path.suffix not in (".yaml", ".yml"):
        path = SIMULATION_DIR / f"{site}.yaml"
        if not path.exists():
            raise ConfigError(
                f"unknown site {site!r}; available sites: {', '.join(available_sites())} "
                "(or give the path to a site YAML file)"
            )
    return load_config(SiteProfile, path)


def load_biology(path: str | Path = BIOLOGY_PATH) -> Biology:
    """Load the disease biology (by default the literature-calibrated file).

    Examples
    --------
    >>> load_biology().timing_months.flare.median_by_cancer["breast"]
    1.2

    """
    return load_config(Biology, path)


# --- confirmation scans (biology/confirmation.yaml) --------------------------------------
CONFIRMATION_PATH = SIMULATION_DIR / "biology" / "confirmation.yaml"


class ConfirmationDelay(StrictModel):
    source: str
    minimum: Annotated[int, Field(ge=1)]
    maximum: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _order(self) -> ConfirmationDelay:
        if self.minimum > self.maximum:
            raise ValueError("minimum must not exceed maximum")
        return self


class FurtherLesions(StrictModel):
    source: str
    poisson_mean: Annotated[float, Field(ge=0)]


class ConfirmationResponse(StrictModel):
    source: str
    pd_persists: bool


class ProbabilityValue(StrictModel):
    source: str
    value: Probability


class ConfirmationScans(StrictModel):
    """Confirmation scans after a progression index (``biology/confirmation.yaml``)."""

    scan_probability: ProbabilityValue
    delay_days: ConfirmationDelay
    further_new_bone_lesions: FurtherLesions
    extraosseous_response: ConfirmationResponse


def load_confirmation(path: str | Path = CONFIRMATION_PATH) -> ConfirmationScans:
    """Load the confirmation-scan parameters (by default the shipped file).

    Examples
    --------
    >>> load_confirmation().delay_days.minimum
    42

    """
    return load_config(ConfirmationScans, path)
