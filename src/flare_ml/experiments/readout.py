"""Numbers read from evaluations: metrics with CIs, paired differences, the best rule.

:func:`flare_ml.evaluation.evaluate` returns long tables of metrics and paired
comparisons; the experiment kinds and their renderers read single numbers from them with
these helpers, flatten them into MLflow metrics, and summarize replicates
(:func:`mean_sd`).
"""

from __future__ import annotations

import math

import numpy as np

from flare_ml.evaluation import Evaluation

#: the rules, in table order
RULE_NAMES: tuple[str, ...] = ("seed_criteria", "pcwg3_window", "alp_only")

CI = tuple[float, float, float]


def metric(ev: Evaluation, scorer: str, name: str) -> CI:
    """(estimate, ci_low, ci_high) of one scorer's metric; NaNs when it was not computed.

    Examples
    --------
    >>> from flare_ml.evaluation import evaluate
    >>> ev = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4], n_resamples=0)
    >>> metric(ev, "m", "auroc")[0]
    1.0

    """
    m = ev.metrics
    row = m[(m["scorer"] == scorer) & (m["metric"] == name)]
    if row.empty:
        return (math.nan, math.nan, math.nan)
    return tuple(float(row[k].iloc[0]) for k in ("estimate", "ci_low", "ci_high"))  # type: ignore[return-value]


def versus(ev: Evaluation, scorer: str, name: str = "auroc") -> CI:
    """Reference minus ``scorer`` (positive: the reference is better) with its paired CI.

    Examples
    --------
    >>> from flare_ml.evaluation import evaluate
    >>> ev = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9], "r": [0.5, 0.5, 0.6, 0.4]},
    ...               [1, 2, 3, 4], n_resamples=20, reference="m")
    >>> round(versus(ev, "r")[0], 3)
    0.875

    """
    cmp = ev.comparisons
    row = cmp[(cmp["scorer"] == scorer) & (cmp["metric"] == name)]
    if row.empty:
        return (math.nan, math.nan, math.nan)
    d, lo, hi = (float(row[k].iloc[0]) for k in ("difference", "ci_low", "ci_high"))
    return (-d, -hi, -lo)


def difference(ev: Evaluation, scorer: str, name: str = "auroc") -> CI:
    """``scorer`` minus the reference, with its paired CI (the mirror of :func:`versus`).

    Examples
    --------
    >>> from flare_ml.evaluation import evaluate
    >>> ev = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9], "r": [0.5, 0.5, 0.6, 0.4]},
    ...               [1, 2, 3, 4], n_resamples=20, reference="m")
    >>> round(difference(ev, "r")[0], 3)
    -0.875

    """
    d, lo, hi = versus(ev, scorer, name)
    return (-d, -hi, -lo)


def above_zero(values: CI) -> bool:
    """The CI's lower bound is above 0 as printed (three decimals).

    Examples
    --------
    >>> above_zero((0.02, 0.0004, 0.04)), above_zero((0.02, 0.001, 0.04))
    (False, True)

    """
    return bool(np.isfinite(values[1]) and round(values[1], 3) > 0)


def below_zero(values: CI) -> bool:
    """The CI's upper bound is below 0 as printed (three decimals).

    Examples
    --------
    >>> below_zero((-0.02, -0.04, -0.0004)), below_zero((-0.02, -0.04, -0.001))
    (False, True)

    """
    return bool(np.isfinite(values[2]) and round(values[2], 3) < 0)


def best_rule(ev: Evaluation) -> str:
    """The rule with the highest AUROC estimate on this cohort.

    Examples
    --------
    >>> from flare_ml.evaluation import evaluate
    >>> y = [0, 1, 0, 1]
    >>> scores = {"seed_criteria": [0.1, 0.9, 0.2, 0.8], "pcwg3_window": [0.5, 0.5, 0.5, 0.5],
    ...           "alp_only": [0.9, 0.1, 0.8, 0.2]}
    >>> best_rule(evaluate(y, scores, [1, 2, 3, 4], n_resamples=0))
    'seed_criteria'

    """
    return max(RULE_NAMES, key=lambda r: metric(ev, r, "auroc")[0])


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


def evaluation_metrics(ev: Evaluation, prefix: str = "") -> dict[str, float]:
    """Flat MLflow metrics of an evaluation: ``<scorer>.<metric>[_ci_low|_ci_high]``.

    Examples
    --------
    >>> from flare_ml.evaluation import evaluate
    >>> ev = evaluate([0, 1], {"m": [0.2, 0.7]}, [1, 2], n_resamples=0, metrics=("auroc",))
    >>> sorted(evaluation_metrics(ev))
    ['m.auroc', 'm.auroc_ci_high', 'm.auroc_ci_low']

    """
    out: dict[str, float] = {}
    for row in ev.metrics.itertuples(index=False):
        key = f"{prefix}{row.scorer}.{row.metric}"
        out[key] = float(row.estimate)
        out[f"{key}_ci_low"] = float(row.ci_low)
        out[f"{key}_ci_high"] = float(row.ci_high)
    for row in ev.comparisons.itertuples(index=False):
        out[f"{prefix}{row.scorer}_minus_{row.reference}.{row.metric}"] = float(row.difference)
    return out


__all__ = [
    "CI",
    "RULE_NAMES",
    "above_zero",
    "below_zero",
    "best_rule",
    "difference",
    "evaluation_metrics",
    "mean_sd",
    "metric",
    "versus",
]
