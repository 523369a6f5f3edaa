"""The XGBoost classifier: grouped folds, learning, no leakage, calibration, determinism,
its scikit-learn contract (groups, classes, parameters) and bundle-identical scores."""

from __future__ import annotations

import ast
import inspect
import warnings

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from flare_ml import models
from flare_ml.bundle import FlareModelBundle
from flare_ml.calibration import ProbabilityCalibrator
from flare_ml.features import TimepointFeaturizer
from flare_ml.model_selection import MissingGroupsWarning, grouped_folds, patient_groups
from flare_ml.models import FlareXGBClassifier

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
    with pytest.raises(ValueError, match="Only binary classification"):
        FlareXGBClassifier(**FAST).fit(X, y + np.arange(len(y)) % 2, groups=groups)
    with pytest.raises(ValueError, match="Unknown label type"):
        FlareXGBClassifier(**FAST).fit(X, y + 0.5, groups=groups)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n_candidates", 0),
        ("inner_folds", 1),
        ("n_estimators_max", 0),
        ("early_stopping_rounds", 0),
        ("n_candidates", 2.5),
        ("inner_folds", True),
    ],
)
def test_invalid_parameters_are_named(param: str, value: object) -> None:
    X, y, groups = _signal_data(n_patients=20, seed=9)
    with pytest.raises(ValueError, match=param):
        FlareXGBClassifier(**{param: value}).fit(X, y, groups=groups)


def test_needs_two_patients_and_one_group_per_row() -> None:
    X, y, _ = _signal_data(n_patients=20, seed=9)
    with pytest.raises(ValueError, match="at least 2 patients"):
        FlareXGBClassifier(**FAST).fit(X, y, groups=np.zeros(len(y)))
    with pytest.raises(ValueError, match="one patient id per row"):
        FlareXGBClassifier(**FAST).fit(X, y, groups=np.arange(3))
    with pytest.raises(ValueError, match="must not be missing"):
        FlareXGBClassifier(**FAST).fit(X, y, groups=np.r_[np.nan, np.arange(len(y) - 1)])


# --- the scikit-learn contract -------------------------------------------------------------

TINY = {"n_candidates": 1, "n_estimators_max": 20, "inner_folds": 2, "n_jobs": 1}


@pytest.fixture(scope="module")
def fitted() -> tuple[FlareXGBClassifier, pd.DataFrame, np.ndarray]:
    X, y, groups = _signal_data(n_patients=80, seed=12)
    return FlareXGBClassifier(**TINY, random_state=0).fit(X, y, groups=groups), X, y


def test_fit_without_groups_warns_of_the_leak() -> None:
    X, y, groups = _signal_data(n_patients=40, seed=10)
    with pytest.warns(MissingGroupsWarning, match="leak") as caught:
        no_groups = FlareXGBClassifier(**TINY).fit(X, y)
    assert issubclass(caught[0].category, UserWarning)
    assert "groups=" in str(caught[0].message)  # names the fix
    # it is the fit with one patient per row, nothing else
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingGroupsWarning)
        per_row = FlareXGBClassifier(**TINY).fit(X, y, groups=np.arange(len(y)))
        by_patient = FlareXGBClassifier(**TINY).fit(X, y, groups=groups)
    np.testing.assert_array_equal(no_groups.predict_proba(X), per_row.predict_proba(X))
    assert no_groups.cv_results_ == per_row.cv_results_
    assert by_patient.cv_results_ != per_row.cv_results_  # the groups are used


def test_patient_groups_helper() -> None:
    assert patient_groups(np.array([3, 3, 4]), 3, "m").tolist() == [3, 3, 4]
    with pytest.warns(MissingGroupsWarning, match="m.fit got no groups"):
        assert patient_groups(None, 2, "m").tolist() == [0, 1]


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        ((0, 1), [0, 1]),
        ((False, True), [False, True]),
        ((1, 2), [1, 2]),
        (("no", "yes"), ["no", "yes"]),
    ],
)
def test_classes_are_learned_from_y(labels: tuple, classes: list) -> None:
    X, y, groups = _signal_data(n_patients=40, seed=11)
    y_labels = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[y]
    clf = FlareXGBClassifier(**TINY).fit(X, y_labels, groups=groups)
    assert clf.classes_.tolist() == classes
    proba = clf.predict_proba(X)
    # column 1 is P(classes_[1]); predict reads it at 0.5
    expected = clf.classes_[(proba[:, 1] >= 0.5).astype(int)]
    np.testing.assert_array_equal(clf.predict(X), expected)
    assert set(clf.predict(X).tolist()) <= set(classes)


def test_outcome_words_are_refused() -> None:
    # sorted, "progression" would be the positive class: P(flare) would be inverted
    X, y, groups = _signal_data(n_patients=20, seed=11)
    words = np.where(y == 1, "flare", "progression")
    with pytest.raises(ValueError, match="1 = flare"):
        FlareXGBClassifier(**TINY).fit(X, words, groups=groups)


def test_flare_is_class_one(fitted) -> None:
    clf, X, y = fitted
    assert clf.classes_.tolist() == [0, 1]
    # P(flare) is higher on the flares: column 1 is flare
    p = clf.predict_proba(X)[:, 1]
    assert p[y == 1].mean() > p[y == 0].mean()
    assert clf.predict(X).dtype.kind == "i"


def test_raw_proba_is_the_bundle_computation(fitted) -> None:
    clf, X, _ = fitted
    names = [str(n) for n in clf.feature_names_in_]
    booster = clf.get_booster()
    by_hand = booster.predict(
        xgb.DMatrix(X[names].to_numpy(np.float32), feature_names=names, missing=np.nan)
    )
    np.testing.assert_array_equal(clf.raw_proba(X), by_hand)
    bundle = FlareModelBundle(
        featurizer_params=TimepointFeaturizer().get_params(),
        feature_names=names,
        booster=booster,
        calibrator=clf.calibrator_,
    )
    np.testing.assert_array_equal(clf.raw_proba(X), bundle.raw_proba(X))
    np.testing.assert_array_equal(clf.predict_proba(X)[:, 1], bundle.proba_from_features(X))
    # and the same numbers as the XGBoost classifier it wraps (nothing changed by float32)
    np.testing.assert_array_equal(clf.raw_proba(X), clf.model_.predict_proba(X)[:, 1])


def test_columns_are_read_by_name(fitted) -> None:
    clf, X, _ = fitted
    expected = clf.predict_proba(X)
    shuffled = X[X.columns[::-1]].assign(extra=1.0)
    np.testing.assert_array_equal(clf.predict_proba(shuffled), expected)
    with pytest.raises(ValueError, match="signal"):
        clf.predict_proba(X.drop(columns=["signal"]))
    with pytest.warns(UserWarning, match="feature names"):  # scikit-learn's own warning
        np.testing.assert_array_equal(clf.predict_proba(X.to_numpy()), expected)
    with pytest.raises(ValueError, match="infinity"):
        clf.predict_proba(X.assign(signal=np.inf))


def test_no_assert_in_the_model_module() -> None:
    tree = ast.parse(inspect.getsource(models))
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Assert)]


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
