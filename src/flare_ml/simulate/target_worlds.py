"""Target worlds: simulated biologies that depart from the literature prior's on purpose.

Evaluating a prior trained on the simulator in the simulator's own nominal world flatters
it, so issue 13 (item 4) asks for worlds where the prior is wrong. They are read from
``configs/prior/target_worlds.yaml`` (seeds fixed there before any result was looked at;
T1-T3 are for evaluation only and never tune anything) and each is an ordinary
:class:`~flare_ml.simulate.config.SiteProfile` and
:class:`~flare_ml.simulate.config.Biology`, so the generator and the Bayes-optimal oracle
follow every change exactly. **T0** is the literature biology. **T1** scales the *effect
size* of each finding by an independent factor ``f = exp(N(0, 0.5^2))`` and shifts the
flare share by ``delta ~ U(-1, 1)`` logit (``logit P(flare | responder)`` of every therapy,
overrides included). The effect size of a finding is how strongly its distribution differs
between the courses that produce an index row (flare, acquired and primary progression;
before the index scan, responders and non-responders), mapped as follows, each scaling
every log odds ratio (or log rate ratio, or mean difference) between two courses by
exactly ``f`` while keeping probabilities valid: Bernoulli findings (progressive lysis,
sclerosis of known lesions, clinical deterioration: ``pre`` by group and ``index`` by
course) and baseline marrow involvement (flare vs other): ``logit p_k -> m + f (logit p_k
- m)``, ``m`` the mean logit over the courses; categorical extraosseous response (``pre``
and ``index`` tables): per category ``log p_k -> m + f (log p_k - m)`` over the courses
where it is positive, then renormalised (zeros stay zero; renormalising adds a constant per
course, which cancels in every odds ratio); new-lesion morphology: the progression
distribution of each cancer type moves relative to the flare distribution, ``log p_prog ->
log p_flare + f (log p_prog - log p_flare)``, renormalised (the flare distribution is
shared by all cancer types, so it is the centre); new bone lesion count: log Poisson means
around their mean; ALP course: ``s1_mean`` and ``s2_mean`` of the three index courses
around their mean (``alp_course``), and the early bounce probability flare vs other on the
logit scale (``alp_bounce``). The timing of events and the therapy-specific flare rates
are not findings and are not scaled (only shifted by ``delta``). **T2** is structural: (a)
an interaction the prior lacks: clinical deterioration at the index scan runs the other
way in one cancer type (bone-pain flare in prostate cancer) through
``PhaseBernoulli.index_by_cancer``, the one simulator extension made for these worlds (the
generator and the oracle read it; empty by default, so the shipped sites simulate
byte-identical cohorts); (b) new-lesion morphology uninformative in one cancer type (its
progression distribution set to the flare distribution); (c) a different morphology
reporting practice: every morphology distribution pushed through a reporting matrix
``P(reported | true)``, which is exactly the distribution such a reader produces. Not
expressed: an interaction between two findings, or a signal (for example ALP) made
uninformative in one cancer type, would need per-cancer ALP courses or joint finding
distributions in the generator and the oracle; T2 uses the forms above instead. **T3**
reverses the prior's two strongest clinical signals by global mean |SHAP| (measured on the
shipped prior and recorded in the config): time since treatment start (flare onset takes
the late timing of acquired progression and acquired progression the early flare timing)
and the ALP course (flare patients' ALP rises, progressing patients' ALP falls, the early
bounce points toward progression). Everything here is simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from flare_ml.config_io import CONFIG_ROOT, StrictModel, load_config, validate_config
from flare_ml.data import contract as c
from flare_ml.simulate.config import (
    LESION_MORPHOLOGIES,
    Biology,
    SiteProfile,
    load_biology,
    load_site,
)

#: the target worlds' configuration (seeds fixed before any result was looked at)
TARGET_WORLDS_PATH = CONFIG_ROOT / "prior" / "target_worlds.yaml"

Kind = Literal["T0", "T1", "T2", "T3"]
KINDS: tuple[str, ...] = ("T0", "T1", "T2", "T3")

#: the findings whose effect size T1 scales, in the order their factors are drawn
T1_FINDINGS: tuple[str, ...] = (
    "extraosseous_response",
    "progressive_lysis",
    "known_lesion_sclerosis",
    "clinical_deterioration",
    "new_bone_lesion_count",
    "new_lesion_morphology",
    "baseline_marrow_involvement",
    "alp_course",
    "alp_bounce",
)
_BERNOULLI = ("progressive_lysis", "known_lesion_sclerosis", "clinical_deterioration")
_INDEX_COURSES = ("flare", "acquired_progression", "primary_progression")

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
_IndexCourse = Literal["flare", "acquired_progression", "primary_progression"]


class _World(StrictModel):
    description: str
    seeds: Annotated[list[int], Field(min_length=1)]


class T1Config(_World):
    log_factor_sd: Annotated[float, Field(gt=0)]
    max_prevalence_shift_logit: Annotated[float, Field(ge=0)]


class Interaction(StrictModel):
    finding: Literal["progressive_lysis", "known_lesion_sclerosis", "clinical_deterioration"]
    cancer: str
    index: dict[str, Probability]

    @model_validator(mode="after")
    def _valid(self) -> Interaction:
        if self.cancer not in c.CANCER_TYPES:
            raise ValueError(f"unknown cancer type {self.cancer!r}")
        if set(self.index) != set(_INDEX_COURSES):
            raise ValueError(f"index needs exactly the courses {list(_INDEX_COURSES)}")
        return self


class T2Config(_World):
    interaction: Interaction
    uninformative_morphology_cancer: str
    reporting: dict[str, dict[str, Probability]]

    @model_validator(mode="after")
    def _valid(self) -> T2Config:
        if self.uninformative_morphology_cancer not in c.CANCER_TYPES:
            raise ValueError(f"unknown cancer type {self.uninformative_morphology_cancer!r}")
        for true in LESION_MORPHOLOGIES:
            row = self.reporting.get(true)
            if row is None or set(row) != set(LESION_MORPHOLOGIES):
                raise ValueError(f"reporting needs a row {true} over {list(LESION_MORPHOLOGIES)}")
            if not math.isclose(sum(row.values()), 1.0, abs_tol=1e-6):
                raise ValueError(f"reporting row {true} must sum to 1")
        return self


class SignalRecord(StrictModel):
    signal: str
    mean_abs_shap: Annotated[float, Field(gt=0)]


class CourseAlpValues(StrictModel):
    s1_mean: float
    s1_sd: Annotated[float, Field(gt=0)]
    s2_mean: float
    s2_sd: Annotated[float, Field(gt=0)]


class T3Config(_World):
    strongest_signals: Annotated[list[SignalRecord], Field(min_length=2, max_length=2)]
    flare_onset_median_months: Annotated[float, Field(gt=0)]
    flare_onset_sigma: Annotated[float, Field(gt=0)]
    acquired_progression_median_months: Annotated[float, Field(gt=0)]
    acquired_progression_sigma: Annotated[float, Field(gt=0)]
    alp_course: dict[
        Literal["flare", "acquired_progression", "primary_progression"], CourseAlpValues
    ]
    bounce_probability: dict[Literal["flare", "other"], Probability]


class TargetWorldsConfig(StrictModel):
    """``configs/prior/target_worlds.yaml``: the site and each kind's seeds and changes."""

    site: str
    T0: _World
    T1: T1Config
    T2: T2Config
    T3: T3Config


@dataclass(frozen=True)
class TargetWorld:
    """One target world: a site profile and a biology, with what was changed and why.

    Examples
    --------
    >>> world = target_world("T0", 31000)
    >>> world.kind, world.changes
    ('T0', {})

    """

    kind: str
    seed: int
    site: SiteProfile
    biology: Biology
    description: str
    changes: dict[str, Any] = field(default_factory=dict)


def load_target_worlds_config(path: str | Path = TARGET_WORLDS_PATH) -> TargetWorldsConfig:
    """Load and validate the target worlds' config.

    Examples
    --------
    >>> load_target_worlds_config().T1.log_factor_sd
    0.5

    """
    return load_config(TargetWorldsConfig, path)


def _expit(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def scale_bernoulli(probs: dict[str, float], factor: float) -> dict[str, float]:
    """Scale every log odds ratio between the entries by ``factor`` (around the mean logit).

    Probabilities of exactly 0 or 1 stay put.

    Examples
    --------
    >>> out = scale_bernoulli({"flare": 0.2, "progression": 0.5}, 2.0)
    >>> lor = float(_logit(out["progression"]) - _logit(out["flare"]))
    >>> round(lor / float(_logit(0.5) - _logit(0.2)), 6)
    2.0

    """
    keys = [k for k, p in probs.items() if 0.0 < p < 1.0]
    if not keys:
        return dict(probs)
    z = _logit(np.array([probs[k] for k in keys]))
    new = _expit(z.mean() + factor * (z - z.mean()))
    return {**probs, **{k: float(v) for k, v in zip(keys, new, strict=True)}}


def scale_categorical(
    dists: dict[str, dict[str, float]], factor: float, centre: str | None = None
) -> dict[str, dict[str, float]]:
    """Scale every log odds ratio between the distributions by ``factor``.

    Per category the log probabilities move around their mean over the distributions where
    the category is positive (or around the distribution ``centre``); zeros stay zero;
    each distribution is then renormalised, which cancels in every odds ratio.

    Examples
    --------
    >>> d = {"a": {"x": 0.8, "y": 0.2}, "b": {"x": 0.4, "y": 0.6}}
    >>> out = scale_categorical(d, 0.0)
    >>> round(out["a"]["x"], 6) == round(out["b"]["x"], 6)
    True

    """
    cats = list(next(iter(dists.values())))
    logs = {k: {x: math.log(p) if p > 0 else None for x, p in d.items()} for k, d in dists.items()}
    out: dict[str, dict[str, float]] = {k: {} for k in dists}
    for x in cats:
        positive = [k for k in dists if logs[k][x] is not None]
        if not positive:
            for k in dists:
                out[k][x] = 0.0
            continue
        if centre is not None and logs[centre][x] is not None:
            m = logs[centre][x]
        else:
            m = float(np.mean([logs[k][x] for k in positive]))
        for k in dists:
            lp = logs[k][x]
            out[k][x] = 0.0 if lp is None else math.exp(m + factor * (lp - m))
    for k, d in out.items():
        total = sum(d.values())
        out[k] = {x: v / total for x, v in d.items()}
    return out


def _scale_t1(tree: dict[str, Any], factors: dict[str, float]) -> None:
    """Apply T1's effect-size factors to a dumped biology, in place."""
    fnd = tree["findings"]
    f = factors["extraosseous_response"]
    block = fnd["extraosseous_response"]
    block["pre"] = scale_categorical(block["pre"], f)
    block["index"] = scale_categorical(block["index"], f)
    for name in _BERNOULLI:
        block = fnd[name]
        block["pre"] = scale_bernoulli(block["pre"], factors[name])
        block["index"] = scale_bernoulli(block["index"], factors[name])
    means = fnd["new_bone_lesion_count_extra_poisson_mean"]
    logs = np.log([means[k] for k in _INDEX_COURSES])
    new = np.exp(logs.mean() + factors["new_bone_lesion_count"] * (logs - logs.mean()))
    means.update({k: float(v) for k, v in zip(_INDEX_COURSES, new, strict=True)})
    morph = fnd["morphology"]
    for cancer, dist in morph["progression"].items():
        pair = scale_categorical(
            {"flare": morph["flare"], "progression": dist},
            factors["new_lesion_morphology"],
            centre="flare",
        )
        morph["progression"][cancer] = pair["progression"]
    marrow = fnd["baseline_marrow_involvement"]
    marrow.update(
        scale_bernoulli(
            {"flare": marrow["flare"], "other": marrow["other"]},
            factors["baseline_marrow_involvement"],
        )
    )
    course = tree["alp"]["course"]
    for key in ("s1_mean", "s2_mean"):
        vals = np.array([course[k][key] for k in _INDEX_COURSES])
        new = vals.mean() + factors["alp_course"] * (vals - vals.mean())
        for k, v in zip(_INDEX_COURSES, new, strict=True):
            course[k][key] = float(v)
    bounce = tree["alp"]["bounce_probability"]
    pair = {"flare": bounce["flare"], "other": bounce["other"]}
    bounce.update(scale_bernoulli(pair, factors["alp_bounce"]))


def _shift_prevalence(tree: dict[str, Any], delta: float) -> None:
    block = tree["flare_probability_given_response"]
    shift = lambda p: float(_expit(_logit(p) + delta)) if 0.0 < p < 1.0 else p  # noqa: E731
    block["values"] = {k: shift(p) for k, p in block["values"].items()}
    block["overrides"] = {
        ca: {k: shift(p) for k, p in table.items()} for ca, table in block["overrides"].items()
    }


def _t1(tree: dict[str, Any], cfg: T1Config, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    log_factors = cfg.log_factor_sd * rng.standard_normal(len(T1_FINDINGS))
    delta = float(rng.uniform(-cfg.max_prevalence_shift_logit, cfg.max_prevalence_shift_logit))
    factors = {k: float(math.exp(v)) for k, v in zip(T1_FINDINGS, log_factors, strict=True)}
    _scale_t1(tree, factors)
    _shift_prevalence(tree, delta)
    return {"effect_size_factor": factors, "prevalence_shift_logit": delta}


def _t2(tree: dict[str, Any], cfg: T2Config) -> dict[str, Any]:
    fnd = tree["findings"]
    inter = cfg.interaction
    fnd[inter.finding]["index_by_cancer"] = {inter.cancer: dict(inter.index)}
    morph = fnd["morphology"]
    morph["progression"][cfg.uninformative_morphology_cancer] = dict(morph["flare"])
    matrix = np.array(
        [[cfg.reporting[t][r] for r in LESION_MORPHOLOGIES] for t in LESION_MORPHOLOGIES]
    )

    def report(dist: dict[str, float]) -> dict[str, float]:
        reported = np.array([dist[m] for m in LESION_MORPHOLOGIES]) @ matrix
        return {m: float(v) for m, v in zip(LESION_MORPHOLOGIES, reported, strict=True)}

    morph["flare"] = report(morph["flare"])
    morph["progression"] = {ca: report(d) for ca, d in morph["progression"].items()}
    eq = fnd["equivocal_presentation"]
    eq["morphology"] = report(eq["morphology"])
    return {
        "interaction": {
            "finding": inter.finding,
            "cancer": inter.cancer,
            "index": dict(inter.index),
        },
        "uninformative_morphology_cancer": cfg.uninformative_morphology_cancer,
        "morphology_reporting": {t: dict(row) for t, row in cfg.reporting.items()},
    }


def _t3(tree: dict[str, Any], cfg: T3Config) -> dict[str, Any]:
    tm = tree["timing_months"]
    flare = tm["flare"]
    flare["median_by_cancer"] = {
        k: cfg.flare_onset_median_months for k in flare["median_by_cancer"]
    }
    flare["median_overrides_by_therapy"] = {}
    flare["sigma"] = cfg.flare_onset_sigma
    tm["acquired_progression"]["median"] = cfg.acquired_progression_median_months
    tm["acquired_progression"]["sigma"] = cfg.acquired_progression_sigma
    for name, values in cfg.alp_course.items():
        tree["alp"]["course"][name].update(values.model_dump())
    tree["alp"]["bounce_probability"].update(cfg.bounce_probability)
    return {
        "reversed_signals": [s.model_dump() for s in cfg.strongest_signals],
        "flare_onset_median_months": cfg.flare_onset_median_months,
        "acquired_progression_median_months": cfg.acquired_progression_median_months,
        "alp_course": {k: v.model_dump() for k, v in cfg.alp_course.items()},
        "bounce_probability": dict(cfg.bounce_probability),
    }


def target_world(kind: str, seed: int, config: TargetWorldsConfig | None = None) -> TargetWorld:
    """Build one target world of a kind from a seed.

    Parameters
    ----------
    kind : {"T0", "T1", "T2", "T3"}
        The kind of departure from the literature biology (module docstring).
    seed : int
        The world's seed (T1 draws its factors and shift from it; T0, T2 and T3 are fixed
        worlds and only record it). Use the config's seeds for evaluation.
    config : TargetWorldsConfig, optional
        By default ``configs/prior/target_worlds.yaml``.

    Returns
    -------
    TargetWorld
        Site, validated biology, description and the changes made (for reporting).

    Examples
    --------
    >>> w = target_world("T1", 31100)
    >>> sorted(w.changes)
    ['effect_size_factor', 'prevalence_shift_logit']
    >>> w == target_world("T1", 31100)
    True

    """
    if kind not in KINDS:
        raise ValueError(f"unknown target world kind {kind!r}; choose from {list(KINDS)}")
    config = config or load_target_worlds_config()
    base = load_biology()
    tree = base.model_dump(mode="python")
    block = getattr(config, kind)
    if kind == "T1":
        changes = _t1(tree, config.T1, seed)
    elif kind == "T2":
        changes = _t2(tree, config.T2)
    elif kind == "T3":
        changes = _t3(tree, config.T3)
    else:
        changes = {}
    biology = validate_config(Biology, tree, f"target world {kind} seed {seed}")
    site = load_site(config.site)
    site = site.model_copy(update={"name": f"{config.site}-{kind}-{seed}"})
    return TargetWorld(
        kind=kind,
        seed=int(seed),
        site=site,
        biology=biology,
        description=" ".join(block.description.split()),
        changes=changes,
    )


def target_worlds(kind: str, config: TargetWorldsConfig | None = None) -> list[TargetWorld]:
    """The target worlds of a kind, one per seed fixed in the config.

    Examples
    --------
    >>> [w.seed for w in target_worlds("T3")]
    [31300]

    """
    config = config or load_target_worlds_config()
    if kind not in KINDS:
        raise ValueError(f"unknown target world kind {kind!r}; choose from {list(KINDS)}")
    return [target_world(kind, s, config) for s in getattr(config, kind).seeds]


__all__ = [
    "KINDS",
    "T1_FINDINGS",
    "TARGET_WORLDS_PATH",
    "TargetWorld",
    "TargetWorldsConfig",
    "load_target_worlds_config",
    "scale_bernoulli",
    "scale_categorical",
    "target_world",
    "target_worlds",
]
