"""Tests of timepoint validation: normalisation, canonical dtypes and every contract rule."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_valid_table
from flare_ml.data import (
    CANONICAL_DTYPES,
    ContractError,
    index_row_mask,
    is_canonical,
    timepoint_schema,
    validate_timepoints,
)
from flare_ml.data import contract as c
from flare_ml.data.parsing import normalise_column_names, parse_timepoints
from flare_ml.data.rules import RULES, TABLE_RULES, find_violations

# --- helpers -------------------------------------------------------------------------------


def as_text(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a CSV reader would give it: every value text, missing as empty."""

    def text(value: Any) -> str:
        if value is None or value is pd.NA or value is pd.NaT:
            return ""
        if isinstance(value, float) and np.isnan(value):
            return ""
        if isinstance(value, pd.Timestamp):
            return value.strftime("%Y-%m-%d")
        return str(value)

    return table.astype(object).map(text).astype(str)


ISO_DAY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def label(table: pd.DataFrame, i: int) -> tuple[str, str]:
    """The (patient_id, assessment_date) text an error message shows for row ``i``."""
    pid = table[c.PATIENT_ID].iloc[i]
    missing_pid = pid is None or pd.isna(pid) or str(pid).strip() == ""
    raw = table[c.ASSESSMENT_DATE].iloc[i]
    if raw is None or (not isinstance(raw, str) and pd.isna(raw)) or str(raw).strip() == "":
        date = "<missing>"
    elif isinstance(raw, str):
        parsed = pd.to_datetime(raw.strip(), format="ISO8601", errors="coerce")
        ok = ISO_DAY.match(raw) and not pd.isna(parsed)
        date = parsed.strftime("%Y-%m-%d") if ok else raw
    else:
        date = pd.Timestamp(raw).strftime("%Y-%m-%d")
    return ("<missing>" if missing_pid else str(pid).strip()), date


def violations_of(table: pd.DataFrame) -> ContractError:
    with pytest.raises(ContractError) as info:
        validate_timepoints(table)
    return info.value


def find(error: ContractError, column: str, rule: str) -> Any:
    matches = [v for v in error.violations if v.column == column and v.rule == rule]
    assert matches, f"no {rule} on {column} in:\n{error}"
    return matches[0]


def assert_reported(error: ContractError, column: str, rule: str, row: tuple[str, str] | None):
    """The violation is there, names the column and (if given) the offending row."""
    violation = find(error, column, rule)
    message = str(error)
    line = next(ln for ln in message.splitlines() if f"column '{column}'" in ln and rule)
    assert column in line
    if row is not None:
        assert violation.count >= 1
        if violation.count <= 5:
            assert row in violation.rows, (row, violation.rows)
            assert f"({row[0]}, {row[1]})" in message
    return violation


def raw(n_patients: int = 3, seed: int = 0) -> pd.DataFrame:
    """A valid table in object dtype, so that any value can be injected."""
    return make_valid_table(n_patients, seed).astype(object)


def rows_where(table: pd.DataFrame, kind: str) -> list[int]:
    lesions = pd.to_numeric(table[c.NEW_BONE_LESIONS], errors="coerce").fillna(0)
    lab = table[c.ROW_TYPE] == "lab"
    masks = {
        "lab": lab,
        "imaging": ~lab,
        "index": ~lab & (lesions > 0),
        "non_index_imaging": ~lab & (lesions == 0),
        "any": pd.Series(True, index=table.index),
    }
    return list(np.flatnonzero(masks[kind].to_numpy()))


# --- valid tables ---------------------------------------------------------------------


def test_valid_table_gets_canonical_dtypes_order_and_sorting() -> None:
    table = make_valid_table(4, seed=1)
    table["site"] = "A"  # an extra column
    shuffled = table.sample(frac=1.0, random_state=0)
    shuffled.index = shuffled.index * 10  # a non-default index
    out = validate_timepoints(shuffled)

    assert list(out.columns) == [*c.CONTRACT_COLUMNS, "site"]
    for col in c.CONTRACT_COLUMNS:
        assert out[col].dtype == CANONICAL_DTYPES[col], col
    assert pd.api.types.is_string_dtype(out[c.PATIENT_ID])
    assert str(out[c.ASSESSMENT_DATE].dtype) == "datetime64[s]"
    for col, vocab in c.VOCABULARIES.items():
        assert list(out[col].cat.categories) == list(vocab)  # the full vocabulary
    assert isinstance(out.index, pd.RangeIndex) and out.index.start == 0
    keys = list(zip(out[c.PATIENT_ID], out[c.ASSESSMENT_DATE], strict=True))
    assert keys == sorted(keys)
    assert (out["site"] == "A").all()
    assert is_canonical(out)
    assert not is_canonical(table)
    timepoint_schema().validate(out)


def test_input_is_not_modified() -> None:
    table = as_text(make_valid_table(2))
    before = table.copy()
    validate_timepoints(table)
    pd.testing.assert_frame_equal(table, before)


def test_validation_is_idempotent() -> None:
    once = validate_timepoints(make_valid_table(3, seed=5))
    pd.testing.assert_frame_equal(validate_timepoints(once), once)


def test_category_columns_in_any_category_order_give_the_same_table() -> None:
    """Codes depend on the order of the categories (which dtype equality ignores)."""
    table = make_valid_table(4, 2)
    expected = validate_timepoints(table)
    for col, vocabulary in c.VOCABULARIES.items():
        table[col] = table[col].astype(pd.CategoricalDtype(list(reversed(vocabulary))))
    pd.testing.assert_frame_equal(validate_timepoints(table), expected)
    canonical = expected.copy()
    canonical[c.PATIENT_ID] = " " + canonical[c.PATIENT_ID]  # canonical dtype, unclean text
    pd.testing.assert_frame_equal(validate_timepoints(canonical), expected)


def test_text_input_gives_the_same_table_as_typed_input() -> None:
    table = make_valid_table(3, seed=2)
    pd.testing.assert_frame_equal(validate_timepoints(as_text(table)), validate_timepoints(table))


def test_missing_optional_columns_are_added_all_missing() -> None:
    table = make_valid_table(2, with_lab_rows=False)
    minimal = table[list(c.REQUIRED_COLUMNS)]
    out = validate_timepoints(minimal)
    assert list(out.columns) == list(c.CONTRACT_COLUMNS)
    for col in c.OPTIONAL_COLUMNS:
        assert out[col].dtype == CANONICAL_DTYPES[col]
        if col != c.ROW_TYPE:
            assert out[col].isna().all(), col
    assert (out[c.ROW_TYPE] == "imaging").all()


def test_row_type_defaults_to_imaging_when_empty() -> None:
    table = as_text(make_valid_table(2, with_lab_rows=False))
    table.loc[0, c.ROW_TYPE] = ""
    table.loc[1, c.ROW_TYPE] = "  Imaging "
    out = validate_timepoints(table)
    assert out[c.ROW_TYPE].notna().all()
    assert set(out[c.ROW_TYPE]) == {"imaging"}


def test_normalises_case_whitespace_recist_and_booleans() -> None:
    table = as_text(make_valid_table(2))
    reference = validate_timepoints(table)
    noisy = table.copy()
    noisy[c.CANCER_TYPE] = " " + noisy[c.CANCER_TYPE].str.upper() + "  "
    noisy[c.THERAPY_CLASS] = noisy[c.THERAPY_CLASS].str.title()
    noisy[c.EXTRAOSSEOUS_RESPONSE] = noisy[c.EXTRAOSSEOUS_RESPONSE].str.lower().str.pad(4)
    noisy[c.NEW_LESION_MORPHOLOGY] = noisy[c.NEW_LESION_MORPHOLOGY].str.capitalize()
    noisy[c.OUTCOME] = noisy[c.OUTCOME].str.upper()
    noisy[c.PATIENT_ID] = " " + noisy[c.PATIENT_ID]
    mapping = {"True": "YES", "False": "no"}
    noisy[c.PROGRESSIVE_LYSIS] = noisy[c.PROGRESSIVE_LYSIS].replace(mapping)
    noisy[c.KNOWN_LESION_SCLEROSIS] = noisy[c.KNOWN_LESION_SCLEROSIS].replace(
        {"True": "1", "False": "0"}
    )
    noisy[c.CLINICAL_DETERIORATION] = noisy[c.CLINICAL_DETERIORATION].str.lower()
    noisy[c.ASSESSMENT_DATE] = noisy[c.ASSESSMENT_DATE] + "T13:45:00"
    out = validate_timepoints(noisy)
    pd.testing.assert_frame_equal(out, reference)
    assert set(out[c.EXTRAOSSEOUS_RESPONSE].dropna()) <= {"baseline", "PR", "PD", "SD"}
    assert "baseline" in set(out[c.EXTRAOSSEOUS_RESPONSE])


def test_bool_columns_accept_python_numbers_and_missing() -> None:
    table = make_valid_table(1, with_lab_rows=False).astype(object)
    table[c.PROGRESSIVE_LYSIS] = [1, 0, 1.0, np.nan]
    table[c.CLINICAL_DETERIORATION] = ["Yes", "", "NO", None]
    table[c.KNOWN_LESION_SCLEROSIS] = [True, False, " TRUE ", "false"]
    out = validate_timepoints(table)
    assert out[c.PROGRESSIVE_LYSIS].tolist() == [True, False, True, pd.NA]
    assert out[c.CLINICAL_DETERIORATION].tolist() == [True, pd.NA, False, pd.NA]
    assert out[c.KNOWN_LESION_SCLEROSIS].tolist() == [True, False, True, False]


def test_dates_accept_date_objects_and_timezones() -> None:
    table = make_valid_table(1, with_lab_rows=False).astype(object)
    reference = validate_timepoints(table)
    table[c.TREATMENT_START_DATE] = [d.date() for d in table[c.TREATMENT_START_DATE]]
    table[c.ASSESSMENT_DATE] = [f"{d:%Y-%m-%d}T08:00:00+02:00" for d in table[c.ASSESSMENT_DATE]]
    pd.testing.assert_frame_equal(validate_timepoints(table), reference)


def test_missing_values_stay_missing_not_zero() -> None:
    table = as_text(make_valid_table(2))
    table.loc[0, c.ALP_U_L] = ""
    table.loc[0, c.SLD_MM] = "NA"
    out = validate_timepoints(table)
    first = out[(out[c.PATIENT_ID] == table.loc[0, c.PATIENT_ID])].iloc[0]
    assert np.isnan(first[c.ALP_U_L]) and np.isnan(first[c.SLD_MM])


def test_index_row_mask_on_raw_and_validated_tables() -> None:
    table = make_valid_table(3)
    expected = (table[c.ROW_TYPE] == "imaging") & (table[c.NEW_BONE_LESIONS].fillna(0) > 0)
    assert index_row_mask(table).tolist() == expected.tolist()
    out = validate_timepoints(table)
    mask = index_row_mask(out)
    assert mask.dtype == bool and mask.name == "is_index_row"
    assert mask.sum() == 3
    assert out.loc[mask, c.OUTCOME].notna().all()
    assert out.loc[~mask, c.OUTCOME].isna().all()
    no_row_type = table.drop(columns=[c.ROW_TYPE])
    assert index_row_mask(no_row_type).sum() == 3


def test_rejects_non_dataframes() -> None:
    with pytest.raises(TypeError):
        validate_timepoints([1, 2, 3])  # type: ignore[arg-type]


# --- each rule: the error names the column, the rule and an offending row ---------------


def test_missing_required_column() -> None:
    table = raw().drop(columns=[c.CANCER_TYPE])
    error = violations_of(table)
    assert_reported(error, c.CANCER_TYPE, "missing_column", None)
    assert "required column is missing" in str(error)
    assert "add a 'cancer_type' column" in str(error)


def test_contract_column_names_are_matched_loosely() -> None:
    table = make_valid_table(2)
    table = table.rename(columns={c.CANCER_TYPE: " Cancer_Type ", c.PATIENT_ID: "PATIENT_ID"})
    out = validate_timepoints(table)
    assert list(out.columns) == list(c.CONTRACT_COLUMNS)


def test_duplicate_columns_after_normalising_names() -> None:
    table = make_valid_table(1)
    table[" cancer_type"] = table[c.CANCER_TYPE]
    error = violations_of(table)
    assert_reported(error, c.CANCER_TYPE, "duplicate_column", None)


def test_empty_table() -> None:
    table = make_valid_table(1).iloc[0:0]
    error = violations_of(table)
    assert_reported(error, c.PATIENT_ID, "empty_table", None)
    assert "no rows" in str(error)


def test_unknown_category_lists_allowed_values() -> None:
    table = raw()
    table.loc[3, c.THERAPY_CLASS] = "Osimertinib"
    error = violations_of(table)
    violation = assert_reported(error, c.THERAPY_CLASS, "unknown_category", label(table, 3))
    assert "'Osimertinib'" in violation.message
    for allowed in c.THERAPY_CLASSES:
        assert allowed in violation.message
    assert len(error.violations) == 1  # no knock-on "missing" or "changes within patient"


def test_assessment_before_treatment_start() -> None:
    table = raw()
    table.loc[0, c.ASSESSMENT_DATE] = table.loc[0, c.TREATMENT_START_DATE] - pd.Timedelta(days=3)
    error = violations_of(table)
    assert_reported(error, c.ASSESSMENT_DATE, "before_treatment_start", label(table, 0))


def test_duplicate_patient_and_date() -> None:
    table = raw()
    table.loc[2, c.ASSESSMENT_DATE] = table.loc[1, c.ASSESSMENT_DATE]
    error = violations_of(table)
    violation = assert_reported(error, c.ASSESSMENT_DATE, "duplicate_assessment", label(table, 1))
    assert violation.count == 2


def test_negative_new_bone_lesions() -> None:
    table = raw()
    table.loc[2, c.NEW_BONE_LESIONS] = -2
    error = violations_of(table)
    assert_reported(error, c.NEW_BONE_LESIONS, "negative_count", label(table, 2))


def test_negative_sld() -> None:
    table = raw()
    table.loc[2, c.SLD_MM] = -1.0
    assert_reported(violations_of(table), c.SLD_MM, "negative_value", label(table, 2))


@pytest.mark.parametrize("value", [4.9, 5000.5, 0.0, 1e6])
def test_alp_outside_plausible_range(value: float) -> None:
    table = raw()
    table.loc[4, c.ALP_U_L] = value
    error = violations_of(table)
    violation = assert_reported(error, c.ALP_U_L, "alp_out_of_range", label(table, 4))
    assert "5-5000 U/L" in violation.message


@pytest.mark.parametrize("value", [5.0, 5000.0])
def test_alp_range_bounds_are_inclusive(value: float) -> None:
    table = raw()
    table.loc[4, c.ALP_U_L] = value
    assert validate_timepoints(table)[c.ALP_U_L].isin([value]).sum() == 1


@pytest.mark.parametrize(
    ("column", "other"),
    [
        (c.CANCER_TYPE, "other"),
        (c.THERAPY_CLASS, "immunotherapy"),
        (c.TREATMENT_START_DATE, pd.Timestamp("2020-01-01")),
        (c.BASELINE_MARROW_INVOLVEMENT, None),  # flipped below
    ],
)
def test_patient_context_must_be_constant(column: str, other: Any) -> None:
    table = raw()
    if column == c.BASELINE_MARROW_INVOLVEMENT:
        other = not bool(table.loc[2, column])
    table.loc[2, column] = other
    error = violations_of(table)
    violation = assert_reported(error, column, "not_constant_per_patient", label(table, 2))
    assert "1 patient" in violation.message
    assert violation.count == 5  # every row of that patient
    assert "P000001" in str(error) and "P000002" not in str(error)


def test_morphology_none_with_positive_count() -> None:
    table = raw()
    i = rows_where(table, "index")[0]
    table.loc[i, c.NEW_LESION_MORPHOLOGY] = "none"
    error = violations_of(table)
    assert_reported(error, c.NEW_LESION_MORPHOLOGY, "morphology_none_with_lesions", label(table, i))


@pytest.mark.parametrize("morphology", ["blastic", "lytic", "mixed"])
def test_positive_morphology_with_zero_count(morphology: str) -> None:
    table = raw()
    i = rows_where(table, "non_index_imaging")[0]
    table.loc[i, c.NEW_LESION_MORPHOLOGY] = morphology
    error = violations_of(table)
    assert_reported(error, c.NEW_LESION_MORPHOLOGY, "morphology_without_lesions", label(table, i))


@pytest.mark.parametrize("column", c.IMAGING_REQUIRED_COLUMNS)
def test_imaging_values_required_on_imaging_rows(column: str) -> None:
    table = raw()
    i = rows_where(table, "imaging")[2]
    table.loc[i, column] = None
    error = violations_of(table)
    assert_reported(error, column, "missing_imaging_value", label(table, i))


def test_lab_rows_may_leave_imaging_values_empty() -> None:
    table = raw()
    lab = rows_where(table, "lab")
    assert lab
    table.loc[lab[0], c.NEW_BONE_LESIONS] = 0
    table.loc[lab[0], c.NEW_LESION_MORPHOLOGY] = "none"
    out = validate_timepoints(table)
    assert (out[c.ROW_TYPE] == "lab").sum() == 3


def test_lab_row_with_new_bone_lesions() -> None:
    table = raw()
    i = rows_where(table, "lab")[1]
    table.loc[i, c.NEW_BONE_LESIONS] = 2
    error = violations_of(table)
    assert_reported(error, c.NEW_BONE_LESIONS, "lab_row_with_imaging", label(table, i))
    assert not index_row_mask(table).iloc[i]  # a lab row is never an index row


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (c.EXTRAOSSEOUS_RESPONSE, "PR"),
        (c.NEW_LESION_MORPHOLOGY, "blastic"),
        (c.SLD_MM, 40.0),
        (c.PROGRESSIVE_LYSIS, True),
    ],
)
def test_lab_row_with_other_imaging_findings(column: str, value: Any) -> None:
    table = raw()
    i = rows_where(table, "lab")[0]
    table.loc[i, column] = value
    assert_reported(violations_of(table), column, "lab_row_with_imaging", label(table, i))


def test_lab_row_with_outcome() -> None:
    table = raw()
    i = rows_where(table, "lab")[2]
    table.loc[i, c.OUTCOME] = "flare"
    error = violations_of(table)
    assert_reported(error, c.OUTCOME, "lab_row_with_outcome", label(table, i))


@pytest.mark.parametrize("column", c.DATE_COLUMNS)
@pytest.mark.parametrize("value", ["12/03/2023", "2023-13-45", "soon", "2023"])
def test_unparseable_dates(column: str, value: str) -> None:
    table = raw()
    table.loc[3, column] = value
    error = violations_of(table)
    violation = assert_reported(error, column, "unparseable_date", label(table, 3))
    assert value in violation.message
    assert "YYYY-MM-DD" in violation.hint


def test_outcome_on_a_non_index_row() -> None:
    table = raw()
    i = rows_where(table, "non_index_imaging")[1]
    table.loc[i, c.OUTCOME] = "progression"
    error = violations_of(table)
    assert_reported(error, c.OUTCOME, "outcome_on_non_index_row", label(table, i))


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_patient_id(value: Any) -> None:
    table = raw()
    table.loc[6, c.PATIENT_ID] = value
    error = violations_of(table)
    assert_reported(error, c.PATIENT_ID, "missing_value", ("<missing>", label(table, 6)[1]))


@pytest.mark.parametrize("column", [c.CANCER_TYPE, c.TREATMENT_START_DATE, c.ASSESSMENT_DATE])
def test_missing_required_value(column: str) -> None:
    table = raw()
    table.loc[7, column] = None
    error = violations_of(table)
    row = label(table, 7) if column != c.ASSESSMENT_DATE else (label(table, 7)[0], "<missing>")
    assert_reported(error, column, "missing_value", row)


def test_invalid_boolean_number_and_count() -> None:
    table = raw()
    table.loc[0, c.CLINICAL_DETERIORATION] = "maybe"
    table.loc[2, c.ALP_U_L] = "12O"  # letter O
    table.loc[3, c.NEW_BONE_LESIONS] = 1.5
    error = violations_of(table)
    assert_reported(error, c.CLINICAL_DETERIORATION, "invalid_boolean", label(table, 0))
    assert_reported(error, c.ALP_U_L, "not_a_number", label(table, 2))
    assert_reported(error, c.NEW_BONE_LESIONS, "not_an_integer", label(table, 3))
    assert "'maybe'" in str(error) and "'12O'" in str(error)


def test_all_violations_are_reported_at_once() -> None:
    table = raw()
    table.loc[0, c.CANCER_TYPE] = "lung"
    table.loc[4, c.ALP_U_L] = 99999.0
    table.loc[7, c.ASSESSMENT_DATE] = "yesterday"
    error = violations_of(table)
    rules = {(v.column, v.rule) for v in error.violations}
    assert {
        (c.CANCER_TYPE, "unknown_category"),
        (c.ALP_U_L, "alp_out_of_range"),
        (c.ASSESSMENT_DATE, "unparseable_date"),
    } <= rules
    text = str(error)
    assert text.startswith("the timepoint table breaks the data contract")
    assert len(text.splitlines()) == len(error.violations) + 1  # one line per violation
    assert all("fix:" in line for line in text.splitlines()[1:])


def test_at_most_five_rows_are_listed_with_the_total_count() -> None:
    table = raw(4)
    table[c.CANCER_TYPE] = "lung"
    violation = find(violations_of(table), c.CANCER_TYPE, "unknown_category")
    assert violation.count == 20
    assert len(violation.rows) == 5
    assert violation.rows == tuple(sorted(violation.rows))  # table order
    assert "and 15 more" in violation.describe()


def test_error_names_the_source() -> None:
    table = raw()
    table.loc[0, c.CANCER_TYPE] = "lung"
    with pytest.raises(ContractError, match=r"'cohort\.csv' breaks the data contract"):
        validate_timepoints(table, source="cohort.csv")


# --- properties -----------------------------------------------------------------------

OPTIONAL_DROPPABLE = [col for col in c.OPTIONAL_COLUMNS if col != c.ROW_TYPE]


@st.composite
def valid_tables(draw: st.DrawFn) -> pd.DataFrame:
    n_patients = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    with_labs = draw(st.booleans())
    table = make_valid_table(n_patients, seed, with_lab_rows=with_labs)
    droppable = OPTIONAL_DROPPABLE if with_labs else [*OPTIONAL_DROPPABLE, c.ROW_TYPE]
    dropped = draw(st.sets(st.sampled_from(droppable), max_size=4))
    return table.drop(columns=sorted(dropped))


@settings(max_examples=40, deadline=None)
@given(table=valid_tables(), seed=st.integers(0, 1000))
def test_valid_tables_validate_and_row_order_does_not_matter(table: pd.DataFrame, seed: int):
    out = validate_timepoints(table)
    timepoint_schema().validate(out)
    assert len(out) == len(table)
    shuffled = table.sample(frac=1.0, random_state=seed)
    pd.testing.assert_frame_equal(validate_timepoints(shuffled), out)
    pd.testing.assert_frame_equal(validate_timepoints(as_text(shuffled)), out)


Injector = Callable[[pd.DataFrame, int], tuple[str, str, int | None]]


def _set(table: pd.DataFrame, i: int, column: str, value: Any) -> None:
    table.loc[table.index[i], column] = value


def inject_unknown_category(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    column = list(c.VOCABULARIES)[r % len(c.VOCABULARIES)]
    kind = {c.EXTRAOSSEOUS_RESPONSE: "imaging", c.NEW_LESION_MORPHOLOGY: "imaging"}
    kind[c.OUTCOME] = "index"
    rows = rows_where(table, kind.get(column, "any"))
    i = rows[r % len(rows)]
    _set(table, i, column, "not-a-category")
    return column, "unknown_category", i


def inject_before_start(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    i = r % len(table)
    _set(table, i, c.ASSESSMENT_DATE, table[c.TREATMENT_START_DATE].iloc[i] - pd.Timedelta("1D"))
    return c.ASSESSMENT_DATE, "before_treatment_start", i


def inject_duplicate(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    pid = table[c.PATIENT_ID]
    rows = [i for i in range(1, len(table)) if pid.iloc[i] == pid.iloc[i - 1]]
    if not rows:
        return inject_before_start(table, r)
    i = rows[r % len(rows)]
    _set(table, i, c.ASSESSMENT_DATE, table[c.ASSESSMENT_DATE].iloc[i - 1])
    return c.ASSESSMENT_DATE, "duplicate_assessment", i


def inject_negative_count(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    i = r % len(table)
    _set(table, i, c.NEW_BONE_LESIONS, -1 - r % 3)
    return c.NEW_BONE_LESIONS, "negative_count", i


def inject_alp(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    i = r % len(table)
    _set(table, i, c.ALP_U_L, [0.0, 4.99, 5000.01, 1e9][r % 4])
    return c.ALP_U_L, "alp_out_of_range", i


def inject_inconstant(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    column = c.PATIENT_CONSTANT_COLUMNS[r % len(c.PATIENT_CONSTANT_COLUMNS)]
    if column not in table:
        column = c.CANCER_TYPE
    i = r % len(table)
    pid = table[c.PATIENT_ID].iloc[i]
    if (table[c.PATIENT_ID] == pid).sum() < 2:
        return inject_alp(table, r)
    value = table[column].iloc[i]
    if column == c.TREATMENT_START_DATE:
        new: Any = value - pd.Timedelta("7D")
    elif column == c.BASELINE_MARROW_INVOLVEMENT:
        if pd.isna(value):  # column absent: two rows of the patient disagree
            j = int(np.flatnonzero((table[c.PATIENT_ID] == pid).to_numpy())[0])
            j = j if j != i else j + 1
            _set(table, j, column, False)
            value = False
        new = not bool(value)
    else:
        vocab = c.VOCABULARIES[column]
        new = vocab[(vocab.index(value) + 1) % len(vocab)]
    _set(table, i, column, new)
    return column, "not_constant_per_patient", i


def inject_morphology(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    if r % 2:
        rows = rows_where(table, "index")
        i = rows[r % len(rows)]
        _set(table, i, c.NEW_LESION_MORPHOLOGY, "none")
        return c.NEW_LESION_MORPHOLOGY, "morphology_none_with_lesions", i
    rows = rows_where(table, "non_index_imaging")
    i = rows[r % len(rows)]
    _set(table, i, c.NEW_LESION_MORPHOLOGY, ["blastic", "lytic", "mixed"][r % 3])
    return c.NEW_LESION_MORPHOLOGY, "morphology_without_lesions", i


def inject_missing_imaging(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    column = c.IMAGING_REQUIRED_COLUMNS[r % 3]
    rows = rows_where(table, "imaging")
    i = rows[r % len(rows)]
    _set(table, i, column, None)
    return column, "missing_imaging_value", i


def inject_lab_findings(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    rows = rows_where(table, "lab")
    if not rows:
        return inject_missing_imaging(table, r)
    i = rows[r % len(rows)]
    if r % 2:
        _set(table, i, c.OUTCOME, "flare")
        return c.OUTCOME, "lab_row_with_outcome", i
    _set(table, i, c.NEW_BONE_LESIONS, 1 + r % 4)
    return c.NEW_BONE_LESIONS, "lab_row_with_imaging", i


def inject_bad_date(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    column = c.DATE_COLUMNS[r % 2]
    i = r % len(table)
    _set(table, i, column, ["31/12/2023", "2023-02-30", "n.d.", "20230101"][r % 4])
    return column, "unparseable_date", i


def inject_outcome(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    rows = rows_where(table, "non_index_imaging")
    i = rows[r % len(rows)]
    _set(table, i, c.OUTCOME, c.OUTCOMES[r % 2])
    return c.OUTCOME, "outcome_on_non_index_row", i


def inject_missing_patient(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    i = r % len(table)
    _set(table, i, c.PATIENT_ID, [None, "", "  "][r % 3])
    return c.PATIENT_ID, "missing_value", i


def inject_missing_column(table: pd.DataFrame, r: int) -> tuple[str, str, int | None]:
    column = c.REQUIRED_COLUMNS[r % len(c.REQUIRED_COLUMNS)]
    del table[column]
    return column, "missing_column", None


INJECTORS: list[Injector] = [
    inject_unknown_category,
    inject_before_start,
    inject_duplicate,
    inject_negative_count,
    inject_alp,
    inject_inconstant,
    inject_morphology,
    inject_missing_imaging,
    inject_lab_findings,
    inject_bad_date,
    inject_outcome,
    inject_missing_patient,
    inject_missing_column,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=valid_tables(),
    inject=st.sampled_from(INJECTORS),
    r=st.integers(0, 10_000),
    text=st.booleans(),
)
def test_any_injected_violation_is_reported_naming_its_column(
    table: pd.DataFrame, inject: Injector, r: int, text: bool
) -> None:
    bad = validate_timepoints(table).astype(object)  # every contract column present
    column, rule, i = inject(bad, r)
    row = None if i is None else label(bad, i)
    if text:
        bad = as_text(bad)
    error = violations_of(bad)
    assert_reported(error, column, rule, row)


# --- the rule registry ------------------------------------------------------------------


def test_rule_registry_names_every_rule_once_with_a_message_and_a_fix() -> None:
    assert [rule.name for rule in TABLE_RULES] == [
        "unsplit_header",
        "misspelt_column",
        "missing_column",
        "empty_table",
    ]
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert names[:4] == ["unknown_category", "invalid_boolean", "not_a_number", "not_an_integer"]
    assert {
        "missing_value",
        "missing_imaging_value",
        "unparseable_date",
        "negative_count",
        "negative_value",
        "alp_out_of_range",
        "before_treatment_start",
        "duplicate_assessment",
        "not_constant_per_patient",
        "morphology_none_with_lesions",
        "morphology_without_lesions",
        "lab_row_with_imaging",
        "lab_row_with_outcome",
        "outcome_on_non_index_row",
    } == set(names[4:])
    for rule in RULES:
        assert rule.columns and set(rule.columns) <= set(c.CONTRACT_COLUMNS)
        for column in rule.columns:
            fix = rule.fix if isinstance(rule.fix, str) else rule.fix(column)
            assert fix.strip()
        assert callable(rule.message) or rule.message.strip()


def test_a_rule_run_alone_flags_only_its_rows() -> None:
    table = raw()
    table.loc[4, c.SLD_MM] = -2.0
    table.loc[5, c.CANCER_TYPE] = "lung"
    columns = parse_timepoints(normalise_column_names(table))
    negative = next(rule for rule in RULES if rule.name == "negative_value")
    (violation,) = find_violations(columns, [negative])
    assert (violation.column, violation.count) == (c.SLD_MM, 1)
    assert violation.rows == (label(table, 4),)
    assert {v.rule for v in find_violations(columns)} == {"negative_value", "unknown_category"}
