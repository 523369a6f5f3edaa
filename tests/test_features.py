"""Unit tests of the featurizer: hand-computed values, the scikit-learn API, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from xgboost import XGBClassifier

from flare_ml.cases import seed_case_timeline
from flare_ml.data import contract as c
from flare_ml.data import validate_timepoints
from flare_ml.errors import ContractError
from flare_ml.features import (
    FEATURE_DESCRIPTIONS,
    FEATURE_GROUPS,
    FEATURE_NAMES,
    TimepointFeaturizer,
    index_outcomes,
)
from strategies import typed_table

NAN = np.nan


def _row(pid: str, start: str, day: int, **values: object) -> dict[str, object]:
    return {
        c.PATIENT_ID: pid,
        c.TREATMENT_START_DATE: start,
        c.ASSESSMENT_DATE: pd.Timestamp(start) + pd.Timedelta(days=day),
        **values,
    }


def tiny_table() -> pd.DataFrame:
    """Two patients: A (breast, endocrine) with two index rows, B (prostate) with one."""
    a = {c.CANCER_TYPE: "breast", c.THERAPY_CLASS: "endocrine"}
    a |= {c.BASELINE_MARROW_INVOLVEMENT: False}
    b = {c.CANCER_TYPE: "prostate", c.THERAPY_CLASS: "ar_pathway"}
    b |= {c.BASELINE_MARROW_INVOLVEMENT: True}
    img = {c.ROW_TYPE: "imaging"}
    lab = {c.ROW_TYPE: "lab"}
    no_new = {c.NEW_BONE_LESIONS: 0, c.NEW_LESION_MORPHOLOGY: "none"}
    rows = [
        _row("A", "2024-01-01", 0, **a, **img, **no_new, extraosseous_response="baseline",
             sld_mm=50.0, alp_u_l=100.0, progressive_lysis=False, known_lesion_sclerosis=False,
             clinical_deterioration=False),
        _row("A", "2024-01-01", 14, **a, **lab, alp_u_l=130.0),
        _row("A", "2024-01-01", 28, **a, **lab, alp_u_l=120.0),
        _row("A", "2024-01-01", 56, **a, **img, extraosseous_response="PR", sld_mm=35.0,
             new_bone_lesions=2, new_lesion_morphology="blastic", new_extraosseous_lesion=False,
             progressive_lysis=False, known_lesion_sclerosis=True, alp_u_l=95.0,
             clinical_deterioration=False, outcome="flare"),
        _row("A", "2024-01-01", 84, **a, **lab, alp_u_l=90.0),
        _row("A", "2024-01-01", 112, **a, **img, extraosseous_response="SD", sld_mm=40.0,
             new_bone_lesions=1, new_lesion_morphology="lytic", new_extraosseous_lesion=True,
             progressive_lysis=True, known_lesion_sclerosis=False, clinical_deterioration=True,
             outcome="progression"),
        _row("B", "2024-03-01", 0, **b, **img, **no_new, extraosseous_response="baseline"),
        _row("B", "2024-03-01", 60, **b, **img, extraosseous_response="SD", new_bone_lesions=3,
             new_lesion_morphology="mixed", alp_u_l=400.0, outcome="progression"),
    ]  # fmt: skip
    return typed_table(rows)


A1 = ("A", pd.Timestamp("2024-02-26"))  # day 56
A2 = ("A", pd.Timestamp("2024-04-22"))  # day 112
B1 = ("B", pd.Timestamp("2024-04-30"))  # day 60

# hand-computed: {feature: (A1, A2, B1)}
EXPECTED: dict[str, tuple[float, float, float]] = {
    # time
    "days_since_treatment_start": (56, 112, 60),
    "days_since_previous_imaging": (56, 56, 60),
    "imaging_assessment_number": (1, 2, 1),
    # extraosseous
    "extraosseous_response_ordinal": (1, 0, 0),
    "best_extraosseous_response_ordinal": (1, 1, 0),
    "sld_percent_change_from_baseline": (-30.0, -20.0, NAN),
    "sld_percent_change_from_nadir": (-30.0, 100 * 5 / 35, NAN),  # nadir 50, then 35
    "sld_change_from_nadir_mm": (-15.0, 5.0, NAN),
    "new_extraosseous_lesion_now": (0, 1, NAN),
    "new_extraosseous_lesion_ever": (0, 1, NAN),
    # ALP; A2 has no ALP of its own: the day-84 lab value (90) is the latest
    "alp_u_l": (95, 90, 400),
    "alp_baseline_u_l": (100, 100, 400),  # B: no pre-treatment ALP, first value
    "alp_change_from_baseline_u_l": (-5, -10, 0),
    "alp_percent_change_from_baseline": (-5, -10, 0),
    "alp_change_from_previous_u_l": (95 - 120, 90 - 95, NAN),
    # A1: days 0,14,28,56 -> 100,130,120,95: Sxy = -402.5, Sxx = 1715
    # A2: window (22, 112]: days 28,56,84 -> 120,95,90: Sxy = -840, Sxx = 1568
    "alp_slope_u_l_per_30_days": (30 * -402.5 / 1715, 30 * -840 / 1568, NAN),
    "alp_samples_in_slope_window": (4, 3, 1),
    "alp_max_rise_above_baseline_u_l": (30, 30, 0),  # the day-14 peak of 130
    "alp_max_rise_above_baseline_percent": (30, 30, 0),
    "alp_fall_from_peak_u_l": (35, 40, 0),
    "alp_ratio_to_upper_limit_normal": (95 / 147, 90 / 147, 400 / 147),
    "days_since_latest_alp": (0, 28, 0),
    "alp_missing": (0, 0, 0),
    "alp_baseline_missing": (0, 0, 1),
    # bone
    "new_bone_lesion_count": (2, 1, 3),
    "new_bone_lesion_count_cumulative": (2, 3, 3),
    "new_lesion_morphology_none": (0, 0, 0),
    "new_lesion_morphology_blastic": (1, 0, 0),
    "new_lesion_morphology_lytic": (0, 1, 0),
    "new_lesion_morphology_mixed": (0, 0, 1),
    "progressive_lysis_now": (0, 1, NAN),
    "progressive_lysis_ever": (0, 1, NAN),
    "known_lesion_sclerosis_now": (1, 0, NAN),
    "known_lesion_sclerosis_ever": (1, 1, NAN),
    "previous_index_events": (0, 1, 0),
    # context
    "cancer_type_breast": (1, 1, 0),
    "cancer_type_prostate": (0, 0, 1),
    "cancer_type_nsclc": (0, 0, 0),
    "therapy_class_endocrine": (1, 1, 0),
    "therapy_class_ar_pathway": (0, 0, 1),
    "therapy_class_egfr_tki": (0, 0, 0),
    "baseline_marrow_involvement": (0, 0, 1),
    "clinical_deterioration_now": (0, 1, NAN),
    "clinical_deterioration_ever": (0, 1, NAN),
}


def fit_transform(table: pd.DataFrame, **params: object) -> pd.DataFrame:
    return TimepointFeaturizer(**params).fit_transform(table)


def refused(table: pd.DataFrame) -> ContractError:
    """The featurizer's error on ``table``, checked to be validation's error, word for word."""
    with pytest.raises(ContractError) as by_validation:
        validate_timepoints(table)
    with pytest.raises(ContractError) as by_featurizer:
        TimepointFeaturizer().transform(table)
    assert by_featurizer.value.violations == by_validation.value.violations
    assert str(by_featurizer.value) == str(by_validation.value)
    return by_featurizer.value


def rules_of(error: ContractError) -> set[tuple[str, str]]:
    return {(v.column, v.rule) for v in error.violations}


# --- hand-computed values -----------------------------------------------------------------


def test_hand_computed_values_of_every_feature_group() -> None:
    features = fit_transform(tiny_table())
    assert features.index.tolist() == [A1, A2, B1]
    groups_checked = {g for g, names in FEATURE_GROUPS.items() if set(names) & set(EXPECTED)}
    assert groups_checked == set(FEATURE_GROUPS)
    for name, expected in EXPECTED.items():
        np.testing.assert_allclose(
            features[name].to_numpy(), np.array(expected, dtype=float), rtol=1e-12, err_msg=name
        )


def test_output_shape_dtypes_and_names() -> None:
    featurizer = TimepointFeaturizer().fit(tiny_table())
    features = featurizer.transform(tiny_table())
    assert list(features.columns) == list(featurizer.get_feature_names_out())
    assert list(features.columns) == list(FEATURE_NAMES)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert set(FEATURE_DESCRIPTIONS) == set(FEATURE_NAMES)
    assert (features.dtypes == np.float64).all()
    assert list(features.index.names) == list(c.KEY_COLUMNS)
    assert not set(c.KEY_COLUMNS) & set(features.columns)
    assert featurizer.n_features_in_ == len(c.CONTRACT_COLUMNS)
    assert list(featurizer.feature_names_in_) == list(c.CONTRACT_COLUMNS)
    assert featurizer.categories_[c.THERAPY_CLASS] == list(c.THERAPY_CLASSES)
    # one-hot columns cover the whole vocabulary, whatever the data holds
    # (``unknown`` morphology goes out as missing, never as a column of its own)
    for column in (c.CANCER_TYPE, c.THERAPY_CLASS, c.NEW_LESION_MORPHOLOGY):
        values = [v for v in c.VOCABULARIES[column] if v != "unknown"]
        assert all(f"{column}_{v}" in features.columns for v in values)
    assert "new_lesion_morphology_unknown" not in features.columns


def test_slope_window_and_ulnormal_are_parameters() -> None:
    features = fit_transform(tiny_table(), alp_slope_window_days=30, alp_upper_limit_normal=100.0)
    # A1 window (26, 56]: days 28, 56 -> 120, 95: slope -25 U/L per 28 days
    assert features.loc[A1, "alp_slope_u_l_per_30_days"] == pytest.approx(-25 / 28 * 30)
    assert features.loc[A1, "alp_samples_in_slope_window"] == 2
    assert features.loc[A1, "alp_ratio_to_upper_limit_normal"] == pytest.approx(0.95)
    strict = fit_transform(tiny_table(), alp_slope_min_samples=4)
    assert strict.loc[A1, "alp_slope_u_l_per_30_days"] == pytest.approx(30 * -402.5 / 1715)
    assert np.isnan(strict.loc[A2, "alp_slope_u_l_per_30_days"])


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"alp_upper_limit_normal": 0}, "alp_upper_limit_normal"),
        ({"alp_upper_limit_normal": float("nan")}, "alp_upper_limit_normal"),
        ({"alp_slope_window_days": 0}, "alp_slope_window_days"),
        ({"alp_slope_window_days": 1.5}, "alp_slope_window_days"),
        ({"alp_slope_min_samples": 1}, "alp_slope_min_samples"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TimepointFeaturizer(**params).fit(tiny_table())


def test_sld_change_needs_a_pre_treatment_baseline() -> None:
    """Without a baseline SLD the change from baseline is missing, never 0% from a later scan."""
    timeline = seed_case_timeline()
    start = timeline["treatment_start_date"].iloc[0]
    at_start = timeline["assessment_date"] <= start
    no_baseline = timeline.assign(sld_mm=timeline["sld_mm"].mask(at_start))
    row = fit_transform(no_baseline).iloc[0]
    assert np.isnan(row["sld_percent_change_from_baseline"])
    with_baseline = fit_transform(timeline).iloc[0]
    assert with_baseline["sld_percent_change_from_baseline"] == pytest.approx(-35, abs=1)


# --- the seed case -------------------------------------------------------------------------


def test_seed_case_reads_like_the_case_report() -> None:
    timeline = seed_case_timeline()
    features = fit_transform(timeline)
    assert len(features) == 1
    row = features.iloc[0]
    print(row.to_string())
    assert row.name == ("DeBondt2020-L1", pd.Timestamp("2019-04-07"))
    assert row["days_since_treatment_start"] == pytest.approx(90, abs=7)
    assert row["imaging_assessment_number"] == 1
    assert row["extraosseous_response_ordinal"] == 1  # partial response
    assert row["sld_percent_change_from_baseline"] == pytest.approx(-35, abs=1)
    assert row["new_extraosseous_lesion_now"] == 0
    assert row["new_lesion_morphology_blastic"] == 1
    assert row[["new_lesion_morphology_lytic", "new_lesion_morphology_mixed"]].sum() == 0
    assert row["new_bone_lesion_count"] > 0
    assert row["baseline_marrow_involvement"] == 1
    assert row["clinical_deterioration_now"] == 0
    assert row["clinical_deterioration_ever"] == 0
    assert row["cancer_type_nsclc"] == 1
    assert row["therapy_class_egfr_tki"] == 1
    assert row["alp_change_from_baseline_u_l"] < 0  # assumed ALP course: falling by the scan
    assert index_outcomes(timeline).tolist() == [1]
    # the month-7 progression (recorded after the index scan) is invisible to it
    before = fit_transform(seed_case_timeline(include_follow_up=False))
    pd.testing.assert_frame_equal(before, features, check_exact=True)


# --- scikit-learn API ----------------------------------------------------------------------


def training_cohort(n_copies: int = 20) -> pd.DataFrame:
    """Copies of the tiny table and the seed case under new ids, with varied ALP."""
    rng = np.random.default_rng(0)
    parts = []
    for k in range(n_copies):
        for table in (tiny_table(), seed_case_timeline()):
            copy = table.copy()
            copy[c.PATIENT_ID] = copy[c.PATIENT_ID] + f"-{k}"
            copy[c.ALP_U_L] = copy[c.ALP_U_L] * rng.uniform(0.8, 1.2, len(copy))
            parts.append(copy)
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize(
    "classifier",
    [
        make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000)),
        XGBClassifier(n_estimators=10, max_depth=2),
    ],
    ids=["logistic", "xgboost"],
)
def test_pipeline_fits_and_predicts(classifier: object) -> None:
    table = training_cohort()
    pipeline = Pipeline([("features", TimepointFeaturizer()), ("clf", classifier)])
    y = index_outcomes(table)
    pipeline.fit(table, y)
    proba = pipeline.predict_proba(table)
    assert proba.shape == (len(y), 2)
    assert np.isfinite(proba).all()
    assert set(y.unique()) == {0, 1}


def test_clone_and_params() -> None:
    featurizer = TimepointFeaturizer(alp_upper_limit_normal=120.0, alp_slope_window_days=60)
    twin = clone(featurizer)
    assert twin.get_params() == featurizer.get_params()
    assert twin is not featurizer
    assert not hasattr(twin, "feature_names_out_")
    fitted = featurizer.fit(tiny_table())
    assert not hasattr(clone(fitted), "feature_names_out_")
    assert twin.set_params(alp_slope_window_days=30).alp_slope_window_days == 30


def test_transform_needs_no_fit() -> None:
    """Stateless: a fresh featurizer transforms, and gives what a fitted one gives."""
    fresh = TimepointFeaturizer(alp_slope_window_days=60)
    assert fresh.__sklearn_tags__().requires_fit is False
    fitted = TimepointFeaturizer(alp_slope_window_days=60).fit(tiny_table())
    expected = fitted.transform(tiny_table())
    pd.testing.assert_frame_equal(fresh.transform(tiny_table()), expected, check_exact=True)
    assert not hasattr(fresh, "n_features_in_")  # transform learns nothing either
    assert list(fresh.get_feature_names_out()) == list(FEATURE_NAMES)


def test_fit_records_the_columns_of_a_dataframe() -> None:
    table = tiny_table().drop(columns=[c.OUTCOME]).assign(site="A")
    featurizer = TimepointFeaturizer().fit(table)
    expected = [*(col for col in c.CONTRACT_COLUMNS if col != c.OUTCOME), "site"]
    assert list(featurizer.feature_names_in_) == expected
    assert featurizer.n_features_in_ == len(expected)
    # the contract, not the fit table, defines the input: optional columns may come and go
    pd.testing.assert_frame_equal(
        featurizer.transform(tiny_table()), fit_transform(tiny_table()), check_exact=True
    )


def test_set_output_pandas_keeps_the_frame() -> None:
    featurizer = TimepointFeaturizer().set_output(transform="pandas")
    pd.testing.assert_frame_equal(
        featurizer.fit_transform(tiny_table()), fit_transform(tiny_table())
    )


# --- what validation accepts, the featurizer reads alike ------------------------------


def test_file_like_text_input_and_absent_row_type() -> None:
    """All-text columns (a CSV read as text) and no row_type column."""
    table = tiny_table()
    imaging_only = table[table[c.ROW_TYPE] == "imaging"].drop(columns=c.ROW_TYPE)
    as_text = imaging_only.astype("str").where(imaging_only.notna())
    as_text[c.NEW_BONE_LESIONS] = imaging_only[c.NEW_BONE_LESIONS].astype("str")
    as_text = as_text.replace({"<NA>": None})
    features = fit_transform(as_text)
    expected = fit_transform(imaging_only)
    pd.testing.assert_frame_equal(features, expected, check_index_type=False)
    # the ALP of lab rows is gone, the rest of A1 is as with them
    assert features.loc[A1, "alp_samples_in_slope_window"] == 2
    assert features.loc[A1, "days_since_treatment_start"] == 56


def test_spreadsheet_spellings_match_as_validation_reads_them() -> None:
    table = tiny_table()
    for col in c.VOCABULARIES:
        table[col] = table[col].astype("str").where(table[col].notna())
    table[c.EXTRAOSSEOUS_RESPONSE] = table[c.EXTRAOSSEOUS_RESPONSE].str.lower()
    table[c.CANCER_TYPE] = " " + table[c.CANCER_TYPE].str.upper()
    flags = [c.PROGRESSIVE_LYSIS, c.KNOWN_LESION_SCLEROSIS, c.CLINICAL_DETERIORATION]
    for col in flags:
        table[col] = table[col].map({True: " YES", False: "no"}).astype(object)
    table[c.PATIENT_ID] = table[c.PATIENT_ID] + " "
    table.columns = [f" {name.upper()}" if name == c.SLD_MM else name for name in table.columns]
    pd.testing.assert_frame_equal(fit_transform(table), fit_transform(tiny_table()))
    pd.testing.assert_frame_equal(
        fit_transform(table), fit_transform(validate_timepoints(table)), check_exact=True
    )


def test_no_index_rows_gives_an_empty_frame() -> None:
    table = tiny_table()
    table = table[table[c.NEW_BONE_LESIONS].fillna(0) == 0]
    features = fit_transform(table)
    assert features.shape == (0, len(FEATURE_NAMES))
    assert list(features.index.names) == list(c.KEY_COLUMNS)
    assert index_outcomes(table).empty


# --- what validation refuses, the featurizer refuses with the same error -----------------


def test_unknown_categories_are_refused() -> None:
    """Before issue 11 they were mapped to 'other' or missing with a warning."""
    table = tiny_table()
    table[c.CANCER_TYPE] = table[c.CANCER_TYPE].astype("str")
    table.loc[table[c.PATIENT_ID] == "B", c.CANCER_TYPE] = "sarcoma"
    table[c.NEW_LESION_MORPHOLOGY] = table[c.NEW_LESION_MORPHOLOGY].astype("str")
    table.loc[5, c.NEW_LESION_MORPHOLOGY] = "osteolytic"
    error = refused(table)
    assert {
        (c.CANCER_TYPE, "unknown_category"),
        (c.NEW_LESION_MORPHOLOGY, "unknown_category"),
    } <= rules_of(error)
    assert "'sarcoma'" in str(error) and "'osteolytic'" in str(error)


def test_category_dtype_with_unknown_categories_is_refused() -> None:
    table = tiny_table()
    table[c.THERAPY_CLASS] = table[c.THERAPY_CLASS].cat.add_categories(["parp"])
    table.loc[table[c.PATIENT_ID] == "B", c.THERAPY_CLASS] = "parp"
    error = refused(table)
    assert rules_of(error) == {(c.THERAPY_CLASS, "unknown_category")}
    assert "'parp'" in str(error)


@pytest.mark.parametrize("token", ["y", "t", "n", "f", "maybe"])
def test_flag_tokens_validation_refuses_are_refused(token: str) -> None:
    """``y``/``t``/``n``/``f`` were flags to the featurizer alone before issue 11."""
    table = tiny_table()
    table[c.CLINICAL_DETERIORATION] = table[c.CLINICAL_DETERIORATION].astype(object)
    table.loc[5, c.CLINICAL_DETERIORATION] = token
    error = refused(table)
    assert rules_of(error) == {(c.CLINICAL_DETERIORATION, "invalid_boolean")}
    assert f"'{token}'" in str(error)


def test_unreadable_numbers_are_refused() -> None:
    table = tiny_table()
    table[c.SLD_MM] = table[c.SLD_MM].astype("str")
    table.loc[5, c.SLD_MM] = "n.m."
    error = refused(table)
    assert rules_of(error) == {(c.SLD_MM, "not_a_number")}
    assert "'n.m.'" in str(error)


def test_unknown_row_type_is_refused() -> None:
    """Before issue 11 an unknown row type was read as a lab row, with a warning."""
    table = tiny_table()
    table[c.ROW_TYPE] = table[c.ROW_TYPE].astype("str")
    table.loc[5, c.ROW_TYPE] = "ct scan"
    error = refused(table)
    assert (c.ROW_TYPE, "unknown_category") in rules_of(error)
    assert "'ct scan'" in str(error)


def test_lab_row_with_a_lesion_count_is_refused() -> None:
    table = tiny_table()
    table.loc[1, c.NEW_BONE_LESIONS] = 4  # a lab row with a (wrong) lesion count
    error = refused(table)
    assert rules_of(error) == {(c.NEW_BONE_LESIONS, "lab_row_with_imaging")}


def test_empty_table_is_refused() -> None:
    error = refused(tiny_table().iloc[:0])
    assert rules_of(error) == {(c.PATIENT_ID, "empty_table")}


@pytest.mark.parametrize("method", ["fit", "transform"])
def test_missing_required_column_is_named(method: str) -> None:
    table = tiny_table().drop(columns=[c.THERAPY_CLASS])
    with pytest.raises(ContractError, match="therapy_class") as info:
        getattr(TimepointFeaturizer(), method)(table)
    assert rules_of(info.value) == {(c.THERAPY_CLASS, "missing_column")}
    assert "add a 'therapy_class' column" in str(info.value)
    if method == "transform":
        assert str(refused(table)) == str(info.value)


def test_duplicate_assessment_is_an_error_naming_rows() -> None:
    table = tiny_table()
    table = pd.concat([table, table.iloc[[3]]], ignore_index=True)
    error = refused(table)
    assert rules_of(error) == {(c.ASSESSMENT_DATE, "duplicate_assessment")}
    assert "(A, 2024-02-26)" in str(error)


def test_missing_date_is_an_error_naming_rows() -> None:
    table = tiny_table()
    table.loc[2, c.ASSESSMENT_DATE] = pd.NaT
    error = refused(table)
    assert (c.ASSESSMENT_DATE, "missing_value") in rules_of(error)
    assert "(A, <missing>)" in str(error)


def test_not_a_dataframe_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="DataFrame"):
        TimepointFeaturizer().fit(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="DataFrame"):
        TimepointFeaturizer().transform(np.zeros((3, 3)))


def test_index_outcomes_errors_and_missing_labels() -> None:
    table = tiny_table()
    table.loc[7, c.OUTCOME] = pd.NA
    with pytest.raises(ContractError, match="outcome") as info:
        index_outcomes(table)
    assert "(B, 2024-04-30)" in str(info.value)
    labels = index_outcomes(table, allow_missing=True)
    assert labels.dtype == "Int64"
    assert labels.isna().tolist() == [False, False, True]
    assert labels.iloc[:2].tolist() == [1, 0]
    with pytest.raises(ContractError, match="outcome"):
        index_outcomes(tiny_table().drop(columns=c.OUTCOME))
    text = tiny_table()
    text[c.OUTCOME] = text[c.OUTCOME].astype("str").where(text[c.OUTCOME].notna())
    text.loc[3, c.OUTCOME] = "pseudoprogression"
    with pytest.raises(ContractError, match="pseudoprogression") as info:
        index_outcomes(text)
    assert str(info.value) == str(refused(text))


# --- command line -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_features_writes_identifiers_and_features(tmp_path: Path, suffix: str) -> None:
    from typer.testing import CliRunner

    from flare_ml.cli import app
    from flare_ml.data import read_table, write_table

    table = pd.concat([tiny_table(), seed_case_timeline()], ignore_index=True)
    source = write_table(table, tmp_path / f"timepoints{suffix}")
    target = tmp_path / f"features{suffix}"
    result = CliRunner().invoke(app, ["features", "--input", str(source), "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert "4 index rows" in result.output
    written = read_table(target)
    assert list(written.columns) == [*c.KEY_COLUMNS, *FEATURE_NAMES]
    expected = fit_transform(table).reset_index()
    assert written[c.PATIENT_ID].astype(str).tolist() == expected[c.PATIENT_ID].tolist()
    assert (
        pd.to_datetime(written[c.ASSESSMENT_DATE]).tolist() == expected[c.ASSESSMENT_DATE].tolist()
    )
    np.testing.assert_allclose(
        written[list(FEATURE_NAMES)].to_numpy(dtype=float),
        expected[list(FEATURE_NAMES)].to_numpy(),
        rtol=1e-12,
    )


def test_cli_features_user_errors_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flare_ml.cli import app
    from flare_ml.data import write_table

    source = write_table(tiny_table(), tmp_path / "timepoints.csv")
    runner = CliRunner()
    result = runner.invoke(app, ["features", "--input", str(source), "--output", "out.xlsx"])
    assert result.exit_code == 2
    assert "extension" in result.output
    broken = tiny_table().drop(columns=c.CANCER_TYPE)
    bad = write_table(broken, tmp_path / "broken.csv")
    target = tmp_path / "features.csv"
    result = runner.invoke(app, ["features", "--input", str(bad), "--output", str(target)])
    assert result.exit_code == 2
    assert "cancer_type" in result.output
    assert not target.exists()
