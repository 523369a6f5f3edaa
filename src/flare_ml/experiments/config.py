"""Validated experiment configurations (``experiments/*.yaml``) and site overrides.

An experiment file names its kind (``headline``, ``ablations``, ``learning_curve``,
``robustness``, ``literature_cases``, ``coverage``), its MLflow experiment, its seed, the training
settings (the shipped training config plus a few ``model`` overrides) and a ``params``
block whose keys depend on the kind. Every key is checked by pydantic: an unknown or
misspelt key, a value of the wrong type, an unknown site or an impossible site override is a
:class:`~flare_ml.errors.ConfigError` that names the dotted key and the file, raised before
any cohort is simulated. Simulated cohorts are named as everywhere in flare-ml
("simulated site community (2000 patients, seed 2)"), with their site overrides appended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flare_ml.cases import CASES
from flare_ml.config_io import StrictModel, format_validation_error, read_yaml
from flare_ml.errors import ConfigError
from flare_ml.explain import SIGNALS
from flare_ml.features import FEATURE_NAMES
from flare_ml.simulate import available_sites
from flare_ml.simulate.config import SiteProfile, load_site
from flare_ml.train_config import DEFAULT_TRAIN_CONFIG, TrainConfig, load_train_config

__all__ = [
    "KINDS",
    "AblationParams",
    "CohortSpec",
    "CoverageParams",
    "ExperimentConfig",
    "HeadlineParams",
    "LabelledSitePatients",
    "LearningCurveParams",
    "LiteratureCasesParams",
    "RobustnessCondition",
    "RobustnessParams",
    "SmallCohortsCell",
    "SmallCohortsParams",
    "cohort_label",
    "load_experiment",
    "load_params",
    "site_with_overrides",
]

#: the experiment kinds, in the order docs/experiments.md lists them
KINDS: tuple[str, ...] = (
    "headline",
    "ablations",
    "learning_curve",
    "robustness",
    "literature_cases",
    "coverage",
    "small_cohorts",
)


# --- site overrides --------------------------------------------------------------------


def _merge_into_model(
    model: type[BaseModel], base: dict[str, Any], overrides: dict[str, Any], prefix: str
) -> dict[str, Any]:
    """Merge ``overrides`` into ``base`` field by field; free-form mappings are replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if key not in model.model_fields:
            allowed = ", ".join(model.model_fields)
            raise ConfigError(f"{dotted}: unknown key (check its spelling); allowed: {allowed}")
        annotation = model.model_fields[key].annotation
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if nested and isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge_into_model(annotation, base[key], value, f"{dotted}.")
        else:
            # a distribution (case mix, therapy mix) is replaced whole, never patched
            merged[key] = value
    return merged


def site_with_overrides(
    site: str | Path | SiteProfile, overrides: dict[str, Any] | None = None
) -> SiteProfile:
    """A shipped site profile with some of its values replaced, validated again.

    Blocks of the profile (``labs``, ``schedule``, ``label_noise``, ...) are merged key by
    key; a mapping that is a distribution or a table (``case_mix.values``,
    ``therapy_mix.values``) is replaced as a whole, so it must be complete. The result is
    round-tripped through ``SiteProfile.model_validate``, so every constraint of the site
    files holds (probabilities in [0, 1], distributions summing to 1, jitter below half
    the interval, ...).

    Parameters
    ----------
    site : str, Path or SiteProfile
        A shipped site name, a site YAML path or a loaded profile.
    overrides : dict, optional
        Nested values to replace, e.g. ``{"labs": {"missing_fraction": 0.4}}``.

    Returns
    -------
    SiteProfile
        The new, validated profile (the shipped file is not changed).

    Raises
    ------
    ConfigError
        An unknown key or an invalid value, naming the dotted key.

    Examples
    --------
    >>> p = site_with_overrides("default", {"labs": {"missing_fraction": 0.4}})
    >>> p.labs.missing_fraction, p.labs.unit, p.schedule.scan_interval_days
    (0.4, 'U/L', 49)
    >>> site_with_overrides("default", {"labs": {"missing_fraktion": 0.4}})
    Traceback (most recent call last):
    ...
    flare_ml.errors.ConfigError: labs.missing_fraktion: unknown key (check its spelling); \
allowed: test_name, unit, missing_fraction

    """
    profile = site if isinstance(site, SiteProfile) else load_site(site)
    if not overrides:
        return profile
    if not isinstance(overrides, dict):
        raise ConfigError(f"site overrides must be a mapping, got {overrides!r}")
    merged = _merge_into_model(SiteProfile, profile.model_dump(), overrides, "")
    try:
        return SiteProfile.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, f"site {profile.name!r} with overrides")
        ) from None


def _flat(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value and key != "values":
            out.extend(_flat(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(f"{k} {_short(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_overrides(overrides: dict[str, Any]) -> str:
    """Site overrides in a few words, e.g. ``labs.missing_fraction=0.4``.

    Examples
    --------
    >>> describe_overrides({"labs": {"missing_fraction": 0.4}, "label_noise": {"value": 0.1}})
    'labs.missing_fraction=0.4, label_noise.value=0.1'
    >>> describe_overrides({"case_mix": {"values": {"nsclc": 0.85, "breast": 0.15}}})
    'case_mix.values=nsclc 0.85/breast 0.15'

    """
    return ", ".join(f"{k}={_short(v)}" for k, v in _flat(overrides))


# --- cohorts ---------------------------------------------------------------------------


class CohortSpec(StrictModel):
    """A simulated cohort: site, size, seed and optional site overrides."""

    site: str = "default"
    patients: Annotated[int, Field(ge=20)] = 2000
    seed: int = 0
    overrides: dict[str, Any] = {}

    def with_overrides(self, extra: dict[str, Any], site: str | None = None) -> CohortSpec:
        """Return the cohort with more overrides (deep-merged) and optionally another site."""
        return self.model_copy(
            update={"overrides": _deep_merge(self.overrides, extra), "site": site or self.site}
        )

    def profile(self) -> SiteProfile:
        """The site profile with the overrides applied (validated)."""
        return site_with_overrides(self.site, self.overrides)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def cohort_label(spec: CohortSpec) -> str:
    """How a simulated cohort is named in results tables.

    Examples
    --------
    >>> cohort_label(CohortSpec(site="community", patients=2000, seed=2))
    'simulated site community (2000 patients, seed 2)'
    >>> cohort_label(CohortSpec(site="default", patients=500, seed=4,
    ...                         overrides={"labs": {"missing_fraction": 0.6}}))
    'simulated site default (500 patients, seed 4; labs.missing_fraction=0.6)'

    """
    extra = f"; {describe_overrides(spec.overrides)}" if spec.overrides else ""
    return f"simulated site {spec.site} ({spec.patients} patients, seed {spec.seed}{extra})"


def _default(site: str, patients: int, seed: int) -> CohortSpec:
    return CohortSpec(site=site, patients=patients, seed=seed)


# --- per-kind parameters ---------------------------------------------------------------


class HeadlineParams(StrictModel):
    """``kind: headline``: the training job of ``flare-ml train`` on these cohorts."""

    train: CohortSpec = _default("default", 2500, 1)
    external: Annotated[list[CohortSpec], Field(min_length=1)] = [
        _default("community", 2000, 2),
        _default("nordic", 2000, 3),
    ]

    @model_validator(mode="after")
    def _no_overrides(self) -> HeadlineParams:
        if self.train.overrides or any(s.overrides for s in self.external):
            raise ValueError("the headline runs shipped sites as they are: remove `overrides`")
        return self


def _check_signals(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in SIGNALS]
    if unknown:
        raise ValueError(f"unknown signals {unknown}; allowed: {', '.join(SIGNALS)}")
    if len(set(values)) != len(values):
        raise ValueError("each signal may be listed once")
    return values


class AblationParams(StrictModel):
    """``kind: ablations``: drop one clinical signal group at a time."""

    train: CohortSpec = _default("default", 2500, 1)
    external: CohortSpec = _default("community", 2000, 2)
    signals: list[str] | None = None

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_signals(v)


def distinct_ascending(sizes: list[int]) -> list[int]:
    """Refuse sizes that repeat or go down (an experiment grid runs them in order).

    Examples
    --------
    >>> distinct_ascending([100, 300])
    [100, 300]

    """
    if sorted(set(sizes)) != sizes:
        raise ValueError("sizes must be distinct and ascending")
    return sizes


#: cohort sizes of an experiment grid: at least one, each of 20 patients or more, ascending
CohortSizes = Annotated[
    list[Annotated[int, Field(ge=20)]],
    Field(min_length=1),
    AfterValidator(distinct_ascending),
]


class LearningCurveParams(StrictModel):
    """``kind: learning_curve``: nested training cohorts of growing size."""

    train_site: str = "default"
    train_seed: int = 11
    sizes: CohortSizes = [
        100,
        300,
        1000,
        3000,
        10000,
    ]
    replicates: Annotated[int, Field(ge=1, le=10)] = 1
    external: CohortSpec = _default("community", 2000, 2)


class RobustnessCondition(StrictModel):
    """One condition: site overrides at the training and at the external site."""

    name: Annotated[str, Field(min_length=1)]
    group: str = ""
    train: dict[str, Any] = {}
    external: dict[str, Any] = {}
    external_site: str | None = None


class RobustnessParams(StrictModel):
    """``kind: robustness``: how model and rules degrade under changed conditions."""

    train: CohortSpec = _default("default", 2000, 1)
    external: CohortSpec = _default("default", 2000, 4)
    conditions: Annotated[list[RobustnessCondition], Field(min_length=1)]

    @field_validator("conditions")
    @classmethod
    def _unique(cls, v: list[RobustnessCondition]) -> list[RobustnessCondition]:
        names = [c.name for c in v]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be unique, got {names}")
        return v


def _check_cases(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in CASES]
    if unknown:
        raise ValueError(f"unknown cases {unknown}; allowed: {', '.join(CASES)}")
    return values


class LiteratureCasesParams(StrictModel):
    """``kind: literature_cases``: the model's reading of published courses."""

    train: CohortSpec = _default("default", 2500, 1)
    cases: list[str] | None = None

    @field_validator("cases")
    @classmethod
    def _known_cases(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_cases(v)


def _known_sites(values: list[str]) -> list[str]:
    shipped = available_sites()
    unknown = [v for v in values if v not in shipped]
    if unknown:
        raise ValueError(f"unknown sites {unknown}; allowed: {', '.join(shipped)}")
    if len(set(values)) != len(values):
        raise ValueError("each site may be listed once")
    return values


class LabelledSitePatients(StrictModel):
    """``coverage.labelled``: how many labelled site patients a recalibration needs.

    A *labelled patient* is a patient with at least one index assessment whose outcome
    the site recorded. Replicate ``r`` of the ``j``-th site is a cohort of
    ``pool_patients`` patients with seed ``first_seed + j * replicates + r``; each of its
    ``draws`` random orders of the labelled patients calibrates on the first ``n`` of them
    (nested sizes) and is evaluated on the rest.
    """

    sites: Annotated[list[str], Field(min_length=1)] = ["community", "nordic"]
    sizes: Annotated[
        list[Annotated[int, Field(ge=2)]],
        Field(min_length=1),
        AfterValidator(distinct_ascending),
    ] = [
        100,
        250,
        500,
        1000,
    ]
    pool_patients: Annotated[int, Field(ge=20)] = 10000
    draws: Annotated[int, Field(ge=1, le=100)] = 10
    first_seed: int = 201
    tolerance: Annotated[float, Field(gt=0, lt=0.5)] = 0.02

    @field_validator("sites")
    @classmethod
    def _sites(cls, v: list[str]) -> list[str]:
        return _known_sites(v)


class CoverageParams(StrictModel):
    """``kind: coverage``: conformal coverage of the shipped model across sites.

    One model is trained on ``train``; replicate ``r`` (0-based) of the ``i``-th of
    ``sites`` is a cohort of ``patients`` patients with seed
    ``first_seed + i * replicates + r``. Every seed (training, replicates, the labelled
    pools) must be distinct, so that no evaluation cohort repeats the training patients.
    ``coverage`` is the one per-class target the experiment studies: the model's error
    budget is set to ``1 - coverage`` for both classes.
    """

    train: CohortSpec = _default("default", 2500, 1)
    coverage: Annotated[float, Field(gt=0.5, lt=1)] = 0.9
    sites: Annotated[list[str], Field(min_length=1)] = [
        "default",
        "community",
        "nordic",
        "thoracic",
    ]
    patients: Annotated[int, Field(ge=20)] = 2000
    replicates: Annotated[int, Field(ge=1, le=50)] = 5
    first_seed: int = 101
    folds: Annotated[int, Field(ge=2, le=20)] = 5
    domain_folds: Annotated[int, Field(ge=2, le=20)] = 5
    labelled: LabelledSitePatients = LabelledSitePatients()

    @field_validator("sites")
    @classmethod
    def _sites(cls, v: list[str]) -> list[str]:
        return _known_sites(v)

    @model_validator(mode="after")
    def _distinct_seeds(self) -> CoverageParams:
        if self.train.overrides:
            raise ValueError("the coverage experiment trains on a shipped site: remove `overrides`")
        seeds = [self.train.seed]
        seeds += [spec.seed for _, _, spec in self.replicate_cohorts()]
        seeds += [spec.seed for _, _, spec in self.labelled_cohorts()]
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(
                f"seeds {repeated} are used by more than one cohort (training seed "
                f"{self.train.seed}; replicates from first_seed {self.first_seed}, labelled "
                f"pools from labelled.first_seed {self.labelled.first_seed}, "
                f"{self.replicates} per site): choose first seeds further apart"
            )
        return self

    def replicate_cohorts(self) -> list[tuple[str, int, CohortSpec]]:
        """``(site, replicate, cohort)`` of every replicate cohort, site by site.

        Examples
        --------
        >>> p = CoverageParams(sites=["default", "nordic"], replicates=2, first_seed=10)
        >>> [(site, r, spec.seed) for site, r, spec in p.replicate_cohorts()]
        [('default', 0, 10), ('default', 1, 11), ('nordic', 0, 12), ('nordic', 1, 13)]

        """
        return [
            (site, r, CohortSpec(site=site, patients=self.patients, seed=seed))
            for i, site in enumerate(self.sites)
            for r in range(self.replicates)
            for seed in [self.first_seed + i * self.replicates + r]
        ]

    def labelled_cohorts(self) -> list[tuple[str, int, CohortSpec]]:
        """``(site, replicate, cohort)`` of every labelled-patient pool, site by site."""
        lab = self.labelled
        return [
            (site, r, CohortSpec(site=site, patients=lab.pool_patients, seed=seed))
            for j, site in enumerate(lab.sites)
            for r in range(self.replicates)
            for seed in [lab.first_seed + j * self.replicates + r]
        ]


#: the small-n baseline's pre-specified features (chosen from the literature's named
#: signals before any result; docs/sources.md)
SMALL_N_FEATURES: list[str] = [
    "days_since_treatment_start",
    "extraosseous_response_ordinal",
    "alp_percent_change_from_baseline",
    "new_lesion_morphology_blastic",
    "new_extraosseous_lesion_now",
    "progressive_lysis_now",
]


class SmallCohortsCell(StrictModel):
    """One target world kind and the site training sizes drawn from it."""

    world: Literal["T0", "T1", "T2", "T3"]
    sizes: CohortSizes


class SmallCohortsParams(StrictModel):
    """``kind: small_cohorts``: rule, from-scratch, small-n LR, prior and adapted prior.

    Per world kind, training size and draw: a labelled site sample (T1 cycles through its
    world seeds) and an evaluation cohort of the same world; every method on the same draw.
    """

    cells: Annotated[list[SmallCohortsCell], Field(min_length=1)]
    draws: Annotated[int, Field(ge=1, le=200)] = 30
    seed: int = 41000
    eval_patients: Annotated[int, Field(ge=20)] = 2000
    small_n_features: Annotated[list[str], Field(min_length=1)] = SMALL_N_FEATURES
    small_n_c: Annotated[float, Field(gt=0)] = 1.0
    scratch_candidates: Annotated[int, Field(ge=1)] = 2
    scratch_outer_folds: Annotated[int, Field(ge=2)] = 3
    adapt_repeats: Annotated[int, Field(ge=1)] = 3
    workers: Annotated[int, Field(ge=1, le=16)] = 2
    negative_transfer_margin: Annotated[float, Field(ge=0)] = 0.02

    @field_validator("cells")
    @classmethod
    def _unique_worlds(cls, v: list[SmallCohortsCell]) -> list[SmallCohortsCell]:
        worlds = [c.world for c in v]
        if len(set(worlds)) != len(worlds):
            raise ValueError(f"each world kind once, got {worlds}")
        return v

    @field_validator("small_n_features")
    @classmethod
    def _known_features(cls, v: list[str]) -> list[str]:
        unknown = [f for f in v if f not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"unknown features {unknown}; see flare_ml.features.FEATURE_NAMES")
        return v


PARAMS: dict[str, type[StrictModel]] = {
    "headline": HeadlineParams,
    "ablations": AblationParams,
    "learning_curve": LearningCurveParams,
    "robustness": RobustnessParams,
    "literature_cases": LiteratureCasesParams,
    "coverage": CoverageParams,
    "small_cohorts": SmallCohortsParams,
}


class TrainingSettings(StrictModel):
    """The training config to start from; overrides of its model and decision policy."""

    config: str | None = None
    model: dict[str, Any] = {}
    decision_policy: dict[str, Any] = {}


class ExperimentConfig(StrictModel):
    """A validated experiment file (``experiments/NAME.yaml``).

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    experiment_name : str
        The MLflow experiment its runs are logged under.
    seed : int
        Seed of the models (tuning, folds) and of the bootstrap; cohorts carry their own.
    description : str
        What the experiment asks and how it is sized; copied into the results file.
    bootstrap_resamples : int
        Patient-level bootstrap resamples of every 95% confidence interval.
    training : TrainingSettings
        Training config path (default: the shipped one) and ``model`` overrides.
    tracking_uri : str or None
        MLflow store; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``.
    results : str or None
        Results file; default ``results/<file stem>.md`` beside the experiment file.
    params : model
        The kind's parameters (:class:`HeadlineParams`, ...).

    """

    kind: Literal[
        "headline",
        "ablations",
        "learning_curve",
        "robustness",
        "literature_cases",
        "coverage",
        "small_cohorts",
    ]
    experiment_name: Annotated[str, Field(min_length=1)]
    seed: int
    description: str = ""
    bootstrap_resamples: Annotated[int, Field(ge=0)] = 1000
    training: TrainingSettings = TrainingSettings()
    tracking_uri: str | None = None
    results: str | None = None
    params: Any = None


def load_params(kind: str, data: dict[str, Any]) -> BaseModel:
    """Validate a ``params`` mapping against the kind's model (defaults filled in).

    Examples
    --------
    >>> load_params("learning_curve", {"sizes": [100, 1000]}).external.site
    'community'

    """
    return PARAMS[kind].model_validate(data)


def resolve_train_config(
    config: ExperimentConfig, source: str, base_dir: Path | None = None
) -> TrainConfig:
    """The training config an experiment uses: file, seed, model overrides, bootstrap.

    Examples
    --------
    >>> cfg = ExperimentConfig(kind="headline", experiment_name="x", seed=3,
    ...                        training={"model": {"n_jobs": 1}}, params={})
    >>> train = resolve_train_config(cfg, "inline")
    >>> train.seed, train.model.n_jobs, train.model.n_candidates
    (3, 1, 6)

    """
    path = _train_config_path(config.training.config, base_dir)
    base = load_train_config(path)
    data = base.model_dump()
    data["seed"] = config.seed
    unknown = [k for k in config.training.model if k not in data["model"]]
    if unknown:
        allowed = ", ".join(data["model"])
        raise ConfigError(
            f"invalid configuration in {source}:\n  - training.model.{unknown[0]}: unknown key "
            f"(check its spelling); allowed: {allowed}"
        )
    data["model"].update(config.training.model)
    data["decision_policy"].update(config.training.decision_policy)
    data["evaluation"]["bootstrap_resamples"] = config.bootstrap_resamples
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, ("training",))) from None


def _train_config_path(value: str | None, base_dir: Path | None) -> Path:
    if value is None:
        return DEFAULT_TRAIN_CONFIG
    path = Path(value)
    if not path.is_absolute() and not path.exists() and base_dir is not None:
        candidate = base_dir / path
        if candidate.exists():
            return candidate
    return path


def load_experiment(path: str | Path) -> ExperimentConfig:
    r"""Read and validate an experiment file; every problem names its key.

    The top level is checked first, then ``params`` against the kind's model, then the
    training overrides and every simulated cohort's site and overrides, so that a typo
    fails in a second instead of after the first model was trained.

    Parameters
    ----------
    path : str or Path
        The experiment YAML file.

    Returns
    -------
    ExperimentConfig
        With ``params`` an instance of the kind's parameter model.

    Raises
    ------
    ConfigError
        Naming the file and the dotted key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.yaml"
    >>> _ = p.write_text("kind: ablations\nexperiment_name: x\nseed: 1\nparams: {trian: {}}\n")
    >>> load_experiment(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flare_ml.errors.ConfigError: invalid configuration in .../x.yaml:
      - params.trian: unknown key (check its spelling)

    """
    path = Path(path)
    data = read_yaml(path)
    source = str(path)
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    params_data = config.params if config.params is not None else {}
    if not isinstance(params_data, dict):
        raise ConfigError(f"invalid configuration in {source}:\n  - params: must be a mapping")
    try:
        params = load_params(config.kind, params_data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, ("params",))) from None
    config = config.model_copy(update={"params": params})
    resolve_train_config(config, source, path.parent)
    for key, spec in _cohorts(params):
        try:
            spec.profile()
        except ConfigError as exc:
            message = str(exc).replace("\n", "\n    ")
            raise ConfigError(f"invalid configuration in {source}:\n  - {key}: {message}") from None
    return config


def _cohorts(params: BaseModel) -> list[tuple[str, CohortSpec]]:
    """Every simulated cohort a params block names, with its dotted key."""
    found: list[tuple[str, CohortSpec]] = []
    for name in type(params).model_fields:
        value = getattr(params, name)
        if isinstance(value, CohortSpec):
            found.append((f"params.{name}", value))
        elif isinstance(value, list):
            found.extend(
                (f"params.{name}.{i}", v) for i, v in enumerate(value) if isinstance(v, CohortSpec)
            )
    if isinstance(params, RobustnessParams):
        for i, cond in enumerate(params.conditions):
            key = f"params.conditions.{i}"
            found.append(
                (f"{key}.train", params.train.with_overrides(cond.train)),
            )
            found.append(
                (
                    f"{key}.external",
                    params.external.with_overrides(cond.external, cond.external_site),
                )
            )
    if isinstance(params, CoverageParams):
        found += [
            (f"params.sites ({site}, replicate {r + 1})", spec)
            for site, r, spec in params.replicate_cohorts()
        ]
        found += [
            (f"params.labelled.sites ({site}, replicate {r + 1})", spec)
            for site, r, spec in params.labelled_cohorts()
        ]
    if isinstance(params, LearningCurveParams):
        pool = max(params.sizes)
        spec = CohortSpec(site=params.train_site, patients=pool, seed=params.train_seed)
        found.append(("params.train_site", spec))
    return found


def canonical_json(data: Any) -> str:
    """Sorted, compact JSON: the text a config digest is computed over.

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [1.5, None]})
    '{"a":[1.5,null],"b":1}'

    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
