"""Tests of the evaluation metrics, operating threshold, decision curves and bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    roc_auc_score,
)

from flare_ml.evaluation import (
    METRICS,
    PROBABILITY_METRICS,
    bootstrap,
    bootstrap_metrics,
    calibration_curve_table,
    choose_operating_threshold,
    classification_metrics,
    decision_curve,
    evaluate,
    patient_bootstrap_weights,
    subgroup_metrics,
    subgroups_from_features,
)
from flare_ml.evaluation import metrics as kernels


def calibrated(n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores and outcomes drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(0.0, 1.5, n))
    if ties:
        p = np.round(p, 1)
    y = (rng.uniform(size=n) < p).astype(int)
    return y, p


# --- point metrics against scikit-learn --------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_match_scikit_learn(ties: bool) -> None:
    y, p = calibrated(800, seed=1, ties=ties)
    m = classification_metrics(y, p, threshold=0.4)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["auprc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    tn, fp, fn, tp = confusion_matrix(y, (p >= 0.4).astype(int)).ravel()
    assert m["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["ppv"] == pytest.approx(tp / (tp + fp))
    assert m["npv"] == pytest.approx(tn / (tn + fn))
    assert m["progression_called_flare"] == pytest.approx(fp / (fp + tn))
    assert (m["n"], m["n_flare"], m["threshold"]) == (800, y.sum(), 0.4)
    assert set(METRICS) <= set(m)


def test_calibration_slope_and_intercept_match_an_unpenalised_logistic_fit() -> None:
    y, p = calibrated(3000, seed=2)
    p = expit(1.7 * logit(p) - 0.4)  # miscalibrated on purpose
    m = classification_metrics(y, p)
    x = logit(p).reshape(-1, 1)
    fit = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(x, y)
    assert m["calibration_slope"] == pytest.approx(fit.coef_[0, 0], abs=1e-5)
    # calibration-in-the-large: the intercept with logit(p) as offset solves
    # sum(y - expit(a + logit p)) = 0
    a = m["calibration_intercept"]
    assert np.sum(y - expit(a + logit(p))) == pytest.approx(0.0, abs=1e-6)


def test_calibrated_scores_have_slope_one_and_intercept_zero() -> None:
    y, p = calibrated(40_000, seed=3)
    m = classification_metrics(y, p)
    assert m["calibration_slope"] == pytest.approx(1.0, abs=0.05)
    assert m["calibration_intercept"] == pytest.approx(0.0, abs=0.05)
    assert m["ece"] < 0.02


def test_overconfident_scores_have_slope_below_one() -> None:
    y, p = calibrated(40_000, seed=4)
    over = expit(2.0 * logit(p))  # too extreme
    under = expit(0.5 * logit(p))  # too timid
    assert classification_metrics(y, over)["calibration_slope"] == pytest.approx(0.5, abs=0.05)
    assert classification_metrics(y, under)["calibration_slope"] == pytest.approx(2.0, abs=0.15)
    low = expit(logit(p) - 1.0)  # underestimates the flare rate
    assert classification_metrics(y, low)["calibration_intercept"] == pytest.approx(1.0, abs=0.05)
    # AUROC does not see calibration at all
    assert classification_metrics(y, over)["auroc"] == pytest.approx(
        classification_metrics(y, p)["auroc"]
    )


def test_ece_by_hand() -> None:
    # bin [0.1, 0.2): p 0.1, 0.1, y 0, 1 -> |0.5 - 0.1| ; bin [0.9, 1]: p 0.9, 1.0, y 1, 1
    y = [0, 1, 1, 1]
    p = [0.1, 0.1, 0.9, 1.0]
    expected = 0.5 * abs(0.5 - 0.1) + 0.5 * abs(1.0 - 0.95)
    assert classification_metrics(y, p)["ece"] == pytest.approx(expected)


def test_undefined_metrics_are_nan() -> None:
    m = classification_metrics([1, 1, 1], [0.2, 0.6, 0.9], threshold=0.5)
    assert np.isnan(m["auroc"]) and np.isnan(m["specificity"])
    assert m["sensitivity"] == pytest.approx(2 / 3)
    separated = classification_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert np.isnan(separated["calibration_slope"])  # perfect separation: no finite MLE
    assert np.isnan(classification_metrics([0, 1], [0.9, 0.95], threshold=0.99)["ppv"])


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "1 \\(flare\\) or 0"),
        ([0, 1], [0.1, 1.2], "\\[0, 1\\]"),
        ([0, 1], [0.1, np.nan], "missing"),
        ([0, 1], [0.1], "one score per outcome"),
        ([], [], "empty"),
    ],
)
def test_bad_inputs_are_refused(y: list, p: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, p)


# --- hypothesis: metric invariants ---------------------------------------------------------

# scores on a grid of 1/1000: ties happen, and p**3 stays strictly monotone in floats
probabilities = st.integers(0, 1000).map(lambda k: k / 1000)


@st.composite
def scored_outcomes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 60))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    p = np.array(draw(st.lists(probabilities, min_size=n, max_size=n)))
    return y, p


@settings(max_examples=150, deadline=None)
@given(scored_outcomes())
def test_metric_invariants(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    m = classification_metrics(y, p, threshold=0.5)
    assert 0.0 <= m["brier"] <= 1.0
    assert 0.0 <= m["ece"] <= 1.0
    assert m["log_loss"] >= 0.0
    for name in ("sensitivity", "specificity", "ppv", "npv", "auroc", "auprc"):
        assert np.isnan(m[name]) or 0.0 <= m[name] <= 1.0 + 1e-12
    if 0 < y.sum() < len(y):
        # AUROC depends on the ranking only: invariant to a strictly monotone transform
        squashed = classification_metrics(y, p**3 * 0.5 + 0.25)["auroc"]
        assert squashed == pytest.approx(m["auroc"], abs=1e-12)
        assert classification_metrics(y, 1.0 - p)["auroc"] == pytest.approx(1.0 - m["auroc"])
        assert m["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert m["auprc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
        assert m["specificity"] + m["progression_called_flare"] == pytest.approx(1.0)


@settings(max_examples=150, deadline=None)
@given(scored_outcomes(), st.floats(0.0, 0.5))
def test_operating_threshold_respects_the_bound(
    data: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    y, p = data
    if (y == 0).sum() == 0:
        with pytest.raises(ValueError, match="no true progression"):
            choose_operating_threshold(y, p, alpha)
        return
    t = choose_operating_threshold(y, p, alpha)
    negatives = p[y == 0]
    assert np.mean(negatives >= t) <= alpha + 1e-12
    # and it is the lowest such threshold: the next float down breaks the bound
    lower = np.nextafter(t, -np.inf)
    if t > 0:
        assert np.mean(negatives >= lower) > alpha


def test_operating_threshold_examples() -> None:
    y = np.r_[np.zeros(100), np.ones(10)]
    p = np.r_[np.linspace(0.0, 0.99, 100), np.full(10, 0.995)]
    t = choose_operating_threshold(y, p, 0.05)
    assert (p[:100] >= t).sum() == 5
    assert choose_operating_threshold(y, p, 1.0) == 0.0
    assert choose_operating_threshold(y, p, 0.0) > 0.99
    with pytest.raises(ValueError, match="max_progression_called_flare"):
        choose_operating_threshold(y, p, 1.5)


# --- decision curve -----------------------------------------------------------------------


def test_decision_curve_by_hand() -> None:
    y = [1, 1, 0, 0]
    p = [0.9, 0.4, 0.6, 0.1]
    dc = decision_curve(y, p, thresholds=[0.3, 0.5, 0.95])
    # t = 0.3: 0.9, 0.4 and 0.6 are called flare: TP 2, FP 1
    assert dc.loc[0, "net_benefit"] == pytest.approx(2 / 4 - 1 / 4 * 0.3 / 0.7)
    assert dc.loc[0, "net_benefit_treat_all"] == pytest.approx(0.5 - 0.5 * 0.3 / 0.7)
    # t = 0.5: 0.9 and 0.6: TP 1, FP 1
    assert dc.loc[1, "net_benefit"] == pytest.approx(1 / 4 - 1 / 4 * 1.0)
    assert dc.loc[2, "net_benefit"] == 0.0
    assert (dc["net_benefit_treat_none"] == 0).all()
    assert dc["n_called_flare"].tolist() == [3, 2, 0]
    assert dc["true_positive"].tolist() == [2, 1, 0]
    assert dc["false_positive"].tolist() == [1, 1, 0]


def test_decision_curve_defaults_and_errors() -> None:
    y, p = calibrated(300, seed=5)
    dc = decision_curve(y, p)
    assert dc["threshold"].tolist() == pytest.approx(np.arange(0.05, 0.96, 0.05).tolist())
    # a perfect scorer's net benefit is the prevalence at every threshold
    perfect = decision_curve(y, y.astype(float))
    assert np.allclose(perfect["net_benefit"], y.mean())
    with pytest.raises(ValueError, match="inside \\(0, 1\\)"):
        decision_curve(y, p, thresholds=[0.0, 0.5])


# --- calibration table --------------------------------------------------------------------


def test_calibration_curve_table() -> None:
    y, p = calibrated(5000, seed=6)
    table = calibration_curve_table(y, p, n_bins=10)
    assert len(table) == 10 and table["n"].sum() == 5000
    assert table["n_flare"].sum() == y.sum()
    full = table[table["n"] > 100]
    assert np.allclose(full["observed_flare_rate"], full["mean_predicted"], atol=0.06)
    assert (full["observed_ci_low"] <= full["observed_flare_rate"]).all()
    assert (full["observed_flare_rate"] <= full["observed_ci_high"]).all()
    quantile = calibration_curve_table(y, p, n_bins=5, strategy="quantile")
    assert len(quantile) == 5 and quantile["n"].min() > 900
    empty = calibration_curve_table([0, 1], [0.05, 0.95], n_bins=10)
    assert empty["n"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert empty["observed_flare_rate"].isna().sum() == 8


# --- bootstrap --------------------------------------------------------------------------


def test_weighted_metrics_equal_metrics_of_the_resampled_rows() -> None:
    y, p = calibrated(300, seed=7, ties=True)
    patients = np.repeat(np.arange(100), 3)
    weights = patient_bootstrap_weights(patients, n_resamples=4, seed=3)
    scored = kernels._Scored(y.astype(float), p, 0.5)
    weighted = kernels._weighted_metrics(scored, weights.astype(float), METRICS)
    for r in range(4):
        rows = np.repeat(np.arange(300), weights[r])
        explicit = classification_metrics(y[rows], p[rows], 0.5)
        for metric in METRICS:
            assert weighted[metric][r] == pytest.approx(explicit[metric], abs=1e-7), metric


def test_bootstrap_weights_keep_a_patients_rows_together() -> None:
    patients = np.array(["b", "a", "b", "c", "a", "b", "d"])
    w = patient_bootstrap_weights(patients, n_resamples=200, seed=0)
    assert w.shape == (200, 7)
    for pid in np.unique(patients):
        cols = w[:, patients == pid]
        assert (cols == cols[:, :1]).all()
    first_rows = [np.flatnonzero(patients == pid)[0] for pid in np.unique(patients)]
    assert (w[:, first_rows].sum(axis=1) == 4).all()  # 4 patients drawn per resample
    assert np.array_equal(w, patient_bootstrap_weights(patients, 200, seed=0))


def test_bootstrap_resamples_patients_not_rows() -> None:
    # every patient has 5 identical rows: a patient-level bootstrap of these rows is the
    # bootstrap of one row per patient, whereas a row-level one would be too narrow
    y1, p1 = calibrated(200, seed=8)
    ids = np.arange(200)
    once = bootstrap_metrics(y1, p1, ids, 0.5, n_resamples=300, seed=4)
    y5, p5, ids5 = np.repeat(y1, 5), np.repeat(p1, 5), np.repeat(ids, 5)
    fivefold = bootstrap_metrics(y5, p5, ids5, 0.5, n_resamples=300, seed=4)
    pd.testing.assert_frame_equal(once, fivefold, check_exact=False, rtol=1e-6, atol=1e-9)
    by_row = bootstrap_metrics(y5, p5, np.arange(1000), 0.5, n_resamples=300, seed=4)
    width = lambda t: (t["ci_high"] - t["ci_low"]).to_numpy()  # noqa: E731
    auroc = METRICS.index("auroc")
    assert width(by_row)[auroc] < 0.7 * width(fivefold)[auroc]


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_n() -> None:
    small = bootstrap_metrics(*calibrated(200, seed=9), np.arange(200), 0.5, n_resamples=400)
    large = bootstrap_metrics(*calibrated(3200, seed=9), np.arange(3200), 0.5, n_resamples=400)
    for table in (small, large):
        assert table["metric"].tolist() == list(METRICS)
        assert (table["ci_low"] <= table["ci_high"]).all()
        inside = (table["ci_low"] <= table["estimate"]) & (table["estimate"] <= table["ci_high"])
        # the ECE is biased upward in resamples; every other estimate sits inside its CI
        assert inside[table["metric"] != "ece"].all()
    ratio = (large["ci_high"] - large["ci_low"]) / (small["ci_high"] - small["ci_low"])
    # 16 times the patients: about a quarter of the width
    assert (ratio[large["metric"] != "ece"] < 0.45).all()
    assert small["n_resamples"].eq(400).all()


def test_bootstrap_is_reproducible_and_seeded() -> None:
    y, p = calibrated(500, seed=10)
    ids = np.repeat(np.arange(250), 2)
    a = bootstrap_metrics(y, p, ids, 0.5, n_resamples=200, seed=1)
    b = bootstrap_metrics(y, p, ids, 0.5, n_resamples=200, seed=1)
    c = bootstrap_metrics(y, p, ids, 0.5, n_resamples=200, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["ci_low"].equals(c["ci_low"])
    assert (a["estimate"] == c["estimate"]).all()


def test_bootstrap_skips_resamples_with_one_class() -> None:
    y = np.r_[1, np.zeros(39, dtype=int)]  # one flare patient among 40
    p = np.linspace(0.05, 0.95, 40)
    table = bootstrap_metrics(y, p, np.arange(40), 0.5, n_resamples=500, seed=0)
    used = table.set_index("metric")["n_resamples"]
    # the flare patient is missed in about (39/40)^40 = 36% of resamples
    assert 250 < used["auroc"] < 400
    assert table[["ci_low", "ci_high"]].notna().to_numpy()[:, 0].any()


def test_bootstrap_metric_selection_and_errors() -> None:
    y, p = calibrated(100, seed=11)
    table = bootstrap_metrics(y, p, np.arange(100), None, n_resamples=50, metrics=("auroc",))
    assert table["metric"].tolist() == ["auroc"]
    with pytest.raises(ValueError, match="threshold"):
        bootstrap_metrics(y, p, np.arange(100), None, n_resamples=50, metrics=("sensitivity",))
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_metrics(y, p, np.arange(100), 0.5, metrics=("accuracy",))
    with pytest.raises(ValueError, match="patient id per row"):
        bootstrap_metrics(y, p, np.arange(99), 0.5)
    zero = bootstrap_metrics(y, p, np.arange(100), 0.5, n_resamples=0)
    assert zero["ci_low"].isna().all() and zero["estimate"].notna().all()


def test_bootstrap_in_chunks_equals_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    # the size of benchmarks/bench_bootstrap.py (which times it): 1,000 resamples of 1,500
    # rows are computed in blocks of resamples; the blocks must not change the result
    y, p = calibrated(1500, seed=12)
    ids = np.repeat(np.arange(1000), [2] * 500 + [1] * 500)
    chunked = bootstrap_metrics(y, p, ids, 0.5, n_resamples=1000, seed=0)
    assert bootstrap._CHUNK_CELLS // len(y) < 1000  # several blocks
    monkeypatch.setattr(bootstrap, "_CHUNK_CELLS", 10**9)
    one_block = bootstrap_metrics(y, p, ids, 0.5, n_resamples=1000, seed=0)
    pd.testing.assert_frame_equal(chunked, one_block, check_exact=False, rtol=1e-9, atol=1e-12)
    assert chunked["n_resamples"].eq(1000).all()
    inside = (chunked["ci_low"] <= chunked["estimate"]) & (
        chunked["estimate"] <= chunked["ci_high"]
    )
    assert inside[chunked["metric"] != "ece"].all()


# --- subgroups -------------------------------------------------------------------------


def test_subgroup_metrics() -> None:
    y, p = calibrated(600, seed=13)
    frame = pd.DataFrame(
        {
            "cancer_type": pd.Categorical(
                np.where(
                    np.arange(600) < 500, "breast", np.where(np.arange(600) < 590, "nsclc", None)
                ),
                categories=["nsclc", "breast", "prostate"],
            ),
            "therapy_class": np.where(np.arange(600) % 2 == 0, "endocrine", "chemotherapy"),
        }
    )
    y = y.copy()
    y[500:590] = 0  # nsclc: progressions only
    table = subgroup_metrics(y, p, frame, threshold=0.5, min_size=20)
    assert table[["variable", "level"]].to_numpy().tolist() == [
        ["cancer_type", "nsclc"],
        ["cancer_type", "breast"],
        ["cancer_type", "missing"],
        ["therapy_class", "chemotherapy"],
        ["therapy_class", "endocrine"],
    ]
    rows = table.set_index(["variable", "level"])
    assert rows.loc[("cancer_type", "nsclc"), "n"] == 90
    assert np.isnan(rows.loc[("cancer_type", "nsclc"), "auroc"])  # one class
    assert rows.loc[("cancer_type", "nsclc"), "specificity"] == pytest.approx(
        np.mean(p[500:590] < 0.5)
    )
    assert np.isnan(rows.loc[("cancer_type", "missing"), "specificity"])  # n = 10 < 20
    breast = classification_metrics(y[:500], p[:500], 0.5)
    assert rows.loc[("cancer_type", "breast"), "auroc"] == pytest.approx(breast["auroc"])
    assert rows.loc[("cancer_type", "breast"), "calibration_slope"] == pytest.approx(
        breast["calibration_slope"]
    )
    assert rows["auroc_ci_low"].isna().all()
    with_ci = subgroup_metrics(
        y, p, frame["therapy_class"], 0.5, groups=np.arange(600), n_resamples=200
    )
    assert (with_ci["auroc_ci_low"] < with_ci["auroc"]).all()
    assert (with_ci["auroc"] < with_ci["auroc_ci_high"]).all()


def test_subgroups_from_features() -> None:
    X = pd.DataFrame(
        {
            "cancer_type_nsclc": [1.0, 0.0, 0.0],
            "cancer_type_breast": [0.0, 1.0, 0.0],
            "therapy_class_egfr_tki": [1.0, 0.0, 0.0],
            "therapy_class_endocrine": [0.0, 1.0, 1.0],
        },
        index=pd.Index(["a", "b", "c"], name="patient_id"),
    )
    out = subgroups_from_features(X)
    assert out["cancer_type"].tolist()[:2] == ["nsclc", "breast"]
    assert pd.isna(out["cancer_type"].iloc[2])
    assert out["therapy_class"].tolist() == ["egfr_tki", "endocrine", "endocrine"]
    with pytest.raises(ValueError, match="site_"):
        subgroups_from_features(X, ["site"])


# --- evaluate ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort_scores() -> tuple[pd.Series, dict[str, np.ndarray], pd.DataFrame]:
    from flare_ml.features import TimepointFeaturizer, index_outcomes
    from flare_ml.rules import make_rules
    from flare_ml.simulate import simulate_cohort

    co = simulate_cohort(1200, site="default", seed=21)
    X = TimepointFeaturizer().fit_transform(co.timepoints)
    y = index_outcomes(co.timepoints)
    oracle = co.oracle.set_index(["patient_id", "assessment_date"])["p_flare_oracle"]
    scores = {"oracle": oracle.reindex(X.index).to_numpy()}
    for name, rule in make_rules().items():
        scores[name] = rule.fit(X, y).decision_function(X)
    return y, scores, X


def test_evaluate_tables(cohort_scores: tuple[pd.Series, dict, pd.DataFrame]) -> None:
    y, scores, X = cohort_scores
    thresholds = {name: choose_operating_threshold(y, p, 0.1) for name, p in scores.items()}
    result = evaluate(
        y,
        scores,
        thresholds=thresholds,
        subgroups=subgroups_from_features(X),
        n_resamples=200,
        seed=3,
        reference="seed_criteria",
    )
    names = list(scores)
    assert result.scorers == names
    assert len(result.metrics) == len(names) * len(METRICS)
    assert result.n == len(y) and result.n_flare == int(y.sum())
    assert result.n_patients == X.index.get_level_values("patient_id").nunique()
    for name, p in scores.items():
        assert result.estimate(name, "auroc") == pytest.approx(roc_auc_score(y, p))
        assert result.estimate(name, "sensitivity") == pytest.approx(
            np.mean(p[y.to_numpy() == 1] >= thresholds[name])
        )
    # the Bayes-optimal oracle beats every rule on its own cohort
    assert all(result.estimate("oracle", "auroc") > result.estimate(n, "auroc") for n in names[1:])
    assert len(result.decision_curves) == len(names) * 19
    assert set(result.calibration["scorer"]) == set(names)
    assert set(result.subgroups["variable"]) == {"cancer_type", "therapy_class"}
    comparisons = result.comparisons
    assert set(comparisons["scorer"]) == set(names) - {"seed_criteria"}
    oracle_auc = comparisons[(comparisons.scorer == "oracle") & (comparisons.metric == "auroc")]
    assert (oracle_auc["ci_low"] > 0).all()

    summary = result.summary_table()
    assert summary["scorer"].tolist() == names
    assert list(summary.columns) == [
        "scorer",
        "threshold",
        "AUROC",
        "AUPRC",
        "Brier",
        "calibration slope",
        "ECE",
        "sensitivity",
        "specificity",
    ]
    assert summary.loc[0, "AUROC"].count("[") == 1
    numeric = result.summary_table(formatted=False)
    assert (
        numeric.loc[0, "auroc_ci_low"] <= numeric.loc[0, "auroc"] <= numeric.loc[0, "auroc_ci_high"]
    )
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["n"] == len(y) and len(payload["metrics"]) == len(result.metrics)


def test_evaluate_is_reproducible(cohort_scores: tuple[pd.Series, dict, pd.DataFrame]) -> None:
    y, scores, X = cohort_scores
    groups = subgroups_from_features(X)
    a = evaluate(y, scores, thresholds=0.5, subgroups=groups, n_resamples=100, seed=7)
    b = evaluate(y, scores, thresholds=0.5, subgroups=groups, n_resamples=100, seed=7)
    for name in ("metrics", "decision_curves", "subgroups", "calibration", "comparisons"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.to_dict() == b.to_dict()


def test_evaluate_pairs_resamples_across_scorers() -> None:
    y, p = calibrated(400, seed=14)
    result = evaluate(y, {"a": p, "twin": p.copy()}, np.arange(400), n_resamples=100, reference="a")
    assert np.allclose(result.comparisons[["difference", "ci_low", "ci_high"]], 0.0)
    a = result.metrics[result.metrics.scorer == "a"].drop(columns="scorer").reset_index(drop=True)
    twin = result.metrics[result.metrics.scorer == "twin"].drop(columns="scorer")
    pd.testing.assert_frame_equal(a, twin.reset_index(drop=True))


def test_evaluate_errors(cohort_scores: tuple[pd.Series, dict, pd.DataFrame]) -> None:
    y, scores, _ = cohort_scores
    with pytest.raises(ValueError, match="no threshold for scorer 'oracle'"):
        evaluate(y, scores, thresholds={"seed_criteria": 0.5}, n_resamples=0)
    with pytest.raises(ValueError, match="patient_ids"):
        evaluate(y.to_numpy(), scores, n_resamples=0)
    with pytest.raises(ValueError, match="reference"):
        evaluate(y, scores, n_resamples=0, reference="xgboost")
    with pytest.raises(ValueError, match="not aligned"):
        evaluate(y, {"oracle": pd.Series(scores["oracle"])}, n_resamples=0)
    with pytest.raises(ValueError, match="empty"):
        evaluate(y, {}, n_resamples=0)
    shuffled = subgroups_from_features(cohort_scores[2]).iloc[::-1]
    with pytest.raises(ValueError, match="subgroups are not aligned"):
        evaluate(y, scores, n_resamples=0, subgroups=shuffled)


# --- ranking scores: probability metrics only on probabilities -----------------------------


def ranking_of(p: np.ndarray) -> np.ndarray:
    """A ranking score with the order of ``p`` but not a probability (reaches beyond [0, 1])."""
    return 2.0 * logit(p) + 1.0


def test_classification_metrics_of_a_ranking_score() -> None:
    y, p = calibrated(500, seed=16)
    r = ranking_of(p)
    assert r.min() < 0 and r.max() > 1
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        classification_metrics(y, r)
    m = classification_metrics(y, p, 0.4)
    ranked = classification_metrics(y, r, float(ranking_of(np.array([0.4]))[0]), probability=False)
    for name in PROBABILITY_METRICS:
        assert np.isnan(ranked[name]), name
    for name in set(METRICS) - set(PROBABILITY_METRICS):
        assert ranked[name] == pytest.approx(m[name], abs=1e-12), name
    assert ranked["auroc"] == pytest.approx(roc_auc_score(y, r), abs=1e-12)
    table = bootstrap_metrics(
        y, r, np.arange(500), None, n_resamples=50, metrics=("auroc", "brier"), probability=False
    )
    brier = table.set_index("metric").loc["brier"]
    assert np.isnan(brier["estimate"]) and np.isnan(brier["ci_low"]) and brier["n_resamples"] == 0


def test_evaluate_ranking_scorers_get_no_probability_metrics() -> None:
    y, p = calibrated(600, seed=15)
    r = ranking_of(p)
    assert r.min() < 0 and r.max() > 1  # a ranking, not a probability
    ids = np.repeat(np.arange(300), 2)
    groups = pd.Series(np.where(np.arange(600) < 400, "breast", "nsclc"), name="cancer_type")
    thresholds = {"model": 0.4, "rule": float(ranking_of(np.array([0.4]))[0])}
    result = evaluate(
        y,
        {"model": p, "rule": r},
        ids,
        thresholds=thresholds,
        subgroups=groups,
        n_resamples=200,
        seed=2,
        reference="model",
        probability_scorers=["model"],
    )
    assert result.is_probability("model") and not result.is_probability("rule")
    rows = result.metrics.set_index(["scorer", "metric"])
    for metric in PROBABILITY_METRICS:
        rule = rows.loc[("rule", metric)]
        assert rule[["estimate", "ci_low", "ci_high"]].isna().all(), metric
        assert rule["n_resamples"] == 0
        assert np.isfinite(rows.loc[("model", metric), "estimate"]), metric
    assert result.estimate("model", "brier") == pytest.approx(brier_score_loss(y, p))
    # discrimination and the threshold metrics still apply to the ranking, on the same
    # (paired) resamples: the ranking orders the rows like p, so they agree with the model's
    for metric in set(METRICS) - set(PROBABILITY_METRICS):
        assert rows.loc[("rule", metric)].to_numpy() == pytest.approx(
            rows.loc[("model", metric)].to_numpy(), abs=1e-12
        ), metric
    assert result.estimate("rule", "auroc") == pytest.approx(roc_auc_score(y, r))
    assert set(result.calibration["scorer"]) == {"model"}
    assert set(result.decision_curves["scorer"]) == {"model"}
    compared = result.comparisons[result.comparisons["scorer"] == "rule"]
    assert compared["metric"].tolist() == ["auroc", "auprc"]  # no Brier comparison
    sub = result.subgroups.set_index(["scorer", "level"])
    assert sub.loc[("rule", "breast"), "auroc"] == pytest.approx(
        sub.loc[("model", "breast"), "auroc"]
    )
    assert np.isnan(sub.loc[("rule", "breast"), "calibration_slope"])
    assert np.isfinite(sub.loc[("model", "breast"), "calibration_slope"])
    summary = result.summary_table().set_index("scorer")
    for label in ("Brier", "calibration slope", "ECE"):
        assert summary.loc["rule", label] == "n/a"
        assert summary.loc["model", label] not in ("n/a", "NaN")
    assert summary.loc["rule", "AUROC"] == summary.loc["model", "AUROC"]
    numeric = result.summary_table(formatted=False).set_index("scorer")
    assert np.isnan(numeric.loc["rule", "brier"])
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["probability_scorers"] == ["model"]

    # the default, every scorer a probability, is today's behaviour
    default = evaluate(y, {"model": p}, ids, thresholds=0.4, n_resamples=50, seed=2)
    explicit = evaluate(
        y, {"model": p}, ids, thresholds=0.4, n_resamples=50, seed=2, probability_scorers=("model",)
    )
    assert default.to_dict() == explicit.to_dict()


def test_evaluate_only_ranking_scorers() -> None:
    y, p = calibrated(300, seed=17)
    result = evaluate(
        y,
        {"rule": ranking_of(p), "other": -ranking_of(p)},
        np.arange(300),
        thresholds=0.0,
        n_resamples=20,
        reference="rule",
        probability_scorers=[],
    )
    assert result.calibration.empty and result.decision_curves.empty
    probability = evaluate(y, {"model": p}, np.arange(300), n_resamples=0)
    assert list(result.calibration.columns) == list(probability.calibration.columns)
    assert list(result.decision_curves.columns) == list(probability.decision_curves.columns)
    assert set(result.comparisons["metric"]) == {"auroc", "auprc"}
    assert result.to_dict()["probability_scorers"] == []


def test_evaluate_probability_scorers_errors() -> None:
    y, p = calibrated(200, seed=18)
    ids, r = np.arange(200), ranking_of(p)
    with pytest.raises(ValueError, match="scores\\['rule'\\] must lie in \\[0, 1\\]"):
        evaluate(y, {"model": p, "rule": r}, ids, n_resamples=0)  # a ranking read as probability
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        evaluate(y, {"model": p, "rule": r}, ids, n_resamples=0, probability_scorers=["rule"])
    with pytest.raises(ValueError, match="\\['xgboost'\\] are not among the scorers"):
        evaluate(
            y, {"model": p, "rule": r}, ids, n_resamples=0, probability_scorers=["model", "xgboost"]
        )
    with pytest.raises(ValueError, match="not the string 'model'"):
        evaluate(y, {"model": p}, ids, n_resamples=0, probability_scorers="model")
    with pytest.raises(ValueError, match="missing/infinite"):
        evaluate(y, {"rule": np.r_[r[:-1], np.inf]}, ids, n_resamples=0, probability_scorers=[])
