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
