"""Curves of one scorer's probabilities: the decision curve and the calibration table.

:func:`decision_curve` gives the net benefit of calling flare (continuing therapy) at each
threshold probability, with the treat-all and treat-none references;
:func:`calibration_curve_table` gives the observed flare rate against the mean predicted
probability per bin, with Wilson intervals. Both read the scores as probabilities of flare,
so they refuse scores outside [0, 1] and do not apply to ranking scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flare_ml.evaluation.inputs import _check_p, _check_y
from flare_ml.evaluation.metrics import _safe_divide

__all__ = ["DEFAULT_DECISION_THRESHOLDS", "calibration_curve_table", "decision_curve"]

#: threshold probabilities of the decision curves: 0.05, 0.10, ..., 0.95
DEFAULT_DECISION_THRESHOLDS: np.ndarray = np.round(np.arange(0.05, 0.96, 0.05), 2)

#: columns of :func:`decision_curve`
_DECISION_CURVE_COLUMNS = (
    "threshold",
    "n_called_flare",
    "true_positive",
    "false_positive",
    "net_benefit",
    "net_benefit_treat_all",
    "net_benefit_treat_none",
)
#: columns of :func:`calibration_curve_table`
_CALIBRATION_COLUMNS = (
    "bin",
    "bin_low",
    "bin_high",
    "n",
    "n_flare",
    "mean_predicted",
    "observed_flare_rate",
    "observed_ci_low",
    "observed_ci_high",
)


def decision_curve(y: Any, p: Any, thresholds: Any = None) -> pd.DataFrame:
    """Net benefit of calling flare (continuing therapy) at each threshold probability.

    The "treatment" is to keep the current therapy, i.e. to call the new lesions a flare
    when ``p >= t``. Net benefit is ``TP/n - FP/n * t / (1 - t)``: flares correctly kept on
    therapy, minus progressions wrongly kept on it weighted by the odds at which a reader
    is indifferent. References: calling every case flare (``net_benefit_treat_all``) and
    none (``net_benefit_treat_none``, always 0, i.e. stopping therapy for everyone).

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Flare scores in [0, 1].
    thresholds : array-like, optional
        Threshold probabilities in (0, 1); default 0.05, 0.10, ..., 0.95.

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold``, ``n_called_flare``, ``true_positive`` (flares called flare),
        ``false_positive`` (progressions called flare), ``net_benefit``,
        ``net_benefit_treat_all``, ``net_benefit_treat_none``.

    Examples
    --------
    >>> dc = decision_curve([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], thresholds=[0.5])
    >>> dc[["net_benefit", "net_benefit_treat_all", "net_benefit_treat_none"]].iloc[0].tolist()
    [0.0, 0.0, 0.0]

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv))
    t = np.asarray(DEFAULT_DECISION_THRESHOLDS if thresholds is None else thresholds, float)
    if t.ndim != 1 or not ((t > 0) & (t < 1)).all():
        raise ValueError("decision-curve thresholds must be a 1-D sequence inside (0, 1)")
    n = len(yv)
    called = pv[None, :] >= t[:, None]
    tp = (called & (yv == 1)).sum(axis=1)
    fp = (called & (yv == 0)).sum(axis=1)
    odds = t / (1 - t)
    prevalence = yv.mean() if n else np.nan
    return pd.DataFrame(
        {
            "threshold": t,
            "n_called_flare": called.sum(axis=1),
            "true_positive": tp,
            "false_positive": fp,
            "net_benefit": tp / n - fp / n * odds,
            "net_benefit_treat_all": prevalence - (1 - prevalence) * odds,
            "net_benefit_treat_none": np.zeros(len(t)),
        }
    )


def calibration_curve_table(
    y: Any, p: Any, n_bins: int = 10, strategy: str = "uniform"
) -> pd.DataFrame:
    """Observed flare rate against mean predicted score, per bin of the score.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Flare scores in [0, 1].
    n_bins : int, default=10
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1] (as in the ECE of
        :func:`~flare_ml.evaluation.classification_metrics`; empty bins are kept with
        ``n = 0``) or bins of about equal size (quantiles of ``p``).

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin``, ``bin_low``, ``bin_high``, ``n``, ``n_flare``,
        ``mean_predicted``, ``observed_flare_rate`` and its 95% Wilson interval
        ``observed_ci_low``, ``observed_ci_high`` (NaN for empty bins).

    Examples
    --------
    >>> table = calibration_curve_table([0, 1, 1, 0, 1], [0.1, 0.15, 0.8, 0.85, 0.9], n_bins=2)
    >>> table[["n", "n_flare", "observed_flare_rate"]].to_numpy().tolist()
    [[2.0, 1.0, 0.5], [3.0, 2.0, 0.6666666666666666]]

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv))
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.unique(np.quantile(pv, np.linspace(0.0, 1.0, n_bins + 1)))
        if len(edges) < 2:
            edges = np.array([pv.min(), pv.max()])
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    n_edges = len(edges) - 1
    bins = np.clip(np.searchsorted(edges, pv, side="right") - 1, 0, n_edges - 1)
    n = np.bincount(bins, minlength=n_edges).astype(float)
    flares = np.bincount(bins, weights=yv, minlength=n_edges)
    mean_p = _safe_divide(np.bincount(bins, weights=pv, minlength=n_edges), n)
    rate = _safe_divide(flares, n)
    low, high = _wilson_interval(flares, n)
    return pd.DataFrame(
        {
            "bin": np.arange(n_edges),
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "n": n,
            "n_flare": flares,
            "mean_predicted": mean_p,
            "observed_flare_rate": rate,
            "observed_ci_low": low,
            "observed_ci_high": high,
        }
    )


def _wilson_interval(
    successes: np.ndarray, n: np.ndarray, z: float = 1.959963984540054
) -> tuple[np.ndarray, np.ndarray]:
    rate = _safe_divide(successes, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)
