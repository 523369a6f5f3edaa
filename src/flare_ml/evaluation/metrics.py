"""Metrics for P(flare) scores: discrimination, calibration, operating point, uncertainty.

Everything here scores a vector ``p`` of flare scores against outcomes ``y`` with the
project's convention: **the positive class is flare (y = 1), progression is y = 0**, and a
case is *called flare* when ``p >= threshold``. So sensitivity is the share of true flares
called flare, specificity the share of true progressions called progression, and
``progression_called_flare`` (= 1 - specificity) the harm the operating point is chosen to
bound: a failing therapy continued. Learned models, rule baselines (whose scores are
rankings, not probabilities) and the simulator's Bayes-optimal oracle are all just
*scorers* and are evaluated side by side by :func:`evaluate`. Confidence intervals come from
a **patient-level** bootstrap (patients are resampled with replacement and bring all their
index rows), computed as weighted metrics over a matrix of resampling weights so that 1,000
resamples of a few thousand rows take well under a second per scorer; the same seed gives
the same resamples for every scorer, so differences between scorers are paired.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_DECISION_THRESHOLDS",
    "METRICS",
    "THRESHOLD_METRICS",
    "Evaluation",
    "bootstrap_metrics",
    "calibration_curve_table",
    "choose_operating_threshold",
    "classification_metrics",
    "decision_curve",
    "evaluate",
    "patient_bootstrap_weights",
    "subgroup_metrics",
    "subgroups_from_features",
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

#: threshold probabilities of the decision curves: 0.05, 0.10, ..., 0.95
DEFAULT_DECISION_THRESHOLDS: np.ndarray = np.round(np.arange(0.05, 0.96, 0.05), 2)

#: probabilities are clipped to [eps, 1 - eps] for the log loss
_LOG_LOSS_EPS = 1e-15
#: ... and to this for the logit in the calibration fits (rule scores reach 0 and 1)
_LOGIT_EPS = 1e-12
#: number of equal-width bins of the expected calibration error
_ECE_BINS = 10
#: longest Newton step of the recalibration fits, in logit units
_MAX_NEWTON_STEP = 5.0
#: largest number of (resample x row) cells held in memory at once
_CHUNK_CELLS = 200_000


# --- input checks --------------------------------------------------------------------


def _check_y(y: Any) -> np.ndarray:
    values = np.asarray(pd.Series(y).to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if values.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {values.shape}")
    if len(values) == 0:
        raise ValueError("y is empty: no index rows to evaluate")
    if not np.isin(values, (0.0, 1.0)).all():
        bad = pd.unique(values[~np.isin(values, (0.0, 1.0))])[:5].tolist()
        raise ValueError(f"y must hold 1 (flare) or 0 (progression) only; found {bad}")
    return values


def _check_p(p: Any, n: int, name: str = "p") -> np.ndarray:
    values = np.asarray(pd.Series(p).to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if values.shape != (n,):
        raise ValueError(f"{name} must have one score per outcome ({n}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} holds {int((~np.isfinite(values)).sum())} missing/infinite scores"
        )
    if values.min() < 0 or values.max() > 1:
        raise ValueError(
            f"{name} must lie in [0, 1] (a P(flare) or a rule's ranking score); "
            f"found values in [{values.min():.4g}, {values.max():.4g}]"
        )
    return values


def _check_threshold(threshold: Any) -> float:
    if threshold is None or isinstance(threshold, bool) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _check_groups(groups: Any, n: int) -> np.ndarray:
    codes = pd.factorize(pd.Series(np.asarray(groups, dtype=object)), sort=True)[0]
    if codes.shape != (n,):
        raise ValueError(f"groups must give one patient id per row ({n}), got {codes.shape}")
    if (codes < 0).any():
        raise ValueError("groups (patient ids) must not be missing")
    return codes


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _LOGIT_EPS, 1 - _LOGIT_EPS)
    return np.log(q) - np.log1p(-q)


# --- weighted metrics over a matrix of resampling weights ------------------------------


@dataclass
class _Scored:
    """One scorer's outcomes and scores with the orderings the metrics need, built once."""

    y: np.ndarray
    p: np.ndarray
    threshold: float | None
    x: np.ndarray = field(init=False)
    asc: np.ndarray = field(init=False)
    asc_starts: np.ndarray = field(init=False)
    desc: np.ndarray = field(init=False)
    desc_starts: np.ndarray = field(init=False)
    ll: np.ndarray = field(init=False)
    ece_cells: np.ndarray = field(init=False)
    confusion: np.ndarray | None = field(init=False)

    def __post_init__(self) -> None:
        self.x = _logit(self.p)
        self.asc = np.argsort(self.p, kind="stable")
        self.asc_starts = _block_starts(self.p[self.asc])
        self.desc = self.asc[::-1]
        self.desc_starts = _block_starts(self.p[self.desc])
        q = np.clip(self.p, _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
        self.ll = -(self.y * np.log(q) + (1 - self.y) * np.log1p(-q))
        bins = np.clip(np.floor(self.p * _ECE_BINS).astype(int), 0, _ECE_BINS - 1)
        self.ece_cells = np.zeros((len(self.p), _ECE_BINS))
        self.ece_cells[np.arange(len(self.p)), bins] = self.y - self.p
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


def _newton(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    fit_slope: bool,
    line_search: bool,
    max_iter: int,
    tol: float,
) -> np.ndarray:
    """Newton-Raphson for the rows of ``w``, updating ``a`` and ``b`` in place.

    Returns the mask of rows that converged. Without ``line_search`` the step is only
    capped in length (fast; for starts near the optimum); with it, halved until the
    log-likelihood does not fall.
    """
    n_fits = w.shape[0]
    done = np.zeros(n_fits, dtype=bool)
    failed = np.zeros(n_fits, dtype=bool)

    def loglik(rows: np.ndarray, a_: np.ndarray, b_: np.ndarray) -> np.ndarray:
        eta = a_[:, None] + b_[:, None] * x
        return (w[rows] * (y * eta - np.logaddexp(0.0, eta))).sum(axis=1)

    for _ in range(max_iter):
        rows = np.flatnonzero(~done & ~failed)
        if len(rows) == 0:
            break
        wr = w if len(rows) == n_fits else w[rows]
        eta = b[rows, None] * x
        eta += a[rows, None]
        mu = np.negative(eta)
        with np.errstate(over="ignore"):
            np.exp(mu, out=mu)
        mu += 1.0
        np.reciprocal(mu, out=mu)
        resid = y - mu
        resid *= wr
        curv = 1.0 - mu
        curv *= mu
        curv *= wr
        ga, h00 = resid.sum(axis=1), curv.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if fit_slope:
                gb, h01, h11 = resid @ x, curv @ x, curv @ (x * x)
                det = h00 * h11 - h01**2
                da = (h11 * ga - h01 * gb) / det
                db = (h00 * gb - h01 * ga) / det
                bad = ~(np.isfinite(da) & np.isfinite(db)) | ~(det > 1e-12 * h00 * h11)
            else:
                da = ga / h00
                db = np.zeros_like(da)
                bad = ~np.isfinite(da) | ~(h00 > 0)
        failed[rows[bad]] = True
        keep = ~bad
        rows, da, db = rows[keep], da[keep], db[keep]
        if len(rows) == 0:
            break
        size = np.maximum(np.abs(da), np.abs(db))
        step = np.minimum(1.0, _MAX_NEWTON_STEP / np.maximum(size, 1e-300))
        if line_search:
            old = (wr[keep] * (y * eta[keep] - np.logaddexp(0.0, eta[keep]))).sum(axis=1)
            for _halving in range(40):
                new = loglik(rows, a[rows] + step * da, b[rows] + step * db)
                worse = new < old - 1e-12 * np.abs(old)
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
        a[rows] += step * da
        b[rows] += step * db
        done[rows[step * size < tol]] = True
    return done


def _logistic_recalibration(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    *,
    fit_slope: bool,
    start: tuple[float, float] | None = None,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic regression of ``y`` on ``x`` = logit(p), one fit per row of ``w``.

    With ``fit_slope`` the model is ``logit P(y) = a + b x`` (returns a and b); without,
    ``logit P(y) = a + x`` (``x`` as offset, b fixed at 1). Newton-Raphson: from
    ``start`` (a nearby optimum, as in a bootstrap) first with capped steps only, then,
    for fits that did not converge and always without ``start``, from (0, 1) with step
    halving on the log-likelihood. Fits that still do not converge (perfect separation,
    constant ``x``) give NaN.
    """
    n_fits = w.shape[0]
    a, b = np.zeros(n_fits), np.ones(n_fits)
    done = np.zeros(n_fits, dtype=bool)
    if start is not None:
        a[:] = start[0]
        b[:] = start[1] if fit_slope else 1.0
        done = _newton(x, y, w, a, b, fit_slope=fit_slope, line_search=False, max_iter=25, tol=tol)
    rest = np.flatnonzero(~done)
    if len(rest):
        a_rest, b_rest = np.zeros(len(rest)), np.ones(len(rest))
        done_rest = _newton(
            x,
            y,
            w[rest],
            a_rest,
            b_rest,
            fit_slope=fit_slope,
            line_search=True,
            max_iter=200,
            tol=tol,
        )
        a[rest], b[rest] = a_rest, b_rest
        done[rest] = done_rest
    return np.where(done, a, np.nan), np.where(done, b, np.nan)


def _weighted_metrics(
    s: _Scored,
    w: np.ndarray,
    metrics: Sequence[str],
    calibration_start: tuple[float, float, float] | None = None,
) -> dict[str, np.ndarray]:
    """Each metric for every row of weights ``w`` (shape (n_resamples, n_rows))."""
    out: dict[str, np.ndarray] = {}
    total = w.sum(axis=1)
    if "auroc" in metrics:
        out["auroc"] = _weighted_auroc(s, w)
    if "auprc" in metrics:
        out["auprc"] = _weighted_auprc(s, w)
    if "brier" in metrics:
        out["brier"] = _safe_divide(w @ (s.p - s.y) ** 2, total)
    if "log_loss" in metrics:
        out["log_loss"] = _safe_divide(w @ s.ll, total)
    if "ece" in metrics:
        out["ece"] = _safe_divide(np.abs(w @ s.ece_cells).sum(axis=1), total)
    a_slope, b_slope, a_offset = calibration_start or (0.0, 1.0, 0.0)
    if "calibration_slope" in metrics:
        out["calibration_slope"] = _logistic_recalibration(
            s.x, s.y, w, fit_slope=True, start=(a_slope, b_slope)
        )[1]
    if "calibration_intercept" in metrics:
        out["calibration_intercept"] = _logistic_recalibration(
            s.x, s.y, w, fit_slope=False, start=(a_offset, 1.0)
        )[0]
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


def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(metrics)
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    return chosen


# --- public metrics ----------------------------------------------------------------------


def classification_metrics(y: Any, p: Any, threshold: float = 0.5) -> dict[str, float]:
    """All metrics of one scorer on one cohort (positive class = flare).

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Scores in [0, 1], higher = more flare-like (a P(flare), or a rule's ranking score).
    threshold : float, default=0.5
        Operating point: a case is called flare when ``p >= threshold``.

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

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv))
    t = _check_threshold(threshold)
    s = _Scored(yv, pv, t)
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
        Equal-width bins on [0, 1] (as in :func:`classification_metrics`' ECE; empty bins
        are kept with ``n = 0``) or bins of about equal size (quantiles of ``p``).

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


# --- patient-level bootstrap ----------------------------------------------------------


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
    """Full-data recalibration fits, the Newton starting point of every resample's fit."""
    if not {"calibration_slope", "calibration_intercept"} & set(metrics):
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
        Flare scores in [0, 1].
    groups : array-like of shape (n,)
        Patient id of each row.
    threshold : float or None, default=0.5
        Operating point for the threshold metrics (``p >= threshold`` is called flare);
        None is allowed when ``metrics`` holds none of :data:`THRESHOLD_METRICS`.
    n_resamples : int, default=1000
        Number of bootstrap resamples (0 gives the estimates with NaN intervals).
    seed : int, default=0
        Seed of the resampling; same seed, same output.
    metrics : iterable of str, default=METRICS
        Metrics to compute (names of :data:`METRICS`, see :func:`classification_metrics`).
    confidence : float, default=0.95
        Coverage of the percentile interval.

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
    pv = _check_p(p, len(yv))
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
    s = _Scored(yv, pv, threshold)
    estimates = _estimates(s, chosen)
    counts = _patient_counts(codes, int(n_resamples), seed)
    start = _calibration_start(s, chosen)
    replicates = _bootstrap_replicates(s, codes, counts, chosen, start)
    return _summarise(estimates, replicates, confidence)


# --- subgroups -------------------------------------------------------------------------


_SUBGROUP_COLUMNS = [
    "variable",
    "level",
    "n",
    "n_flare",
    "n_progression",
    "auroc",
    "auroc_ci_low",
    "auroc_ci_high",
    "calibration_slope",
    "sensitivity",
    "specificity",
]


def _as_subgroup_frame(subgroups: Any, n: int) -> pd.DataFrame:
    if isinstance(subgroups, pd.Series):
        frame = subgroups.to_frame(name=subgroups.name or "subgroup")
    elif isinstance(subgroups, pd.DataFrame):
        frame = subgroups
    else:
        raise ValueError("subgroups must be a pandas DataFrame or Series")
    if len(frame) != n:
        raise ValueError(f"subgroups must have one row per outcome ({n}), got {len(frame)}")
    return frame.reset_index(drop=True)


def subgroup_metrics(
    y: Any,
    p: Any,
    subgroups: pd.DataFrame | pd.Series,
    threshold: float = 0.5,
    min_size: int = 20,
    *,
    groups: Any = None,
    n_resamples: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Metrics within each level of each subgroup variable (cancer type, therapy class).

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Flare scores in [0, 1].
    subgroups : pandas.DataFrame or Series
        One column per grouping variable, rows aligned with ``y`` by position (see
        :func:`subgroups_from_features`). Missing values form a level ``"missing"``.
    threshold : float, default=0.5
        Operating point for sensitivity and specificity.
    min_size : int, default=20
        Levels with fewer rows are listed with their counts but NaN metrics.
    groups : array-like of shape (n,), optional
        Patient ids; with ``n_resamples > 0``, the AUROC gets a patient-level bootstrap
        interval within each level.
    n_resamples : int, default=0
        Bootstrap resamples for the AUROC interval (0: no interval).
    seed : int, default=0
        Seed of the resampling.
    confidence : float, default=0.95
        Coverage of the interval.

    Returns
    -------
    pandas.DataFrame
        One row per (variable, level): ``variable``, ``level``, ``n``, ``n_flare``,
        ``n_progression``, ``auroc``, ``auroc_ci_low``, ``auroc_ci_high``,
        ``calibration_slope``, ``sensitivity``, ``specificity``; NaN where undefined
        (one outcome class, too few rows, no interval asked for).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> cancer = pd.Series(np.where(np.arange(400) < 390, "breast", "nsclc"), name="cancer_type")
    >>> table = subgroup_metrics(y, p, cancer, threshold=0.5, min_size=20)
    >>> table[["level", "n"]].to_numpy().tolist()
    [['breast', 390], ['nsclc', 10]]
    >>> bool(np.isnan(table.loc[1, "auroc"]))
    True

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv))
    t = _check_threshold(threshold)
    frame = _as_subgroup_frame(subgroups, len(yv))
    codes = None if groups is None else _check_groups(groups, len(yv))
    rows = []
    for variable in frame.columns:
        column = frame[variable]
        if isinstance(column.dtype, pd.CategoricalDtype):
            levels = [lvl for lvl in column.cat.categories if (column == lvl).any()]
        else:
            levels = sorted(pd.unique(column.dropna()).tolist(), key=str)
        labels = column.astype(object).where(column.notna(), "missing")
        if column.isna().any():
            levels.append("missing")
        for level in levels:
            mask = (labels == level).to_numpy()
            ys, ps = yv[mask], pv[mask]
            row: dict[str, Any] = {
                "variable": str(variable),
                "level": str(level),
                "n": int(mask.sum()),
                "n_flare": int(ys.sum()),
                "n_progression": int(mask.sum() - ys.sum()),
            }
            row.update(dict.fromkeys(_SUBGROUP_COLUMNS[5:], np.nan))
            if row["n"] >= min_size:
                m = classification_metrics(ys, ps, t)
                row.update({k: m[k] for k in ("auroc", "calibration_slope")})
                row.update({k: m[k] for k in ("sensitivity", "specificity")})
                if codes is not None and n_resamples > 0 and np.isfinite(m["auroc"]):
                    ci = bootstrap_metrics(
                        ys,
                        ps,
                        codes[mask],
                        None,
                        n_resamples=n_resamples,
                        seed=seed,
                        metrics=("auroc",),
                        confidence=confidence,
                    ).iloc[0]
                    row["auroc_ci_low"], row["auroc_ci_high"] = ci["ci_low"], ci["ci_high"]
            rows.append(row)
    return pd.DataFrame(rows, columns=_SUBGROUP_COLUMNS)


def subgroups_from_features(
    X: pd.DataFrame, variables: Sequence[str] = ("cancer_type", "therapy_class")
) -> pd.DataFrame:
    """Recover categorical subgroup columns from the one-hot features of the featurizer.

    Parameters
    ----------
    X : pandas.DataFrame
        Output of :class:`~flare_ml.features.TimepointFeaturizer` (columns such as
        ``cancer_type_nsclc``).
    variables : sequence of str, default=("cancer_type", "therapy_class")
        Prefixes of the one-hot groups.

    Returns
    -------
    pandas.DataFrame
        One text column per variable, indexed like ``X``; missing where no one-hot column
        is set.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"cancer_type_nsclc": [1.0, 0.0], "cancer_type_breast": [0.0, 1.0]})
    >>> subgroups_from_features(X, ["cancer_type"])["cancer_type"].tolist()
    ['nsclc', 'breast']

    """
    out = {}
    for variable in variables:
        prefix = f"{variable}_"
        columns = [col for col in X.columns if str(col).startswith(prefix)]
        if not columns:
            raise ValueError(f"X has no one-hot columns named '{prefix}*' for {variable!r}")
        values = X[columns].to_numpy(dtype=float, na_value=0.0)
        levels = np.array([str(col)[len(prefix) :] for col in columns], dtype=object)
        chosen = levels[values.argmax(axis=1)]
        out[variable] = pd.Series(
            np.where(values.max(axis=1) > 0, chosen, None), index=X.index, dtype="str"
        )
    return pd.DataFrame(out, index=X.index)


# --- evaluation of several scorers -----------------------------------------------------


_HEADLINE = (
    ("auroc", "AUROC"),
    ("auprc", "AUPRC"),
    ("brier", "Brier"),
    ("calibration_slope", "calibration slope"),
    ("ece", "ECE"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
)
_WITH_CI = frozenset({"auroc", "calibration_slope", "sensitivity", "specificity"})


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (NaN as None, numpy scalars as Python)."""
    records = []
    for record in frame.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            clean[str(key)] = value
        records.append(clean)
    return records


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Side-by-side evaluation of several scorers on one cohort, as tidy tables.

    Built by :func:`evaluate`; the positive class is flare throughout.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per scorer x metric: ``scorer``, ``metric``, ``estimate``, ``ci_low``,
        ``ci_high``, ``n_resamples``.
    decision_curves : pandas.DataFrame
        :func:`decision_curve` of every scorer, with a ``scorer`` column.
    subgroups : pandas.DataFrame
        :func:`subgroup_metrics` of every scorer, with a ``scorer`` column (empty without
        subgroups).
    calibration : pandas.DataFrame
        :func:`calibration_curve_table` of every scorer, with a ``scorer`` column.
    comparisons : pandas.DataFrame
        Paired bootstrap differences ``scorer - reference`` in AUROC, AUPRC and Brier
        (``scorer``, ``reference``, ``metric``, ``difference``, ``ci_low``, ``ci_high``);
        empty without a reference.
    thresholds : dict of str to float
        Operating threshold of each scorer.
    n, n_flare, n_patients : int
        Index rows, flares among them, patients.
    n_resamples, seed : int
        Bootstrap settings.
    confidence : float
        Coverage of the intervals.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(size=300)
    >>> y = (rng.uniform(size=300) < p).astype(int)
    >>> result = evaluate(y, {"model": p}, patient_ids=np.arange(300), n_resamples=50)
    >>> result.scorers, result.n
    (['model'], 300)
    >>> sorted(result.to_dict())[:3]
    ['calibration', 'comparisons', 'confidence']

    """

    metrics: pd.DataFrame
    decision_curves: pd.DataFrame
    subgroups: pd.DataFrame
    calibration: pd.DataFrame
    comparisons: pd.DataFrame
    thresholds: dict[str, float]
    n: int
    n_flare: int
    n_patients: int
    n_resamples: int
    seed: int
    confidence: float = 0.95

    @property
    def scorers(self) -> list[str]:
        """Scorer names in the order given to :func:`evaluate`.

        Examples
        --------
        >>> evaluate([0, 1], {"b": [0.1, 0.9], "a": [0.4, 0.6]}, [1, 2], n_resamples=0).scorers
        ['b', 'a']

        """
        return list(dict.fromkeys(self.metrics["scorer"]))

    def estimate(self, scorer: str, metric: str) -> float:
        """One metric estimate of one scorer.

        Parameters
        ----------
        scorer : str
            Scorer name.
        metric : str
            Metric name (:data:`METRICS`).

        Returns
        -------
        float
            The estimate.

        Examples
        --------
        >>> result = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4],
        ...                   n_resamples=0)
        >>> result.estimate("m", "auroc")
        1.0

        """
        rows = self.metrics[(self.metrics["scorer"] == scorer) & (self.metrics["metric"] == metric)]
        if rows.empty:
            raise KeyError(f"no metric {metric!r} for scorer {scorer!r}")
        return float(rows["estimate"].iloc[0])

    def summary_table(self, formatted: bool = True, digits: int = 3) -> pd.DataFrame:
        """Headline table: one row per scorer.

        Parameters
        ----------
        formatted : bool, default=True
            Text cells such as ``"0.812 [0.781, 0.840]"`` (AUROC, calibration slope,
            sensitivity and specificity with their intervals); with False, numeric
            columns ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``.
        digits : int, default=3
            Decimals of the text cells.

        Returns
        -------
        pandas.DataFrame
            Columns: scorer, threshold, AUROC, AUPRC, Brier, calibration slope, ECE,
            sensitivity, specificity (the last two at the threshold).

        Examples
        --------
        >>> result = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4],
        ...                   n_resamples=0)
        >>> result.summary_table(digits=2).loc[0, ["AUROC", "sensitivity"]].tolist()
        ['1.00', '1.00']

        """
        table = self.metrics.set_index(["scorer", "metric"])
        rows = []
        for scorer in self.scorers:
            row: dict[str, Any] = {"scorer": scorer, "threshold": self.thresholds[scorer]}
            for metric, label in _HEADLINE:
                if (scorer, metric) not in table.index:
                    continue
                est, low, high = table.loc[(scorer, metric), ["estimate", "ci_low", "ci_high"]]
                if not formatted:
                    row.update({metric: est, f"{metric}_ci_low": low, f"{metric}_ci_high": high})
                elif metric in _WITH_CI and np.isfinite(low):
                    row[label] = f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
                else:
                    row[label] = "NaN" if not np.isfinite(est) else f"{est:.{digits}f}"
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready lists of records (NaN becomes None).

        Returns
        -------
        dict
            Keys ``summary``, ``metrics``, ``decision_curves``, ``subgroups``,
            ``calibration``, ``comparisons``, ``thresholds``, ``n``, ``n_flare``,
            ``n_patients``, ``n_resamples``, ``seed``, ``confidence``.

        Examples
        --------
        >>> import json
        >>> result = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4],
        ...                   n_resamples=0)
        >>> json.loads(json.dumps(result.to_dict()))["summary"][0]["auroc"]
        1.0

        """
        return {
            "summary": _records(self.summary_table(formatted=False)),
            "metrics": _records(self.metrics),
            "decision_curves": _records(self.decision_curves),
            "subgroups": _records(self.subgroups),
            "calibration": _records(self.calibration),
            "comparisons": _records(self.comparisons),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "n": self.n,
            "n_flare": self.n_flare,
            "n_patients": self.n_patients,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "confidence": self.confidence,
        }


def _resolve_patient_ids(y: Any, patient_ids: Any) -> Any:
    if patient_ids is not None:
        return patient_ids
    index = getattr(y, "index", None)
    if isinstance(index, pd.MultiIndex) and "patient_id" in index.names:
        return index.get_level_values("patient_id")
    raise ValueError(
        "patient_ids are needed for the patient-level bootstrap (or pass y as the Series "
        "of flare_ml.features.index_outcomes, whose index holds them)"
    )


def evaluate(
    y: Any,
    scores: Mapping[str, Any],
    patient_ids: Any = None,
    thresholds: Mapping[str, float] | float = 0.5,
    subgroups: pd.DataFrame | pd.Series | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    *,
    metrics: Iterable[str] = METRICS,
    reference: str | None = None,
    decision_thresholds: Any = None,
    calibration_bins: int = 10,
    subgroup_min_size: int = 20,
    confidence: float = 0.95,
) -> Evaluation:
    """Evaluate several scorers on one cohort, side by side, with paired bootstrap CIs.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression (for example
        :func:`flare_ml.features.index_outcomes`).
    scores : mapping of str to array-like
        Scorer name (``"xgboost"``, ``"seed_criteria"``, ``"oracle"``, ...) to its flare
        scores, aligned with ``y``.
    patient_ids : array-like of shape (n,), optional
        Patient of each row; taken from ``y``'s index level ``patient_id`` when omitted.
    thresholds : mapping of str to float, or float, default=0.5
        Operating threshold of each scorer (chosen beforehand, for example by
        :func:`choose_operating_threshold` on training data); one float applies to all.
    subgroups : pandas.DataFrame or Series, optional
        Grouping variables aligned with ``y`` (see :func:`subgroups_from_features`).
    n_resamples : int, default=1000
        Patient-level bootstrap resamples (shared by all scorers, so comparisons are
        paired).
    seed : int, default=0
        Seed of the resampling; the same seed gives identical output.
    metrics : iterable of str, default=METRICS
        Metrics of the ``metrics`` table.
    reference : str, optional
        A scorer to compare all others with (paired differences in AUROC, AUPRC, Brier).
    decision_thresholds : array-like, optional
        Threshold probabilities of the decision curves (default 0.05 to 0.95).
    calibration_bins : int, default=10
        Equal-width bins of the calibration table.
    subgroup_min_size : int, default=20
        Smallest subgroup level with metrics.
    confidence : float, default=0.95
        Coverage of the intervals.

    Returns
    -------
    Evaluation
        The tables.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> ev = evaluate(y, {"model": p, "coin": rng.uniform(size=400)},
    ...               patient_ids=np.arange(400), n_resamples=100, reference="coin")
    >>> ev.summary_table()[["scorer", "AUROC"]].to_numpy().tolist()  # doctest: +SKIP
    [['model', '0.84 [0.80, 0.88]'], ['coin', '0.49 [0.43, 0.55]']]
    >>> ev.estimate("model", "auroc") > ev.estimate("coin", "auroc")
    True

    """
    yv = _check_y(y)
    if not scores:
        raise ValueError("scores is empty: give at least one scorer")
    chosen = _check_metrics(metrics)
    codes = _check_groups(_resolve_patient_ids(y, patient_ids), len(yv))
    if reference is not None and reference not in scores:
        raise ValueError(f"reference {reference!r} is not one of the scorers {list(scores)}")
    scored: dict[str, _Scored] = {}
    chosen_thresholds: dict[str, float] = {}
    for name, values in scores.items():
        if isinstance(values, pd.Series) and isinstance(y, pd.Series):
            if not values.index.equals(y.index):
                raise ValueError(f"scores[{name!r}] is not aligned with y (different index)")
        if isinstance(thresholds, Mapping):
            if name not in thresholds:
                raise ValueError(
                    f"no threshold for scorer {name!r}; thresholds has {list(thresholds)}"
                )
            threshold = thresholds[name]
        else:
            threshold = thresholds
        chosen_thresholds[name] = _check_threshold(threshold)
        scored[name] = _Scored(
            yv, _check_p(values, len(yv), f"scores[{name!r}]"), chosen_thresholds[name]
        )

    if isinstance(subgroups, pd.Series | pd.DataFrame) and isinstance(y, pd.Series):
        both_labelled = not isinstance(subgroups.index, pd.RangeIndex) and not isinstance(
            y.index, pd.RangeIndex
        )
        if both_labelled and not subgroups.index.equals(y.index):
            raise ValueError("subgroups are not aligned with y (different index)")
    counts = _patient_counts(codes, int(n_resamples), seed)
    compared = ("auroc", "auprc", "brier")
    metric_tables, curves, calibration, subgroup_tables = [], [], [], []
    replicates: dict[str, dict[str, np.ndarray]] = {}
    estimates: dict[str, dict[str, float]] = {}
    for name, s in scored.items():
        needed = tuple(dict.fromkeys((*chosen, *(compared if reference else ()))))
        estimates[name] = _estimates(s, needed)
        replicates[name] = _bootstrap_replicates(
            s, codes, counts, needed, _calibration_start(s, needed)
        )
        table = _summarise(estimates[name], {m: replicates[name][m] for m in chosen}, confidence)
        metric_tables.append(table.assign(scorer=name))
        curves.append(decision_curve(yv, s.p, decision_thresholds).assign(scorer=name))
        calibration.append(calibration_curve_table(yv, s.p, calibration_bins).assign(scorer=name))
        if subgroups is not None:
            subgroup_tables.append(
                subgroup_metrics(
                    yv,
                    s.p,
                    subgroups,
                    chosen_thresholds[name],
                    subgroup_min_size,
                    groups=codes,
                    n_resamples=n_resamples,
                    seed=seed,
                    confidence=confidence,
                ).assign(scorer=name)
            )

    comparison_rows = []
    if reference is not None:
        tail = (1 - confidence) / 2
        for name in scored:
            if name == reference:
                continue
            for metric in compared:
                diff = replicates[name][metric] - replicates[reference][metric]
                finite = diff[np.isfinite(diff)]
                low, high = np.quantile(finite, [tail, 1 - tail]) if len(finite) else (np.nan,) * 2
                comparison_rows.append(
                    {
                        "scorer": name,
                        "reference": reference,
                        "metric": metric,
                        "difference": estimates[name][metric] - estimates[reference][metric],
                        "ci_low": float(low),
                        "ci_high": float(high),
                    }
                )

    def stack(tables: list[pd.DataFrame], columns: Sequence[str] = ()) -> pd.DataFrame:
        if not tables:
            return pd.DataFrame(columns=["scorer", *columns])
        frame = pd.concat(tables, ignore_index=True)
        return frame[["scorer", *[c for c in frame.columns if c != "scorer"]]]

    return Evaluation(
        metrics=stack(metric_tables),
        decision_curves=stack(curves),
        subgroups=stack(subgroup_tables, _SUBGROUP_COLUMNS),
        calibration=stack(calibration),
        comparisons=pd.DataFrame(
            comparison_rows,
            columns=["scorer", "reference", "metric", "difference", "ci_low", "ci_high"],
        ),
        thresholds=chosen_thresholds,
        n=len(yv),
        n_flare=int(yv.sum()),
        n_patients=int(codes.max()) + 1 if len(codes) else 0,
        n_resamples=int(n_resamples),
        seed=seed,
        confidence=confidence,
    )
