"""Input checks shared by every evaluation function: outcomes, scores, thresholds, patients.

Each check turns what a caller passes (lists, arrays, pandas Series, nullable dtypes) into a
plain float or integer NumPy vector and raises a :class:`ValueError` naming the argument
when it cannot be evaluated: outcomes must be 0 (progression) or 1 (flare); scores must be
finite, one per outcome, and lie in [0, 1] when they are probabilities (a ranking score,
such as a rule's ``decision_function``, may be any finite real); thresholds must be finite
numbers; patient ids must be present for every row. The checks are private to the
``flare_ml.evaluation`` package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


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


def _check_p(p: Any, n: int, name: str = "p", *, probability: bool = True) -> np.ndarray:
    """Scores as a float vector: one per outcome, finite, in [0, 1] if ``probability``."""
    values = np.asarray(pd.Series(p).to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if values.shape != (n,):
        raise ValueError(f"{name} must have one score per outcome ({n}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} holds {int((~np.isfinite(values)).sum())} missing/infinite scores"
        )
    if probability and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            f"{name} must lie in [0, 1] (a probability of flare); found values in "
            f"[{values.min():.4g}, {values.max():.4g}] (a ranking score is evaluated without "
            "probability metrics: leave it out of probability_scorers)"
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
