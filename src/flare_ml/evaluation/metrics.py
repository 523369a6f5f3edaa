"""Metric kernels of one scorer: discrimination, calibration and the operating point.

A scorer's outcomes and scores are prepared once (:class:`_Scored`: sort orders, tie
blocks, log-loss terms, calibration bins, confusion cells at the threshold), then every
metric is computed for each row of a matrix of row weights at once, which is how the
patient-level bootstrap evaluates a thousand resamples without a Python loop; weight one
for every row gives the plain metric (:func:`classification_metrics`). Probability metrics
(:data:`PROBABILITY_METRICS`: Brier score, log loss, calibration intercept and slope, ECE)
are computed only for probabilities; for a ranking score they are NaN.
:func:`choose_operating_threshold` picks the threshold that bounds the share of true
progressions called flare.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flare_ml.evaluation.inputs import _check_p, _check_threshold, _check_y
from flare_ml.evaluation.recalibration import _logistic_recalibration, _logit

__all__ = [
    "METRICS",
    "PROBABILITY_METRICS",
    "THRESHOLD_METRICS",
    "choose_operating_threshold",
    "classification_metrics",
]


#: every metric this module computes, in report order
METRICS: tuple[str, ...] = (
    "auroc",
    "auprc",
    "brier",
    "log_loss",
    "calibration_intercept",
    "calibration_slope",
    "ece",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "progression_called_flare",
)

#: the metrics that depend on the operating threshold
THRESHOLD_METRICS: tuple[str, ...] = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "progression_called_flare",
)

#: the metrics that need probabilities (NaN for a ranking score)
PROBABILITY_METRICS: tuple[str, ...] = (
    "brier",
    "log_loss",
    "calibration_intercept",
    "calibration_slope",
    "ece",
)

#: probabilities are clipped to [eps, 1 - eps] for the log loss
_LOG_LOSS_EPS = 1e-15
#: number of equal-width bins of the expected calibration error
_ECE_BINS = 10


@dataclass
class _Scored:
    """One scorer's outcomes and scores with the orderings the metrics need, built once.

    With ``probability=False`` the scores are a ranking (any finite real): the terms of the
    probability metrics (``x``, ``ll``, ``ece_cells``) are not built and those metrics are
    NaN.
    """

    y: np.ndarray
    p: np.ndarray
    threshold: float | None
    probability: bool = True
    x: np.ndarray | None = field(init=False)
    asc: np.ndarray = field(init=False)
    asc_starts: np.ndarray = field(init=False)
    desc: np.ndarray = field(init=False)
    desc_starts: np.ndarray = field(init=False)
    ll: np.ndarray | None = field(init=False)
    ece_cells: np.ndarray | None = field(init=False)
    confusion: np.ndarray | None = field(init=False)

    def __post_init__(self) -> None:
        self.asc = np.argsort(self.p, kind="stable")
        self.asc_starts = _block_starts(self.p[self.asc])
        self.desc = self.asc[::-1]
        self.desc_starts = _block_starts(self.p[self.desc])
        if self.probability:
            self.x = _logit(self.p)
            q = np.clip(self.p, _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
            self.ll = -(self.y * np.log(q) + (1 - self.y) * np.log1p(-q))
            bins = np.clip(np.floor(self.p * _ECE_BINS).astype(int), 0, _ECE_BINS - 1)
            self.ece_cells = np.zeros((len(self.p), _ECE_BINS))
            self.ece_cells[np.arange(len(self.p)), bins] = self.y - self.p
        else:
            self.x = self.ll = self.ece_cells = None
        if self.threshold is None:
            self.confusion = None
        else:
            called = (self.p >= self.threshold).astype(float)
            self.confusion = np.column_stack(
                [
                    self.y * called,  # true flares called flare (TP)
                    self.y * (1 - called),  # true flares called progression (FN)
                    (1 - self.y) * called,  # true progressions called flare (FP)
                    (1 - self.y) * (1 - called),  # true progressions called progression (TN)
                ]
            )


def _block_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Start positions of the runs of tied values in a sorted vector."""
    if len(sorted_values) == 0:
        return np.zeros(0, dtype=int)
    return np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _weighted_auroc(s: _Scored, w: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC (ties count one half) for each row of weights ``w``."""
    ws = w[:, s.asc]
    ys = s.y[s.asc]
    pos = np.add.reduceat(ws * ys, s.asc_starts, axis=1)
    neg = np.add.reduceat(ws * (1 - ys), s.asc_starts, axis=1)
    neg_through = np.cumsum(neg, axis=1)
    num = (pos * (neg_through - 0.5 * neg)).sum(axis=1)
    return _safe_divide(num, pos.sum(axis=1) * neg.sum(axis=1))


def _weighted_auprc(s: _Scored, w: np.ndarray) -> np.ndarray:
    """Average precision (scikit-learn's step-wise definition) for each row of ``w``."""
    ws = w[:, s.desc]
    ys = s.y[s.desc]
    tp = np.cumsum(np.add.reduceat(ws * ys, s.desc_starts, axis=1), axis=1)
    called = np.cumsum(np.add.reduceat(ws, s.desc_starts, axis=1), axis=1)
    precision = np.nan_to_num(_safe_divide(tp, called))
    gained = np.diff(tp, axis=1, prepend=0.0)
    return _safe_divide((gained * precision).sum(axis=1), tp[:, -1])


def _weighted_metrics(
    s: _Scored,
    w: np.ndarray,
    metrics: Sequence[str],
    calibration_start: tuple[float, float, float] | None = None,
) -> dict[str, np.ndarray]:
    """Each metric for every row of weights ``w`` (shape (n_resamples, n_rows)).

    The probability metrics of a ranking score (``s.probability`` false) are NaN.
    """
    out: dict[str, np.ndarray] = {}
    if "auroc" in metrics:
        out["auroc"] = _weighted_auroc(s, w)
    if "auprc" in metrics:
        out["auprc"] = _weighted_auprc(s, w)
    if s.probability:
        out.update(_weighted_probability_metrics(s, w, metrics, calibration_start))
    else:
        out.update({m: np.full(w.shape[0], np.nan) for m in PROBABILITY_METRICS if m in metrics})
    wanted = [m for m in THRESHOLD_METRICS if m in metrics]
    if wanted:
        if s.confusion is None:
            raise ValueError(f"a threshold is needed for {', '.join(wanted)}")
        tp, fn, fp, tn = (w @ s.confusion).T
        values = {
            "sensitivity": _safe_divide(tp, tp + fn),
            "specificity": _safe_divide(tn, tn + fp),
            "ppv": _safe_divide(tp, tp + fp),
            "npv": _safe_divide(tn, tn + fn),
            "progression_called_flare": _safe_divide(fp, fp + tn),
        }
        out.update({m: values[m] for m in wanted})
    return {m: out[m] for m in metrics}


def _weighted_probability_metrics(
    s: _Scored,
    w: np.ndarray,
    metrics: Sequence[str],
    calibration_start: tuple[float, float, float] | None,
) -> dict[str, np.ndarray]:
    """The :data:`PROBABILITY_METRICS` among ``metrics`` for every row of weights ``w``."""
    x, ll, ece_cells = s.x, s.ll, s.ece_cells
    if x is None or ll is None or ece_cells is None:
        raise ValueError("probability metrics need probabilities, not a ranking score")
    out: dict[str, np.ndarray] = {}
    total = w.sum(axis=1)
    if "brier" in metrics:
        out["brier"] = _safe_divide(w @ (s.p - s.y) ** 2, total)
    if "log_loss" in metrics:
        out["log_loss"] = _safe_divide(w @ ll, total)
    if "ece" in metrics:
        out["ece"] = _safe_divide(np.abs(w @ ece_cells).sum(axis=1), total)
    a_slope, b_slope, a_offset = calibration_start or (0.0, 1.0, 0.0)
    if "calibration_slope" in metrics:
        out["calibration_slope"] = _logistic_recalibration(
            x, s.y, w, fit_slope=True, start=(a_slope, b_slope)
        )[1]
    if "calibration_intercept" in metrics:
        out["calibration_intercept"] = _logistic_recalibration(
            x, s.y, w, fit_slope=False, start=(a_offset, 1.0)
        )[0]
    return out


def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(metrics)
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    return chosen


def classification_metrics(
    y: Any, p: Any, threshold: float = 0.5, *, probability: bool = True
) -> dict[str, float]:
    """All metrics of one scorer on one cohort (positive class = flare).

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Scores, higher = more flare-like: probabilities of flare in [0, 1], or with
        ``probability=False`` a ranking score (any finite real, such as a rule's
        ``decision_function``).
    threshold : float, default=0.5
        Operating point: a case is called flare when ``p >= threshold``.
    probability : bool, default=True
        Whether ``p`` holds probabilities. With False the probability metrics
        (:data:`PROBABILITY_METRICS`: Brier score, log loss, calibration intercept and
        slope, ECE) are NaN; discrimination and threshold metrics are computed as usual.

    Returns
    -------
    dict of str to float
        ``n``, ``n_flare``, ``threshold`` and every name in :data:`METRICS`:

        - ``auroc``: area under the ROC curve (ties count one half); NaN with one class.
        - ``auprc``: average precision with flare as the positive class (the step-wise sum
          of scikit-learn's ``average_precision_score``); its chance level is the flare
          prevalence.
        - ``brier``: mean squared error of ``p``; ``log_loss``: mean negative
          log-likelihood, with ``p`` clipped to [1e-15, 1 - 1e-15].
        - ``calibration_slope``: ``b`` of the logistic recalibration ``logit P(flare) = a +
          b logit(p)`` (1 is ideal; below 1 the scores are too extreme, overconfident).
        - ``calibration_intercept``: calibration-in-the-large, ``a`` in ``logit P(flare) =
          a + logit(p)`` with ``logit(p)`` as offset (0 is ideal; positive means the
          scores underestimate the flare rate). Both use ``p`` clipped to [1e-12, 1 -
          1e-12]; NaN when the fit does not converge (perfect separation).
        - ``ece``: expected calibration error over 10 equal-width bins of ``p``,
          ``sum_b n_b / n * |mean(y)_b - mean(p)_b|``.
        - at the threshold: ``sensitivity`` (true flares called flare), ``specificity``
          (true progressions called progression), ``ppv`` (called flare that are flare),
          ``npv`` (called progression that are progression) and
          ``progression_called_flare`` (true progressions called flare, 1 - specificity);
          NaN where the denominator is empty.

    Examples
    --------
    >>> m = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    >>> m["auroc"], m["sensitivity"], m["specificity"], round(m["brier"], 3)
    (0.75, 0.5, 0.5, 0.185)

    A ranking score (here a logit) has the same AUROC but no Brier score:

    >>> r = classification_metrics([0, 0, 1, 1], [-2.2, 0.4, -0.4, 2.2], threshold=0.0,
    ...                            probability=False)
    >>> r["auroc"], r["sensitivity"], r["brier"]
    (0.75, 0.5, nan)

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv), probability=probability)
    t = _check_threshold(threshold)
    s = _Scored(yv, pv, t, probability)
    values = _weighted_metrics(s, np.ones((1, len(yv))), METRICS)
    return {
        "n": float(len(yv)),
        "n_flare": float(yv.sum()),
        "threshold": t,
        **{m: float(values[m][0]) for m in METRICS},
    }


def choose_operating_threshold(y: Any, p: Any, max_progression_called_flare: float = 0.05) -> float:
    """Find the lowest threshold that calls at most the allowed share of progressions flare.

    Choose it on training (out-of-fold) predictions, then apply it unchanged to external
    data, where the share may differ. A case is called flare when ``p >= threshold``; the
    returned threshold is the smallest float above the ``(k+1)``-th highest progression
    score, ``k = floor(max_progression_called_flare * n_progression)``, so at most ``k``
    progressions score at or above it. It exceeds 1 (nothing is called flare) when even
    ``k = 0`` requires it, and it is 0 when ``k`` covers every progression.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Flare scores in [0, 1].
    max_progression_called_flare : float, default=0.05
        Largest allowed share of true progressions called flare (1 - specificity).

    Returns
    -------
    float
        The threshold.

    Raises
    ------
    ValueError
        If there is no progression to bound, or the share is outside [0, 1].

    Examples
    --------
    >>> y = [0, 0, 0, 0, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.8, 0.5, 0.9]
    >>> t = choose_operating_threshold(y, p, max_progression_called_flare=0.25)
    >>> t > 0.3, round(t, 9)  # just above the second-highest progression score
    (True, 0.3)
    >>> choose_operating_threshold(y, p, max_progression_called_flare=0.0) > 0.8
    True

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv))
    alpha = float(max_progression_called_flare)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"max_progression_called_flare must lie in [0, 1], got {alpha!r}")
    negatives = np.sort(pv[yv == 0])[::-1]
    if len(negatives) == 0:
        raise ValueError("no true progression in y: nothing to bound the threshold with")
    k = math.floor(alpha * len(negatives) + 1e-9)
    if k >= len(negatives):
        return 0.0
    return float(np.nextafter(negatives[k], np.inf))
