"""Metrics within subgroups (cancer type, therapy class) and subgroups from features.

:func:`subgroup_metrics` reports counts and the headline metrics (AUROC, sensitivity and
specificity at the threshold, each with an optional patient-level bootstrap interval, and
the calibration slope) within each level of each grouping variable, leaving levels below a
minimum size with counts only, and flags levels too small to read (:func:`is_small_n`);
:func:`subgroups_from_features` recovers the grouping variables from the featurizer's
one-hot columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.evaluation.bootstrap import bootstrap_metrics
from flare_ml.evaluation.inputs import _check_groups, _check_p, _check_threshold, _check_y
from flare_ml.evaluation.metrics import classification_metrics

__all__ = [
    "SMALL_N_CLASS",
    "SMALL_N_ROWS",
    "is_small_n",
    "subgroup_metrics",
    "subgroups_from_features",
]

#: a subgroup level with fewer index rows than this is flagged ``small_n``
SMALL_N_ROWS = 30
#: ... and so is one with fewer than this many flares or progressions
SMALL_N_CLASS = 20

#: metrics of a level that get a bootstrap interval (when asked for)
_WITH_CI = ("auroc", "sensitivity", "specificity")

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
    "sensitivity_ci_low",
    "sensitivity_ci_high",
    "specificity_ci_low",
    "specificity_ci_high",
    "small_n",
]


def is_small_n(n: int, n_flare: int, n_progression: int) -> bool:
    """Whether a subgroup is too small to read its metrics as more than a hint.

    Fewer than :data:`SMALL_N_ROWS` index rows, or fewer than :data:`SMALL_N_CLASS` of
    either outcome: the interval of a metric is then wide and its point estimate can be
    1.000 by chance.

    Examples
    --------
    >>> is_small_n(20, 5, 15), is_small_n(120, 50, 70), is_small_n(200, 185, 15)
    (True, False, True)

    """
    return n < SMALL_N_ROWS or min(n_flare, n_progression) < SMALL_N_CLASS


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
    probability: bool = True,
) -> pd.DataFrame:
    """Metrics within each level of each subgroup variable (cancer type, therapy class).

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    p : array-like of shape (n,)
        Flare scores: probabilities in [0, 1], or any finite reals with
        ``probability=False``.
    subgroups : pandas.DataFrame or Series
        One column per grouping variable, rows aligned with ``y`` by position (see
        :func:`subgroups_from_features`). Missing values form a level ``"missing"``.
    threshold : float, default=0.5
        Operating point for sensitivity and specificity.
    min_size : int, default=20
        Levels with fewer rows are listed with their counts but NaN metrics.
    groups : array-like of shape (n,), optional
        Patient ids; with ``n_resamples > 0``, the AUROC, sensitivity and specificity get
        patient-level bootstrap intervals within each level.
    n_resamples : int, default=0
        Bootstrap resamples for the intervals of AUROC, sensitivity and specificity (0:
        no interval).
    seed : int, default=0
        Seed of the resampling.
    confidence : float, default=0.95
        Coverage of the interval.
    probability : bool, default=True
        Whether ``p`` holds probabilities; with False (a ranking score) the
        ``calibration_slope`` column is NaN.

    Returns
    -------
    pandas.DataFrame
        One row per (variable, level): ``variable``, ``level``, ``n``, ``n_flare``,
        ``n_progression``, ``auroc``, ``auroc_ci_low``, ``auroc_ci_high``,
        ``calibration_slope``, ``sensitivity``, ``specificity``,
        ``sensitivity_ci_low``, ``sensitivity_ci_high``, ``specificity_ci_low``,
        ``specificity_ci_high`` (NaN where undefined: one outcome class, too few rows,
        no interval asked for, a ranking score's calibration slope) and ``small_n``
        (:func:`is_small_n`).

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
    >>> bool(np.isnan(table.loc[1, "auroc"])), table["small_n"].tolist()
    (True, [False, True])

    """
    yv = _check_y(y)
    pv = _check_p(p, len(yv), probability=probability)
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
            row.update(dict.fromkeys(_SUBGROUP_COLUMNS[5:-1], np.nan))
            row["small_n"] = is_small_n(row["n"], row["n_flare"], row["n_progression"])
            if row["n"] >= min_size:
                m = classification_metrics(ys, ps, t, probability=probability)
                row.update({k: m[k] for k in ("auroc", "calibration_slope")})
                row.update({k: m[k] for k in ("sensitivity", "specificity")})
                if codes is not None and n_resamples > 0 and np.isfinite(m["auroc"]):
                    ci = bootstrap_metrics(
                        ys,
                        ps,
                        codes[mask],
                        t,
                        n_resamples=n_resamples,
                        seed=seed,
                        metrics=_WITH_CI,
                        confidence=confidence,
                        probability=probability,
                    ).set_index("metric")
                    for metric in _WITH_CI:
                        row[f"{metric}_ci_low"] = ci.loc[metric, "ci_low"]
                        row[f"{metric}_ci_high"] = ci.loc[metric, "ci_high"]
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
