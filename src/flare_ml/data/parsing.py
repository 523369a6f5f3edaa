"""Parse a raw timepoint table into its canonical columns (no rule is checked here).

:func:`parse_timepoints` reads every contract column of a table, in whatever dtypes it
arrived, into the canonical arrays of :data:`CANONICAL_DTYPES` with the column parsers
of :mod:`flare_ml.data._parse`, and keeps, per column, the values that could not be read.
The result, :class:`TimepointColumns`, is what the contract rules
(:mod:`flare_ml.data.rules`) inspect and what both :func:`~flare_ml.data.validate_timepoints`
(which frames it) and the featurizer (which computes from its arrays) are built on, so
that a table means one thing wherever it is read. A table that already has the canonical
dtypes is parsed at almost no cost: every parser takes its typed fast path.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

import flare_ml.data.contract as c
from flare_ml.data._parse import (
    DATE_DTYPE,
    MAX_EXAMPLES,
    MISSING_LABEL,
    STRING_DTYPE,
    BoolArray,
    IntArray,
    category_dtype,
    is_missing_scalar,
    lookup,
    parse_bool,
    parse_category,
    parse_date,
    parse_number,
    parse_text_id_codes,
)
from flare_ml.errors import ContractError, Violation

__all__ = [
    "CANONICAL_DTYPES",
    "TimepointColumns",
    "normalise_column_names",
    "parse_timepoints",
]

#: the dtype of every contract column after :func:`~flare_ml.data.validate_timepoints`
CANONICAL_DTYPES: dict[str, Any] = {
    c.PATIENT_ID: STRING_DTYPE,
    **dict.fromkeys(c.DATE_COLUMNS, DATE_DTYPE),
    **{col: category_dtype(col) for col in c.VOCABULARIES},
    **dict.fromkeys(c.BOOL_COLUMNS, pd.BooleanDtype()),
    **dict.fromkeys(c.FLOAT_COLUMNS, np.dtype("float64")),
    **dict.fromkeys(c.INT_COLUMNS, pd.Int64Dtype()),
}

_IMAGING_CODE = c.ROW_TYPES.index("imaging")
_LAB_CODE = c.ROW_TYPES.index("lab")


def normalise_column_names(df: pd.DataFrame) -> pd.DataFrame:
    """Trim column names, lower-case contract names, refuse duplicates, number rows 0..n-1.

    Parameters
    ----------
    df : pandas.DataFrame
        A raw timepoint table (not modified).

    Returns
    -------
    pandas.DataFrame
        A shallow copy with the normalised names and a ``RangeIndex`` (``df`` itself
        when it has them already).

    Raises
    ------
    ContractError
        When two columns have the same name after normalising (rule
        ``duplicate_column``).

    Examples
    --------
    >>> import pandas as pd
    >>> normalise_column_names(pd.DataFrame({" Patient_ID ": ["P1"], "note ": ["x"]})).columns
    Index(['patient_id', 'note'], dtype='str')

    """
    if _normalised(df):
        return df
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


def _normalised(df: pd.DataFrame) -> bool:
    """Tell whether a table's names and index are already as normalisation leaves them."""
    index = df.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        return False
    if not df.columns.is_unique:
        return False
    for name in df.columns:
        if not isinstance(name, str) or name != name.strip():
            return False
        if name != name.lower() and name.lower() in c.CONTRACT_COLUMNS:
            return False
    return True


@dataclass(eq=False)
class TimepointColumns:
    """Every contract column of one table, parsed, in the table's row order.

    Absent optional columns are all missing; an absent or empty ``row_type`` is
    ``imaging``. Values that could not be read are missing in the parsed arrays and
    marked in :attr:`unreadable` (unknown category, invalid boolean, non-number,
    unparseable date), with a few of them in :attr:`unreadable_values`. Nothing here
    says whether the table is valid: that is for the rules of :mod:`flare_ml.data.rules`.

    Attributes
    ----------
    frame : pandas.DataFrame
        The input with normalised column names and a ``RangeIndex``.
    present : frozenset of str
        The contract columns the input has.
    patient_id : pandas.Series
        ``patient_id`` as stripped text (empty is missing).
    patient_codes : ndarray of intp
        A code per distinct patient (-1 where missing).
    patient_key : ndarray of intp
        The rank of the patient in text order (missing ranks last): sorting by it sorts
        by patient.
    dates, categories, booleans, numbers : dict
        The parsed date (``datetime64[s]``), category (``pandas.Categorical``), boolean
        (``BooleanArray``) and number (float64, the count included) columns.
    unreadable : dict of str to ndarray of bool
        Per parsed column, the values that could not be read.
    unreadable_values : dict of str to list of str
        A few of those values, as written.
    order : ndarray of intp
        Row positions sorted by patient, then assessment date (missing last, stable).

    Examples
    --------
    >>> import pandas as pd
    >>> columns = parse_timepoints(pd.DataFrame({"patient_id": [" P2", "P1"],
    ...                                          "cancer_type": ["NSCLC", "lung"]}))
    >>> columns.order.tolist(), columns.categories["cancer_type"].tolist()
    ([1, 0], ['nsclc', nan])
    >>> columns.unreadable_values["cancer_type"]
    ['lung']

    """

    frame: pd.DataFrame
    present: frozenset[str]
    patient_id: pd.Series
    patient_codes: IntArray
    patient_key: IntArray
    dates: dict[str, npt.NDArray[Any]]
    categories: dict[str, pd.Categorical]
    booleans: dict[str, pd.arrays.BooleanArray]
    numbers: dict[str, npt.NDArray[np.float64]]
    unreadable: dict[str, BoolArray]
    unreadable_values: dict[str, list[str]]
    order: IntArray
    date_key: npt.NDArray[np.int64]

    # --- sizes and derived masks (computed once, on demand) --------------------------
    @property
    def n(self) -> int:
        """The number of rows."""
        return len(self.frame)

    @functools.cached_property
    def patient_text(self) -> npt.NDArray[Any]:
        """``patient_id`` as an object array of text (None where missing)."""
        return self.patient_id.to_numpy(dtype=object, na_value=None)

    @functools.cached_property
    def is_lab(self) -> BoolArray:
        """Rows of ``row_type`` ``lab``."""
        return np.asarray(self.categories[c.ROW_TYPE].codes == _LAB_CODE)

    @property
    def is_imaging(self) -> BoolArray:
        """Rows that describe a scan (every row that is not ``lab``)."""
        return ~self.is_lab

    @property
    def lesions(self) -> npt.NDArray[np.float64]:
        """``new_bone_lesions`` as floats (NaN where missing or unreadable)."""
        return self.numbers[c.NEW_BONE_LESIONS]

    @functools.cached_property
    def fractional_lesions(self) -> BoolArray:
        """Counts that are not whole numbers (or too large to be held exactly)."""
        lesions = self.lesions
        return np.isfinite(lesions) & ((lesions != np.round(lesions)) | (np.abs(lesions) > 2**53))

    @functools.cached_property
    def is_index(self) -> BoolArray:
        """Index rows: imaging rows with ``new_bone_lesions > 0``."""
        return self.is_imaging & (self.lesions > 0)

    def missing(self, column: str) -> BoolArray:
        """Rows where ``column`` is missing (an unreadable value is not missing).

        Defined for ``patient_id``, the dates, the categories and ``new_bone_lesions``.
        """
        if column == c.PATIENT_ID:
            return self.patient_codes == -1
        if column in self.dates:
            return np.isnat(self.dates[column]) & ~self.unreadable[column]
        if column in self.categories:
            return (self.categories[column].codes == -1) & ~self.unreadable[column]
        return np.isnan(self.numbers[column]) & ~self.unreadable[column]

    def flag(self, column: str) -> BoolArray:
        """Rows where the boolean ``column`` is true (missing counts as false)."""
        return self.booleans[column].to_numpy(dtype=bool, na_value=False)

    def canonical(self, column: str) -> Any:
        """The canonical array of a contract column, in the input's row order."""
        if column == c.PATIENT_ID:
            return self.patient_id.array
        if column in self.dates:
            return self.dates[column]
        if column in self.categories:
            return self.categories[column]
        if column in self.booleans:
            return self.booleans[column]
        if column in c.INT_COLUMNS:
            values = self.numbers[column]
            unusable = np.isnan(values) | self.fractional_lesions
            return pd.arrays.IntegerArray(np.where(unusable, 0, values).astype(np.int64), unusable)
        return self.numbers[column]

    # --- rows named in messages ------------------------------------------------------
    def date_label(self, i: int) -> str:
        """Row ``i``'s assessment date as a message shows it (raw text if unreadable)."""
        value = self.dates[c.ASSESSMENT_DATE][i]
        if not np.isnat(value):
            return str(value.astype("datetime64[D]"))
        if c.ASSESSMENT_DATE not in self.present:
            return MISSING_LABEL
        raw = self.frame[c.ASSESSMENT_DATE].iloc[i]
        return MISSING_LABEL if is_missing_scalar(raw) or str(raw).strip() == "" else str(raw)

    def examples(self, mask: BoolArray) -> tuple[tuple[str, str], ...]:
        """Up to five ``(patient_id, assessment_date)`` labels of ``mask``, in table order."""
        positions = self.order[mask[self.order]][:MAX_EXAMPLES]
        pids = self.patient_text
        return tuple(
            (
                MISSING_LABEL if is_missing_scalar(pids[i]) else str(pids[i]),
                self.date_label(int(i)),
            )
            for i in positions
        )

    def first(self, mask: BoolArray) -> int:
        """Position of the first row of ``mask`` in table order."""
        return int(self.order[mask[self.order]][0])

    # --- the canonical table ----------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The canonical table: contract columns in order, then extras; sorted rows.

        Examples
        --------
        >>> import pandas as pd
        >>> table = parse_timepoints(pd.DataFrame({"patient_id": ["P2", "P1"]})).to_frame()
        >>> table["patient_id"].tolist(), str(table["row_type"].dtype)
        (['P1', 'P2'], 'category')

        """
        order = self.order
        table = pd.DataFrame(
            {col: self.canonical(col)[order] for col in c.CONTRACT_COLUMNS}, copy=False
        )
        extras = [col for col in self.frame.columns if col not in c.CONTRACT_COLUMNS]
        if extras:
            rest = self.frame[extras].take(order).reset_index(drop=True)
            table = pd.concat([table, rest], axis=1)
        return table


def parse_timepoints(frame: pd.DataFrame) -> TimepointColumns:
    """Parse every contract column of a table whose names are normalised.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`normalise_column_names` (any dtypes; absent columns are fine).

    Returns
    -------
    TimepointColumns
        The parsed columns, the unreadable values and the sort order.

    Examples
    --------
    >>> import pandas as pd
    >>> columns = parse_timepoints(pd.DataFrame({"alp_u_l": ["90", "n.d."]}))
    >>> columns.numbers["alp_u_l"].tolist(), columns.unreadable["alp_u_l"].tolist()
    ([90.0, nan], [False, True])

    """
    n = len(frame)
    present = frozenset(col for col in c.CONTRACT_COLUMNS if col in frame.columns)

    def column(name: str) -> pd.Series:
        if name in present:
            return frame[name]
        return pd.Series([None] * n, dtype=object)

    unreadable: dict[str, BoolArray] = {}
    unreadable_values: dict[str, list[str]] = {}

    def keep(col: str, bad: BoolArray, values: list[str]) -> None:
        unreadable[col] = bad
        unreadable_values[col] = values

    pid, pid_codes, pid_uniques = parse_text_id_codes(column(c.PATIENT_ID))
    dates: dict[str, npt.NDArray[Any]] = {}
    for col in c.DATE_COLUMNS:
        dates[col], bad, values = parse_date(column(col))
        keep(col, bad, values)

    nothing = np.zeros(n, dtype=bool)
    categories: dict[str, pd.Categorical] = {}
    for col in c.VOCABULARIES:
        if col in present:
            categories[col], bad, values = parse_category(column(col), col)
            keep(col, bad, values)
        else:
            categories[col] = pd.Categorical.from_codes(
                np.full(n, -1, dtype=np.intp), dtype=CANONICAL_DTYPES[col], validate=False
            )
            keep(col, nothing, [])
    row_codes = np.asarray(categories[c.ROW_TYPE].codes).copy()
    row_codes[row_codes == -1] = _IMAGING_CODE  # an absent or empty row_type means imaging
    categories[c.ROW_TYPE] = pd.Categorical.from_codes(
        row_codes, dtype=CANONICAL_DTYPES[c.ROW_TYPE], validate=False
    )

    booleans: dict[str, pd.arrays.BooleanArray] = {}
    for col in c.BOOL_COLUMNS:
        if col in present:
            booleans[col], bad, values = parse_bool(column(col))
            keep(col, bad, values)
        else:
            booleans[col] = pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
            keep(col, nothing, [])

    numbers: dict[str, npt.NDArray[np.float64]] = {}
    for col in (*c.FLOAT_COLUMNS, *c.INT_COLUMNS):
        if col in present:
            numbers[col], bad, values = parse_number(column(col))
            keep(col, bad, values)
        else:
            numbers[col] = np.full(n, np.nan)
            keep(col, nothing, [])

    # sort order: patient (text order, missing last), then date (missing last)
    rank = np.argsort(np.argsort(np.asarray(pid_uniques, dtype=object)))
    pid_key = lookup(pid_codes, rank.astype(np.intp), len(pid_uniques))
    assessment = dates[c.ASSESSMENT_DATE]
    date_key = np.where(np.isnat(assessment), np.iinfo(np.int64).max, assessment.astype(np.int64))
    order = np.lexsort((date_key, pid_key)).astype(np.intp)

    return TimepointColumns(
        frame=frame,
        present=present,
        patient_id=pid,
        patient_codes=pid_codes,
        patient_key=pid_key,
        dates=dates,
        categories=categories,
        booleans=booleans,
        numbers=numbers,
        unreadable=unreadable,
        unreadable_values=unreadable_values,
        order=order,
        date_key=date_key,
    )
