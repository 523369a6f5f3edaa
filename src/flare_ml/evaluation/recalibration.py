"""Logistic recalibration of scores: the calibration intercept and slope, fitted by Newton.

The calibration slope is ``b`` in ``logit P(flare) = a + b logit(p)`` and the calibration
intercept (calibration-in-the-large) is ``a`` in ``logit P(flare) = a + logit(p)`` with
``logit(p)`` as offset. Both are weighted logistic regressions, fitted here for many weight
vectors at once (one per bootstrap resample) by a vectorised Newton-Raphson: from a nearby
optimum with capped steps first, then from (0, 1) with step halving for the fits that did
not converge; fits that still do not converge (perfect separation, constant scores) give
NaN. Scores are clipped to [1e-12, 1 - 1e-12] before the logit.
"""

from __future__ import annotations

import numpy as np

#: probabilities are clipped to [eps, 1 - eps] for the logit in the calibration fits
#: (scores reach 0 and 1)
_LOGIT_EPS = 1e-12
#: longest Newton step of the recalibration fits, in logit units
_MAX_NEWTON_STEP = 5.0


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _LOGIT_EPS, 1 - _LOGIT_EPS)
    return np.log(q) - np.log1p(-q)


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
