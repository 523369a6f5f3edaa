"""Validate a timepoint table against the data contract (:mod:`flare_ml.data.contract`).

:func:`validate_timepoints` is the gate every table passes before features, rules or
models see it. It first normalises what people write in spreadsheets (stray
whitespace, upper-case categories, ``yes``/``no`` booleans, ISO dates as text, a missing
``row_type``) by parsing every column (:mod:`flare_ml.data.parsing`), then runs every
rule of the contract (the registry in :mod:`flare_ml.data.rules`) at once and raises a
single :class:`~flare_ml.errors.ContractError` listing each broken rule with the column,
the number of offending rows and up to five ``(patient_id, assessment_date)`` examples. A
valid table comes back with the canonical dtypes of :data:`CANONICAL_DTYPES`, in
contract column order, sorted by patient and date. :func:`check_timepoints` runs the
same checks and returns the parsed columns without framing them (what the featurizer
reads). Column names are checked first (:mod:`flare_ml.data.columns`): a misspelt
contract column is refused, other unknown columns are carried along and reported by
:func:`read_timepoints`, which reads a file with its :class:`~flare_ml.data.io.ReadOptions`
and also refuses a file whose patients' rows are not contiguous, exactly as batch
scoring does. Everything is vectorised (per-value work is done on the distinct values only),
so a million rows take a few seconds.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import flare_ml.data.contract as c
from flare_ml.data._parse import DATE_DTYPE, MISSING_LABEL, STRING_DTYPE, parse_text_id, plural
from flare_ml.data.columns import ColumnReport, column_report
from flare_ml.data.io import ReadOptions, read_table
from flare_ml.data.parsing import (
    CANONICAL_DTYPES,
    TimepointColumns,
    normalise_column_names,
    parse_timepoints,
)
from flare_ml.data.rules import (
    IMAGING_FINDING_COLUMNS,
    find_violations,
    first_reappearance,
    not_grouped_error,
    table_violations,
)
from flare_ml.errors import ContractError, Violation

if TYPE_CHECKING:
    import pandera.pandas as pa

__all__ = [
    "CANONICAL_DTYPES",
    "DATE_DTYPE",
    "IMAGING_FINDING_COLUMNS",
    "STRING_DTYPE",
    "LoadedTimepoints",
    "check_grouped",
    "check_timepoints",
    "index_row_mask",
    "is_canonical",
    "load_timepoints",
    "read_timepoints",
    "require_columns",
    "timepoint_schema",
    "validate_timepoints",
]


def _headline(source: str | None) -> str:
    where = f" '{source}'" if source else ""
    return f"the timepoint table{where} breaks the data contract"


def _refusal(headline: str, violations: list[Violation]) -> ContractError:
    return ContractError(f"{headline} ({plural(len(violations), 'problem')}):", violations)


def _check_type(df: object) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")


def require_columns(df: pd.DataFrame, *, source: str | None = None) -> None:
    """Check that a table has every required column (names matched as validation does).

    Only the columns are looked at, not the rows: this is the cheap check of an
    estimator's ``fit``, which learns nothing from the rows.

    Parameters
    ----------
    df : pandas.DataFrame
        A timepoint table, raw or validated.
    source : str, optional
        Where the table came from, named in the error message.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    ContractError
        Naming every missing required column (rule ``missing_column``, with the same
        message and fix as :func:`validate_timepoints` gives).

    Examples
    --------
    >>> import pandas as pd
    >>> try:
    ...     require_columns(pd.DataFrame({"patient_id": ["P1"]}))
    ... except ContractError as error:
    ...     print([v.column for v in error.violations][:2])
    ['treatment_start_date', 'assessment_date']

    """
    _check_type(df)
    frame = normalise_column_names(df)
    missing = [v for v in table_violations(frame) if v.rule == "missing_column"]
    if missing:
        raise _refusal(_headline(source), missing)


def check_timepoints(df: pd.DataFrame, *, source: str | None = None) -> TimepointColumns:
    """Check a table against the contract and return its parsed columns, not a frame.

    It runs exactly the checks of :func:`validate_timepoints` and raises the same
    error; a valid table comes back as :class:`~flare_ml.data.parsing.TimepointColumns`,
    whose ``to_frame()`` is what :func:`validate_timepoints` returns. Code that computes
    from the arrays, such as the featurizer, calls this and builds no frame. A table
    that already has the canonical dtypes parses at almost no cost.

    Parameters
    ----------
    df : pandas.DataFrame
        The raw or validated table (not modified).
    source : str, optional
        Where the table came from, named in the error message.

    Returns
    -------
    TimepointColumns
        The parsed columns of the valid table.

    Raises
    ------
    ContractError
        Listing every violation (see :func:`validate_timepoints`).

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> columns = check_timepoints(seed_case_timeline())
    >>> int(columns.is_index.sum())
    1

    """
    _check_type(df)
    headline = _headline(source)
    frame = normalise_column_names(df)
    violations = table_violations(frame)
    absent = {c.PATIENT_ID, c.ASSESSMENT_DATE} - set(frame.columns)
    unsplit = any(v.rule == "unsplit_header" for v in violations)
    if len(frame) == 0 or unsplit or absent == {c.PATIENT_ID, c.ASSESSMENT_DATE}:
        raise _refusal(headline, violations)
    columns = parse_timepoints(frame)
    violations += find_violations(columns)
    if violations:
        raise _refusal(headline, violations)
    return columns


def validate_timepoints(df: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Normalise a timepoint table and check it against the data contract.

    Normalisation: whitespace is stripped and category values lower-cased, except the
    RECIST codes of ``extraosseous_response`` (upper-cased; ``baseline`` stays lower
    case); dates are parsed from ISO 8601 text (``YYYY-MM-DD``, a time part is dropped);
    booleans accept ``true/false/1/0/yes/no`` in any case, empty meaning missing;
    ``row_type`` defaults to ``imaging`` when the column is absent or a value is empty.
    Contract column names are matched after trimming spaces and lower-casing.

    Then every rule is checked and all violations are reported together: a header read
    as one column (wrong delimiter), a column whose name is a close misspelling of an
    absent contract column (``alp_ul``: did you mean ``alp_u_l``?), missing
    required column or value, empty table, unknown category, unparseable date or number,
    assessment before treatment start, duplicate ``(patient_id, assessment_date)``,
    negative counts or diameters, ALP outside :data:`~flare_ml.data.contract.ALP_PLAUSIBLE_RANGE`,
    context that changes within a patient (``cancer_type``, ``therapy_class``,
    ``treatment_start_date``, ``baseline_marrow_involvement``), morphology that
    contradicts the lesion count (``none`` with new lesions; ``blastic``, ``lytic``,
    ``mixed`` or ``unknown`` without), imaging values missing on imaging rows, imaging findings
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
    return check_timepoints(df, source=source).to_frame()


@dataclass(frozen=True)
class LoadedTimepoints:
    """A validated timepoint table read from a file, with what its column names said.

    Attributes
    ----------
    table : pandas.DataFrame
        The validated table (see :func:`validate_timepoints`).
    columns : ColumnReport
        The columns ignored (outside the contract) and the optional columns absent.

    """

    table: pd.DataFrame
    columns: ColumnReport


def check_grouped(frame: pd.DataFrame, source: str) -> None:
    """Refuse a file's table whose patients' rows are not contiguous.

    This is the one place that decides how a timepoint *file* must be ordered: batch
    scoring (:func:`flare_ml.serving.batch.score_file`) streams files in chunks of whole
    patients and raises the same :func:`~flare_ml.data.rules.not_grouped_error`, so
    ``flare-ml validate`` and ``flare-ml score`` accept and refuse the same files. The
    order within a patient does not matter. A table in memory is not checked: validation
    sorts it.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table in file order (names as read).
    source : str
        The file, named in the error.

    Raises
    ------
    ContractError
        Rule ``not_grouped_by_patient``, naming the first patient that reappears.

    Examples
    --------
    >>> import pandas as pd
    >>> check_grouped(pd.DataFrame({"patient_id": ["A", "A", "B"]}), "t.csv")
    >>> try:
    ...     check_grouped(pd.DataFrame({"patient_id": ["A", "B", "A"]}), "t.csv")
    ... except ContractError as error:
    ...     print(error.violations[0].message)
    patient 'A' reappears at data row 3 after other patients' rows

    """
    frame = normalise_column_names(frame)
    if c.PATIENT_ID not in frame.columns or len(frame) < 3:
        return
    ids = parse_text_id(frame[c.PATIENT_ID])
    keys = ids.to_numpy(dtype=object, na_value="\x00<missing>")
    row = first_reappearance(pd.factorize(keys)[0])
    if row is None:
        return
    pid = keys[row]
    date = MISSING_LABEL
    if c.ASSESSMENT_DATE in frame.columns:
        raw = frame[c.ASSESSMENT_DATE].iloc[row]
        date = MISSING_LABEL if pd.isna(raw) else str(raw).strip()[:10]
    raise not_grouped_error(
        source, MISSING_LABEL if pid == "\x00<missing>" else str(pid), row + 1, date
    )


def read_timepoints(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    date_format: str | None = None,
    dayfirst: bool = False,
    decimal: str = ".",
    columns: Mapping[str, str] | str | os.PathLike[str] | None = None,
    options: ReadOptions | None = None,
    require_grouped: bool = True,
) -> LoadedTimepoints:
    r"""Read a timepoint file, check its row order, validate it; report its columns.

    The file is read by :func:`~flare_ml.data.io.read_table` with the given options
    (delimiter, date format, decimal mark, column mapping), refused if its patients'
    rows are not contiguous (:func:`check_grouped`, the rule batch scoring applies; this
    is what ``flare-ml validate`` runs, so that it accepts exactly the files
    ``flare-ml score`` accepts) or if it breaks the contract, and returned with its
    :class:`ColumnReport`.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file.
    sep, date_format, dayfirst, decimal, columns, options
        See :class:`~flare_ml.data.io.ReadOptions` and :func:`~flare_ml.data.read_table`.
    require_grouped : bool, default True
        Refuse a file whose patients' rows are not contiguous. Readers that hold the
        whole table in memory (:func:`load_timepoints`: training, evaluation) pass False
        and let validation sort it.

    Returns
    -------
    LoadedTimepoints
        The validated table and the column report.

    Raises
    ------
    ContractError
        If the file cannot be read, is not grouped by patient, or breaks the contract.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "t.csv").write_text(
    ...     "patient_id;treatment_start_date;assessment_date;cancer_type;therapy_class;"
    ...     "extraosseous_response;new_bone_lesions;new_lesion_morphology;site_note\n"
    ...     "P1;01/01/2024;01/01/2024;breast;endocrine;baseline;0;none;x\n"
    ... )
    >>> loaded = read_timepoints(folder / "t.csv", date_format="%d/%m/%Y")
    >>> loaded.columns.ignored, str(loaded.table["assessment_date"].iloc[0].date())
    (('site_note',), '2024-01-01')

    """
    if options is None:
        options = ReadOptions(sep, date_format, dayfirst, decimal, columns)
    raw = read_table(path, options=options)
    report = column_report(raw.columns)
    if require_grouped:
        check_grouped(raw, str(path))
    return LoadedTimepoints(validate_timepoints(raw, source=str(path)), report)


def load_timepoints(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    date_format: str | None = None,
    dayfirst: bool = False,
    decimal: str = ".",
    columns: Mapping[str, str] | str | os.PathLike[str] | None = None,
    options: ReadOptions | None = None,
) -> pd.DataFrame:
    r"""Read a timepoint table from CSV or Parquet and validate it.

    The table of :func:`read_timepoints` (same options, same checks), without the
    column report, and in any row order: the whole table is read and validation sorts
    it (what training and evaluation need). Only streamed scoring needs each patient's
    rows together; ``flare-ml validate`` checks that too (:func:`read_timepoints`).

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file.
    sep, date_format, dayfirst, decimal, columns, options
        See :class:`~flare_ml.data.io.ReadOptions`.

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
    return read_timepoints(
        path,
        sep=sep,
        date_format=date_format,
        dayfirst=dayfirst,
        decimal=decimal,
        columns=columns,
        options=options,
        require_grouped=False,
    ).table


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
