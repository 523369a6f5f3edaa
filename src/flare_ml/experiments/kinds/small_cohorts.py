"""``kind: small_cohorts``: what a site's 25-300 labelled patients buy, method by method.

Per target world kind (T0-T3, :mod:`flare_ml.simulate.target_worlds`; T1 cycles through
its fixed world seeds), site training size and draw, a labelled site sample and a larger
evaluation cohort of the same world are simulated with draw-specific seeds, and five
methods are fitted on the same sample and evaluated on the same evaluation cohort against
the world's oracle: the best rule (chosen on the training sample), the from-scratch
XGBoost model, a small-n baseline (L2-penalised logistic regression on standardised,
pre-specified features), the shipped literature prior as is, and the prior adapted on
the sample (:func:`flare_ml.adaptation.adapt_bundle`). Draws run in parallel
(:mod:`joblib`); each draw is a pure function of its seeds, so the numbers do not depend
on the number of workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from flare_ml.adaptation import AdaptSettings, adapt_bundle
from flare_ml.bundle import FlareModelBundle
from flare_ml.errors import FlareMLError
from flare_ml.evaluation import classification_metrics
from flare_ml.experiments.config import SmallCohortsParams
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import ConditionRecord, KindResult
from flare_ml.experiments.registry import register
from flare_ml.rules import make_rules
from flare_ml.serving.flavor import load_bundle
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.target_worlds import KINDS as WORLD_KINDS
from flare_ml.simulate.target_worlds import target_worlds
from flare_ml.train_config import TrainConfig
from flare_ml.training import fit_bundle, prepare_cohort
from flare_ml.uncertainty import coverage_report

#: the adaptation's "choice" when the sample has too few patients of one outcome to adapt
#: (fewer than the 5 per outcome its folds need): the prior as is, as `flare-ml adapt`
#: advises
TOO_FEW = "too few to adapt (prior as is)"
#: the compared methods, in table order
METHODS: tuple[str, ...] = ("best rule", "from scratch", "small-n LR", "prior", "adapted prior")
#: the methods that carry class-conditional conformal prediction sets
CONFORMAL_METHODS: tuple[str, ...] = ("from scratch", "prior", "adapted prior")
#: per method and draw (NaN where a method has none)
DRAW_METRICS: tuple[str, ...] = (
    "auroc",
    "calibration_slope",
    "calibration_intercept",
    "brier",
    "gap_closed",
    "coverage_flare",
    "coverage_progression",
    "uncertain_fraction",
)

_PRIOR: dict[str, FlareModelBundle] = {}


def _prior() -> FlareModelBundle:
    """The shipped prior, loaded once per worker process."""
    if "prior" not in _PRIOR:
        _PRIOR["prior"] = load_bundle("prior")
    return _PRIOR["prior"]


@dataclass(frozen=True)
class DrawSpec:
    """One draw: world, size and seeds (all fixed by the config)."""

    world: str
    world_seed: int
    size: int
    draw: int
    train_seed: int
    eval_seed: int


def draw_specs(params: SmallCohortsParams) -> list[DrawSpec]:
    """Every draw of the config, cell by cell.

    The training seed depends on world kind, size and draw; the evaluation seed on world
    kind and draw only (so the sizes of one draw share their evaluation cohort).

    Examples
    --------
    >>> from flare_ml.experiments.config import load_params
    >>> p = load_params("small_cohorts", {"cells": [{"world": "T1", "sizes": [40]}],
    ...                                   "draws": 2})
    >>> [(s.world_seed, s.train_seed, s.eval_seed) for s in draw_specs(p)]
    [(31100, 142040, 641000), (31101, 143040, 641001)]

    """
    specs = []
    for cell in params.cells:
        k = WORLD_KINDS.index(cell.world)
        seeds = [w.seed for w in target_worlds(cell.world)]
        for n in cell.sizes:
            for d in range(params.draws):
                specs.append(
                    DrawSpec(
                        world=cell.world,
                        world_seed=seeds[d % len(seeds)],
                        size=n,
                        draw=d,
                        train_seed=params.seed + 100_000 * k + 1_000 * (d + 1) + n,
                        eval_seed=params.seed + 500_000 + 100_000 * k + d,
                    )
                )
    return specs


def _probability_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    m = classification_metrics(y, p)
    return {
        k: float(m[k]) for k in ("auroc", "calibration_slope", "calibration_intercept", "brier")
    }


def _conformal(bundle: FlareModelBundle, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    if bundle.conformal is None:
        return {}
    report = coverage_report(bundle.conformal.predict_sets(p), y)
    return {k: report[k] for k in ("coverage_flare", "coverage_progression", "uncertain_fraction")}


def run_draw(spec: DrawSpec, params: SmallCohortsParams, config: TrainConfig) -> dict[str, Any]:
    """Fit and evaluate every method on one draw (a pure function of its arguments).

    Returns
    -------
    dict
        ``spec``, ``index_rows``, ``flares``, ``oracle_auroc``, ``rule`` (the chosen
        rule), ``chosen`` (the adaptation's update, or :data:`TOO_FEW`), ``not_fitted``
        (methods the sample could not fit), ``metrics`` (method -> metric ->
        value) and ``seconds``.

    """
    started = time.perf_counter()
    world = next(w for w in target_worlds(spec.world) if w.seed == spec.world_seed)
    train = simulate_cohort(
        spec.size, site=world.site, seed=spec.train_seed, biology=world.biology
    ).timepoints
    held = simulate_cohort(
        params.eval_patients, site=world.site, seed=spec.eval_seed, biology=world.biology
    )
    prior = _prior()
    tr = prepare_cohort(train, prior.featurizer, "training")
    ev = prepare_cohort(held.timepoints, prior.featurizer, "evaluation", oracle=held.oracle)
    assert tr.y is not None and ev.y is not None and ev.oracle is not None
    y = ev.y
    oracle_auroc = float(classification_metrics(y, ev.oracle)["auroc"])
    metrics: dict[str, dict[str, float]] = {}

    rules = {k: r.fit(tr.features, tr.y) for k, r in make_rules(config.rules).items()}
    train_auroc = {
        k: classification_metrics(tr.y, r.decision_function(tr.features), probability=False)[
            "auroc"
        ]
        for k, r in rules.items()
    }
    rule = max(sorted(rules), key=lambda k: np.nan_to_num(train_auroc[k], nan=-1.0))
    rule_auroc = float(
        classification_metrics(y, rules[rule].decision_function(ev.features), probability=False)[
            "auroc"
        ]
    )
    metrics["best rule"] = {"auroc": rule_auroc}

    # a tiny sample can hold too few patients of one outcome for a method's folds: the
    # method is then recorded as not fitted (NaN metrics), as a site would find it
    not_fitted = []
    try:
        scratch = fit_bundle(
            train,
            config,
            n_candidates=params.scratch_candidates,
            outer_folds=params.scratch_outer_folds,
        )
    except (ValueError, FlareMLError):
        not_fitted.append("from scratch")
    else:
        ev_scratch = prepare_cohort(held.timepoints, scratch.featurizer, "evaluation")
        p = scratch.proba_from_features(ev_scratch.features)
        metrics["from scratch"] = {**_probability_metrics(y, p), **_conformal(scratch, y, p)}

    lr = make_pipeline(StandardScaler(), LogisticRegression(C=params.small_n_c, max_iter=1000))
    cols = list(params.small_n_features)
    try:
        lr.fit(tr.features[cols].fillna(0.0).to_numpy(float), tr.y)
    except ValueError:
        not_fitted.append("small-n LR")
    else:
        p = lr.predict_proba(ev.features[cols].fillna(0.0).to_numpy(float))[:, 1]
        metrics["small-n LR"] = _probability_metrics(y, p)

    p = prior.proba_from_features(ev.features)
    metrics["prior"] = {**_probability_metrics(y, p), **_conformal(prior, y, p)}

    try:
        adaptation = adapt_bundle(
            prior,
            train,
            AdaptSettings(repeats=params.adapt_repeats, seed=spec.train_seed),
            label=f"{spec.world} draw {spec.draw}",
        )
    except FlareMLError:
        # what `flare-ml adapt` tells such a site to do: score with the prior as is
        chosen, adapted = TOO_FEW, prior
    except ValueError as error:  # a failure is a finding: shown in the table, not fatal
        chosen, adapted = f"failed ({str(error)[:60]})", None
        not_fitted.append("adapted prior")
    else:
        chosen, adapted = adaptation.chosen, adaptation.bundle
    if adapted is not None:
        p = adapted.proba_from_features(ev.features)
        metrics["adapted prior"] = {**_probability_metrics(y, p), **_conformal(adapted, y, p)}

    gap = oracle_auroc - rule_auroc
    for method in not_fitted:
        metrics[method] = {}
    for m in metrics.values():
        if "auroc" in m:
            m["gap_closed"] = (m["auroc"] - rule_auroc) / gap if gap > 0 else float("nan")
        for k in DRAW_METRICS:
            m.setdefault(k, float("nan"))
    return {
        "spec": spec,
        "index_rows": len(tr.y),
        "flares": int(tr.y.sum()),
        "oracle_auroc": oracle_auroc,
        "rule": rule,
        "chosen": chosen,
        "not_fitted": not_fitted,
        "metrics": metrics,
        "seconds": time.perf_counter() - started,
    }


@dataclass
class SmallCohortsResult(KindResult):
    """Every draw's numbers, one row per draw and method, and the run's wall time.

    Attributes
    ----------
    draws : DataFrame
        Columns ``world``, ``size``, ``draw``, ``world_seed``, ``train_seed``,
        ``eval_seed``, ``index_rows``, ``flares``, ``oracle_auroc``, ``rule``,
        ``chosen``, ``method`` and each of :data:`DRAW_METRICS`.
    wall_seconds : float
        Wall time of all draws (not part of the numbers; varies run to run).

    """

    draws: pd.DataFrame
    params: SmallCohortsParams
    wall_seconds: float
    draw_seconds: float


def summarise(draws: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Per cell and method: median and 10th/90th percentiles of every metric.

    Also per cell: median index rows and flares, the median oracle AUROC, and the share
    of draws where the adapted prior's AUROC is below the from-scratch model's by more
    than ``margin`` (``negative_transfer``, repeated on every method's row).

    Examples
    --------
    >>> summarise(result.draws, 0.02).columns[:3].tolist()  # doctest: +SKIP
    ['world', 'size', 'method']

    """
    rows = []
    for (world, size), cell in draws.groupby(["world", "size"], sort=False):
        auroc = {
            m: cell[cell["method"] == m].set_index("draw")["auroc"]
            for m in ("adapted prior", "from scratch")
        }
        both = auroc["adapted prior"].notna() & auroc["from scratch"].notna()
        worse = auroc["adapted prior"][both] < auroc["from scratch"][both] - margin
        negative = float(worse.mean()) if both.any() else float("nan")
        for method in METHODS:
            sub = cell[cell["method"] == method]
            row: dict[str, Any] = {
                "world": world,
                "size": int(size),
                "method": method,
                "draws": len(sub),
                "fitted": int(sub["auroc"].notna().sum()),
                "index_rows": float(sub["index_rows"].median()),
                "flares": float(sub["flares"].median()),
                "oracle_auroc": float(sub["oracle_auroc"].median()),
                "negative_transfer": negative,
            }
            for k in DRAW_METRICS:
                values = sub[k].to_numpy(float)
                ok = values[~np.isnan(values)]
                for name, q in (("median", 50), ("p10", 10), ("p90", 90)):
                    row[f"{k}_{name}"] = float(np.percentile(ok, q)) if len(ok) else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)


@register("small_cohorts")
def compute(ctx: Context) -> SmallCohortsResult:
    """Every method on every draw of every world kind and size (module docstring)."""
    params: SmallCohortsParams = ctx.config.params
    config = ctx.train_config
    specs = draw_specs(params)
    ctx.progress("small-cohort draws", 0, len(specs))
    started = time.perf_counter()
    outcomes = Parallel(n_jobs=params.workers, backend="loky")(
        delayed(run_draw)(s, params, config) for s in specs
    )
    wall = time.perf_counter() - started
    ctx.progress("small-cohort draws", len(specs), len(specs))
    rows = []
    for out in outcomes:
        s: DrawSpec = out["spec"]
        for method in METHODS:
            rows.append(
                {
                    "world": s.world,
                    "size": s.size,
                    "draw": s.draw,
                    "world_seed": s.world_seed,
                    "train_seed": s.train_seed,
                    "eval_seed": s.eval_seed,
                    "index_rows": out["index_rows"],
                    "flares": out["flares"],
                    "oracle_auroc": out["oracle_auroc"],
                    "rule": out["rule"],
                    "chosen": out["chosen"],
                    "method": method,
                    **out["metrics"][method],
                }
            )
    draws = pd.DataFrame(rows)
    summary = summarise(draws, params.negative_transfer_margin)
    records = []
    for (world, size), cell in summary.groupby(["world", "size"], sort=False):
        metrics = {"negative_transfer": float(cell["negative_transfer"].iloc[0])}
        for _, r in cell.iterrows():
            key = str(r["method"]).replace(" ", "_").replace("-", "_")
            for k in ("auroc", "calibration_slope", "brier", "gap_closed"):
                value = r[f"{k}_median"]
                if not np.isnan(value):
                    metrics[f"{key}.{k}_median"] = float(value)
        records.append(
            ConditionRecord(
                f"{world} n={size}",
                {"world": world, "patients": int(size), "draws": params.draws},
                metrics,
            )
        )
    cohorts = [
        (
            f"{cell.world} site samples",
            f"simulated target world {cell.world} ({', '.join(map(str, cell.sizes))} "
            f"patients, {params.draws} draws)",
        )
        for cell in params.cells
    ] + [
        (
            "evaluation",
            f"simulated target world of each draw ({params.eval_patients} patients, its own seed)",
        )
    ]
    return SmallCohortsResult(
        cohorts=cohorts,
        conditions=records,
        draws=draws,
        params=params,
        wall_seconds=wall,
        draw_seconds=float(sum(o["seconds"] for o in outcomes)),
    )


__all__ = [
    "CONFORMAL_METHODS",
    "DRAW_METRICS",
    "METHODS",
    "DrawSpec",
    "SmallCohortsResult",
    "compute",
    "draw_specs",
    "run_draw",
    "summarise",
]
