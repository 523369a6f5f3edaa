"""Tests of the evaluation figures: structure, labels, oracle style, no pyplot state."""

from __future__ import annotations

import base64

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.special import expit

from flare_ml.evaluation import evaluate
from flare_ml.plots import (
    figure_to_base64,
    figure_to_png_bytes,
    plot_calibration,
    plot_decision_curves,
    plot_precision_recall_curves,
    plot_roc_curves,
    plot_subgroup_forest,
    scorer_label,
)

COHORT = "external: simulated site community"


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, dict[str, np.ndarray], pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 400
    truth = rng.normal(0, 1.5, n)
    p = expit(truth)
    y = (rng.uniform(size=n) < p).astype(int)
    scores = {
        "oracle": p,
        "xgboost": expit(truth + rng.normal(0, 0.7, n)),
        "seed_criteria": np.round(expit(truth + rng.normal(0, 1.5, n)), 1),
    }
    groups = pd.DataFrame(
        {
            "cancer_type": np.where(np.arange(n) % 3 == 0, "nsclc", "breast"),
            "therapy_class": np.where(np.arange(n) < 390, "endocrine", "radium223"),
        }
    )
    return y, scores, groups


def _oracle_line(fig: Figure) -> list:
    label = scorer_label("oracle")
    return [line for line in fig.axes[0].get_lines() if line.get_label().startswith(label)]


@pytest.mark.parametrize(
    ("plot", "extra_lines", "xlabel_word"),
    [
        (plot_roc_curves, 1, "progressions called flare"),
        (plot_precision_recall_curves, 1, "flares called flare"),
        (plot_decision_curves, 2, "threshold probability of flare"),
    ],
)
def test_curve_plots(data: tuple, plot: object, extra_lines: int, xlabel_word: str) -> None:
    y, scores, _ = data
    fig = plot(y, scores, COHORT)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == len(scores) + extra_lines
    assert COHORT in ax.get_title()
    assert xlabel_word in ax.get_xlabel()
    (oracle,) = _oracle_line(fig)
    assert oracle.get_linestyle() == "--"
    others = [line for line in ax.get_lines()[: len(scores)] if line is not oracle]
    assert all(line.get_linestyle() == "-" for line in others)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(text.startswith("XGBoost model") for text in legend)


def test_roc_curve_ends_and_legend_from_evaluation(data: tuple) -> None:
    y, scores, _ = data
    result = evaluate(y, scores, np.arange(len(y)), n_resamples=50)
    fig = plot_roc_curves(y, scores, COHORT, evaluation=result)
    for line in fig.axes[0].get_lines()[: len(scores)]:
        x, yy = line.get_data()
        assert (x[0], yy[0]) == (0.0, 0.0) and (x[-1], yy[-1]) == (1.0, 1.0)
        assert np.all(np.diff(x) >= 0)
    auc = result.estimate("xgboost", "auroc")
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert any(f"AUROC {auc:.2f} [" in text for text in legend)


def test_calibration_plot(data: tuple) -> None:
    y, scores, _ = data
    fig = plot_calibration(y, scores, COHORT, n_bins=10)
    main, hist = fig.axes
    assert len(main.get_lines()) == len(scores) + 1  # plus the diagonal
    assert COHORT in main.get_title()
    assert "observed fraction of flares" in main.get_ylabel()
    assert "predicted probability of flare" in hist.get_xlabel()
    (oracle,) = _oracle_line(fig)
    assert oracle.get_linestyle() == "--"
    # the oracle is calibrated by construction: its points sit near the diagonal
    x, yy = oracle.get_data()
    assert np.max(np.abs(np.asarray(x) - np.asarray(yy))) < 0.2


def test_decision_curves_from_evaluation(data: tuple) -> None:
    y, scores, _ = data
    result = evaluate(y, scores, np.arange(len(y)), n_resamples=0)
    fig = plot_decision_curves(y, scores, COHORT, evaluation=result)
    lines = fig.axes[0].get_lines()
    assert len(lines) == len(scores) + 2
    none = [line for line in lines if line.get_label().startswith("call no case flare")]
    assert np.all(none[0].get_ydata() == 0)


def test_subgroup_forest(data: tuple) -> None:
    y, scores, groups = data
    result = evaluate(y, scores, np.arange(len(y)), subgroups=groups, n_resamples=100)
    fig = plot_subgroup_forest(result, COHORT)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == len(scores) + 1  # one marker series each, plus 0.5
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert len(labels) == 4
    assert any("radium223" in label and "too few" in label for label in labels)
    assert COHORT in ax.get_title()
    assert "AUROC" in ax.get_xlabel()
    one = result.subgroups[result.subgroups.scorer == "xgboost"].drop(columns="scorer")
    assert len(plot_subgroup_forest(one, COHORT).axes[0].get_lines()) == 2
    with pytest.raises(ValueError, match="no column"):
        plot_subgroup_forest(one, COHORT, metric="f1")


def test_no_pyplot_state_and_png_helpers(data: tuple) -> None:
    y, scores, _ = data
    plt.close("all")
    fig = plot_roc_curves(y, scores, COHORT)
    assert plt.get_fignums() == []  # nothing registered with pyplot, nothing shown
    png = figure_to_png_bytes(fig, dpi=50)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert base64.b64decode(figure_to_base64(fig, dpi=50)) == png


def test_unknown_scorer_names_and_bad_input(data: tuple) -> None:
    y, scores, _ = data
    fig = plot_roc_curves(y, {"my_model": scores["xgboost"]})
    assert fig.axes[0].get_lines()[0].get_label().startswith("my_model")
    assert fig.axes[0].get_title() == "ROC: bone flare vs progression"
    with pytest.raises(ValueError, match="values for"):
        plot_roc_curves(y, {"short": scores["xgboost"][:10]})
    with pytest.raises(ValueError, match="empty"):
        plot_calibration(y, {})


@pytest.mark.parametrize("plot", [plot_calibration, plot_decision_curves])
def test_ranking_scores_are_not_drawn_as_probabilities(data: tuple, plot: object) -> None:
    y, scores, _ = data
    ranking = {**scores, "seed_criteria": 4 * scores["seed_criteria"] - 2}  # not in [0, 1]
    ev = evaluate(
        y, ranking, np.arange(len(y)), n_resamples=0, probability_scorers=["oracle", "xgboost"]
    )
    fig = plot(y, ranking, COHORT, evaluation=ev)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert not any(label.startswith(scorer_label("seed_criteria")) for label in labels)
    assert any(label.startswith(scorer_label("xgboost")) for label in labels)
    everything = plot(y, scores, COHORT)  # without an evaluation every scorer is drawn
    drawn = [line.get_label() for line in everything.axes[0].get_lines()]
    assert any(label.startswith(scorer_label("seed_criteria")) for label in drawn)
    plt.close("all")
