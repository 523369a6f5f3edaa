"""The XGBoost classifier: grouped folds, learning, no leakage, calibration, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from flare_ml.calibration import ProbabilityCalibrator
from flare_ml.models import FlareXGBClassifier, grouped_folds

FAST = {"n_candidates": 2, "n_estimators_max": 150, "inner_folds": 3}


def _signal_data(n_patients: int = 150, rows_per_patient: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_patients), rows_per_patient)
    n = len(groups)
    X = pd.DataFrame(
        {
            "signal": rng.normal(size=n),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.1, "noise_a"] = np.nan  # missing values are allowed
    y = (X["signal"] + rng.normal(scale=0.7, size=n) > 0).astype(int).to_numpy()
    return X, y, groups


@settings(max_examples=30, deadline=None)
@given(
    n_patients=st.integers(10, 60),
    rows=st.integers(1, 4),
    n_splits=st.integers(2, 5),
    seed=st.integers(0, 1000),
)
def test_grouped_folds_never_share_a_patient(n_patients, rows, n_splits, seed):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_patients), rows)
    y = np.tile([0, 1], len(groups))[: len(groups)]
    rng.shuffle(y)
    folds = grouped_folds(y, groups, n_splits, seed)
    seen_in_test = np.concatenate([test for _, test in folds])
    assert sorted(seen_in_test) == list(range(len(groups)))  # every row tested once
    for train, test in folds:
        assert set(groups[train]).isdisjoint(groups[test])


def test_learns_a_learnable_signal():
    X, y, groups = _signal_data(seed=1)
    Xt, yt, _ = _signal_data(seed=2)
    clf = FlareXGBClassifier(**FAST, random_state=0).fit(X, y, groups=groups)
    auc = roc_auc_score(yt, clf.predict_proba(Xt)[:, 1])
    assert auc > 0.8
    # the signal carries the model, not the noise columns
    gain = clf.get_booster().get_score(importance_type="total_gain")
    assert gain.get("signal", 0) > max(gain.get("noise_a", 0), gain.get("noise_b", 0))


def test_shuffled_labels_give_chance_auroc():
    X, y, groups = _signal_data(n_patients=200, seed=3)
    Xt, yt, _ = _signal_data(n_patients=200, seed=4)
    y_shuffled = np.random.default_rng(0).permutation(y)
    clf = FlareXGBClassifier(**FAST, random_state=0).fit(X, y_shuffled, groups=groups)
    auc = roc_auc_score(yt, clf.predict_proba(Xt)[:, 1])
    assert 0.38 < auc < 0.62


def test_same_seed_same_model_and_predictions():
    X, y, groups = _signal_data(seed=5)
    a = FlareXGBClassifier(**FAST, random_state=7).fit(X, y, groups=groups)
    b = clone(a).fit(X, y, groups=groups)
    assert a.best_params_ == b.best_params_
    assert a.calibration_ == b.calibration_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_fit_records_tuning_and_calibration_choice():
    X, y, groups = _signal_data(seed=6)
    clf = FlareXGBClassifier(**FAST, random_state=0).fit(X, y, groups=groups)
    assert len(clf.cv_results_) == FAST["n_candidates"]
    assert set(clf.calibration_scores_) == {"none", "sigmoid", "isotonic"}
    assert clf.calibration_ == min(clf.calibration_scores_, key=clf.calibration_scores_.get)
    assert 1 <= clf.best_params_["n_estimators"] <= FAST["n_estimators_max"]
    assert list(clf.classes_) == [0, 1]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["none", "sigmoid", "isotonic"])
def test_forced_calibration_is_used(method):
    X, y, groups = _signal_data(seed=8)
    clf = FlareXGBClassifier(**FAST, calibration=method, random_state=0).fit(X, y, groups=groups)
    assert clf.calibration_ == method
    np.testing.assert_allclose(
        clf.predict_proba(X)[:, 1], clf.calibrator_.transform(clf.raw_proba(X))
    )


def test_rejects_single_class_and_bad_calibration():
    X, y, groups = _signal_data(seed=9)
    with pytest.raises(ValueError, match="both classes"):
        FlareXGBClassifier(**FAST).fit(X, np.zeros_like(y), groups=groups)
    with pytest.raises(ValueError, match="calibration"):
        FlareXGBClassifier(calibration="platt").fit(X, y, groups=groups)


def test_sigmoid_calibrator_repairs_overconfident_scores():
    rng = np.random.default_rng(0)
    p_true = rng.uniform(0.05, 0.95, 5000)
    y = (rng.random(5000) < p_true).astype(int)
    logit = np.log(p_true / (1 - p_true))
    overconfident = 1 / (1 + np.exp(-3 * logit))
    cal = ProbabilityCalibrator("sigmoid").fit(overconfident, y)
    assert cal.params_["a"] == pytest.approx(1 / 3, abs=0.06)
    fixed = cal.transform(overconfident)
    assert np.mean((fixed - y) ** 2) < np.mean((overconfident - y) ** 2)
