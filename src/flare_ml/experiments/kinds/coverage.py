"""``kind: coverage``: conformal coverage across sites, transported vs site-calibrated.

The model's class-conditional conformal thresholds are calibrated on out-of-fold
predictions of the training patients, so their per-class coverage is guaranteed only for
patients exchangeable with those. This kind measures what happens elsewhere: one model is
trained with the shipped training config, and on replicate cohorts of every simulated site

- the **transported** thresholds (the model's own) and **site-calibrated** thresholds
  (:func:`flare_ml.uncertainty.cross_fitted_sets`: calibrated on the site's other labelled
  patients, patient-grouped folds, what :func:`flare_ml.site_calibration.calibrate_to_site`
  delivers) are scored per class, against the recorded outcome and against the
  simulator's noise-free outcome, with the share of ``uncertain`` decisions;
- the site's label noise (profile value and the realized share of recorded labels that
  differ from the truth) is reported next to them;
- a domain classifier measures how separable the site's index rows are from the training
  rows, and what the implied importance weights would do to covariate-shift-weighted
  conformal prediction (why it is not used);
- and, for some sites, thresholds are calibrated on ``n`` randomly chosen labelled
  patients and evaluated on the remaining ones: how many labelled patients a site needs.

This module computes the numbers (:class:`CoverageResult`); the tables are written by
:mod:`flare_ml.experiments.render.coverage`. Every cohort is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from flare_ml.errors import FlareMLError
from flare_ml.experiments.config import CohortSpec, CoverageParams
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import ConditionRecord, KindResult
from flare_ml.experiments.readout import mean_sd
from flare_ml.experiments.registry import register
from flare_ml.model_selection import grouped_folds
from flare_ml.train_config import DecisionPolicyConfig
from flare_ml.uncertainty import (
    FLARE,
    PROGRESSION,
    ClassConditionalConformal,
    coverage_report,
    cross_fitted_sets,
    min_calibration_cases,
)

#: importance-weight probabilities are clipped to [CLIP, 1 - CLIP]
CLIP = 1e-3
CLASSES = (FLARE, PROGRESSION)


# --- measurements ------------------------------------------------------------------------


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of non-negative weights.

    Examples
    --------
    >>> effective_sample_size(np.ones(10))
    10.0
    >>> effective_sample_size(np.array([1.0, 0.0, 0.0, 0.0]))
    1.0

    """
    w = np.asarray(weights, dtype=float)
    total_sq = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / total_sq) if total_sq > 0 else float("nan")


@dataclass
class DomainShift:
    """How separable a site's index rows are from the training rows.

    Attributes
    ----------
    auroc : float
        Cross-validated AUROC of a classifier telling site rows (1) from training rows (0).
    ess : float
        Effective sample size of the importance weights ``P(site|x) / P(train|x)`` on the
        training rows (probabilities clipped to ``[CLIP, 1 - CLIP]``).
    n_reference : int
        Training rows.
    floor_share : float
        Share of training rows whose P(site|x) is at or below the clip: their weights
        are all equal to the floor, so a large ESS then means no overlap, not a good one.
    trivial_share : float
        Share of site rows whose own weight exceeds ``1 - coverage`` of the total
        (training rows plus itself): for those, weighted split-conformal prediction
        (Tibshirani et al. 2019) has an infinite threshold, so both classes are in the set.

    """

    auroc: float
    ess: float
    n_reference: int
    floor_share: float
    trivial_share: float


def domain_shift(
    reference: np.ndarray,
    site: np.ndarray,
    reference_groups: np.ndarray,
    site_groups: np.ndarray,
    coverage: float,
    n_folds: int = 5,
    seed: int = 0,
) -> DomainShift:
    """Cross-validated domain classifier between training rows and a site's rows.

    A :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (one thread, missing
    values handled natively) is fitted in patient-grouped folds; every row gets an
    out-of-fold P(site).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> same = domain_shift(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)),
    ...                     np.arange(300), np.arange(300), coverage=0.9)
    >>> bool(same.auroc < 0.6 and same.trivial_share == 0.0)
    True
    >>> apart = domain_shift(rng.normal(size=(300, 3)), rng.normal(5, 1, size=(300, 3)),
    ...                      np.arange(300), np.arange(300), coverage=0.9)
    >>> bool(apart.auroc > 0.99 and apart.trivial_share > 0.9)
    True

    """
    X = np.vstack([np.asarray(reference, dtype=float), np.asarray(site, dtype=float)])
    d = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(site), dtype=int)]
    groups = np.r_[
        np.char.add("training:", np.asarray(reference_groups).astype(str)),
        np.char.add("site:", np.asarray(site_groups).astype(str)),
    ]
    p = np.full(len(d), np.nan)
    # one OpenMP thread: as fast on a few thousand rows and immune to a busy machine
    with threadpool_limits(1):
        for fit_rows, held_out in grouped_folds(d, groups, n_folds, seed):
            clf = HistGradientBoostingClassifier(random_state=seed).fit(X[fit_rows], d[fit_rows])
            p[held_out] = clf.predict_proba(X[held_out])[:, 1]
    clipped = np.clip(p, CLIP, 1.0 - CLIP)
    w = clipped / (1.0 - clipped)
    w_ref, w_site = w[d == 0], w[d == 1]
    return DomainShift(
        auroc=float(roc_auc_score(d, p)),
        ess=effective_sample_size(w_ref),
        n_reference=len(w_ref),
        floor_share=float(np.mean(p[d == 0] <= CLIP)),
        trivial_share=float(np.mean(w_site / (w_ref.sum() + w_site) > 1.0 - coverage)),
    )


def calibration_rows(patient_ids: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """Rows of the first ``n`` patients of ``order``: the calibration side of a split.

    Whole patients go to one side: the other rows (``~mask``) are the evaluation side.

    Examples
    --------
    >>> ids = np.array(["a", "a", "b", "c", "c", "c"])
    >>> calibration_rows(ids, np.array(["c", "a", "b"]), 1).tolist()
    [False, False, False, True, True, True]

    """
    return np.isin(np.asarray(patient_ids), np.asarray(order)[:n])


def site_coverage(
    conformal: ClassConditionalConformal,
    p_flare: np.ndarray,
    y: np.ndarray,
    true_y: np.ndarray,
    patient_ids: np.ndarray,
    n_folds: int,
    seed: int,
) -> dict[str, float]:
    """Transported and site-calibrated (cross-fitted) coverage on one site cohort.

    Keys: ``{transported,site}.{recorded,true}.{coverage,coverage_flare,
    coverage_progression}``, ``{transported,site}.uncertain_fraction``, ``label_flip_share``
    (recorded outcome differs from the truth), ``index_rows`` and ``flares`` (recorded).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < p).astype(int)
    >>> cp = ClassConditionalConformal(0.9).fit(p, y)
    >>> out = site_coverage(cp, p, y, y, np.arange(1000), 5, 0)
    >>> out["label_flip_share"], out["index_rows"]
    (0.0, 1000.0)

    """
    y = np.asarray(y, dtype=int)
    true_y = np.asarray(true_y, dtype=int)
    sets = {
        "transported": conformal.predict_sets(p_flare),
        "site": cross_fitted_sets(p_flare, y, patient_ids, conformal.class_coverage, n_folds, seed),
    }
    out: dict[str, float] = {}
    for name, s in sets.items():
        for truth_name, truth in (("recorded", y), ("true", true_y)):
            report = coverage_report(s, truth)
            for key in ("coverage", "coverage_flare", "coverage_progression"):
                out[f"{name}.{truth_name}.{key}"] = report[key]
            out[f"{name}.uncertain_fraction"] = report["uncertain_fraction"]
    out["label_flip_share"] = float(np.mean(y != true_y))
    out["index_rows"] = float(len(y))
    out["flares"] = float(y.sum())
    return out


def labelled_patient_draws(
    p_flare: np.ndarray,
    y: np.ndarray,
    patient_ids: np.ndarray,
    sizes: list[int],
    draws: int,
    coverage: float,
    rng: np.random.Generator,
) -> list[dict[str, float]]:
    """Calibrate on ``n`` random labelled patients, evaluate on the others.

    Each draw is one random order of the patients; every size uses its first ``n``
    (nested), so sizes are compared on the same draws. A class with fewer than
    :func:`~flare_ml.uncertainty.min_calibration_cases` calibration cases has an infinite
    threshold: it is in every set and its coverage is 1 (``short_<class>`` is 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> rows = labelled_patient_draws(p, y, np.arange(400), [5, 200], 2, 0.9, rng)
    >>> [(r["n"], r["short_flare"], r["coverage_flare"]) for r in rows][:1]
    [(5.0, 1.0, 1.0)]

    """
    patient_ids = np.asarray(patient_ids).astype(str)
    y = np.asarray(y, dtype=int)
    p = np.asarray(p_flare, dtype=float)
    patients = np.unique(patient_ids)
    needed = min_calibration_cases(coverage)
    out = []
    for draw in range(draws):
        order = rng.permutation(patients)
        for n in sizes:
            calib = calibration_rows(patient_ids, order, n)
            conformal = ClassConditionalConformal(coverage).fit(p[calib], y[calib])
            report = coverage_report(conformal.predict_sets(p[~calib]), y[~calib])
            out.append(
                {
                    "draw": float(draw),
                    "n": float(n),
                    "calibration_rows": float(calib.sum()),
                    "calibration_flares": float(y[calib].sum()),
                    "evaluation_rows": float((~calib).sum()),
                    "coverage_flare": report["coverage_flare"],
                    "coverage_progression": report["coverage_progression"],
                    "uncertain_fraction": report["uncertain_fraction"],
                    "short_flare": float(conformal.n_calibration_[FLARE] < needed),
                    "short_progression": float(conformal.n_calibration_[PROGRESSION] < needed),
                }
            )
    return out


# --- summaries ------------------------------------------------------------------------


def _in_band(value: float, target: float, tolerance: float) -> bool:
    """``value`` within ``target ± tolerance`` as printed (three decimals)."""
    return bool(np.isfinite(value) and abs(round(value, 3) - target) <= tolerance + 1e-9)


def within_share(target: float, tolerance: float, *columns: list[float] | np.ndarray) -> float:
    """Share of draws whose every column is within ``target ± tolerance``.

    Examples
    --------
    >>> within_share(0.9, 0.02, [0.89, 0.95, 0.91])
    0.6666666666666666
    >>> within_share(0.9, 0.02, [0.89, 0.95, 0.91], [0.90, 0.90, 0.85])
    0.3333333333333333

    """
    rows = list(zip(*columns, strict=True))
    if not rows:
        return float("nan")
    return float(np.mean([all(_in_band(v, target, tolerance) for v in row) for row in rows]))


def _seeds(specs: list[CohortSpec]) -> str:
    seeds = [s.seed for s in specs]
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return ("seeds " if len(seeds) > 1 else "seed ") + ", ".join(map(str, seeds))


def site_label(site: str, specs: list[CohortSpec]) -> str:
    """How a site's replicate cohorts are named in the tables.

    Examples
    --------
    >>> site_label("nordic", [CohortSpec(site="nordic", patients=2000, seed=s)
    ...                       for s in (111, 112)])
    'simulated site nordic (2 x 2000 patients, seeds 111-112)'

    """
    return f"simulated site {site} ({len(specs)} x {specs[0].patients} patients, {_seeds(specs)})"


@dataclass
class SiteResults:
    """Replicate results of one site: the cohorts and one metrics dict per cohort.

    Examples
    --------
    >>> res = SiteResults([], [{"coverage_flare": 0.88}, {"coverage_flare": 0.92}])
    >>> res.values("coverage_flare"), round(res.mean("coverage_flare"), 3)
    ([0.88, 0.92], 0.9)

    """

    specs: list[CohortSpec]
    results: list[dict[str, float]]

    def values(self, key: str) -> list[float]:
        """One metric over the replicates."""
        return [r[key] for r in self.results]

    def mean(self, key: str) -> float:
        """The mean of one metric over the replicates (finite values)."""
        return mean_sd(self.values(key))[0]

    def class_means(self, prefix: str) -> dict[str, float]:
        """Mean coverage of each class under ``prefix`` (``site.recorded``, ...)."""
        return {k: self.mean(f"{prefix}.coverage_{k}") for k in CLASSES}


def labelled_summary(
    at_n: list[dict[str, float]], n: int, target: float, tolerance: float
) -> dict[str, float]:
    """Summary of the draws calibrated on ``n`` labelled patients (one MLflow run).

    Examples
    --------
    >>> draws = [{"coverage_flare": 0.9, "coverage_progression": 0.95, "uncertain_fraction": 0.1,
    ...           "calibration_rows": 40.0, "calibration_flares": 8.0, "short_flare": 0.0,
    ...           "short_progression": 0.0}] * 2
    >>> s = labelled_summary(draws, 30, 0.9, 0.02)
    >>> s["within.flare"], s["within.both"], s["draws"]
    (1.0, 0.0, 2.0)

    """
    flare = [d["coverage_flare"] for d in at_n]
    prog = [d["coverage_progression"] for d in at_n]
    uncertain = [d["uncertain_fraction"] for d in at_n]
    short = sum(int(d["short_flare"] or d["short_progression"]) for d in at_n)
    (flare_mean, flare_sd), (prog_mean, prog_sd) = mean_sd(flare), mean_sd(prog)
    return {
        "n": float(n),
        "coverage_flare.mean": flare_mean,
        "coverage_flare.sd": flare_sd,
        "coverage_progression.mean": prog_mean,
        "coverage_progression.sd": prog_sd,
        "within.flare": within_share(target, tolerance, flare),
        "within.progression": within_share(target, tolerance, prog),
        "within.both": within_share(target, tolerance, flare, prog),
        "uncertain_fraction.mean": mean_sd(uncertain)[0],
        "calibration_rows.mean": mean_sd([d["calibration_rows"] for d in at_n])[0],
        "calibration_flares.mean": mean_sd([d["calibration_flares"] for d in at_n])[0],
        "draws_with_class_always_in_set": float(short),
        "draws": float(len(at_n)),
    }


# --- the computation -------------------------------------------------------------------


@dataclass
class CoverageResult(KindResult):
    """Everything the coverage kind measured, per site and per labelled-patient size.

    Attributes
    ----------
    sites : dict of str to SiteResults
        Per site, one dict per replicate cohort: :func:`site_coverage` keys, ``domain.*``
        (:class:`DomainShift`) and ``label_noise_profile``.
    pools : dict of str to SiteResults
        Per labelled-pool site, the transported coverage of each whole pool cohort
        (:func:`~flare_ml.uncertainty.coverage_report`) and ``labelled_patients``.
    draws : dict of str to list of dict
        Per labelled-pool site, every draw of :func:`labelled_patient_draws`.
    curve : dict of str to list of dict
        Per labelled-pool site, :func:`labelled_summary` of each size, in order.

    """

    params: CoverageParams
    target: float
    sites: dict[str, SiteResults]
    pools: dict[str, SiteResults]
    draws: dict[str, list[dict[str, float]]]
    curve: dict[str, list[dict[str, float]]]
    train_label: str
    n_train: int
    outer_folds: int


def check_pools(ctx: Context, params: CoverageParams) -> None:
    """Refuse, before any model is trained, sizes a labelled pool cannot provide."""
    largest = max(params.labelled.sizes)
    for _, _, spec in params.labelled_cohorts():
        pool = ctx.cohort(spec)
        n_labelled = len(np.unique(pool.prepared.patient_ids))
        if largest >= n_labelled:
            raise FlareMLError(
                f"params.labelled.sizes: {largest} labelled patients requested, but "
                f"{pool.label} has only {n_labelled} patients with an index assessment and "
                "some must remain for evaluation; raise params.labelled.pool_patients or "
                "lower params.labelled.sizes"
            )


def _site_record(
    site: str, label: str, res: SiteResults, params: CoverageParams
) -> ConditionRecord:
    metrics: dict[str, float] = {}
    for key in res.results[0]:
        metrics[f"{key}.mean"], metrics[f"{key}.sd"] = mean_sd(res.values(key))
    return ConditionRecord(
        f"site {site}",
        {"cohorts": label, "replicates": params.replicates, "folds": params.folds},
        metrics,
    )


@register("coverage")
def compute(ctx: Context) -> CoverageResult:
    """Transported vs site-calibrated conformal coverage, label noise, domain shift, n."""
    params: CoverageParams = ctx.config.params
    target = params.coverage
    # one target for both classes: the model's error budget is 1 - target for each
    share = round(1.0 - target, 6)
    ctx.train_config = ctx.train_config.model_copy(
        update={
            "decision_policy": DecisionPolicyConfig(
                max_progression_called_flare=share, max_flare_called_progression=share
            )
        }
    )
    check_pools(ctx, params)
    train = ctx.cohort(params.train)
    bundle = ctx.fit_shipped(train.prepared)
    assert bundle.conformal is not None and train.prepared.y is not None
    conformal = bundle.conformal
    names = bundle.feature_names
    train_X = train.prepared.features[names].to_numpy(dtype=float)
    n_train = len(train.prepared.y)
    cohorts: list[tuple[str, str]] = [("training", train.label)]

    # site cohorts: coverage, label noise, domain shift
    sites = {s: SiteResults([], []) for s in params.sites}
    replicates = params.replicate_cohorts()
    for i, (site, r, spec) in enumerate(replicates):
        ctx.progress("site cohorts", i, len(replicates))
        cohort = ctx.cohort(spec)
        prepared = cohort.prepared
        assert prepared.y is not None
        p = bundle.proba_from_features(prepared.features)
        result = site_coverage(
            conformal, p, prepared.y, cohort.true_y, prepared.patient_ids, params.folds, ctx.seed
        )
        shift = domain_shift(
            train_X,
            prepared.features[names].to_numpy(dtype=float),
            train.prepared.patient_ids,
            prepared.patient_ids,
            target,
            params.domain_folds,
            ctx.seed,
        )
        result |= {
            "domain.auroc": shift.auroc,
            "domain.ess": shift.ess,
            "domain.floor_share": shift.floor_share,
            "domain.trivial_share": shift.trivial_share,
            "label_noise_profile": spec.profile().label_noise.value,
        }
        sites[site].specs.append(spec)
        sites[site].results.append(result)
        cohorts.append((f"site {site}, replicate {r + 1}", cohort.label))
    ctx.progress("site cohorts", len(replicates), len(replicates))

    # how many labelled site patients
    labelled = params.labelled
    pools = {s: SiteResults([], []) for s in labelled.sites}
    draws: dict[str, list[dict[str, float]]] = {s: [] for s in labelled.sites}
    pool_cohorts = params.labelled_cohorts()
    for i, (site, r, spec) in enumerate(pool_cohorts):
        ctx.progress("labelled-patient draws", i, len(pool_cohorts))
        pool = ctx.cohort(spec)
        prepared = pool.prepared
        assert prepared.y is not None
        n_labelled = len(np.unique(prepared.patient_ids))
        p = bundle.proba_from_features(prepared.features)
        rng = np.random.default_rng([ctx.seed, labelled.sites.index(site), r])
        draws[site] += labelled_patient_draws(
            p, prepared.y, prepared.patient_ids, labelled.sizes, labelled.draws, target, rng
        )
        pools[site].specs.append(spec)
        pools[site].results.append(
            coverage_report(conformal.predict_sets(p), prepared.y)
            | {"labelled_patients": float(n_labelled)}
        )
        cohorts.append((f"labelled pool {site}, replicate {r + 1}", pool.label))
    ctx.progress("labelled-patient draws", len(pool_cohorts), len(pool_cohorts))

    records = [
        _site_record(site, site_label(site, res.specs), res, params) for site, res in sites.items()
    ]
    curve: dict[str, list[dict[str, float]]] = {s: [] for s in pools}
    for site, res in pools.items():
        for n in labelled.sizes:
            at_n = [d for d in draws[site] if d["n"] == n]
            stats = labelled_summary(at_n, n, target, labelled.tolerance)
            curve[site].append(stats)
            records.append(
                ConditionRecord(
                    f"labelled {site} n={n}",
                    {
                        "cohorts": site_label(site, res.specs),
                        "labelled_patients": n,
                        "draws": len(at_n),
                    },
                    {k: v for k, v in stats.items() if k != "n"},
                )
            )
    return CoverageResult(
        cohorts=cohorts,
        conditions=records,
        params=params,
        target=target,
        sites=sites,
        pools=pools,
        draws=draws,
        curve=curve,
        train_label=train.label,
        n_train=n_train,
        outer_folds=ctx.train_config.model.outer_folds,
    )
