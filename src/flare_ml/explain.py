"""Exact SHAP explanations, grouped into clinical signals and written as reasons.

XGBoost computes exact TreeSHAP contributions itself (``pred_contribs=True``): one value
per feature plus a bias, in log-odds of flare, that add up to the model's margin. This
module groups the engineered features back into the clinical signals a clinician weighs
(time since treatment start, extraosseous response, ALP course, bone findings, therapy,
clinical course), and turns the strongest signals of each index assessment into reasons
in words with the patient's own values, for example "extraosseous partial response (SLD
-35% from baseline): toward flare". It also draws the global summary and dependence
plots with shap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from flare_ml.data.contract import CANCER_NAMES, THERAPY_NAMES
from flare_ml.features import FEATURE_GROUPS

#: clinical signal of each feature
SIGNALS: dict[str, tuple[str, ...]] = {
    "time since treatment start": FEATURE_GROUPS["time"],
    "extraosseous response": FEATURE_GROUPS["extraosseous"],
    "ALP course": FEATURE_GROUPS["alp"],
    "bone findings": (*FEATURE_GROUPS["bone"], "baseline_marrow_involvement"),
    "therapy": tuple(
        f for f in FEATURE_GROUPS["context"] if f.startswith(("cancer_type_", "therapy_class_"))
    ),
    "clinical course": ("clinical_deterioration_now", "clinical_deterioration_ever"),
}
TOWARD = {True: "toward flare", False: "toward progression"}

_RESPONSE_WORDS = {
    2.0: "complete response",
    1.0: "partial response",
    0.0: "stable disease",
    -1.0: "progressive disease",
}


def shap_contributions(
    booster: xgb.Booster, features: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """Exact TreeSHAP values (log-odds of flare) and the bias of each row.

    Contributions plus bias equal the booster's margin (``output_margin=True``).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xgboost as xgb
    >>> X = pd.DataFrame({"a": np.arange(40.0), "b": np.r_[np.zeros(20), np.ones(20)]})
    >>> booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=(X["a"] > 20)), 5)
    >>> contrib, bias = shap_contributions(booster, X)
    >>> margin = booster.predict(xgb.DMatrix(X), output_margin=True)
    >>> bool(np.allclose(contrib.sum(axis=1) + bias, margin, atol=1e-4))
    True

    """
    names = list(booster.feature_names or features.columns)
    matrix = xgb.DMatrix(
        features[names].to_numpy(dtype=np.float32), feature_names=names, missing=np.nan
    )
    values = booster.predict(matrix, pred_contribs=True)
    contrib = pd.DataFrame(values[:, :-1], index=features.index, columns=names)
    return contrib, values[:, -1]


def signal_sums(values: np.ndarray, feature_names: list[str]) -> tuple[list[str], np.ndarray]:
    """Sum SHAP values within each clinical signal, on a NumPy array.

    Returns the signal names (:data:`SIGNALS` order) and an (n_rows, n_signals) array.

    Examples
    --------
    >>> import numpy as np
    >>> names, sums = signal_sums(np.array([[0.5, -0.2]]), ["alp_u_l", "alp_missing"])
    >>> round(float(sums[0, names.index("ALP course")]), 3)
    0.3

    """
    position = {name: i for i, name in enumerate(feature_names)}
    sums = []
    for members in SIGNALS.values():
        idx = [position[m] for m in members if m in position]
        sums.append(values[:, idx].sum(axis=1) if idx else np.zeros(values.shape[0]))
    return list(SIGNALS), np.column_stack(sums)


def signal_contributions(contrib: pd.DataFrame) -> pd.DataFrame:
    """Sum SHAP values within each clinical signal (columns: :data:`SIGNALS`)."""
    names, sums = signal_sums(contrib.to_numpy(), [str(c) for c in contrib.columns])
    return pd.DataFrame(sums, index=contrib.index, columns=names)


def _feature_rows(features: pd.DataFrame) -> list[dict[str, Any]]:
    """Feature rows as plain dicts (much cheaper than one pandas Series per row)."""
    names = [str(name) for name in features.columns]
    if all(pd.api.types.is_float_dtype(dtype) for dtype in features.dtypes):
        return [dict(zip(names, row, strict=True)) for row in features.to_numpy().tolist()]
    return features.to_dict("records")


def _num(row: Mapping[str, Any], name: str) -> float:
    value = row.get(name, np.nan)
    return float(value) if value is not None and pd.notna(value) else float("nan")


def _one_hot_value(row: Mapping[str, Any], prefix: str) -> str | None:
    for name, value in row.items():
        if str(name).startswith(prefix) and value == 1:
            return str(name)[len(prefix) :]
    return None


def _describe_time(row: Mapping[str, Any]) -> str:
    days = _num(row, "days_since_treatment_start")
    return f"new bone lesions {days:.0f} days ({days / 30.44:.1f} months) after treatment start"


def _describe_extraosseous(row: Mapping[str, Any]) -> str:
    response = _RESPONSE_WORDS.get(_num(row, "extraosseous_response_ordinal"), "not evaluable")
    text = f"extraosseous {response}"
    sld = _num(row, "sld_percent_change_from_baseline")
    if np.isfinite(sld):
        text += f" (SLD {sld:+.0f}% from baseline)"
    if _num(row, "new_extraosseous_lesion_now") == 1:
        text += " with a new extraosseous lesion"
    return text


def _describe_alp(row: Mapping[str, Any]) -> str:
    if _num(row, "alp_missing") == 1:
        return "ALP not measured in the last 30 days"
    change = _num(row, "alp_change_from_baseline_u_l")
    if not np.isfinite(change):
        return f"ALP {_num(row, 'alp_u_l'):.0f} U/L, no baseline value"
    verb = "rose" if change > 0 else "fell" if change < 0 else "unchanged,"
    text = f"ALP {verb} {abs(change):.0f} U/L since baseline"
    pct = _num(row, "alp_percent_change_from_baseline")
    if np.isfinite(pct):
        text += f" ({pct:+.0f}%)"
    peak = _num(row, "alp_max_rise_above_baseline_u_l")
    if np.isfinite(peak) and peak > 10 and peak > change + 10:
        text += f" after an early rise of {peak:.0f} U/L"
    return text


def _describe_bone(row: Mapping[str, Any]) -> str:
    count = _num(row, "new_bone_lesion_count")
    morphology = _one_hot_value(row, "new_lesion_morphology_") or "unspecified"
    word = {"blastic": "osteoblastic", "lytic": "lytic", "mixed": "mixed"}.get(
        morphology, morphology
    )
    parts = [f"{count:.0f} new {word} bone lesion{'s' if count != 1 else ''}"]
    if _num(row, "progressive_lysis_now") == 1:
        parts.append("progressive lysis of a known lesion")
    if _num(row, "known_lesion_sclerosis_now") == 1:
        parts.append("sclerosis of known lesions")
    if _num(row, "previous_index_events") >= 1:
        parts.append("after an earlier new-lesion event")
    if _num(row, "baseline_marrow_involvement") == 1:
        parts.append("diffuse marrow involvement at baseline")
    return ", ".join(parts)


def _describe_therapy(row: Mapping[str, Any]) -> str:
    therapy = _one_hot_value(row, "therapy_class_")
    cancer = _one_hot_value(row, "cancer_type_")
    t = THERAPY_NAMES.get(therapy or "", "therapy")
    return f"{t} for {CANCER_NAMES.get(cancer or '', 'cancer')}"


def _describe_course(row: Mapping[str, Any]) -> str:
    now = _num(row, "clinical_deterioration_now")
    if now == 1:
        return "clinical deterioration (new bone pain, ECOG worsening or SRE)"
    if now == 0:
        return "no clinical deterioration"
    return "clinical course not recorded"


DESCRIBERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "time since treatment start": _describe_time,
    "extraosseous response": _describe_extraosseous,
    "ALP course": _describe_alp,
    "bone findings": _describe_bone,
    "therapy": _describe_therapy,
    "clinical course": _describe_course,
}


def reasons(
    features: pd.DataFrame,
    signal_shap: pd.DataFrame | tuple[list[str], np.ndarray],
    top: int = 3,
) -> list[list[str]]:
    """The ``top`` strongest clinical signals of each row, in words, signed.

    Parameters
    ----------
    features : DataFrame
        Feature rows (values are quoted in the reasons).
    signal_shap : DataFrame or (names, array)
        Output of :func:`signal_contributions` (or :func:`signal_sums`) for the same rows.
    top : int, default 3
        How many reasons per row.

    Returns
    -------
    list of list of str
        For example ``["extraosseous partial response (SLD -35% from baseline): toward
        flare", ...]``, strongest first.

    """
    if isinstance(signal_shap, pd.DataFrame):
        names, values = list(signal_shap.columns), signal_shap.to_numpy()
    else:
        names, values = signal_shap
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top]
    describers = [DESCRIBERS[name] for name in names]
    toward = values > 0
    return [
        [f"{describers[j](row)}: {TOWARD[bool(toward[i, j])]}" for j in order[i]]
        for i, row in enumerate(_feature_rows(features))
    ]


def global_importance(contrib: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per clinical signal and per feature, largest first."""
    by_signal = signal_contributions(contrib).abs().mean().sort_values(ascending=False)
    return by_signal.rename("mean_abs_shap_log_odds").to_frame()


def summary_plots(
    contrib: pd.DataFrame,
    bias: np.ndarray,
    features: pd.DataFrame,
    cohort: str,
    max_display: int = 15,
) -> dict[str, object]:
    """Beeswarm and bar summaries plus dependence plots for time and ALP change.

    Returns a dict of file name -> matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    explanation = shap.Explanation(
        values=contrib.to_numpy(),
        base_values=bias,
        data=features[contrib.columns].to_numpy(),
        feature_names=list(contrib.columns),
    )
    figures: dict[str, object] = {}
    for kind in ("beeswarm", "bar"):
        plt.figure()
        getattr(shap.plots, kind)(explanation, max_display=max_display, show=False)
        fig = plt.gcf()
        fig.suptitle(f"SHAP {kind} (log-odds of flare), {cohort}", fontsize=10)
        fig.set_size_inches(9, 6)
        fig.tight_layout()
        figures[f"shap_{kind}.png"] = fig
    for feature, label in (
        ("days_since_treatment_start", "days since treatment start"),
        ("alp_change_from_baseline_u_l", "ALP change from baseline (U/L)"),
    ):
        if feature not in contrib.columns:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(features[feature], contrib[feature], s=8, alpha=0.5)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("SHAP value (log-odds of flare)")
        ax.set_title(f"Dependence: {label}\n{cohort}", fontsize=10)
        fig.tight_layout()
        figures[f"shap_dependence_{feature}.png"] = fig
    return figures
