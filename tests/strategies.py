"""Hypothesis strategies for timepoint tables of the data contract (reusable in any test)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from flare_ml.data import contract as c

FOLLOW_UP_RESPONSES = ("CR", "PR", "SD", "PD", "NE")
LESION_MORPHOLOGIES = ("blastic", "lytic", "mixed")
_FLAGS = (
    c.NEW_EXTRAOSSEOUS_LESION,
    c.PROGRESSIVE_LYSIS,
    c.KNOWN_LESION_SCLEROSIS,
    c.BASELINE_MARROW_INVOLVEMENT,
    c.CLINICAL_DETERIORATION,
)

optional_flags = st.sampled_from([True, False, None])
optional_alp = st.one_of(st.none(), st.integers(20, 1500).map(float))
optional_sld = st.one_of(st.none(), st.integers(0, 3000).map(lambda tenths: tenths / 10))


def typed_table(rows: list[dict[str, Any]], *, categories: bool = True) -> pd.DataFrame:
    """Rows of contract columns as a DataFrame with canonical (or plain text) dtypes."""
    table = pd.DataFrame(rows, columns=list(c.CONTRACT_COLUMNS))
    table[c.PATIENT_ID] = table[c.PATIENT_ID].astype("str")
    for col in c.DATE_COLUMNS:
        table[col] = pd.to_datetime(table[col])
    for col, vocabulary in c.VOCABULARIES.items():
        dtype = pd.CategoricalDtype(list(vocabulary)) if categories else "str"
        table[col] = table[col].astype(dtype)
    for col in _FLAGS:
        table[col] = table[col].astype("boolean")
    for col in c.FLOAT_COLUMNS:
        table[col] = table[col].astype("float64")
    table[c.NEW_BONE_LESIONS] = table[c.NEW_BONE_LESIONS].astype("Int64")
    return table


@st.composite
def _patient_rows(
    draw: st.DrawFn, patient_id: str, *, max_follow_ups: int, lab_rows: bool
) -> list[dict[str, Any]]:
    start = dt.date(2018, 1, 1) + dt.timedelta(days=draw(st.integers(0, 1500)))
    context = {
        c.PATIENT_ID: patient_id,
        c.TREATMENT_START_DATE: start,
        c.CANCER_TYPE: draw(st.sampled_from(c.CANCER_TYPES)),
        c.THERAPY_CLASS: draw(st.sampled_from(c.THERAPY_CLASSES)),
        c.BASELINE_MARROW_INVOLVEMENT: draw(optional_flags),
    }
    rows = [
        {
            **context,
            c.ASSESSMENT_DATE: start,
            c.ROW_TYPE: "imaging",
            c.EXTRAOSSEOUS_RESPONSE: "baseline",
            c.SLD_MM: draw(optional_sld),
            c.NEW_BONE_LESIONS: 0,
            c.NEW_LESION_MORPHOLOGY: "none",
            c.PROGRESSIVE_LYSIS: draw(optional_flags),
            c.KNOWN_LESION_SCLEROSIS: draw(optional_flags),
            c.ALP_U_L: draw(optional_alp),
            c.CLINICAL_DETERIORATION: draw(optional_flags),
        }
    ]
    offsets = sorted(
        draw(st.lists(st.integers(1, 720), unique=True, min_size=0, max_size=max_follow_ups))
    )
    for offset in offsets:
        date = start + dt.timedelta(days=offset)
        if lab_rows and draw(st.booleans()):
            rows.append(
                {
                    **context,
                    c.ASSESSMENT_DATE: date,
                    c.ROW_TYPE: "lab",
                    c.NEW_BONE_LESIONS: draw(st.sampled_from([0, None])),
                    c.ALP_U_L: draw(optional_alp),
                    c.CLINICAL_DETERIORATION: draw(optional_flags),
                }
            )
            continue
        lesions = draw(st.integers(0, 3))
        rows.append(
            {
                **context,
                c.ASSESSMENT_DATE: date,
                c.ROW_TYPE: "imaging",
                c.EXTRAOSSEOUS_RESPONSE: draw(st.sampled_from(FOLLOW_UP_RESPONSES)),
                c.NEW_EXTRAOSSEOUS_LESION: draw(optional_flags),
                c.SLD_MM: draw(optional_sld),
                c.NEW_BONE_LESIONS: lesions,
                c.NEW_LESION_MORPHOLOGY: (
                    draw(st.sampled_from(LESION_MORPHOLOGIES)) if lesions else "none"
                ),
                c.PROGRESSIVE_LYSIS: draw(optional_flags),
                c.KNOWN_LESION_SCLEROSIS: draw(optional_flags),
                c.ALP_U_L: draw(optional_alp),
                c.CLINICAL_DETERIORATION: draw(optional_flags),
                c.OUTCOME: draw(st.sampled_from(c.OUTCOMES)) if lesions else None,
            }
        )
    return rows


@st.composite
def timepoint_tables(
    draw: st.DrawFn,
    *,
    min_patients: int = 1,
    max_patients: int = 4,
    max_follow_ups: int = 6,
    lab_rows: bool | None = None,
    categories: bool | None = None,
) -> pd.DataFrame:
    """Small valid timepoint tables, sorted by patient and date.

    Each patient has a baseline imaging row at treatment start (``extraosseous_response``
    ``baseline``, no new bone lesions), then up to ``max_follow_ups`` visits within two
    years: imaging rows (RECIST response, optional SLD, 0-3 new bone lesions with a
    morphology, an outcome on index rows) and, where lab rows are drawn, ``lab`` rows
    carrying only ALP (and clinical deterioration). Optional columns are often missing.
    Patient constants (treatment start, cancer type, therapy class, marrow involvement)
    are the same on all of a patient's rows.

    Parameters
    ----------
    min_patients, max_patients : int
        Range of the number of patients (ids ``P0``, ``P1``, ...).
    max_follow_ups : int
        Most visits after the baseline per patient.
    lab_rows : bool or None
        Whether ``lab`` rows may appear; ``None`` draws it. Without lab rows the
        ``row_type`` column is dropped half the time (the contract's default, imaging).
    categories : bool or None
        Category columns as ``category`` with the full vocabulary (True) or as text
        (False); ``None`` draws it.

    """
    n_patients = draw(st.integers(min_patients, max_patients))
    with_labs = draw(st.booleans()) if lab_rows is None else lab_rows
    as_categories = draw(st.booleans()) if categories is None else categories
    rows: list[dict[str, Any]] = []
    for number in range(n_patients):
        rows += draw(_patient_rows(f"P{number}", max_follow_ups=max_follow_ups, lab_rows=with_labs))
    table = typed_table(rows, categories=as_categories)
    if not with_labs and draw(st.booleans()):
        table = table.drop(columns=c.ROW_TYPE)
    return table


# --- faults: tables that break the contract, and spellings that do not ----------------------

#: flag spellings validation refuses (``y``/``t``/``n``/``f`` among them)
BAD_FLAGS = ("y", "t", "n", "f", "maybe", "2", "si", "+")
#: flag spellings validation accepts
GOOD_FLAGS = ("YES", " no ", "1", "0", "True", "false", "", "NA", 1, 0, 1.0)
#: category spellings: unknown values, and known values in other cases and spacing
BAD_CATEGORIES = ("lung", "ct scan", "other ", "progressive", "-", "flare?")
#: numbers validation refuses as numbers, and ones it refuses by range or sign
BAD_NUMBERS = ("n.m.", "12O", "1,5", "inf")
#: date spellings validation refuses
BAD_DATES = ("31/12/2023", "2023-02-30", "n.d.", "20230101", "yesterday")


def _as_object(table: pd.DataFrame, column: str) -> None:
    if column in table.columns and table[column].dtype != object:
        table[column] = table[column].astype(object)


@st.composite
def _fault(draw: st.DrawFn, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with one drawn fault (or harmless respelling) applied."""
    table = table.copy()
    n = len(table)
    required = [col for col in c.REQUIRED_COLUMNS if col in table.columns]
    row = table.index[draw(st.integers(0, n - 1))]
    kind = draw(
        st.sampled_from(
            [
                "bad_flag",
                "good_flag",
                "bad_category",
                "respelled_category",
                "negative_count",
                "fractional_count",
                "bad_number",
                "number_out_of_range",
                "bad_date",
                "missing_value",
                "duplicate_row",
                "lab_row",
                "context_change",
                "spaced_patient_id",
                "missing_column",
            ]
        )
    )
    if kind in ("bad_flag", "good_flag"):
        column = draw(st.sampled_from(_FLAGS))
        _as_object(table, column)
        pool = BAD_FLAGS if kind == "bad_flag" else GOOD_FLAGS
        table.loc[row, column] = draw(st.sampled_from(pool))
    elif kind in ("bad_category", "respelled_category"):
        column = draw(st.sampled_from([col for col in c.VOCABULARIES if col in table.columns]))
        _as_object(table, column)
        if kind == "bad_category":
            value: Any = draw(st.sampled_from(BAD_CATEGORIES))
        else:
            value = draw(st.sampled_from(c.VOCABULARIES[column]))
            value = draw(st.sampled_from([value.upper(), f" {value} ", value.title()]))
        table.loc[row, column] = value
    elif kind in ("negative_count", "fractional_count"):
        _as_object(table, c.NEW_BONE_LESIONS)
        table.loc[row, c.NEW_BONE_LESIONS] = -1 if kind == "negative_count" else 1.5
    elif kind in ("bad_number", "number_out_of_range"):
        column = draw(st.sampled_from(c.FLOAT_COLUMNS))
        _as_object(table, column)
        bad = {c.SLD_MM: -5.0, c.ALP_U_L: draw(st.sampled_from([1.0, 9000.0]))}
        pool = BAD_NUMBERS if kind == "bad_number" else (bad[column],)
        table.loc[row, column] = draw(st.sampled_from(pool))
    elif kind == "bad_date":
        column = draw(st.sampled_from(c.DATE_COLUMNS))
        _as_object(table, column)
        table.loc[row, column] = draw(st.sampled_from(BAD_DATES))
    elif kind == "missing_value":
        column = draw(st.sampled_from(required))
        _as_object(table, column)
        table.loc[row, column] = None
    elif kind == "duplicate_row":
        table.loc[table.index.max() + 1] = table.loc[row]
    elif kind == "lab_row":
        _as_object(table, c.ROW_TYPE)
        if c.ROW_TYPE not in table.columns:
            table[c.ROW_TYPE] = "imaging"
        table.loc[row, c.ROW_TYPE] = "lab"
    elif kind == "context_change":
        column = draw(st.sampled_from([c.CANCER_TYPE, c.THERAPY_CLASS]))
        _as_object(table, column)
        table.loc[row, column] = draw(st.sampled_from(c.VOCABULARIES[column]))
    elif kind == "spaced_patient_id":
        table.loc[row, c.PATIENT_ID] = f" {table.loc[row, c.PATIENT_ID]} "
    else:
        table = table.drop(columns=draw(st.sampled_from(required)))
    return table


@st.composite
def faulty_tables(draw: st.DrawFn, *, max_faults: int = 3, **table_options: Any) -> pd.DataFrame:
    """Tables of :func:`timepoint_tables` given up to ``max_faults`` drawn faults.

    A fault is a value the contract refuses (a flag spelled ``y``, an unknown category,
    a negative or fractional count, a non-number, an ALP or SLD out of range, an
    unparseable date, a missing required value, a duplicate row, an imaging row turned
    into a lab row, a patient whose context changes, a missing required column) or a
    harmless respelling it accepts (``YES``, `` no ``, an upper-case category, spaces
    around an id). Touched columns become ``object``; the table may then be turned into
    all text, as a CSV reader gives it. Some tables get no fault (valid ones).

    Parameters
    ----------
    max_faults : int
        Most faults applied to one table.
    **table_options
        Passed to :func:`timepoint_tables`.

    """
    table = draw(timepoint_tables(**table_options)).reset_index(drop=True)
    for _ in range(draw(st.integers(0, max_faults))):
        if c.PATIENT_ID not in table.columns or c.ASSESSMENT_DATE not in table.columns:
            break
        table = draw(_fault(table))
    if draw(st.booleans()):
        table = table.astype(object).map(_text)
    return table


def _text(value: Any) -> Any:
    """A value as a CSV reader gives it (missing as None, dates as YYYY-MM-DD)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp | dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)
