"""Patient-level bootstrap: resampling weights, replicated metrics and percentile intervals.

Patients are resampled with replacement and bring all their index rows; a resample is a
vector of row weights (times each row's patient was drawn), so the metrics of a resample
are the weighted metrics of the original rows, computed for a block of resamples at once.
The same seed gives the same resamples for every scorer, so differences between scorers
are paired. Resamples that hold only one outcome class are skipped; the estimate is the
metric on the data as given, the interval the percentiles of the resampled values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.evaluation.inputs import _check_groups, _check_p, _check_threshold, _check_y
from flare_ml.evaluation.metrics import (
    METRICS,
    THRESHOLD_METRICS,
    _check_metrics,
    _Scored,
    _weighted_metrics,
)
from flare_ml.evaluation.recalibration import _logistic_recalibration

__all__ = ["bootstrap_metrics", "patient_bootstrap_weights"]

#: largest number of (resample x row) cells held in memory at once
_CHUNK_CELLS = 200_000


def patient_bootstrap_weights(groups: Any, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Row weights of a patient-level bootstrap: how often each row is drawn per resample.

    Each resample draws as many patients as there are, with replacement; a patient drawn
    ``k`` times contributes all its rows ``k`` times, so rows of one patient always share
    a weight. Weighted metrics with these weights equal the metrics of the resampled data
    sets.

    Parameters
    ----------
    groups : array-like of shape (n_rows,)
        Patient id of each row.
    n_resamples : int
        Number of resamples.
    seed : int, default=0
        Seed of :func:`numpy.random.default_rng`; the same seed and the same set of patient
        ids give the same draws.

    Returns
    -------
    ndarray of int64, shape (n_resamples, n_rows)
        The weights.

    Examples
    --------
    >>> w = patient_bootstrap_weights(["a", "a", "b", "c"], n_resamples=5, seed=1)
    >>> w.shape, bool((w[:, 0] == w[:, 1]).all()), w[:, [0, 2, 3]].sum(axis=1).tolist()
    ((5, 4), True, [3, 3, 3, 3, 3])

    """
    codes = _check_groups(groups, len(groups))
    return _patient_counts(codes, n_resamples, seed)[:, codes]


def _patient_counts(codes: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    n_patients = int(codes.max()) + 1 if len(codes) else 0
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_patients, np.full(n_patients, 1.0 / n_patients), size=n_resamples)


def _bootstrap_replicates(
    s: _Scored,
    codes: np.ndarray,
    counts: np.ndarray,
    metrics: Sequence[str],
    calibration_start: tuple[float, float, float] | None,
) -> dict[str, np.ndarray]:
    """Metric values of every resample (NaN for resamples with only one outcome class)."""
    n_resamples, n = counts.shape[0], len(codes)
    out = {m: np.full(n_resamples, np.nan) for m in metrics}
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for lo in range(0, n_resamples, chunk):
        w = counts[lo : lo + chunk][:, codes].astype(float)
        n_pos = w @ s.y
        valid = (n_pos > 0) & (w.sum(axis=1) - n_pos > 0)
        if not valid.any():
            continue
        values = _weighted_metrics(s, w[valid], metrics, calibration_start)
        rows = np.arange(lo, lo + len(w))[valid]
        for m in metrics:
            out[m][rows] = values[m]
    return out


def _summarise(
    estimates: Mapping[str, float],
    replicates: Mapping[str, np.ndarray],
    confidence: float,
) -> pd.DataFrame:
    tail = (1 - confidence) / 2
    rows = []
    for metric, draws in replicates.items():
        finite = draws[np.isfinite(draws)]
        low, high = np.quantile(finite, [tail, 1 - tail]) if len(finite) else (np.nan, np.nan)
        rows.append(
            {
                "metric": metric,
                "estimate": float(estimates[metric]),
                "ci_low": float(low),
                "ci_high": float(high),
                "n_resamples": len(finite),
            }
        )
    return pd.DataFrame(rows, columns=["metric", "estimate", "ci_low", "ci_high", "n_resamples"])


def _estimates(s: _Scored, metrics: Sequence[str]) -> dict[str, float]:
    values = _weighted_metrics(s, np.ones((1, len(s.y))), metrics)
    return {m: float(values[m][0]) for m in metrics}


def _calibration_start(s: _Scored, metrics: Sequence[str]) -> tuple[float, float, float] | None:
    """Full-data recalibration fits, the Newton starting point of every resample's fit.

    None when no calibration metric is asked for, or the scores are a ranking.
    """
    if s.x is None or not {"calibration_slope", "calibration_intercept"} & set(metrics):
        return None
    ones = np.ones((1, len(s.y)))
    a_slope, b_slope = _logistic_recalibration(s.x, s.y, ones, fit_slope=True)
    a_offset, _ = _logistic_recalibration(s.x, s.y, ones, fit_slope=False)
    start = (float(a_slope[0]), float(b_slope[0]), float(a_offset[0]))
    return start if np.isfinite(start).all() else None


def bootstrap_metrics(
    y: Any,
    p: Any,
    groups: Any,
    threshold: float | None = 0.5,
    n_resamples: int = 1000,
    seed: int = 0,
    metrics: Iterable[str] = METRICS,
    confidence: float = 0.95,
    *,
    probability: bool = True,
) -> pd.DataFrame:
    """Metrics with patient-level bootstrap percentile confidence intervals.

    Patients (``groups``) are resampled with replacement and bring all their index rows;
    the metrics are computed on each resample as weighted metrics (weight = times drawn),
    which is exact and vectorised. Resamples holding only one outcome class are skipped.
    The estimate is the metric on the data as given, not the bootstrap mean.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Flare scores: probabilities in [0, 1], or any finite reals with
        ``probability=False``.
    groups : array-like of shape (n,)
        Patient id of each row.
    threshold : float or None, default=0.5
        Operating point for the threshold metrics (``p >= threshold`` is called flare);
        None is allowed when ``metrics`` holds none of
        :data:`~flare_ml.evaluation.THRESHOLD_METRICS`.
    n_resamples : int, default=1000
        Number of bootstrap resamples (0 gives the estimates with NaN intervals).
    seed : int, default=0
        Seed of the resampling; same seed, same output.
    metrics : iterable of str, default=METRICS
        Metrics to compute (names of :data:`~flare_ml.evaluation.METRICS`, see
        :func:`~flare_ml.evaluation.classification_metrics`).
    confidence : float, default=0.95
        Coverage of the percentile interval.
    probability : bool, default=True
        Whether ``p`` holds probabilities; with False (a ranking score) the probability
        metrics (:data:`~flare_ml.evaluation.PROBABILITY_METRICS`) are NaN, with no
        interval and ``n_resamples`` 0.

    Returns
    -------
    pandas.DataFrame
        One row per metric: ``metric``, ``estimate``, ``ci_low``, ``ci_high`` and
        ``n_resamples`` (resamples in which the metric was defined).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=300)
    >>> y = (rng.uniform(size=300) < p).astype(int)
    >>> patients = np.repeat(np.arange(150), 2)
    >>> table = bootstrap_metrics(y, p, patients, 0.5, n_resamples=200,
    ...                           metrics=("auroc", "brier"))
    >>> table["metric"].tolist()
    ['auroc', 'brier']
    >>> bool(((table.ci_low <= table.estimate) & (table.estimate <= table.ci_high)).all())
    True

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv), probability=probability)
    codes = _check_groups(groups, len(yv))
    chosen = _check_metrics(metrics)
    if any(m in THRESHOLD_METRICS for m in chosen):
        threshold = _check_threshold(threshold)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError(f"n_resamples must be a non-negative integer, got {n_resamples!r}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be a non-negative integer, got {n_resamples!r}")
    s = _Scored(yv, pv, threshold, probability)
    estimates = _estimates(s, chosen)
    counts = _patient_counts(codes, int(n_resamples), seed)
    start = _calibration_start(s, chosen)
    replicates = _bootstrap_replicates(s, codes, counts, chosen, start)
    return _summarise(estimates, replicates, confidence)
