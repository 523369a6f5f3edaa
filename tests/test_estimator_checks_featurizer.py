"""scikit-learn's own estimator checks on the featurizer, and their table-shaped twins.

:class:`~flare_ml.features.TimepointFeaturizer` goes through
:func:`sklearn.utils.estimator_checks.parametrize_with_checks`. Most generic checks
cannot apply: they feed random numeric arrays, while the featurizer reads a timepoint
table (a DataFrame with the data contract's columns) and refuses anything else with a
``TypeError``; and it turns a long table into one row per index assessment, so the
output's row count is not the input's. Each such check is listed in
:data:`EXPECTED_FAILED_CHECKS` with its reason (they run as expected failures). The
properties those checks stand for are tested below on real tables instead: ``fit``
returns self and leaves parameters and input alone, refitting changes nothing, a pickled
featurizer gives the same features, ``fit_transform`` equals ``fit().transform``, it
needs no fit at all, and sparse input is refused clearly.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from flare_ml.cases import seed_case_timeline
from flare_ml.data import contract as c
from flare_ml.data import validate_timepoints
from flare_ml.features import FEATURE_NAMES, TimepointFeaturizer

_ARRAY = (
    "feeds a numeric array; the input is a timepoint table (a DataFrame with the data "
    "contract's columns) and anything else is refused with TypeError"
)
_ROWS = (
    _ARRAY + "; besides, the output has one row per index assessment (imaging rows with "
    "new bone lesions), not one row per input row"
)

#: every generic check that cannot apply to a transformer from a long timepoint table
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_fit_score_takes_y": _ARRAY + " (fit does take y, and ignores it)",
    "check_estimators_overwrite_params": _ARRAY + "; see test_fit_leaves_params_and_input",
    "check_dont_overwrite_parameters": _ARRAY + "; see test_fit_leaves_params_and_input",
    "check_estimators_fit_returns_self": _ARRAY + "; see test_fit_leaves_params_and_input",
    "check_readonly_memmap_input": _ARRAY,
    "check_n_features_in_after_fitting": _ARRAY + "; transform does not compare its "
    "columns with fit's: the contract defines the input (optional columns may be absent)",
    "check_n_features_in": _ARRAY + "; see test_fit_records_the_columns_of_a_dataframe",
    "check_positive_only_tag_during_fit": _ARRAY,
    "check_estimators_dtypes": _ARRAY,
    "check_complex_data": _ARRAY,
    "check_dtype_object": _ARRAY + " (text and category columns of a table are read)",
    "check_estimators_empty_data_messages": _ARRAY + "; an empty timepoint table is "
    "refused with ContractError (a ValueError), see test_empty_table_is_refused",
    "check_pipeline_consistency": _ARRAY + "; see test_refitting_and_pickling",
    "check_estimators_pickle": _ARRAY + "; see test_refitting_and_pickling",
    "check_f_contiguous_array_estimator": _ARRAY,
    "check_transformer_data_not_an_array": _ARRAY,
    "check_transformer_general": _ROWS,
    "check_transformer_preserve_dtypes": _ARRAY + " (the output is always float64)",
    "check_transformers_unfitted_stateless": _ROWS + "; see test_transform_needs_no_fit",
    "check_methods_sample_order_invariance": _ROWS + "; see test_row_order_never_changes_any_value",
    "check_methods_subset_invariance": _ROWS + "; see "
    "test_patients_alone_or_together_give_identical_values",
    "check_fit2d_1sample": _ROWS,
    "check_fit2d_1feature": _ARRAY,
    "check_dict_unchanged": _ARRAY + "; see test_fit_leaves_params_and_input",
    "check_fit_idempotent": _ARRAY + "; see test_refitting_and_pickling",
    "check_fit_check_is_fitted": _ARRAY + "; the featurizer is stateless "
    "(requires_fit=False), see test_transform_needs_no_fit",
    "check_fit1d": _ARRAY,
    "check_fit2d_predict1d": _ARRAY,
}


def _expected_failed_checks(estimator: object) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks([TimepointFeaturizer()], expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator: TimepointFeaturizer, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_the_listed_checks_are_exactly_those_that_fail() -> None:
    """No stale entry hides nothing, and no new failure hides behind the list."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(TimepointFeaturizer(), on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == set(EXPECTED_FAILED_CHECKS)
    assert all(reason.strip() for reason in EXPECTED_FAILED_CHECKS.values())


# --- the same properties, on timepoint tables -------------------------------------------------


def _table() -> pd.DataFrame:
    parts = []
    for k in range(3):
        timeline = seed_case_timeline()
        parts.append(timeline.assign(**{c.PATIENT_ID: timeline[c.PATIENT_ID] + f"-{k}"}))
    return pd.concat(parts, ignore_index=True)


def test_fit_leaves_params_and_input() -> None:
    table = _table()
    before = table.copy(deep=True)
    featurizer = TimepointFeaturizer(alp_slope_window_days=60)
    params = featurizer.get_params()
    assert featurizer.fit(table) is featurizer
    featurizer.transform(table)
    assert featurizer.get_params() == params
    pd.testing.assert_frame_equal(table, before)
    state = dict(vars(featurizer))
    featurizer.transform(table)
    assert vars(featurizer).keys() == state.keys()  # transform sets nothing


def test_refitting_and_pickling() -> None:
    table = _table()
    featurizer = TimepointFeaturizer().fit(table)
    expected = featurizer.transform(table)
    pd.testing.assert_frame_equal(featurizer.fit_transform(table), expected, check_exact=True)
    pd.testing.assert_frame_equal(featurizer.fit(table).transform(table), expected)
    restored = pickle.loads(pickle.dumps(featurizer))
    pd.testing.assert_frame_equal(restored.transform(table), expected, check_exact=True)
    pd.testing.assert_frame_equal(clone(featurizer).transform(table), expected, check_exact=True)
    validated = validate_timepoints(table)
    pd.testing.assert_frame_equal(featurizer.transform(validated), expected, check_exact=True)
    assert list(expected.columns) == list(FEATURE_NAMES)
    assert (expected.dtypes == np.float64).all()


@pytest.mark.parametrize("make", [sparse.csr_matrix, sparse.csr_array])
def test_sparse_input_is_refused_clearly(make: object) -> None:
    matrix = make(np.eye(3))  # type: ignore[operator]
    for method in ("fit", "transform"):
        with pytest.raises(TypeError, match="sparse input is not supported"):
            getattr(TimepointFeaturizer(), method)(matrix)
