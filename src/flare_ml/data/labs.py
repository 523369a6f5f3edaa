"""Adapter from a long laboratory table to the ``alp_u_l`` column of a timepoint table.

Hospitals export labs as one row per sample and test (``patient_id``, ``sample_date``,
``test``, ``value``, ``unit``). The contract wants serum alkaline phosphatase in U/L on
each assessment, sampled at or before it. :func:`extract_alp` picks the ALP rows
(``alp``, ``alkaline phosphatase`` or ``alk_phos``, any case) and converts them to U/L
(U/L and IU/L as they are, ukat/L and µkat/L times 60), refusing unknown units;
:func:`attach_alp` then joins the latest sample within a window before each assessment
with :func:`pandas.merge_asof`. The lab table is the source of truth for ALP: the
timepoint table's own ``alp_u_l`` values are replaced, not merged.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pandas as pd

import flare_ml.data.contract as c
from flare_ml.data._parse import (
    MAX_EXAMPLES,
    MISSING_LABEL,
    STRING_DTYPE,
    parse_date,
    parse_number,
    quote,
)
from flare_ml.data.io import read_table
from flare_ml.data.validation import is_canonical, validate_timepoints
from flare_ml.errors import ContractError, Violation

__all__ = [
    "ALP_TEST_NAMES",
    "ALP_UNIT_FACTORS",
    "LAB_COLUMNS",
    "alp_unit_factors",
    "attach_alp",
    "extract_alp",
    "is_alp_test",
    "read_lab_table",
]

SAMPLE_DATE = "sample_date"
TEST = "test"
VALUE = "value"
UNIT = "unit"
#: the columns of a long lab table
LAB_COLUMNS: tuple[str, ...] = (c.PATIENT_ID, SAMPLE_DATE, TEST, VALUE, UNIT)

#: test names taken for serum ALP, after lower-casing and turning ``_``/``-``/spaces
#: into one space
ALP_TEST_NAMES = frozenset({"alp", "alkaline phosphatase", "alk phos"})

#: factor to U/L by unit, after lower-casing, removing spaces and writing micro as ``u``
ALP_UNIT_FACTORS: dict[str, float] = {"u/l": 1.0, "iu/l": 1.0, "ukat/l": 60.0}

_KEY = "patient_id, sample_date"


def _normalise_test(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _normalise_unit(unit: str) -> str:
    text = re.sub(r"\s+", "", unit).lower()
    return text.replace("\u00b5", "u").replace("\u03bc", "u")


def is_alp_test(tests: pd.Series) -> np.ndarray:
    """Which lab rows are serum ALP, by the test names of :data:`ALP_TEST_NAMES`.

    Examples
    --------
    >>> is_alp_test(pd.Series(["Alkaline_Phosphatase", " ALP", "crp", None])).tolist()
    [True, True, False, False]

    """
    codes, uniques = pd.factorize(tests.astype(STRING_DTYPE))
    is_alp_unique = np.array(
        [_normalise_test(str(u)) in ALP_TEST_NAMES for u in uniques], dtype=bool
    )
    return np.append(is_alp_unique, False)[codes]


def alp_unit_factors(units: pd.Series) -> np.ndarray:
    """The factor to U/L of each ALP unit (:data:`ALP_UNIT_FACTORS`); NaN where unknown.

    Examples
    --------
    >>> alp_unit_factors(pd.Series(["µkat/L", "IU/L", "mmol/L", None])).tolist()
    [60.0, 1.0, nan, nan]

    """
    codes, uniques = pd.factorize(units.astype(STRING_DTYPE))
    factor_unique = np.array(
        [ALP_UNIT_FACTORS.get(_normalise_unit(str(u)), np.nan) for u in uniques],
        dtype=np.float64,
    )
    return np.append(factor_unique, np.nan)[codes]


def _check_columns(labs: pd.DataFrame, source: str | None) -> pd.DataFrame:
    renamed = labs.rename(columns=lambda name: str(name).strip().lower())
    missing = [col for col in LAB_COLUMNS if col not in renamed.columns]
    if missing:
        where = f" '{source}'" if source else ""
        found = quote(list(map(str, labs.columns)), 8)
        raise ContractError(
            f"the lab table{where} is missing required columns:",
            [
                Violation(
                    col,
                    "missing_column",
                    message="required column of a lab table is missing",
                    hint=f"a lab table has columns {', '.join(LAB_COLUMNS)} "
                    f"(columns found: {found})",
                )
                for col in missing
            ],
        )
    return renamed


def read_lab_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    r"""Read a long lab table and check that it has the lab columns.

    Column names are matched after trimming spaces and lower-casing; ``patient_id``,
    ``test`` and ``unit`` come back as text. Values are checked by :func:`extract_alp`,
    and only on the ALP rows, so a text result of another test does no harm.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file with columns
        :data:`LAB_COLUMNS` (others are kept).

    Returns
    -------
    pandas.DataFrame
        The lab table.

    Raises
    ------
    ContractError
        If the file cannot be read or a lab column is missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "labs.csv").write_text(
    ...     "patient_id,sample_date,test,value,unit\nP1,2024-01-20,ALP,2.1,ukat/L\n"
    ... )
    >>> read_lab_table(folder / "labs.csv")["test"].tolist()
    ['ALP']

    """
    labs = _check_columns(read_table(path), str(path))
    for col in (c.PATIENT_ID, TEST, UNIT):
        labs[col] = labs[col].astype(STRING_DTYPE).str.strip()
    return labs


def extract_alp(labs: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Pick the ALP rows of a long lab table and convert them to U/L.

    Parameters
    ----------
    labs : pandas.DataFrame
        A long lab table with columns :data:`LAB_COLUMNS`.
    source : str, optional
        Where the table came from, named in error messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id`` (text), ``sample_date`` (``datetime64[s]``, day
        precision) and ``alp_u_l`` (float64), one row per patient and sample day
        (several samples on one day are averaged), sorted by patient and date. Rows with
        an empty value are dropped.

    Raises
    ------
    ContractError
        If a lab column is missing or, on ALP rows, the unit is unknown or missing, the
        value is not a number or outside the plausible range, the sample date cannot be
        parsed or the patient id is missing. Every problem is listed with up to five
        ``(patient_id, sample_date)`` rows.

    Examples
    --------
    >>> import pandas as pd
    >>> labs = pd.DataFrame(
    ...     {
    ...         "patient_id": ["P1", "P1", "P1"],
    ...         "sample_date": ["2024-01-20", "2024-02-10", "2024-02-10"],
    ...         "test": ["Alkaline phosphatase", "ALP", "crp"],
    ...         "value": [2.0, 130.0, 4.0],
    ...         "unit": ["µkat/L", "IU/L", "mg/L"],
    ...     }
    ... )
    >>> extract_alp(labs)["alp_u_l"].tolist()
    [120.0, 130.0]

    """
    labs = _check_columns(labs, source)
    where = f" '{source}'" if source else ""
    alp_rows = labs.loc[is_alp_test(labs[TEST])].reset_index(drop=True)

    pid = alp_rows[c.PATIENT_ID].astype(STRING_DTYPE).str.strip()
    pid = pid.mask(pid == "")
    dates, bad_date, bad_dates = parse_date(alp_rows[SAMPLE_DATE])
    values, bad_value, bad_values = parse_number(alp_rows[VALUE])

    unit_text = alp_rows[UNIT].astype(STRING_DTYPE)
    factors = alp_unit_factors(unit_text)
    unknown_unit = np.isnan(factors)
    unknown_names = [str(u) for u in unit_text[unknown_unit & unit_text.notna()].unique()]
    if (unknown_unit & unit_text.isna()).any():
        unknown_names.append(MISSING_LABEL)
    alp = values * factors

    raw_dates = alp_rows[SAMPLE_DATE]

    def rows(mask: np.ndarray[Any, Any]) -> tuple[tuple[str, str], ...]:
        out = []
        for i in np.flatnonzero(mask)[:MAX_EXAMPLES]:
            who = MISSING_LABEL if pd.isna(pid.iloc[i]) else str(pid.iloc[i])
            when = dates[i]
            day = (
                str(when.astype("datetime64[D]")) if not np.isnat(when) else str(raw_dates.iloc[i])
            )
            out.append((who, day))
        return tuple(out)

    violations: list[Violation] = []

    def add(column: str, rule: str, mask: np.ndarray[Any, Any], message: str, hint: str) -> None:
        if mask.any():
            violations.append(
                Violation(column, rule, rows(mask), int(mask.sum()), message, hint, key=_KEY)
            )

    has_value = ~np.isnan(values)
    low, high = c.ALP_PLAUSIBLE_RANGE
    converted_bad = has_value & ~unknown_unit & ((alp < low) | (alp > high))
    add(
        UNIT,
        "unknown_unit",
        unknown_unit & (has_value | bad_value),
        f"unknown ALP unit {quote(unknown_names)}; known: U/L, IU/L, ukat/L, µkat/L",
        "convert the values to U/L, or to ukat/L (x 60 = U/L)",
    )
    add(
        VALUE,
        "not_a_number",
        bad_value,
        f"ALP value is not a number ({quote(bad_values)})",
        "write plain numbers, or leave the value empty",
    )
    add(
        VALUE,
        "alp_out_of_range",
        converted_bad,
        f"ALP outside the plausible range {low:g}-{high:g} U/L after unit conversion "
        f"({quote([f'{v:g}' for v in dict.fromkeys(alp[converted_bad][:50].tolist())])})",
        "check the unit of these samples and look for typos",
    )
    add(
        SAMPLE_DATE,
        "unparseable_date",
        bad_date,
        f"date cannot be parsed ({quote(bad_dates)})",
        "write dates as ISO 8601, YYYY-MM-DD",
    )
    add(
        SAMPLE_DATE,
        "missing_value",
        np.isnat(dates) & ~bad_date & has_value,
        "sample date is missing",
        "give every ALP sample its date",
    )
    add(
        c.PATIENT_ID,
        "missing_value",
        pid.isna().to_numpy() & has_value,
        "patient_id is missing",
        "give every ALP sample its patient_id",
    )
    if violations:
        raise ContractError(
            f"the ALP rows of the lab table{where} cannot be used "
            f"({len(violations)} problem{'s' if len(violations) != 1 else ''}):",
            violations,
        )

    result = pd.DataFrame({c.PATIENT_ID: pid.array, SAMPLE_DATE: dates, c.ALP_U_L: alp}).loc[
        has_value
    ]
    return (
        result.groupby([c.PATIENT_ID, SAMPLE_DATE], sort=True, observed=True)[c.ALP_U_L]
        .mean()
        .reset_index()
    )


def attach_alp(
    timepoints: pd.DataFrame,
    labs: pd.DataFrame,
    window_days: int = 30,
    *,
    source: str | None = None,
) -> pd.DataFrame:
    """Fill ``alp_u_l`` from a long lab table by an as-of join.

    Each assessment gets the patient's latest ALP sample taken at or before its
    ``assessment_date`` and at most ``window_days`` days earlier (both ends inclusive);
    without such a sample ``alp_u_l`` is missing. The lab table is the source: the
    timepoint table's own ``alp_u_l`` values are replaced, not merged, so every value
    has the same provenance.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        A timepoint table, raw or validated (a raw table is validated first).
    labs : pandas.DataFrame
        A long lab table with columns :data:`LAB_COLUMNS`; only the ALP rows are used
        (see :func:`extract_alp`).
    window_days : int, default 30
        How old a sample may be, in days before the assessment.
    source : str, optional
        Where the lab table came from, named in error messages.

    Returns
    -------
    pandas.DataFrame
        The validated timepoint table with ``alp_u_l`` replaced.

    Raises
    ------
    ContractError
        If the timepoint table breaks the contract or the ALP rows of the lab table
        cannot be used (unknown unit, missing column, ...).
    ValueError
        If ``window_days`` is negative.

    Examples
    --------
    >>> import pandas as pd
    >>> timepoints = pd.DataFrame(
    ...     {
    ...         "patient_id": ["P1", "P1"],
    ...         "treatment_start_date": ["2024-01-01", "2024-01-01"],
    ...         "assessment_date": ["2024-01-01", "2024-03-01"],
    ...         "cancer_type": ["prostate", "prostate"],
    ...         "therapy_class": ["ar_pathway", "ar_pathway"],
    ...         "extraosseous_response": ["baseline", "SD"],
    ...         "new_bone_lesions": [0, 0],
    ...         "new_lesion_morphology": ["none", "none"],
    ...     }
    ... )
    >>> labs = pd.DataFrame(
    ...     {
    ...         "patient_id": ["P1", "P1"],
    ...         "sample_date": ["2023-12-28", "2024-02-20"],
    ...         "test": ["alp", "alp"],
    ...         "value": [2.5, 180],
    ...         "unit": ["ukat/L", "U/L"],
    ...     }
    ... )
    >>> attach_alp(timepoints, labs)["alp_u_l"].tolist()
    [150.0, 180.0]

    """
    if window_days < 0:
        raise ValueError(f"window_days must be 0 or more, got {window_days}")
    table = timepoints if is_canonical(timepoints) else validate_timepoints(timepoints)
    alp = extract_alp(labs, source=source)

    left = pd.DataFrame(
        {
            c.PATIENT_ID: table[c.PATIENT_ID],
            c.ASSESSMENT_DATE: table[c.ASSESSMENT_DATE],
            "_row": np.arange(len(table)),
        }
    ).sort_values(c.ASSESSMENT_DATE, kind="stable")
    right = alp.sort_values(SAMPLE_DATE, kind="stable")
    joined = pd.merge_asof(
        left,
        right,
        left_on=c.ASSESSMENT_DATE,
        right_on=SAMPLE_DATE,
        by=c.PATIENT_ID,
        direction="backward",
        tolerance=pd.Timedelta(days=window_days),
        allow_exact_matches=True,
    )
    values = np.full(len(table), np.nan)
    values[joined["_row"].to_numpy()] = joined[c.ALP_U_L].to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    out = table.copy()
    out[c.ALP_U_L] = values
    return out
