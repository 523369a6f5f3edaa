"""Normalise and validate a timepoint table against the data contract (DESIGN.md section 2).

:func:`validate_timepoints` is the gate every table passes before features, rules or
models see it. It first normalises what people write in spreadsheets (stray
whitespace, upper-case categories, ``yes``/``no`` booleans, ISO dates as text, a missing
``row_type``), then checks every rule of the contract at once and raises a single
:class:`~flare_ml.errors.ContractError` listing each broken rule with the column, the
number of offending rows and up to five ``(patient_id, assessment_date)`` examples. A
valid table comes back with the canonical dtypes of :data:`CANONICAL_DTYPES`, in
contract column order, sorted by patient and date. Everything is vectorised (per-value
work is done on the distinct values only), so a million rows take a few seconds.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.data._parse import (
    DATE_DTYPE,
    MAX_EXAMPLES,
    MISSING_LABEL,
    STRING_DTYPE,
    BoolArray,
    IntArray,
    category_dtype,
    factorize,
    is_missing_scalar,
    lookup,
    parse_bool,
    parse_category,
    parse_date,
    parse_number,
    parse_text_id,
    plural,
    quote,
)
from flare_ml.data.io import read_table
from flare_ml.errors import ContractError, Violation

if TYPE_CHECKING:
    import pandera.pandas as pa

__all__ = [
    "CANONICAL_DTYPES",
    "DATE_DTYPE",
    "IMAGING_FINDING_COLUMNS",
    "STRING_DTYPE",
    "index_row_mask",
    "is_canonical",
    "load_timepoints",
    "timepoint_schema",
    "validate_timepoints",
]


#: the dtype of every contract column after :func:`validate_timepoints`
CANONICAL_DTYPES: dict[str, Any] = {
    c.PATIENT_ID: STRING_DTYPE,
    **dict.fromkeys(c.DATE_COLUMNS, DATE_DTYPE),
    **{col: category_dtype(col) for col in c.VOCABULARIES},
    **dict.fromkeys(c.BOOL_COLUMNS, pd.BooleanDtype()),
    **dict.fromkeys(c.FLOAT_COLUMNS, np.dtype("float64")),
    **dict.fromkeys(c.INT_COLUMNS, pd.Int64Dtype()),
}

#: columns that describe a scan: empty on ``lab`` rows (booleans may be False there)
IMAGING_FINDING_COLUMNS: tuple[str, ...] = (
    c.EXTRAOSSEOUS_RESPONSE,
    c.NEW_EXTRAOSSEOUS_LESION,
    c.SLD_MM,
    c.NEW_BONE_LESIONS,
    c.NEW_LESION_MORPHOLOGY,
    c.PROGRESSIVE_LYSIS,
    c.KNOWN_LESION_SCLEROSIS,
)

_POSITIVE_MORPHOLOGIES = ("blastic", "lytic", "mixed")


# --- the validator ----------------------------------------------------------------------
class _Check:
    """State of one validation run: parsed columns, row labels and found violations."""

    def __init__(self, n_rows: int) -> None:
        self.n = n_rows
        self.violations: list[Violation] = []
        self.order: IntArray = np.arange(n_rows, dtype=np.intp)
        self.pid_text: npt.NDArray[Any] = np.full(n_rows, None, dtype=object)
        self.date_label: Callable[[int], str] = lambda i: MISSING_LABEL

    def rows(self, mask: BoolArray) -> tuple[tuple[str, str], ...]:
        positions = self.order[mask[self.order]][:MAX_EXAMPLES]
        return tuple(
            (
                MISSING_LABEL if is_missing_scalar(self.pid_text[i]) else str(self.pid_text[i]),
                self.date_label(int(i)),
            )
            for i in positions
        )

    def first(self, mask: BoolArray) -> int:
        return int(self.order[mask[self.order]][0])

    def add(self, column: str, rule: str, mask: BoolArray, message: str, hint: str) -> None:
        count = int(mask.sum())
        if count:
            self.violations.append(Violation(column, rule, self.rows(mask), count, message, hint))

    def add_table(self, column: str, rule: str, message: str, hint: str) -> None:
        self.violations.append(Violation(column, rule, (), 0, message, hint))


def _normalise_column_names(df: pd.DataFrame) -> pd.DataFrame:
    names: list[Hashable] = []
    for name in df.columns:
        text = str(name).strip()
        names.append(text.lower() if text.lower() in c.CONTRACT_COLUMNS else text)
    seen: dict[Hashable, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    duplicated = [name for name, n in seen.items() if n > 1]
    if duplicated:
        raise ContractError(
            "the timepoint table breaks the data contract:",
            [
                Violation(
                    str(name),
                    "duplicate_column",
                    message="the column appears more than once (after trimming spaces and "
                    "lower-casing contract names)",
                    hint="keep one column of each name",
                )
                for name in duplicated
            ],
        )
    out = df.copy(deep=False)
    out.columns = pd.Index(names)
    out.index = pd.RangeIndex(len(out))  # positions label rows from here on
    return out


def validate_timepoints(df: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Normalise a timepoint table and check it against the data contract.

    Normalisation: whitespace is stripped and category values lower-cased, except the
    RECIST codes of ``extraosseous_response`` (upper-cased; ``baseline`` stays lower
    case); dates are parsed from ISO 8601 text (``YYYY-MM-DD``, a time part is dropped);
    booleans accept ``true/false/1/0/yes/no`` in any case, empty meaning missing;
    ``row_type`` defaults to ``imaging`` when the column is absent or a value is empty.
    Contract column names are matched after trimming spaces and lower-casing.

    Then every rule is checked and all violations are reported together: missing
    required column or value, empty table, unknown category, unparseable date or number,
    assessment before treatment start, duplicate ``(patient_id, assessment_date)``,
    negative counts or diameters, ALP outside :data:`~flare_ml.data.contract.ALP_PLAUSIBLE_RANGE`,
    context that changes within a patient (``cancer_type``, ``therapy_class``,
    ``treatment_start_date``, ``baseline_marrow_involvement``), morphology that
    contradicts the lesion count, imaging values missing on imaging rows, imaging findings
    or an outcome on a lab row, and an outcome on a row that is not an index row.

    Parameters
    ----------
    df : pandas.DataFrame
        The raw table, in any dtypes (text from a CSV, typed columns from Parquet or
        from the simulator). It is not modified.
    source : str, optional
        Where the table came from (a path), named in the error message.

    Returns
    -------
    pandas.DataFrame
        The table with the canonical dtypes of :data:`CANONICAL_DTYPES`: every contract
        column in :data:`~flare_ml.data.contract.CONTRACT_COLUMNS` order (absent optional
        columns added as all-missing), then any extra columns unchanged; rows sorted by
        ``patient_id`` and ``assessment_date`` with a fresh ``RangeIndex``.

    Raises
    ------
    ContractError
        Listing every violation (``error.violations``), each with the column, a rule
        code, the number of offending rows and up to five of them.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame(
    ...     {
    ...         "patient_id": ["P1", "P1"],
    ...         "treatment_start_date": ["2024-01-01", "2024-01-01"],
    ...         "assessment_date": ["2024-03-01", "2024-01-01"],
    ...         "cancer_type": ["NSCLC ", "nsclc"],
    ...         "therapy_class": ["egfr_tki", "egfr_tki"],
    ...         "extraosseous_response": ["pr", "Baseline"],
    ...         "new_bone_lesions": ["2", "0"],
    ...         "new_lesion_morphology": ["Blastic", "none"],
    ...         "outcome": ["flare", ""],
    ...     }
    ... )
    >>> table = validate_timepoints(raw)
    >>> table["extraosseous_response"].tolist()
    ['baseline', 'PR']
    >>> str(table["new_bone_lesions"].dtype), str(table["assessment_date"].dtype)
    ('Int64', 'datetime64[s]')
    >>> bad = raw.assign(cancer_type="lung")
    >>> try:
    ...     validate_timepoints(bad)
    ... except ContractError as error:
    ...     print(error.violations[0].column, error.violations[0].rule)
    cancer_type unknown_category

    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    where = f" '{source}'" if source else ""
    headline = f"the timepoint table{where} breaks the data contract"

    df = _normalise_column_names(df)
    n = len(df)
    check = _Check(n)

    absent_required = [col for col in c.REQUIRED_COLUMNS if col not in df.columns]
    for col in absent_required:
        check.add_table(
            col,
            "missing_column",
            "required column is missing",
            f"add a '{col}' column (columns found: {quote(list(map(str, df.columns)), 8)})",
        )
    if n == 0:
        check.add_table(
            c.PATIENT_ID,
            "empty_table",
            "the table has no rows",
            "provide at least one assessment row",
        )
    if n == 0 or (c.PATIENT_ID in absent_required and c.ASSESSMENT_DATE in absent_required):
        _raise(headline, check)

    def column(name: str) -> pd.Series:
        if name in df.columns:
            return df[name]
        return pd.Series([None] * n, dtype=object)

    present = set(df.columns)
    out: dict[str, Any] = {}

    # --- identifiers and dates; these label the offending rows ---------------------------
    pid = parse_text_id(column(c.PATIENT_ID))
    pid_codes, pid_uniques = factorize(pid)
    check.pid_text = pid.to_numpy(dtype=object, na_value=None)
    out[c.PATIENT_ID] = pid.array

    dates: dict[str, npt.NDArray[Any]] = {}
    date_bad: dict[str, BoolArray] = {}
    date_bad_values: dict[str, list[str]] = {}
    for col in c.DATE_COLUMNS:
        dates[col], date_bad[col], date_bad_values[col] = parse_date(column(col))
        out[col] = dates[col]
    raw_assessment = column(c.ASSESSMENT_DATE)
    assessment = dates[c.ASSESSMENT_DATE]

    def date_label(i: int) -> str:
        value = assessment[i]
        if not np.isnat(value):
            return str(value.astype("datetime64[D]"))
        raw = raw_assessment.iloc[i]
        return MISSING_LABEL if is_missing_scalar(raw) or str(raw).strip() == "" else str(raw)

    check.date_label = date_label

    # sort order: patient (text order, missing last), then date (missing last)
    rank = np.argsort(np.argsort(np.asarray(pid_uniques, dtype=object)))
    pid_key = lookup(pid_codes, rank.astype(np.intp), len(pid_uniques))
    date_key = assessment.astype(np.int64)
    date_key = np.where(np.isnat(assessment), np.iinfo(np.int64).max, date_key)
    check.order = np.lexsort((date_key, pid_key)).astype(np.intp)

    # --- categories, booleans, numbers --------------------------------------------------
    cats: dict[str, pd.Categorical] = {}
    unknown_of: dict[str, BoolArray] = {}
    for col, vocab in c.VOCABULARIES.items():
        if col not in present:
            cats[col] = pd.Categorical.from_codes(
                np.full(n, -1, dtype=np.intp), dtype=CANONICAL_DTYPES[col]
            )
            continue
        cats[col], bad, unknown = parse_category(column(col), col)
        unknown_of[col] = bad
        check.add(
            col,
            "unknown_category",
            bad,
            f"unknown category {quote(unknown)}; allowed: {', '.join(vocab)}",
            "use one of the allowed values (case and surrounding spaces do not matter)",
        )
    if c.ROW_TYPE in present:
        codes = cats[c.ROW_TYPE].codes.copy()
        codes[codes == -1] = c.ROW_TYPES.index("imaging")  # empty row_type means imaging
        cats[c.ROW_TYPE] = pd.Categorical.from_codes(codes, dtype=CANONICAL_DTYPES[c.ROW_TYPE])
    else:
        cats[c.ROW_TYPE] = pd.Categorical.from_codes(
            np.full(n, c.ROW_TYPES.index("imaging"), dtype=np.intp),
            dtype=CANONICAL_DTYPES[c.ROW_TYPE],
        )
    out.update(cats)

    bools: dict[str, pd.api.extensions.ExtensionArray] = {}
    for col in c.BOOL_COLUMNS:
        if col not in present:
            bools[col] = pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
            continue
        bools[col], bad, bad_values = parse_bool(column(col))
        check.add(
            col,
            "invalid_boolean",
            bad,
            f"not a yes/no value ({quote(bad_values)})",
            "use true/false, yes/no or 1/0, or leave empty when unknown",
        )
    out.update(bools)

    numbers: dict[str, npt.NDArray[np.float64]] = {}
    number_bad: dict[str, BoolArray] = {}
    for col in (*c.FLOAT_COLUMNS, *c.INT_COLUMNS):
        if col not in present:
            numbers[col] = np.full(n, np.nan)
            number_bad[col] = np.zeros(n, dtype=bool)
            continue
        numbers[col], bad, bad_values = parse_number(column(col))
        number_bad[col] = bad
        check.add(
            col,
            "not_a_number",
            bad,
            f"not a number ({quote(bad_values)})",
            "write plain numbers with a decimal point, or leave empty when unknown",
        )
    for col in c.FLOAT_COLUMNS:
        out[col] = numbers[col]
    lesions = numbers[c.NEW_BONE_LESIONS]
    fractional = np.isfinite(lesions) & ((lesions != np.round(lesions)) | (np.abs(lesions) > 2**53))
    check.add(
        c.NEW_BONE_LESIONS,
        "not_an_integer",
        fractional,
        f"not a whole number ({quote(list(dict.fromkeys(lesions[fractional][:50].tolist())))})",
        "give the count of new bone lesions as a whole number",
    )
    lesion_missing = np.isnan(lesions) | fractional
    out[c.NEW_BONE_LESIONS] = pd.arrays.IntegerArray(
        np.where(lesion_missing, 0, lesions).astype(np.int64), lesion_missing
    )

    # --- missing values ---------------------------------------------------------------
    is_lab = cats[c.ROW_TYPE].codes == c.ROW_TYPES.index("lab")
    is_imaging = ~is_lab
    missing_of: dict[str, BoolArray] = {
        c.PATIENT_ID: pid_codes == -1,
        **{col: np.isnat(dates[col]) & ~date_bad[col] for col in c.DATE_COLUMNS},
        **{
            col: (cats[col].codes == -1) & ~unknown_of.get(col, np.zeros(n, dtype=bool))
            for col in c.VOCABULARIES
        },
        c.NEW_BONE_LESIONS: np.isnan(lesions) & ~number_bad[c.NEW_BONE_LESIONS],
    }
    for col in c.REQUIRED_COLUMNS:
        if col in absent_required:
            continue
        if col in c.IMAGING_REQUIRED_COLUMNS:
            check.add(
                col,
                "missing_imaging_value",
                missing_of[col] & is_imaging,
                "value is missing on an imaging row",
                f"fill '{col}' on every imaging row, or mark lab-only visits row_type=lab",
            )
        else:
            check.add(
                col,
                "missing_value",
                missing_of[col],
                "required value is missing",
                f"fill '{col}' on every row",
            )
    for col in c.DATE_COLUMNS:
        check.add(
            col,
            "unparseable_date",
            date_bad[col],
            f"date cannot be parsed ({quote(date_bad_values[col])})",
            "write dates as ISO 8601, YYYY-MM-DD",
        )

    # --- value rules ------------------------------------------------------------------
    check.add(
        c.NEW_BONE_LESIONS,
        "negative_count",
        lesions < 0,
        "count of new bone lesions is negative",
        "counts are 0 or more; use 0 when no new lesion was seen",
    )
    check.add(
        c.SLD_MM,
        "negative_value",
        numbers[c.SLD_MM] < 0,
        "sum of longest diameters is negative",
        "give diameters in mm, 0 or more",
    )
    alp = numbers[c.ALP_U_L]
    low, high = c.ALP_PLAUSIBLE_RANGE
    implausible = (alp < low) | (alp > high)
    check.add(
        c.ALP_U_L,
        "alp_out_of_range",
        implausible,
        f"ALP outside the plausible range {low:g}-{high:g} U/L "
        f"({quote([f'{v:g}' for v in dict.fromkeys(alp[implausible][:50].tolist())])})",
        "check units (ukat/L x 60 = U/L) and typos",
    )
    start = dates[c.TREATMENT_START_DATE]
    both = ~np.isnat(start) & ~np.isnat(assessment)
    early = np.zeros(n, dtype=bool)
    early[both] = assessment[both] < start[both]
    check.add(
        c.ASSESSMENT_DATE,
        "before_treatment_start",
        early,
        "assessment is before treatment_start_date",
        "check both dates; assessments before the start of this line of therapy belong "
        "to an earlier line (give it its own patient_id, e.g. P1-L1)",
    )

    # duplicates: adjacent in the sorted order
    keyed = (pid_codes != -1) & ~np.isnat(assessment)
    o = check.order
    same = keyed[o][1:] & keyed[o][:-1] & (pid_key[o][1:] == pid_key[o][:-1])
    same &= date_key[o][1:] == date_key[o][:-1]
    duplicate = np.zeros(n, dtype=bool)
    duplicate[o[1:][same]] = True
    duplicate[o[:-1][same]] = True
    check.add(
        c.ASSESSMENT_DATE,
        "duplicate_assessment",
        duplicate,
        "more than one row for the same patient_id and assessment_date",
        "merge them into one row per patient and date (lab values of a scan day go on "
        "the imaging row)",
    )

    # context constant per patient
    constant_values: dict[str, npt.NDArray[np.float64]] = {
        c.TREATMENT_START_DATE: np.where(np.isnat(start), np.nan, start.astype(np.int64)),
        **{
            col: np.where(cats[col].codes == -1, np.nan, cats[col].codes)  # unknown: missing
            for col in (c.CANCER_TYPE, c.THERAPY_CLASS)
        },
        c.BASELINE_MARROW_INVOLVEMENT: bools[c.BASELINE_MARROW_INVOLVEMENT].to_numpy(
            dtype=np.float64, na_value=np.nan
        ),
    }
    blocks = _block_starts(pid_key[check.order])
    for col in c.PATIENT_CONSTANT_COLUMNS:
        if col not in present:
            continue
        # rows without patient_id (-1) share one block but form no patient
        varies = _varies_within(constant_values[col], check.order, blocks) & (pid_codes != -1)
        if not varies.any():
            continue
        patients = int(np.unique(pid_codes[varies]).size)
        first = check.first(varies)
        example = pd.Series(out[col])
        seen = example[pid_codes == pid_codes[first]].dropna()
        shown = quote([str(v) for v in dict.fromkeys(seen.astype(str).tolist())])
        check.add(
            col,
            "not_constant_per_patient",
            varies,
            f"changes between rows of the same patient ({plural(patients, 'patient')}; "
            f"e.g. {shown})",
            f"'{col}' must be the same on every row of a patient; a new line of therapy "
            "gets its own patient_id (e.g. P1-L2)",
        )

    # morphology versus count
    morph = cats[c.NEW_LESION_MORPHOLOGY].codes
    is_none = morph == c.MORPHOLOGIES.index("none")
    positive_morph = np.isin(morph, [c.MORPHOLOGIES.index(m) for m in _POSITIVE_MORPHOLOGIES])
    check.add(
        c.NEW_LESION_MORPHOLOGY,
        "morphology_none_with_lesions",
        is_none & (lesions > 0),
        "morphology is 'none' but new_bone_lesions is positive",
        "give the morphology of the new lesions (blastic, lytic or mixed), or fix the count",
    )
    check.add(
        c.NEW_LESION_MORPHOLOGY,
        "morphology_without_lesions",
        positive_morph & (lesions == 0) & ~is_lab,
        "morphology of new lesions is given but new_bone_lesions is 0",
        "use 'none' when there is no new bone lesion, or fix the count",
    )

    # lab rows carry labs and context only
    findings: dict[str, BoolArray] = {
        c.EXTRAOSSEOUS_RESPONSE: ~missing_of[c.EXTRAOSSEOUS_RESPONSE],
        c.NEW_EXTRAOSSEOUS_LESION: bools[c.NEW_EXTRAOSSEOUS_LESION].to_numpy(
            dtype=bool, na_value=False
        ),
        c.SLD_MM: ~np.isnan(numbers[c.SLD_MM]),
        c.NEW_BONE_LESIONS: lesions > 0,
        c.NEW_LESION_MORPHOLOGY: positive_morph,
        c.PROGRESSIVE_LYSIS: bools[c.PROGRESSIVE_LYSIS].to_numpy(dtype=bool, na_value=False),
        c.KNOWN_LESION_SCLEROSIS: bools[c.KNOWN_LESION_SCLEROSIS].to_numpy(
            dtype=bool, na_value=False
        ),
    }
    for col in IMAGING_FINDING_COLUMNS:
        check.add(
            col,
            "lab_row_with_imaging",
            findings[col] & is_lab,
            "a lab-only row (row_type=lab) carries an imaging finding",
            "leave imaging columns empty on lab rows (new_bone_lesions 0 or empty), or "
            "mark the row row_type=imaging",
        )
    has_outcome = ~missing_of[c.OUTCOME]
    index_row = is_imaging & (lesions > 0)
    # a count already reported as wrong does not also make its outcome wrong
    unusable_count = number_bad[c.NEW_BONE_LESIONS] | fractional | (lesions < 0)
    unusable_count |= np.isnan(lesions)
    check.add(
        c.OUTCOME,
        "lab_row_with_outcome",
        has_outcome & is_lab,
        "a lab-only row (row_type=lab) has an outcome",
        "set outcome only on index rows (imaging rows with new_bone_lesions > 0)",
    )
    check.add(
        c.OUTCOME,
        "outcome_on_non_index_row",
        has_outcome & is_imaging & ~index_row & ~unusable_count,
        "outcome is set on an imaging row without new bone lesions (not an index row)",
        "set outcome only on index rows (imaging rows with new_bone_lesions > 0)",
    )

    if check.violations:
        _raise(headline, check)

    # --- assemble the canonical table ----------------------------------------------------
    # the parsed arrays already have the canonical dtypes: put them in order, then frame them
    extras = [col for col in df.columns if col not in c.CONTRACT_COLUMNS]
    table = pd.DataFrame({col: out[col][check.order] for col in c.CONTRACT_COLUMNS}, copy=False)
    if extras:
        table = pd.concat([table, df[extras].take(check.order).reset_index(drop=True)], axis=1)
    return table


def _block_starts(keys: npt.NDArray[Any]) -> IntArray:
    """Positions where a new run of equal ``keys`` begins (``keys`` sorted, not empty)."""
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.concatenate(([0], starts)).astype(np.intp)


def _varies_within(values: npt.NDArray[np.float64], order: IntArray, starts: IntArray) -> BoolArray:
    """Mark rows whose block holds two different non-missing values.

    Blocks are the runs of rows ``order[starts[k]:starts[k + 1]]``. Missing values (NaN)
    are ignored, so a block of one value and NaN does not vary; ``fmin``/``fmax`` skip
    NaN exactly as a grouped ``min``/``max`` does.
    """
    ordered = values[order]
    low = np.fmin.reduceat(ordered, starts)
    high = np.fmax.reduceat(ordered, starts)
    block_varies = (low != high) & ~np.isnan(low)
    varies = np.empty(order.size, dtype=bool)
    varies[order] = np.repeat(block_varies, np.diff(np.append(starts, order.size)))
    return varies


def _raise(headline: str, check: _Check) -> None:
    count = len(check.violations)
    raise ContractError(f"{headline} ({plural(count, 'problem')}):", check.violations)


def load_timepoints(path: str | os.PathLike[str]) -> pd.DataFrame:
    r"""Read a timepoint table from CSV or Parquet and validate it.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file.

    Returns
    -------
    pandas.DataFrame
        The validated table (see :func:`validate_timepoints`).

    Raises
    ------
    ContractError
        If the file cannot be read or the table breaks the contract; the message names
        the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "t.csv").write_text(
    ...     "patient_id,treatment_start_date,assessment_date,cancer_type,therapy_class,"
    ...     "extraosseous_response,new_bone_lesions,new_lesion_morphology\n"
    ...     "P1,2024-01-01,2024-01-01,breast,endocrine,baseline,0,none\n"
    ... )
    >>> load_timepoints(folder / "t.csv")["row_type"].tolist()
    ['imaging']

    """
    return validate_timepoints(read_table(path), source=str(path))


def index_row_mask(df: pd.DataFrame) -> pd.Series:
    """Mark the index rows: imaging assessments with ``new_bone_lesions > 0``.

    Works on validated and on raw tables (a missing ``row_type`` column or value means
    imaging; a missing or non-numeric count is not an index row).

    Parameters
    ----------
    df : pandas.DataFrame
        A timepoint table.

    Returns
    -------
    pandas.Series of bool
        True on index rows, aligned with ``df.index``, named ``is_index_row``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame(
    ...     {"row_type": ["imaging", "lab", None], "new_bone_lesions": [2, 1, 0]}
    ... )
    >>> index_row_mask(df).tolist()
    [True, False, False]

    """
    lesions = pd.to_numeric(df[c.NEW_BONE_LESIONS], errors="coerce")
    positive = (lesions > 0).fillna(False).to_numpy(dtype=bool)
    if c.ROW_TYPE in df.columns:
        row_type = df[c.ROW_TYPE].astype(STRING_DTYPE).str.strip().str.lower()
        imaging = (row_type.isna() | row_type.isin(["imaging", ""])).to_numpy(dtype=bool)
    else:
        imaging = np.ones(len(df), dtype=bool)
    return pd.Series(positive & imaging, index=df.index, name="is_index_row")


def is_canonical(df: pd.DataFrame) -> bool:
    """Tell whether a table has the columns and dtypes that validation produces.

    This is a cheap structural check (column order and dtypes only, no values): it
    lets functions that accept either raw or validated tables skip a second validation.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table.

    Returns
    -------
    bool
        True when the contract columns come first, in order, with
        :data:`CANONICAL_DTYPES`.

    Examples
    --------
    >>> import pandas as pd
    >>> is_canonical(pd.DataFrame({"patient_id": ["P1"]}))
    False

    """
    head = list(df.columns[: len(c.CONTRACT_COLUMNS)])
    if head != list(c.CONTRACT_COLUMNS):
        return False
    return all(df[col].dtype == CANONICAL_DTYPES[col] for col in c.CONTRACT_COLUMNS)


@functools.cache
def timepoint_schema() -> pa.DataFrameSchema:
    """Pandera schema of a validated timepoint table (dtypes, vocabularies, ranges).

    It states what :func:`validate_timepoints` guarantees, for code downstream that
    wants to assert its input with pandera (extra columns are allowed). Validation
    itself does not use it: its checks are vectorised by hand so that they can report
    every violation with patient and date.

    Returns
    -------
    pandera.pandas.DataFrameSchema
        The schema.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame(
    ...     {
    ...         "patient_id": ["P1"],
    ...         "treatment_start_date": ["2024-01-01"],
    ...         "assessment_date": ["2024-01-01"],
    ...         "cancer_type": ["breast"],
    ...         "therapy_class": ["endocrine"],
    ...         "extraosseous_response": ["baseline"],
    ...         "new_bone_lesions": [0],
    ...         "new_lesion_morphology": ["none"],
    ...     }
    ... )
    >>> len(timepoint_schema().validate(validate_timepoints(raw)))
    1

    """
    import pandera.pandas as pa  # imported here: it is slow to import and rarely needed

    low, high = c.ALP_PLAUSIBLE_RANGE
    not_null = {c.PATIENT_ID, *c.DATE_COLUMNS, c.ROW_TYPE, c.CANCER_TYPE, c.THERAPY_CLASS}
    checks: dict[str, list[pa.Check]] = {
        c.SLD_MM: [pa.Check.ge(0)],
        c.NEW_BONE_LESIONS: [pa.Check.ge(0)],
        c.ALP_U_L: [pa.Check.in_range(low, high)],
        **{col: [pa.Check.isin(list(vocab))] for col, vocab in c.VOCABULARIES.items()},
    }
    columns = {
        col: pa.Column(
            CANONICAL_DTYPES[col],
            nullable=col not in not_null,
            checks=checks.get(col, []),
        )
        for col in c.CONTRACT_COLUMNS
    }
    return pa.DataFrameSchema(
        columns,
        unique=[c.PATIENT_ID, c.ASSESSMENT_DATE],
        strict=False,
        name="validated timepoint table",
    )
