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

Every cohort is synthetic; every table names its site, size and seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flare_ml.errors import FlareMLError
from flare_ml.experiments.config import CohortSpec, CoverageParams
from flare_ml.experiments.core import ConditionRecord, Context, KindOutput, Table
from flare_ml.model_selection import grouped_folds
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


# --- pieces ----------------------------------------------------------------------------


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
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

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
        "site": cross_fitted_sets(p_flare, y, patient_ids, conformal.coverage, n_folds, seed),
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


# --- numbers as text -------------------------------------------------------------------


def mean_sd(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and SD (n - 1) of the finite values; NaN where undefined.

    Examples
    --------
    >>> mean_sd([0.88, 0.90, float("nan")])
    (0.89, 0.014142135623730963)

    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (float("nan"), float("nan"))
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"))


def fmt_mean_sd(values: list[float] | np.ndarray, digits: int = 3, scale: float = 1.0) -> str:
    """``mean ± SD`` (just the mean with one value; ``-`` with none).

    Examples
    --------
    >>> fmt_mean_sd([0.88, 0.90])
    '0.890 ± 0.014'
    >>> fmt_mean_sd([0.031], 1, 100)
    '3.1'

    """
    mean, sd = mean_sd(values)
    if not np.isfinite(mean):
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return f"{text} ± {sd * scale:.{digits}f}" if np.isfinite(sd) else text


def _pct(share: float) -> str:
    return "-" if not np.isfinite(share) else f"{100 * share:.0f}%"


def _pct_sd(values: list[float]) -> str:
    """Shares as ``mean ± SD`` in percent."""
    return fmt_mean_sd(values, 1, 100) + "%"


def _span(values: list[float], digits: int, scale: float = 1.0, sign: bool = False) -> str:
    """``low to high`` of some values as printed, or one value when they print the same.

    Examples
    --------
    >>> _span([0.41, 1.0], 0, 100), _span([1.0, 0.9996], 0, 100), _span([0.01, 0.05], 1, 100, True)
    ('41-100', '100', '+1.0 to +5.0')

    """
    spec = f"{'+' if sign else ''}.{digits}f"
    low, high = (format(scale * v, spec) for v in (min(values), max(values)))
    if low == high:
        return low
    return f"{low} to {high}" if sign else f"{low}-{high}"


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


def _miss(means: dict[str, float], target: float) -> tuple[float, str]:
    """The larger per-class miss of the target, in points, and its class."""
    cls = max(CLASSES, key=lambda k: abs(means[k] - target))
    return (100 * abs(means[cls] - target), cls)


# --- the runner ------------------------------------------------------------------------


@dataclass
class _SiteResults:
    """Replicate results of one site: the cohorts and one metrics dict per cohort."""

    specs: list[CohortSpec]
    results: list[dict[str, float]]

    def values(self, key: str) -> list[float]:
        return [r[key] for r in self.results]

    def mean(self, key: str) -> float:
        return mean_sd(self.values(key))[0]

    def class_means(self, prefix: str) -> dict[str, float]:
        return {k: self.mean(f"{prefix}.coverage_{k}") for k in CLASSES}


def run_coverage(ctx: Context) -> KindOutput:
    """Transported vs site-calibrated conformal coverage, label noise, domain shift, n."""
    from flare_ml.training import fit_bundle

    params: CoverageParams = ctx.config.params
    target = ctx.train_config.uncertainty.coverage
    _check_pools(ctx, params)
    train = ctx.cohort(params.train)
    ctx.progress("model", 0, 1)
    bundle = fit_bundle(
        train.prepared.timepoints,
        ctx.train_config,
        outer_folds=ctx.train_config.model.outer_folds,
    )
    ctx.progress("model", 1, 1)
    assert bundle.conformal is not None and train.prepared.y is not None
    conformal = bundle.conformal
    names = bundle.feature_names
    train_X = train.prepared.features[names].to_numpy(dtype=float)
    n_train = len(train.prepared.y)
    cohorts: list[tuple[str, str]] = [("training", train.label)]

    # site cohorts: coverage, label noise, domain shift
    sites = {s: _SiteResults([], []) for s in params.sites}
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
    pools = {s: _SiteResults([], []) for s in labelled.sites}
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

    tables, records = _site_tables(ctx, params, sites, train.label, n_train)
    curve, labelled_table, labelled_records = _labelled_table(
        ctx, params, pools, draws, train.label, n_train
    )
    findings = _site_findings(params, target, sites, n_train)
    findings += _labelled_findings(target, labelled.tolerance, curve)
    return KindOutput(
        cohorts=cohorts,
        tables=[*tables, labelled_table],
        conditions=records + labelled_records,
        findings=findings,
    )


def _check_pools(ctx: Context, params: CoverageParams) -> None:
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


def _synthetic_note(ctx: Context, train_label: str, n_train: int) -> str:
    target = ctx.train_config.uncertainty.coverage
    return (
        "All cohorts are SIMULATED (flare-ml's simulator), none is a patient record. Model: "
        f"XGBoost trained once on {train_label}, {n_train} index rows, with the shipped "
        f"training config; its conformal thresholds (target {target:.0%} per class) come "
        "from the out-of-fold predictions of those patients "
        f"({ctx.train_config.model.outer_folds} patient-grouped folds)."
    )


def _site_tables(
    ctx: Context,
    params: CoverageParams,
    sites: dict[str, _SiteResults],
    train_label: str,
    n_train: int,
) -> tuple[list[Table], list[ConditionRecord]]:
    """Coverage (recorded, true outcome), label noise and domain tables; one run per site."""
    target = ctx.train_config.uncertainty.coverage
    recorded_rows, true_rows, domain_rows, records = [], [], [], []
    for site, res in sites.items():
        label = site_label(site, res.specs)
        v = res.values
        recorded_rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "index rows (flares)": (
                    f"{fmt_mean_sd(v('index_rows'), 0)} ({fmt_mean_sd(v('flares'), 0)})"
                ),
                "transported: flare": fmt_mean_sd(v("transported.recorded.coverage_flare")),
                "transported: progression": fmt_mean_sd(
                    v("transported.recorded.coverage_progression")
                ),
                "transported: uncertain": _pct_sd(v("transported.uncertain_fraction")),
                "site-calibrated: flare": fmt_mean_sd(v("site.recorded.coverage_flare")),
                "site-calibrated: progression": fmt_mean_sd(
                    v("site.recorded.coverage_progression")
                ),
                "site-calibrated: uncertain": _pct_sd(v("site.uncertain_fraction")),
            }
        )
        true_rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "label noise (site profile)": f"{100 * v('label_noise_profile')[0]:.0f}%",
                "recorded label differs from truth": _pct_sd(v("label_flip_share")),
                "transported: flare": fmt_mean_sd(v("transported.true.coverage_flare")),
                "transported: progression": fmt_mean_sd(v("transported.true.coverage_progression")),
                "site-calibrated: flare": fmt_mean_sd(v("site.true.coverage_flare")),
                "site-calibrated: progression": fmt_mean_sd(v("site.true.coverage_progression")),
            }
        )
        domain_rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "domain AUROC": fmt_mean_sd(v("domain.auroc")),
                f"ESS of training weights (of {n_train} rows)": fmt_mean_sd(v("domain.ess"), 0),
                "training rows at the weight floor": _pct_sd(v("domain.floor_share")),
                "site rows whose weighted set holds both classes": _pct_sd(
                    v("domain.trivial_share")
                ),
            }
        )
        metrics: dict[str, float] = {}
        for key in res.results[0]:
            metrics[f"{key}.mean"], metrics[f"{key}.sd"] = mean_sd(v(key))
        records.append(
            ConditionRecord(
                f"site {site}",
                {"cohorts": label, "replicates": params.replicates, "folds": params.folds},
                metrics,
            )
        )
    synthetic = _synthetic_note(ctx, train_label, n_train)
    k = params.replicates
    tables = [
        Table(
            "Per-class coverage against the recorded outcome: transported vs site-calibrated",
            pd.DataFrame(recorded_rows),
            [
                synthetic,
                f"Mean ± SD over {k} replicate cohorts per site; coverage is the share of index "
                "rows of one outcome whose prediction set holds that outcome. Transported: the "
                "model's own thresholds, unchanged. Site-calibrated: thresholds calibrated on "
                f"the site's other labelled patients ({params.folds} patient-grouped, "
                "outcome-stratified folds; no patient calibrates their own set), the coverage "
                "a site can expect after `flare_ml.site_calibration.calibrate_to_site`. "
                "Uncertain: share of index rows whose set holds both outcomes (or neither): "
                "confirm with follow-up imaging.",
            ],
        ),
        Table(
            "Per-class coverage against the true (noise-free) outcome, and label noise",
            pd.DataFrame(true_rows),
            [
                synthetic,
                "The same prediction sets as above, scored against the simulator's noise-free "
                "outcome instead of the recorded one. Site calibration uses the recorded "
                "outcomes (the only ones a site has). Label noise: the site profile's "
                "probability that a recorded outcome is flipped, and the realized share of "
                "index rows whose recorded outcome differs from the truth (mean ± SD over "
                f"{k} replicate cohorts).",
            ],
        ),
        Table(
            "Domain separability: why covariate-shift weighting is not used",
            pd.DataFrame(domain_rows),
            [
                synthetic,
                "A gradient-boosted classifier (scikit-learn HistGradientBoostingClassifier, "
                f"{params.domain_folds} patient-grouped folds) tells the site's index rows "
                "(the model's features) from the training cohort's; every row gets an "
                "out-of-fold P(site). Importance weights P(site|x) / P(training|x), "
                f"probabilities clipped to [{CLIP:g}, {1 - CLIP:g}]. ESS: Kish's effective "
                "sample size (sum w)^2 / sum w^2 of the training rows' weights; when almost "
                "every training row sits at the clip floor the weights are equal and the ESS "
                "is large for the wrong reason (no overlap, not good overlap). Weighted set "
                "holds both classes: site rows whose own weight exceeds "
                f"{1 - target:.0%} of the total weight (training rows plus the row itself), "
                "for which covariate-shift-weighted split conformal (Tibshirani et al. 2019) "
                "has no finite threshold. Where the training site is among the sites, its "
                "own replicates show what the classifier's noise alone does to these numbers "
                f"(no shift). Mean ± SD over {k} replicate cohorts.",
            ],
        ),
    ]
    return tables, records


def _labelled_table(
    ctx: Context,
    params: CoverageParams,
    pools: dict[str, _SiteResults],
    draws: dict[str, list[dict[str, float]]],
    train_label: str,
    n_train: int,
) -> tuple[dict[str, list[dict[str, float]]], Table, list[ConditionRecord]]:
    """The labelled-patients table, its per-size summaries and one MLflow run per size."""
    target = ctx.train_config.uncertainty.coverage
    labelled = params.labelled
    tol = labelled.tolerance
    band = f"within ±{100 * tol:g} pts: flare / progression / both"
    rows, records = [], []
    curve: dict[str, list[dict[str, float]]] = {s: [] for s in pools}
    for site, res in pools.items():
        label = site_label(site, res.specs)
        flare, prog = res.values("coverage_flare"), res.values("coverage_progression")
        rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "labelled patients used": "none: training thresholds (transported)",
                "calibration index rows (flares)": "-",
                "flare coverage": fmt_mean_sd(flare),
                "progression coverage": fmt_mean_sd(prog),
                band: (
                    f"{_pct(within_share(target, tol, flare))} / "
                    f"{_pct(within_share(target, tol, prog))} / "
                    f"{_pct(within_share(target, tol, flare, prog))}"
                ),
                "uncertain": _pct_sd(res.values("uncertain_fraction")),
                "draws with a class always in the set": "-",
            }
        )
        for n in labelled.sizes:
            at_n = [d for d in draws[site] if d["n"] == n]
            flare = [d["coverage_flare"] for d in at_n]
            prog = [d["coverage_progression"] for d in at_n]
            uncertain = [d["uncertain_fraction"] for d in at_n]
            short = sum(int(d["short_flare"] or d["short_progression"]) for d in at_n)
            (flare_mean, flare_sd), (prog_mean, prog_sd) = mean_sd(flare), mean_sd(prog)
            stats = {
                "n": float(n),
                "coverage_flare.mean": flare_mean,
                "coverage_flare.sd": flare_sd,
                "coverage_progression.mean": prog_mean,
                "coverage_progression.sd": prog_sd,
                "within.flare": within_share(target, tol, flare),
                "within.progression": within_share(target, tol, prog),
                "within.both": within_share(target, tol, flare, prog),
                "uncertain_fraction.mean": mean_sd(uncertain)[0],
                "calibration_rows.mean": mean_sd([d["calibration_rows"] for d in at_n])[0],
                "calibration_flares.mean": mean_sd([d["calibration_flares"] for d in at_n])[0],
                "draws_with_class_always_in_set": float(short),
                "draws": float(len(at_n)),
            }
            curve[site].append(stats)
            rows.append(
                {
                    "site (SIMULATED cohorts)": label,
                    "labelled patients used": str(n),
                    "calibration index rows (flares)": (
                        f"{stats['calibration_rows.mean']:.0f} "
                        f"({stats['calibration_flares.mean']:.0f})"
                    ),
                    "flare coverage": fmt_mean_sd(flare),
                    "progression coverage": fmt_mean_sd(prog),
                    band: (
                        f"{_pct(stats['within.flare'])} / {_pct(stats['within.progression'])} "
                        f"/ {_pct(stats['within.both'])}"
                    ),
                    "uncertain": _pct_sd(uncertain),
                    "draws with a class always in the set": f"{short} of {len(at_n)}",
                }
            )
            records.append(
                ConditionRecord(
                    f"labelled {site} n={n}",
                    {"cohorts": label, "labelled_patients": n, "draws": len(at_n)},
                    {k: v for k, v in stats.items() if k != "n"},
                )
            )
    k = params.replicates
    n_labelled = mean_sd([x for res in pools.values() for x in res.values("labelled_patients")])[0]
    notes = [
        _synthetic_note(ctx, train_label, n_train),
        f"Per site, {k} replicate cohorts of {labelled.pool_patients} patients (on average "
        f"{n_labelled:.0f} of them labelled: at least one index assessment with a recorded "
        f"outcome); in each, {labelled.draws} random orders of the labelled patients. "
        "Thresholds are calibrated on the index rows of the first n patients of an order "
        "(nested sizes) and evaluated on the index rows of all the other labelled patients "
        f"(recorded outcome): mean ± SD and the share within ±{100 * tol:g} points of the "
        f"{target:.0%} target over {k * labelled.draws} draws. A class with fewer than "
        f"{min_calibration_cases(target)} calibration cases gets no finite threshold: it is "
        "in every set and its coverage is 1 (counted under 'draws with a class always in the "
        "set'). The evaluation patients are finite too, so part of the spread is evaluation "
        "noise. Transported row: the training thresholds on each whole cohort (mean ± SD and "
        f"share within the band over the {k} cohorts).",
    ]
    table = Table(
        "How many labelled site patients: calibrating on n patients",
        pd.DataFrame(rows),
        notes,
    )
    return curve, table, records


def _site_findings(
    params: CoverageParams,
    target: float,
    sites: dict[str, _SiteResults],
    n_train: int,
) -> list[str]:
    """Conclusions of the site tables, computed from their numbers."""
    tol = params.labelled.tolerance
    findings = []
    ok: dict[str, list[str]] = {"transported": [], "site": []}
    for site, res in sites.items():
        parts = []
        for prefix, name in (("transported", "transported"), ("site", "site-calibrated")):
            m = res.class_means(f"{prefix}.recorded")
            miss, cls = _miss(m, target)
            if miss <= 100 * tol + 1e-9:
                ok[prefix].append(site)
            parts.append(
                f"{name} flare {m[FLARE]:.3f}, progression {m[PROGRESSION]:.3f} "
                f"(largest miss {miss:.1f} points, {cls}; uncertain "
                f"{100 * res.mean(f'{prefix}.uncertain_fraction'):.1f}%)"
            )
        findings.append(
            f"Simulated site {site}, recorded outcome (target {target:.2f}): "
            + "; ".join(parts)
            + "."
        )
    n = len(sites)

    def listed(names: list[str]) -> str:
        return f" ({', '.join(names)})" if names else ""

    findings.append(
        f"Both classes' mean coverage is within ±{100 * tol:g} points of the target at "
        f"{len(ok['transported'])} of {n} simulated sites with the transported thresholds"
        f"{listed(ok['transported'])} and at {len(ok['site'])} of {n} with site-calibrated "
        f"thresholds{listed(ok['site'])}."
    )
    gaps = [
        res.mean(f"site.true.coverage_{k}") - res.mean(f"site.recorded.coverage_{k}")
        for res in sites.values()
        for k in CLASSES
    ]
    flips = [res.mean("label_flip_share") for res in sites.values()]
    if min(gaps) > 0:
        direction = "higher than against the recorded ones at every site and class"
    elif max(gaps) < 0:
        direction = "lower than against the recorded ones at every site and class"
    elif min(gaps) == max(gaps) == 0:
        direction = "the same as against the recorded ones at every site and class"
    else:
        direction = "sometimes higher, sometimes lower than against the recorded ones"
    text = (
        "Against the simulator's noise-free outcomes, site-calibrated coverage is "
        f"{direction} (difference {_span(gaps, 1, 100, sign=True)} points; "
        f"{_span(flips, 1, 100)}% of recorded labels differ from the truth)."
    )
    if min(gaps) > 0:
        text += (
            " Calibrating on noisy labels widens the thresholds, so the sets over-cover the "
            "true outcome: coverage of the recorded outcome is the conservative reading."
        )
    findings.append(text)
    shifted = [s for s in sites if s != params.train.site]
    if shifted:
        auroc = {s: sites[s].mean("domain.auroc") for s in sites}
        trivial = [sites[s].mean("domain.trivial_share") for s in shifted]
        floor = {s: sites[s].mean("domain.floor_share") for s in shifted}
        ess = [
            f"{sites[s].mean('domain.ess'):.0f} ({s}"
            + (", every training row at the floor" if floor[s] >= 0.995 else "")
            + ")"
            for s in shifted
        ]
        text = (
            "A domain classifier separates each other site's index rows from the training "
            "rows with cross-validated AUROC "
            + ", ".join(f"{auroc[s]:.3f} ({s})" for s in shifted)
            + (
                f" (the training site's own replicates: {auroc[params.train.site]:.3f})"
                if params.train.site in auroc
                else ""
            )
            + f". The importance weights leave {_span(list(floor.values()), 0, 100)}% of the "
            f"{n_train} training rows at the clip floor, have an effective sample size of "
            + ", ".join(ess)
            + f", and give {_span(trivial, 0, 100)}% of the site rows a weighted conformal "
            "set holding both classes."
        )
        if min(trivial) >= 0.5:
            text += (
                " Covariate-shift-weighted conformal prediction would call at least half of "
                "these sites' cases `uncertain`; recalibrating on the site's own labelled "
                "patients is the remedy measured here."
            )
        findings.append(text)
    return findings


def _labelled_findings(
    target: float, tol: float, curve: dict[str, list[dict[str, float]]]
) -> list[str]:
    """Conclusions of the labelled-patients table, computed from its numbers."""
    findings = []
    for site, stats in curve.items():
        first, last = stats[0], stats[-1]
        text = (
            f"Simulated site {site}: calibrated on {first['n']:.0f} labelled patients (about "
            f"{first['calibration_flares.mean']:.0f} flares), coverage varies between draws "
            f"with SD {first['coverage_flare.sd']:.3f} (flare) and "
            f"{first['coverage_progression.sd']:.3f} (progression), "
            f"{_pct(first['within.both'])} of draws have both classes within "
            f"±{100 * tol:g} points and {100 * first['uncertain_fraction.mean']:.1f}% of "
            f"decisions are uncertain; with {last['n']:.0f} patients (about "
            f"{last['calibration_flares.mean']:.0f} flares): SD {last['coverage_flare.sd']:.3f} "
            f"and {last['coverage_progression.sd']:.3f}, {_pct(last['within.both'])} within, "
            f"{100 * last['uncertain_fraction.mean']:.1f}% uncertain."
        )
        close = [
            f"{s['n']:.0f}"
            for s in stats
            if abs(s["coverage_flare.mean"] - target) <= 0.01
            and abs(s["coverage_progression.mean"] - target) <= 0.01
        ]
        text += (
            f" The mean coverage of both classes is within 1 point of target at n = "
            f"{', '.join(close)}."
            if close
            else " The mean coverage of both classes is within 1 point of target at no n tried."
        )
        short = [f"{s['n']:.0f}" for s in stats if s["draws_with_class_always_in_set"] > 0]
        if short:
            text += (
                f" At n = {', '.join(short)} some draws had too few calibration cases of a "
                "class for a finite threshold (that class is then in every set)."
            )
        findings.append(text)
    return findings
