"""scikit-learn's estimator checks on the model and the rules, and patient metadata routing.

Every estimator of flare-ml runs :func:`sklearn.utils.estimator_checks.
parametrize_with_checks`. The model passes all of them. The rules read named feature
columns and have fixed classes, so the checks that feed bare arrays or other labels
cannot apply; they are listed in
``expected_failed_checks`` with the reason, and a test below proves that each listed
check fails for exactly that reason and that no other check fails. Groups reach the
model's inner folds through scikit-learn's metadata routing: a test where the inner folds
would leak patients without them shows it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_validate
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from flare_ml.model_selection import MissingGroupsWarning
from flare_ml.models import FlareXGBClassifier
from flare_ml.rules import RULES, RuleClassifier, SeedCriteriaRule

#: a small, fast model: one candidate, few trees, two inner folds, one thread
FAST_MODEL = {
    "n_candidates": 1,
    "n_estimators_max": 5,
    "inner_folds": 2,
    "early_stopping_rounds": 2,
    "n_jobs": 1,
}

#: what a rule says when given a bare array
_NEEDS_FRAME = "reads named feature columns, so X must be a pandas DataFrame"
_NAMED_COLUMNS = (
    "feeds a bare array without column names; rules read named feature columns "
    "(tested on DataFrames in tests/test_rules.py)"
)
#: the checks of a rule that feed bare arrays (each fails with _NEEDS_FRAME)
RULE_ARRAY_CHECKS = (
    "check_classifiers_one_label",
    "check_classifiers_train",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
    "check_estimator_sparse_tag",
    "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_supervised_y_2d",
)

#: what a rule says when given labels other than 0/1
_NEEDS_01 = "y must be 1 (flare) or 0 (progression)"
_FIXED_CLASSES = (
    "fits on labels other than 0/1; a rule learns nothing from y, so its classes are "
    "fixed (0 = progression, 1 = flare) and it refuses other labels"
)
#: the checks of a rule that fit on labels other than 0/1 (each fails with _NEEDS_01)
RULE_LABEL_CHECKS = (
    "check_classifier_data_not_an_array",
    "check_classifiers_classes",
    "check_estimators_dtypes",
    "check_fit2d_1feature",
)

ESTIMATORS = [
    FlareXGBClassifier(**FAST_MODEL),
    *(cls() for cls in RULES.values()),
    SeedCriteriaRule(use_marrow_involvement=True),
]


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    """The checks that cannot apply to ``estimator``, with the reason."""
    if isinstance(estimator, RuleClassifier):
        return {
            **dict.fromkeys(RULE_ARRAY_CHECKS, _NAMED_COLUMNS),
            **dict.fromkeys(RULE_LABEL_CHECKS, _FIXED_CLASSES),
        }
    return {}


def _check_name(check: Any) -> str:
    return getattr(check, "func", check).__name__


@pytest.mark.filterwarnings("ignore::flare_ml.model_selection.MissingGroupsWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator: BaseEstimator, check: Any) -> None:
    try:
        check(estimator)
    except Exception as exc:
        if _check_name(check) not in expected_failed_checks(estimator):
            raise
        # an expected failure (xfail): a short traceback, since pytest takes ~0.25 s to
        # format each one through scikit-learn's long check module
        raise AssertionError(f"expected failure: {str(exc)[:300]}") from None


def _messages(exc: BaseException | None) -> str:
    """The messages of an exception and of the exceptions it was raised from."""
    out = []
    while exc is not None:
        out.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(out)


@pytest.mark.parametrize("cls", list(RULES.values()), ids=list(RULES))
def test_rules_fail_exactly_the_listed_checks_for_the_stated_reason(
    cls: type[RuleClassifier],
) -> None:
    results = check_estimator(cls(), on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == {*RULE_ARRAY_CHECKS, *RULE_LABEL_CHECKS}
    for r in results:
        if r["status"] == "failed":
            reason = _NEEDS_01 if r["check_name"] in RULE_LABEL_CHECKS else _NEEDS_FRAME
            assert reason in _messages(r["exception"]), r["check_name"]
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    # the label and API checks do apply, and pass
    assert {
        "check_classifiers_regression_target",
        "check_classifier_not_supporting_multiclass",
        "check_estimators_unfitted",
        "check_estimator_cloneable",
        "check_get_params_invariance",
        "check_set_params",
        "check_no_attributes_set_in_init",
    } <= passed


def test_model_tags_say_binary_and_nan() -> None:
    tags = FlareXGBClassifier().__sklearn_tags__()
    assert tags.classifier_tags.multi_class is False
    assert tags.input_tags.allow_nan is True
    for cls in RULES.values():
        rule_tags = cls().__sklearn_tags__()
        assert rule_tags.classifier_tags.multi_class is False
        assert rule_tags.input_tags.allow_nan is True


# --- patients through metadata routing ----------------------------------------------------


def _repeated_patients(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Four near-identical rows per patient and an outcome unrelated to the features.

    Nothing generalises from one patient to another, so honest (patient-grouped) inner
    folds give a log loss near log(2) = 0.69; folds that split a patient's rows let the
    trees recognise the patient and give a far lower, leaked, log loss.
    """
    rng = np.random.default_rng(seed)
    n_patients, rows = 60, 4
    groups = np.repeat(np.arange(n_patients), rows)
    per_patient = rng.normal(size=(n_patients, 3))
    jitter = rng.normal(scale=0.01, size=(len(groups), 3))
    X = pd.DataFrame(per_patient[groups] + jitter, columns=["a", "b", "c"])
    y = rng.integers(0, 2, n_patients)[groups]
    return X, y, groups


#: a model that can memorise patients, so that leaking inner folds show
MEMORISING = {
    "search_space": {"max_depth": [4], "learning_rate": [0.3], "min_child_weight": [1]},
    "n_candidates": 1,
    "inner_folds": 2,
    "n_estimators_max": 50,
    "early_stopping_rounds": 5,
    "calibration": "none",
    "n_jobs": 1,
}


def _inner_log_losses(estimators: list[FlareXGBClassifier]) -> list[float]:
    return [est.cv_results_[0]["mean_log_loss"] for est in estimators]


def test_cross_validate_routes_groups_to_the_inner_folds() -> None:
    X, y, groups = _repeated_patients()
    clf = FlareXGBClassifier(**MEMORISING)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("error", MissingGroupsWarning)  # fit must receive groups
        routed = cross_validate(
            clf,
            X,
            y,
            cv=StratifiedGroupKFold(2),
            params={"groups": groups},
            return_estimator=True,
            error_score="raise",
        )
    # honest inner folds: no better than chance on an outcome unrelated to the features
    assert min(_inner_log_losses(routed["estimator"])) > 0.5
    # without routing, scikit-learn gives groups to the splitter only: fit warns, and the
    # inner folds split patients and leak (the check above can fail)
    with pytest.warns(MissingGroupsWarning, match="leak"):
        leaked = cross_validate(
            clf, X, y, cv=StratifiedGroupKFold(2), groups=groups, return_estimator=True
        )
    assert max(_inner_log_losses(leaked["estimator"])) < 0.45


def test_grid_search_routes_groups_and_set_fit_request() -> None:
    X, y, groups = _repeated_patients(seed=1)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("error", MissingGroupsWarning)
        clf = FlareXGBClassifier(**MEMORISING).set_fit_request(groups=True)
        search = GridSearchCV(
            clf, {"calibration": ["none"]}, cv=StratifiedGroupKFold(2), error_score="raise"
        ).fit(X, y, groups=groups)
        assert search.best_estimator_.cv_results_[0]["mean_log_loss"] > 0.5
        # groups=False: a user can opt out, and fit then warns
        off = FlareXGBClassifier(**MEMORISING).set_fit_request(groups=False)
        with pytest.raises(MissingGroupsWarning):
            cross_validate(
                off,
                X,
                y,
                cv=StratifiedGroupKFold(2),
                params={"groups": groups},
                error_score="raise",
            )
