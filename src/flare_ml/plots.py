"""Figures of the evaluation: ROC, precision-recall, calibration, decision curves, subgroups.

Each function draws one figure comparing several scorers (a learned model, the rule
baselines, the simulator's oracle) on one cohort, with axis labels in clinical words (flare
is the positive class: "flares called flare", "progressions called flare") and a title that
carries the ``cohort`` label it is given, such as ``"external: simulated site community"``.
The oracle, when present, is drawn as a dashed black line: it is the ceiling, not a
competitor. Figures are built with :class:`matplotlib.figure.Figure` directly (Agg
canvas, no ``pyplot``), so nothing is shown, no global figure state grows, and the
functions are safe in servers and tests; :func:`figure_to_png_bytes` and
:func:`figure_to_base64` turn a figure into bytes for MLflow artifacts or an HTML report.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from flare_ml.evaluation import (
    DEFAULT_DECISION_THRESHOLDS,
    Evaluation,
    calibration_curve_table,
    classification_metrics,
    decision_curve,
)

__all__ = [
    "SCORER_LABELS",
    "figure_to_base64",
    "figure_to_png_bytes",
    "plot_calibration",
    "plot_decision_curves",
    "plot_precision_recall_curves",
    "plot_roc_curves",
    "plot_subgroup_forest",
    "scorer_label",
]

#: display names of the usual scorers; others are shown as given
SCORER_LABELS: dict[str, str] = {
    "oracle": "oracle (Bayes-optimal, simulator)",
    "xgboost": "XGBoost model",
    "model": "model",
    "seed_criteria": "seed criteria rule",
    "pcwg3_window": "PCWG3 flare-window rule",
    "alp_only": "ALP-only rule",
}

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
_ORACLE_STYLE: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.6}


def scorer_label(name: str) -> str:
    """Readable name of a scorer.

    Parameters
    ----------
    name : str
        Scorer key, such as ``"seed_criteria"``.

    Returns
    -------
    str
        The display name (the key itself when unknown).

    Examples
    --------
    >>> scorer_label("pcwg3_window"), scorer_label("my_model")
    ('PCWG3 flare-window rule', 'my_model')

    """
    return SCORER_LABELS.get(name, name)


def _styles(names: list[str]) -> dict[str, dict[str, Any]]:
    styles: dict[str, dict[str, Any]] = {}
    colours = iter(_PALETTE * (len(names) // len(_PALETTE) + 1))
    for name in names:
        if name == "oracle":
            styles[name] = dict(_ORACLE_STYLE)
        else:
            styles[name] = {"color": next(colours), "linestyle": "-", "linewidth": 1.8}
    return styles


def _new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _inputs(y: Any, scores: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not scores:
        raise ValueError("scores is empty: give at least one scorer")
    yv = np.asarray(pd.Series(y).to_numpy(dtype=float, na_value=np.nan))
    ps = {
        name: np.asarray(pd.Series(p).to_numpy(dtype=float), dtype=float)
        for name, p in scores.items()
    }
    for name, p in ps.items():
        if p.shape != yv.shape:
            raise ValueError(f"scores[{name!r}] has {p.shape[0]} values for {yv.shape[0]} outcomes")
    return yv, ps


def _probabilities(scores: Mapping[str, Any], evaluation: Evaluation | None) -> Mapping[str, Any]:
    """``scores`` without the scorers that ``evaluation`` holds as ranking scores."""
    if evaluation is None:
        return scores
    return {name: p for name, p in scores.items() if evaluation.is_probability(name)}


def _metric_text(
    name: str, metric: str, y: np.ndarray, p: np.ndarray, evaluation: Evaluation | None
) -> str:
    if evaluation is not None:
        rows = evaluation.metrics[
            (evaluation.metrics["scorer"] == name) & (evaluation.metrics["metric"] == metric)
        ]
        if not rows.empty:
            est, low, high = rows[["estimate", "ci_low", "ci_high"]].iloc[0]
            if np.isfinite(low):
                return f"{est:.2f} [{low:.2f}, {high:.2f}]"
            return f"{est:.2f}"
    return f"{classification_metrics(y, p)[metric]:.2f}"


def _title(what: str, cohort: str) -> str:
    return f"{what}\n{cohort}" if cohort else what


def plot_roc_curves(
    y: Any,
    scores: Mapping[str, Any],
    cohort: str = "",
    *,
    evaluation: Evaluation | None = None,
) -> Figure:
    """ROC curves of several scorers: flares called flare against progressions called flare.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    scores : mapping of str to array-like
        Scorer name to flare scores in [0, 1].
    cohort : str, default=""
        Cohort label for the title, e.g. ``"external: simulated site community"``.
    evaluation : Evaluation, optional
        When given, the legend shows its AUROC with the bootstrap interval.

    Returns
    -------
    matplotlib.figure.Figure
        One line per scorer plus the chance diagonal.

    Examples
    --------
    >>> fig = plot_roc_curves([0, 1, 0, 1], {"model": [0.2, 0.8, 0.4, 0.6]}, "demo")
    >>> len(fig.axes[0].get_lines())
    2

    """
    yv, ps = _inputs(y, scores)
    fig = _new_figure((6.0, 5.6))
    ax = fig.add_subplot()
    styles = _styles(list(ps))
    for name, p in ps.items():
        fpr, tpr, _ = roc_curve(yv, p)
        auc = _metric_text(name, "auroc", yv, p, evaluation)
        ax.plot(fpr, tpr, label=f"{scorer_label(name)} (AUROC {auc})", **styles[name])
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xlabel("1 - specificity: true progressions called flare")
    ax.set_ylabel("sensitivity: true flares called flare")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(_title("ROC: bone flare vs progression", cohort))
    return fig


def plot_precision_recall_curves(
    y: Any,
    scores: Mapping[str, Any],
    cohort: str = "",
    *,
    evaluation: Evaluation | None = None,
) -> Figure:
    """Precision-recall curves with flare as the positive class.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    scores : mapping of str to array-like
        Scorer name to flare scores in [0, 1].
    cohort : str, default=""
        Cohort label for the title.
    evaluation : Evaluation, optional
        When given, the legend shows its AUPRC with the bootstrap interval.

    Returns
    -------
    matplotlib.figure.Figure
        One line per scorer plus the flare prevalence (the chance level).

    Examples
    --------
    >>> fig = plot_precision_recall_curves([0, 1, 0, 1], {"model": [0.2, 0.8, 0.4, 0.6]})
    >>> len(fig.axes[0].get_lines())
    2

    """
    yv, ps = _inputs(y, scores)
    fig = _new_figure((6.0, 5.2))
    ax = fig.add_subplot()
    styles = _styles(list(ps))
    for name, p in ps.items():
        precision, recall, _ = precision_recall_curve(yv, p)
        ap = _metric_text(name, "auprc", yv, p, evaluation)
        ax.step(
            recall,
            precision,
            where="post",
            label=f"{scorer_label(name)} (AUPRC {ap})",
            **styles[name],
        )
    prevalence = float(np.mean(yv))
    ax.axhline(
        prevalence,
        color="grey",
        linestyle=":",
        linewidth=1,
        label=f"flare prevalence {prevalence:.2f}",
    )
    ax.set_xlabel("recall (sensitivity): true flares called flare")
    ax.set_ylabel("precision (PPV): called flare that were flare")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    ax.set_title(_title("Precision-recall: bone flare as the positive class", cohort))
    return fig


def plot_calibration(
    y: Any,
    scores: Mapping[str, Any],
    cohort: str = "",
    *,
    n_bins: int = 10,
    evaluation: Evaluation | None = None,
) -> Figure:
    """Reliability diagram: observed flare rate against predicted P(flare), per bin.

    Only probabilities are drawn: with ``evaluation``, scorers it holds as ranking scores
    (the rules' ``decision_function``) are left out, since the distance of a ranking score
    from the diagonal says nothing about risk.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    scores : mapping of str to array-like
        Scorer name to P(flare) in [0, 1].
    cohort : str, default=""
        Cohort label for the title.
    n_bins : int, default=10
        Equal-width bins of the score.
    evaluation : Evaluation, optional
        When given, its calibration table (same binning) is used and the legend shows
        the calibration slope with its interval.

    Returns
    -------
    matplotlib.figure.Figure
        Top axes: one line per scorer (empty bins skipped) plus the diagonal of perfect
        calibration; bottom axes: histogram of the scores.

    Examples
    --------
    >>> fig = plot_calibration([0, 1, 0, 1], {"model": [0.2, 0.8, 0.4, 0.6]}, n_bins=5)
    >>> len(fig.axes), len(fig.axes[0].get_lines())
    (2, 2)

    """
    yv, ps = _inputs(y, _probabilities(scores, evaluation))
    fig = _new_figure((6.0, 6.6))
    ax, hist = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    styles = _styles(list(ps))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for name, p in ps.items():
        table = None
        if evaluation is not None and n_bins == len(
            evaluation.calibration[evaluation.calibration["scorer"] == name]
        ):
            table = evaluation.calibration[evaluation.calibration["scorer"] == name]
        if table is None:
            table = calibration_curve_table(yv, p, n_bins=n_bins)
        table = table[table["n"] > 0]
        slope = _metric_text(name, "calibration_slope", yv, p, evaluation)
        ax.plot(
            table["mean_predicted"],
            table["observed_flare_rate"],
            marker="o",
            markersize=4,
            label=f"{scorer_label(name)} (slope {slope})",
            **styles[name],
        )
        hist.hist(p, bins=edges, histtype="step", color=styles[name]["color"], linewidth=1.2)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    ax.set_ylabel("observed fraction of flares")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(_title("Calibration: predicted vs observed flare", cohort))
    hist.set_xlabel("predicted probability of flare")
    hist.set_ylabel("index rows")
    hist.grid(alpha=0.3)
    return fig


def plot_decision_curves(
    y: Any,
    scores: Mapping[str, Any],
    cohort: str = "",
    *,
    thresholds: Any = None,
    evaluation: Evaluation | None = None,
) -> Figure:
    """Decision curves: net benefit of continuing therapy when the model says flare.

    Net benefit weighs calls at a threshold probability, so only probabilities are drawn:
    with ``evaluation``, scorers it holds as ranking scores are left out.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression.
    scores : mapping of str to array-like
        Scorer name to flare scores in [0, 1].
    cohort : str, default=""
        Cohort label for the title.
    thresholds : array-like, optional
        Threshold probabilities (default 0.05 to 0.95); ignored when ``evaluation``
        holds the curves.
    evaluation : Evaluation, optional
        Use its ``decision_curves`` table.

    Returns
    -------
    matplotlib.figure.Figure
        One line per scorer plus "call every case flare" and "call none flare".

    Examples
    --------
    >>> fig = plot_decision_curves([0, 1, 0, 1], {"model": [0.2, 0.8, 0.4, 0.6]})
    >>> len(fig.axes[0].get_lines())
    3

    """
    yv, ps = _inputs(y, _probabilities(scores, evaluation))
    fig = _new_figure((6.6, 5.0))
    ax = fig.add_subplot()
    styles = _styles(list(ps))
    curves: dict[str, pd.DataFrame] = {}
    for name, p in ps.items():
        table = None
        if evaluation is not None:
            table = evaluation.decision_curves[evaluation.decision_curves["scorer"] == name]
        curves[name] = (
            table
            if table is not None and not table.empty
            else decision_curve(
                yv, p, DEFAULT_DECISION_THRESHOLDS if thresholds is None else thresholds
            )
        )
        ax.plot(
            curves[name]["threshold"],
            curves[name]["net_benefit"],
            label=scorer_label(name),
            **styles[name],
        )
    reference = next(iter(curves.values()))
    ax.plot(
        reference["threshold"],
        reference["net_benefit_treat_all"],
        color="grey",
        linewidth=1.2,
        label="call every case flare (continue all)",
    )
    ax.plot(
        reference["threshold"],
        reference["net_benefit_treat_none"],
        color="grey",
        linestyle="--",
        linewidth=1.2,
        label="call no case flare (stop all)",
    )
    prevalence = float(np.mean(yv))
    ax.set_ylim(min(-0.05, -0.1 * prevalence), max(prevalence * 1.1, 0.05))
    ax.set_xlim(0, 1)
    ax.set_xlabel("threshold probability of flare for continuing therapy")
    ax.set_ylabel("net benefit (flares kept on therapy per case)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(_title("Decision curves: continue therapy if flare is called", cohort))
    return fig


def plot_subgroup_forest(
    subgroups: pd.DataFrame | Evaluation,
    cohort: str = "",
    *,
    metric: str = "auroc",
) -> Figure:
    """Forest plot of a metric (AUROC by default) per subgroup level and scorer.

    Parameters
    ----------
    subgroups : pandas.DataFrame or Evaluation
        The ``subgroups`` table of an :class:`~flare_ml.evaluation.Evaluation` (columns
        ``scorer``, ``variable``, ``level``, ``n``, the metric and, for AUROC,
        ``auroc_ci_low``/``auroc_ci_high``), or the Evaluation itself. A table without a
        ``scorer`` column is one scorer.
    cohort : str, default=""
        Cohort label for the title.
    metric : str, default="auroc"
        Column to plot; intervals are drawn when ``<metric>_ci_low``/``_ci_high`` exist.

    Returns
    -------
    matplotlib.figure.Figure
        One marker series (a line object) per scorer, plus a vertical reference line
        (0.5 for AUROC, 1 for a calibration slope). Levels too small for the metric are
        listed with their size and no point; levels flagged ``small_n`` in the table
        (:func:`~flare_ml.evaluation.subgroups.is_small_n`) say "small n".

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"scorer": ["model"] * 2, "variable": ["cancer_type"] * 2,
    ...     "level": ["breast", "nsclc"], "n": [120, 15], "auroc": [0.81, float("nan")],
    ...     "auroc_ci_low": [0.74, float("nan")], "auroc_ci_high": [0.87, float("nan")]})
    >>> fig = plot_subgroup_forest(table, "demo")
    >>> len(fig.axes[0].get_lines())
    2

    """
    table = subgroups.subgroups if isinstance(subgroups, Evaluation) else subgroups
    if metric not in table.columns:
        raise ValueError(f"the subgroup table has no column {metric!r}")
    if "scorer" not in table.columns:
        table = table.assign(scorer="model")
    keys = list(dict.fromkeys(zip(table["variable"], table["level"], strict=True)))
    names = list(dict.fromkeys(table["scorer"]))
    styles = _styles(names)
    fig = _new_figure((8.0, 1.5 + len(keys) * (0.2 + 0.1 * len(names))))
    ax = fig.add_subplot()
    rows = {key: i for i, key in enumerate(keys)}
    dodge = np.linspace(-0.25, 0.25, len(names)) if len(names) > 1 else np.zeros(1)
    low_col, high_col = f"{metric}_ci_low", f"{metric}_ci_high"
    for offset, name in zip(dodge, names, strict=True):
        part = table[table["scorer"] == name]
        ypos = np.array(
            [rows[(v, lvl)] for v, lvl in zip(part["variable"], part["level"], strict=True)]
        )
        est = part[metric].to_numpy(dtype=float)
        style = styles[name]
        if low_col in part.columns and high_col in part.columns:
            low = part[low_col].to_numpy(dtype=float)
            high = part[high_col].to_numpy(dtype=float)
            has = np.isfinite(low) & np.isfinite(high) & np.isfinite(est)
            ax.hlines(ypos[has] + offset, low[has], high[has], color=style["color"], linewidth=1.4)
        ax.plot(
            est,
            ypos + offset,
            linestyle="none",
            marker="D" if name == "oracle" else "o",
            markersize=5,
            color=style["color"],
            markerfacecolor="white" if name == "oracle" else style["color"],
            label=scorer_label(name),
        )
    first = table.drop_duplicates(["variable", "level"]).set_index(["variable", "level"])
    labels = []
    for variable, level in keys:
        n = int(first.loc[(variable, level), "n"])
        defined = (
            table[(table["variable"] == variable) & (table["level"] == level)][metric].notna().any()
        )
        small = "small_n" in first.columns and bool(first.loc[(variable, level), "small_n"])
        note = ("" if defined else ", too few") or (", small n" if small else "")
        labels.append(f"{variable.replace('_', ' ')}: {level.replace('_', ' ')} (n={n}{note})")
    ax.set_yticks(range(len(keys)), labels, fontsize="small")
    ax.set_ylim(len(keys) - 0.5, -0.5)
    reference = 1.0 if metric == "calibration_slope" else 0.5
    ax.axvline(reference, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(
        {
            "auroc": "AUROC (flare vs progression) with 95% CI",
            "calibration_slope": "calibration slope",
            "sensitivity": "sensitivity: true flares called flare",
            "specificity": "specificity: true progressions called progression",
        }.get(metric, metric)
    )
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="lower left", fontsize="small")
    # a medium font on a wider figure keeps a long cohort name over the axes
    ax.set_title(_title(f"Subgroups: {metric.replace('_', ' ')}", cohort), fontsize="medium")
    return fig


def figure_to_png_bytes(fig: Figure, dpi: int = 120) -> bytes:
    """Render a figure as PNG bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    dpi : int, default=120
        Resolution.

    Returns
    -------
    bytes
        The PNG file content.

    Examples
    --------
    >>> fig = plot_roc_curves([0, 1, 0, 1], {"model": [0.2, 0.8, 0.4, 0.6]})
    >>> figure_to_png_bytes(fig)[1:4]
    b'PNG'

    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def figure_to_base64(fig: Figure, dpi: int = 120) -> str:
    """Render a figure as base64 PNG text, for ``<img src="data:image/png;base64,...">``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    dpi : int, default=120
        Resolution.

    Returns
    -------
    str
        ASCII base64 of the PNG bytes.

    Examples
    --------
    >>> fig = plot_roc_curves([0, 1, 0, 1], {"model": [0.2, 0.8, 0.4, 0.6]})
    >>> figure_to_base64(fig)[:8]
    'iVBORw0K'

    """
    return base64.b64encode(figure_to_png_bytes(fig, dpi=dpi)).decode("ascii")
