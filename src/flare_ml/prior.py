"""Build and measure the literature prior: one model trained on many randomised simulated sites.

A site has 50-300 labelled patients; the simulator encodes the published literature. The
prior is an ordinary flare-ml model (:class:`~flare_ml.bundle.FlareModelBundle`) trained
on a large population pooled over many randomised worlds
(:mod:`flare_ml.simulate.worlds`: a random site profile and a random biology each), with
the training machinery of :mod:`flare_ml.training` and the shipped decision policy. Its
class-conditional conformal thresholds are calibrated **across sites**: out-of-fold
predictions come from leave-sites-out folds (each site scored by a model that never saw
that site or its biology), each held-out site gets its own conformal threshold per class,
and the prior takes a high quantile of those per-site thresholds, so that the per-class
coverage holds at most sites rather than on average. The config is
``configs/prior/default.yaml``; its digest (with the biology, base site and training
configs it uses) and the software versions are recorded in the bundle's metadata, and the
built prior ships in ``flare_ml/priors/literature``. Everything it learns comes from
literature-encoded simulation, not from patients (docs/prior.md).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from sklearn.base import clone

from flare_ml import __version__
from flare_ml.bundle import FlareModelBundle
from flare_ml.config_io import CONFIG_ROOT, StrictModel, load_config
from flare_ml.decision_policy import ErrorBudget
from flare_ml.evaluation import DecisionTable, decision_table
from flare_ml.features import TimepointFeaturizer
from flare_ml.model_selection import grouped_folds
from flare_ml.progress import Progress, no_progress
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.config import BIOLOGY_PATH, load_biology, load_site
from flare_ml.simulate.worlds import PRIOR_CONFIG_PATH, WorldRanges, random_world
from flare_ml.train_config import ModelConfig, TrainConfig, load_train_config
from flare_ml.training import (
    PreparedCohort,
    bundle_from_model,
    make_featurizer,
    make_model,
    prepare_cohort,
)
from flare_ml.uncertainty import BUDGET_GRID, FLARE, PROGRESSION, ClassConditionalConformal

#: where the built prior ships inside the package (package data)
PRIOR_DIR = Path(__file__).resolve().parent / "priors" / "literature"

#: how the prior's conformal thresholds are calibrated (recorded in its metadata)
ACROSS_SITES = "across sites (leave-sites-out out-of-fold; quantile of per-site thresholds)"


class PriorBuildConfig(StrictModel):
    """How many worlds, how large, their seeds, and the across-sites calibration."""

    sites: Annotated[int, Field(ge=2)] = 100
    patients_per_site: Annotated[int, Field(ge=50)] = 500
    seed: int = 1000
    site_folds: Annotated[int, Field(ge=2)] = 5
    site_quantile: Annotated[float, Field(ge=0.5, le=1.0)] = 0.9


class PriorMeasureConfig(StrictModel):
    """Where the prior is measured (seeds never used in the build)."""

    shipped_sites: list[str] = ["default", "community", "nordic", "thoracic"]
    shipped_patients: Annotated[int, Field(ge=50)] = 2000
    shipped_seed: int = 90000
    random_sites: Annotated[int, Field(ge=1)] = 24
    random_seed: int = 50000
    random_patients: Annotated[int, Field(ge=50)] = 2000


class PriorConfig(StrictModel):
    """The literature prior's configuration (``configs/prior/default.yaml``).

    Examples
    --------
    >>> cfg = load_prior_config()
    >>> cfg.build.sites * cfg.build.patients_per_site >= 50_000
    True

    """

    description: str = ""
    train_config: str = "default"
    build: PriorBuildConfig = PriorBuildConfig()
    model: ModelConfig = ModelConfig()
    measure: PriorMeasureConfig = PriorMeasureConfig()
    worlds: WorldRanges

    @model_validator(mode="after")
    def _disjoint_seeds(self) -> PriorConfig:
        build = set(range(self.build.seed, self.build.seed + self.build.sites))
        measure = set(
            range(self.measure.random_seed, self.measure.random_seed + self.measure.random_sites)
        )
        if build & measure:
            raise ValueError("measure.random_seed: the measured worlds must not reuse build seeds")
        return self


def load_prior_config(path: str | Path | None = None) -> PriorConfig:
    """Load and validate a prior config (the shipped one by default).

    Examples
    --------
    >>> load_prior_config().build.site_folds
    5

    """
    return load_config(PriorConfig, path or PRIOR_CONFIG_PATH)


def _train_config(config: PriorConfig) -> TrainConfig:
    """The training config whose featurizer and decision policy the prior uses."""
    name = config.train_config
    path = name if name.endswith((".yaml", ".yml")) else CONFIG_ROOT / "train" / f"{name}.yaml"
    base = load_train_config(path)
    return base.model_copy(update={"model": config.model, "seed": config.build.seed})


def prior_digest(config: PriorConfig | None = None, config_path: str | Path | None = None) -> str:
    """SHA-256 of everything the prior is built from: its config and the configs it reads.

    The digest covers the validated prior config, the literature biology
    (``configs/simulation/biology/literature.yaml``), the base site profile of the
    randomised sites, and the featurizer settings and decision policy of the training
    config. It is recorded in the shipped prior's metadata; a test compares the two so
    that a config changed without ``flare-ml prior build`` fails.

    Examples
    --------
    >>> len(prior_digest())
    64

    """
    config = config or load_prior_config(config_path)
    train = _train_config(config)
    parts = {
        "prior": config.model_dump(mode="json"),
        "biology": load_biology(BIOLOGY_PATH).model_dump(mode="json"),
        "base_site": load_site(config.worlds.site.base).model_dump(mode="json"),
        "features": train.features.model_dump(mode="json"),
        "decision_policy": train.decision_policy.model_dump(mode="json"),
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the prior.

    Examples
    --------
    >>> "xgboost" in software_versions()
    True

    """
    import sklearn
    import xgboost

    return {
        "flare_ml": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit_learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
    }


def world_cohort(
    seed: int,
    patients: int,
    featurizer: TimepointFeaturizer,
    ranges: WorldRanges | None = None,
) -> PreparedCohort:
    """Simulate and featurize one randomised world (its own site profile and biology).

    Examples
    --------
    >>> from flare_ml.features import TimepointFeaturizer
    >>> cohort = world_cohort(7, 80, TimepointFeaturizer())
    >>> cohort.label
    'simulated random world 7 (80 patients)'

    """
    site, biology = random_world(seed, ranges)
    sim = simulate_cohort(patients, site=site, seed=seed, biology=biology)
    label = f"simulated random world {seed} ({patients} patients)"
    return prepare_cohort(sim.timepoints, featurizer, label, sim.oracle)


def _site_thresholds(scores: np.ndarray, sites: np.ndarray, coverage: float) -> np.ndarray:
    """Each site's own split-conformal threshold of one class (inf when too few cases)."""
    from flare_ml.uncertainty import _conformal_quantile

    return np.array([_conformal_quantile(scores[sites == s], coverage) for s in np.unique(sites)])


def across_sites_conformal(
    p_flare: np.ndarray,
    y: np.ndarray,
    sites: np.ndarray,
    budget: ErrorBudget,
    site_quantile: float = 0.9,
) -> ClassConditionalConformal:
    """Class-conditional conformal thresholds that hold at most sites, not on average.

    For each class and each error budget of the grid, every site gets its own conformal
    threshold from its held-out predictions; the predictor takes the ``site_quantile``
    quantile of those per-site thresholds (higher quantile: more sites covered, more
    ``uncertain`` decisions). A pooled quantile would hold on average over sites, and
    fall short at the sites unlike the average.

    Parameters
    ----------
    p_flare : ndarray
        Out-of-fold P(flare), each from a model that never saw the row's site.
    y : ndarray
        1 = flare, 0 = progression.
    sites : ndarray
        Site of each row.
    budget : ErrorBudget
        The decision policy's error budget (per-class coverage).
    site_quantile : float, default 0.9
        Quantile over sites of the per-site thresholds.

    Returns
    -------
    ClassConditionalConformal
        A fitted predictor (its grid serves ``with_budget``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sites = np.repeat(np.arange(20), 200)
    >>> shift = rng.normal(0, 0.1, 20)[sites]
    >>> y = (rng.uniform(size=4000) < 0.5).astype(int)
    >>> p = np.clip(0.5 + (2 * y - 1) * 0.2 + shift + rng.normal(0, 0.15, 4000), 0, 1)
    >>> budget = ErrorBudget(0.05, 0.1)
    >>> pooled = ClassConditionalConformal.from_budget(budget).fit(p, y)
    >>> across = across_sites_conformal(p, y, sites, budget)
    >>> bool(across.thresholds_["flare"] > pooled.thresholds_["flare"])
    True

    """
    p = np.asarray(p_flare, dtype=float)
    y = np.asarray(y, dtype=int)
    sites = np.asarray(sites)
    scores = {FLARE: 1.0 - p[y == 1], PROGRESSION: p[y == 0]}
    where = {FLARE: sites[y == 1], PROGRESSION: sites[y == 0]}

    def threshold(cls_name: str, coverage: float) -> float:
        per_site = _site_thresholds(scores[cls_name], where[cls_name], coverage)
        finite = per_site[np.isfinite(per_site)]
        if len(finite) < len(per_site) / 2:  # most sites too small for this coverage
            return float("inf")
        return float(np.quantile(per_site, site_quantile, method="higher"))

    conformal = ClassConditionalConformal.from_budget(budget)
    coverage = conformal.class_coverage
    conformal.thresholds_ = {k: threshold(k, coverage[k]) for k in (FLARE, PROGRESSION)}
    conformal.n_calibration_ = {FLARE: int((y == 1).sum()), PROGRESSION: int((y == 0).sum())}
    conformal.grid_thresholds_ = {
        k: [threshold(k, 1.0 - a) for a in BUDGET_GRID] for k in (FLARE, PROGRESSION)
    }
    return conformal


@dataclass
class PriorBuild:
    """The built prior and how it was built."""

    bundle: FlareModelBundle
    seconds: float
    n_patients: int
    n_index_rows: int
    n_flare: int
    steps: dict[str, float] = field(default_factory=dict)


def build_prior(config: PriorConfig | None = None, progress: Progress = no_progress) -> PriorBuild:
    """Train the literature prior on the config's randomised worlds.

    Steps: simulate ``build.sites`` worlds (world ``i`` from seed ``build.seed + i``, its
    own site profile and biology, ``build.patients_per_site`` patients); pool them; get
    leave-sites-out out-of-fold P(flare) (``build.site_folds`` folds grouped by site, the
    model's own tuning and calibration inside each training fold, grouped by patient);
    calibrate the conformal thresholds across sites (:func:`across_sites_conformal`);
    fit the final model on all worlds.

    Examples
    --------
    >>> cfg = load_prior_config()
    >>> small = cfg.model_copy(update={
    ...     "build": cfg.build.model_copy(update={"sites": 4, "patients_per_site": 120,
    ...                                           "site_folds": 2}),
    ...     "model": cfg.model.model_copy(update={"n_candidates": 1, "n_estimators_max": 20})})
    >>> built = build_prior(small)
    >>> built.n_patients, built.bundle.metadata["prior"]["sites"]
    (480, 4)

    """
    config = config or load_prior_config()
    train = _train_config(config)
    build = config.build
    started = time.perf_counter()
    featurizer = make_featurizer(train)
    cohorts = []
    for i in range(build.sites):
        progress("simulate random sites", i, build.sites)
        cohorts.append(
            world_cohort(build.seed + i, build.patients_per_site, featurizer, config.worlds)
        )
    progress("simulate random sites", build.sites, build.sites)
    features = pd.concat([co.features for co in cohorts])
    y = np.concatenate([co.y for co in cohorts if co.y is not None])
    patients = np.concatenate([co.patient_ids for co in cohorts])
    sites = np.concatenate(
        [np.full(len(co.y), i) for i, co in enumerate(cohorts) if co.y is not None]
    )
    featurizer.fit(cohorts[0].timepoints)
    simulated = time.perf_counter()

    model = make_model(train)
    folds = grouped_folds(y, sites, build.site_folds, build.seed)
    oof = np.full(len(y), np.nan)
    for k, (fit_rows, held_out) in enumerate(folds):
        progress("leave-sites-out models", k, len(folds))
        fitted = clone(model).fit(features.iloc[fit_rows], y[fit_rows], groups=patients[fit_rows])
        oof[held_out] = fitted.predict_proba(features.iloc[held_out])[:, 1]
    progress("leave-sites-out models", len(folds), len(folds))
    out_of_fold = time.perf_counter()

    progress("final model", 0, 1)
    budget = train.decision_policy.budget()
    conformal = across_sites_conformal(oof, y, sites, budget, build.site_quantile)
    pooled = ClassConditionalConformal.from_budget(budget).fit(oof, y)
    model.fit(features, y, groups=patients)
    progress("final model", 1, 1)
    seconds = time.perf_counter() - started
    n_patients = build.sites * build.patients_per_site
    label = (
        f"simulated literature prior: {build.sites} randomised sites x "
        f"{build.patients_per_site} patients (world seeds {build.seed}-"
        f"{build.seed + build.sites - 1})"
    )
    metadata = {
        "training_label": f"training: {label}",
        "training": {
            "n_patients": n_patients,
            "n_index_rows": len(y),
            "n_flare": int(y.sum()),
            "n_progression": int((y == 0).sum()),
        },
        "config_digest": prior_digest(config),
        "prior": {
            "config": "configs/prior/default.yaml",
            "sites": build.sites,
            "patients_per_site": build.patients_per_site,
            "world_seeds": [build.seed, build.seed + build.sites - 1],
            "site_folds": build.site_folds,
            "site_quantile": build.site_quantile,
            # what one pooled calibration would have given (for comparison only)
            "pooled_thresholds": pooled.thresholds_,
            "best_params": model.best_params_,
            "calibration": model.calibration_,
            "build_seconds": round(seconds, 1),
            "data": "literature-encoded simulation, not patients",
        },
        "conformal_calibration": ACROSS_SITES,
        "conformal_calibration_rows": len(y),
        "software": software_versions(),
    }
    bundle = bundle_from_model(
        model,
        featurizer,
        conformal.flare_threshold(),
        conformal,
        train.uncertainty.top_reasons,
        metadata,
    )
    return PriorBuild(
        bundle=bundle,
        seconds=seconds,
        n_patients=n_patients,
        n_index_rows=len(y),
        n_flare=int(y.sum()),
        steps={
            "simulate": simulated - started,
            "out_of_fold": out_of_fold - simulated,
            "final": time.perf_counter() - out_of_fold,
        },
    )


def folder_size_kb(folder: str | Path) -> float:
    """Total size of the files in a folder, in KB.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a").write_bytes(b"x" * 2048)
    >>> folder_size_kb(d)
    2.0

    """
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1024


def load_prior() -> FlareModelBundle:
    """The literature prior shipped in the package.

    Examples
    --------
    >>> load_prior().metadata["config_digest"] == prior_digest()
    True

    """
    return FlareModelBundle.load(PRIOR_DIR)


@dataclass
class SiteMeasurement:
    """Per-class coverage, uncertain share and decisions of a model at one site."""

    site: str
    kind: str
    n_index_rows: int
    n_flare: int
    coverage_flare: float
    coverage_progression: float
    uncertain_fraction: float
    table: DecisionTable
    pooled: dict[str, float] = field(default_factory=dict)

    def meets(self, target: float = 0.88) -> bool:
        """Whether both classes reach ``target`` coverage."""
        return min(self.coverage_flare, self.coverage_progression) >= target


def measure_at(bundle: FlareModelBundle, cohort: PreparedCohort, kind: str) -> SiteMeasurement:
    """Score a labelled cohort with a bundle and measure its per-class coverage and decisions.

    When the bundle records the thresholds one pooled calibration would have given
    (``metadata["prior"]["pooled_thresholds"]``), their coverage is measured too
    (:attr:`SiteMeasurement.pooled`), for comparison only.
    """
    from flare_ml.uncertainty import coverage_report

    assert cohort.y is not None and bundle.conformal is not None
    p = bundle.proba_from_features(cohort.features)
    sets = bundle.conformal.predict_sets(p)
    report = coverage_report(sets, cohort.y)
    decisions = bundle.decide(p)[0]
    pooled: dict[str, float] = {}
    recorded = bundle.metadata.get("prior", {}).get("pooled_thresholds")
    if recorded:
        alternative = ClassConditionalConformal(bundle.conformal.coverage)
        alternative.thresholds_ = {k: float(v) for k, v in recorded.items()}
        pooled = coverage_report(alternative.predict_sets(p), cohort.y)
    return SiteMeasurement(
        site=cohort.label,
        kind=kind,
        n_index_rows=len(cohort.y),
        n_flare=int(cohort.y.sum()),
        coverage_flare=report["coverage_flare"],
        coverage_progression=report["coverage_progression"],
        uncertain_fraction=report["uncertain_fraction"],
        table=decision_table(cohort.y, decisions, bundle.budget, cohort=cohort.label),
        pooled=pooled,
    )


def measure_prior(
    bundle: FlareModelBundle | None = None,
    config: PriorConfig | None = None,
    progress: Progress = no_progress,
) -> list[SiteMeasurement]:
    """Measure a prior at the shipped site profiles and at fresh randomised worlds.

    The shipped sites use the nominal literature biology; the random worlds use seeds
    ``measure.random_seed + j``, never used in the build (the config refuses overlap).

    Examples
    --------
    >>> cfg = load_prior_config()
    >>> few = cfg.model_copy(update={"measure": cfg.measure.model_copy(update={
    ...     "shipped_sites": ["nordic"], "shipped_patients": 200, "random_sites": 1,
    ...     "random_patients": 200})})
    >>> [m.kind for m in measure_prior(config=few)]
    ['shipped', 'random']

    """
    bundle = bundle or load_prior()
    config = config or load_prior_config()
    m = config.measure
    featurizer = bundle.featurizer
    results = []
    total = len(m.shipped_sites) + m.random_sites
    for i, site in enumerate(m.shipped_sites):
        progress("measure sites", i, total)
        sim = simulate_cohort(m.shipped_patients, site=site, seed=m.shipped_seed + i)
        label = f"simulated site {site} ({m.shipped_patients} patients, seed {m.shipped_seed + i})"
        cohort = prepare_cohort(sim.timepoints, featurizer, label, sim.oracle)
        results.append(measure_at(bundle, cohort, "shipped"))
    for j in range(m.random_sites):
        progress("measure sites", len(m.shipped_sites) + j, total)
        cohort = world_cohort(m.random_seed + j, m.random_patients, featurizer, config.worlds)
        results.append(measure_at(bundle, cohort, "random"))
    progress("measure sites", total, total)
    return results


def measurement_frame(results: list[SiteMeasurement], target: float = 0.88) -> pd.DataFrame:
    """One row per measured site: counts, per-class coverage, uncertain share, decisions.

    Examples
    --------
    >>> cfg = load_prior_config()
    >>> one = cfg.model_copy(update={"measure": cfg.measure.model_copy(update={
    ...     "shipped_sites": ["default"], "shipped_patients": 200, "random_sites": 1,
    ...     "random_patients": 200})})
    >>> list(measurement_frame(measure_prior(config=one)).columns)[:3]
    ['site', 'kind', 'index rows']

    """
    rows = []
    for r in results:
        counts = r.table.counts
        n_progression = r.n_index_rows - r.n_flare
        row = {
            "site": r.site,
            "kind": r.kind,
            "index rows": r.n_index_rows,
            "flares": r.n_flare,
            "coverage flare": round(r.coverage_flare, 3),
            "coverage progression": round(r.coverage_progression, 3),
            "uncertain": round(r.uncertain_fraction, 3),
            "progressions called flare": round(
                int(counts.loc["flare", PROGRESSION]) / max(n_progression, 1), 3
            ),
            "flares called progression": round(
                int(counts.loc["progression", FLARE]) / max(r.n_flare, 1), 3
            ),
            f"both >= {target}": r.meets(target),
        }
        if r.pooled:
            row.update(
                {
                    "pooled coverage flare": round(r.pooled["coverage_flare"], 3),
                    "pooled coverage progression": round(r.pooled["coverage_progression"], 3),
                    "pooled uncertain": round(r.pooled["uncertain_fraction"], 3),
                    f"pooled both >= {target}": min(
                        r.pooled["coverage_flare"], r.pooled["coverage_progression"]
                    )
                    >= target,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def measurement_summary(frame: pd.DataFrame, target: float = 0.88) -> pd.DataFrame:
    """Per site type: sites, share reaching ``target`` on both classes, worst and median.

    Examples
    --------
    >>> frame = pd.DataFrame({"kind": ["random", "random"], "coverage flare": [0.9, 0.8],
    ...                       "coverage progression": [0.95, 0.97], "uncertain": [0.3, 0.4],
    ...                       "progressions called flare": [0.02, 0.03],
    ...                       "flares called progression": [0.05, 0.1]})
    >>> float(measurement_summary(frame).loc["random", "share of sites both >= 0.88"])
    0.5

    """
    prefixes = [""] + (["pooled "] if "pooled coverage flare" in frame else [])
    rows = {}
    for kind, group in [*frame.groupby("kind", sort=False), ("all", frame)]:
        row: dict[str, float] = {"sites": len(group)}
        for pre in prefixes:
            flare, prog = group[f"{pre}coverage flare"], group[f"{pre}coverage progression"]
            row[f"{pre}share of sites both >= {target}"] = float(
                (np.minimum(flare, prog) >= target).mean()
            )
            row[f"{pre}min coverage flare"] = float(flare.min())
            row[f"{pre}min coverage progression"] = float(prog.min())
            row[f"{pre}median uncertain"] = float(group[f"{pre}uncertain"].median())
        for name in ("progressions called flare", "flares called progression"):
            row[f"median {name}"] = float(group[name].median())
        rows[kind] = row
    return pd.DataFrame(rows).T


__all__ = [
    "ACROSS_SITES",
    "PRIOR_DIR",
    "PriorBuild",
    "PriorConfig",
    "SiteMeasurement",
    "across_sites_conformal",
    "build_prior",
    "folder_size_kb",
    "load_prior",
    "load_prior_config",
    "measure_at",
    "measure_prior",
    "measurement_frame",
    "measurement_summary",
    "prior_digest",
    "software_versions",
    "world_cohort",
]
