"""The rules of the data contract, as a registry of small named checks.

Each :class:`Rule` declares its name (the stable code a
:class:`~flare_ml.errors.Violation` carries), the columns it is checked on, the rows it
flags (a function of the parsed :class:`~flare_ml.data.parsing.TimepointColumns`), the
message and the fix suggested to the user. :data:`RULES` lists them in the order
violations are reported; :data:`TABLE_RULES` holds the two rules about the table as a
whole (a missing required column, no rows), which flag no rows. Adding a rule is adding
one entry here; :func:`~flare_ml.data.validate_timepoints` and the featurizer both run
every rule through :func:`find_violations`, so they refuse the same tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

import flare_ml.data.contract as c
from flare_ml.data._parse import BoolArray, IntArray, plural, quote
from flare_ml.data.columns import column_report, unsplit_header
from flare_ml.data.parsing import TimepointColumns
from flare_ml.errors import ContractError, Violation

__all__ = [
    "IMAGING_FINDING_COLUMNS",
    "RULES",
    "TABLE_RULES",
    "Rule",
    "TableRule",
    "find_violations",
    "not_grouped_error",
    "table_violations",
]

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

#: morphologies of new lesions: each needs new_bone_lesions > 0 (``unknown``: new lesions
#: whose morphology the modality cannot tell, e.g. a bone scan without a CT correlate)
_POSITIVE_MORPHOLOGIES = ("blastic", "lytic", "mixed", "unknown")
_OUTCOME_FIX = "set outcome only on index rows (imaging rows with new_bone_lesions > 0)"

Flags = Callable[[TimepointColumns, str], BoolArray]
Message = Callable[[TimepointColumns, str, BoolArray], str]


@dataclass(frozen=True)
class Rule:
    """One rule of the contract about rows: a violation per column where it flags rows.

    Parameters
    ----------
    name : str
        The rule code reported in :attr:`~flare_ml.errors.Violation.rule`.
    columns : tuple of str
        The columns it is checked on, each reported separately.
    flags : callable
        ``flags(table, column)`` gives the offending rows as a boolean mask over the
        table's rows.
    message : str or callable
        What is wrong, in plain words; a callable ``message(table, column, mask)`` can
        quote the offending values.
    fix : str or callable
        The suggestion to the user; a callable gets the column.

    Examples
    --------
    >>> by_name = {rule.name: rule for rule in RULES}
    >>> by_name["negative_count"].columns, by_name["negative_count"].fix
    (('new_bone_lesions',), 'counts are 0 or more; use 0 when no new lesion was seen')

    """

    name: str
    columns: tuple[str, ...]
    flags: Flags
    message: str | Message
    fix: str | Callable[[str], str]

    def violations(self, table: TimepointColumns) -> list[Violation]:
        """A violation for every column on which the rule flags at least one row."""
        found = []
        for column in self.columns:
            mask = self.flags(table, column)
            count = int(mask.sum())
            if not count:
                continue
            message = (
                self.message if isinstance(self.message, str) else self.message(table, column, mask)
            )
            fix = self.fix if isinstance(self.fix, str) else self.fix(column)
            found.append(Violation(column, self.name, table.examples(mask), count, message, fix))
        return found


@dataclass(frozen=True)
class TableRule:
    """A rule about the table as a whole: it names a column but flags no rows.

    Parameters
    ----------
    name : str
        The rule code.
    columns : tuple of str or callable
        The columns it is checked on; a callable ``columns(frame)`` gives them from the
        table (for rules about columns outside the contract).
    broken : callable
        ``broken(frame, column)`` tells whether the rule is broken for ``column`` of a
        table whose column names are normalised.
    message : str or callable
        What is wrong; a callable ``message(frame, column)`` can name what it found.
    fix : callable
        ``fix(frame, column)`` gives the suggestion.

    Examples
    --------
    >>> import pandas as pd
    >>> [v.column for v in table_violations(pd.DataFrame({"patient_id": ["P1"]}))][:2]
    ['treatment_start_date', 'assessment_date']

    """

    name: str
    columns: tuple[str, ...] | Callable[[pd.DataFrame], Sequence[str]]
    broken: Callable[[pd.DataFrame, str], bool]
    message: str | Callable[[pd.DataFrame, str], str]
    fix: Callable[[pd.DataFrame, str], str]

    def violations(self, frame: pd.DataFrame) -> list[Violation]:
        """A row-less violation for every column on which the rule is broken."""
        columns = self.columns if isinstance(self.columns, tuple) else self.columns(frame)
        return [
            Violation(
                column,
                self.name,
                (),
                0,
                self.message if isinstance(self.message, str) else self.message(frame, column),
                self.fix(frame, column),
            )
            for column in columns
            if self.broken(frame, column)
        ]


# --- rules about the table ------------------------------------------------------------------
def _short(name: object, width: int = 40) -> str:
    text = str(name)
    return text if len(text) <= width else text[: width - 3] + "..."


def _found(frame: pd.DataFrame) -> str:
    return quote([_short(name) for name in frame.columns], 8)


def _misspelt(frame: pd.DataFrame) -> dict[str, str]:
    """Unknown columns taken for misspelt contract columns, with the contract name."""
    return {u.name: str(u.suggestion) for u in column_report(frame.columns).misspelt}


def _header_message(frame: pd.DataFrame, col: str) -> str:
    return (
        f"the header was read as one column ({len(str(frame.columns[0]))} characters): "
        f"the file seems to use {unsplit_header(frame.columns)!r} as its delimiter"
    )


def _header_fix(frame: pd.DataFrame, col: str) -> str:
    sep = unsplit_header(frame.columns)
    shown = "tab" if sep == "\t" else sep
    return (
        f"give the delimiter: --sep '{shown}' on the command line, sep={sep!r} in "
        "read_table/load_timepoints (comma, semicolon and tab are detected by themselves)"
    )


TABLE_RULES: tuple[TableRule, ...] = (
    TableRule(
        "unsplit_header",
        lambda frame: [_short(frame.columns[0])] if unsplit_header(frame.columns) else [],
        lambda frame, col: True,
        _header_message,
        _header_fix,
    ),
    TableRule(
        "misspelt_column",
        lambda frame: list(_misspelt(frame)),
        lambda frame, col: True,
        lambda frame, col: (
            f"not a contract column: did you mean '{_misspelt(frame)[col]}'? (read "
            "without it, every row would miss that column)"
        ),
        lambda frame, col: (
            f"rename '{col}' to '{_misspelt(frame)[col]}' (or map it with --columns / "
            "columns=), or drop the column"
        ),
    ),
    TableRule(
        "missing_column",
        c.REQUIRED_COLUMNS,
        lambda frame, col: col not in frame.columns,
        "required column is missing",
        lambda frame, col: f"add a '{col}' column (columns found: {_found(frame)})",
    ),
    TableRule(
        "empty_table",
        (c.PATIENT_ID,),
        lambda frame, col: len(frame) == 0,
        "the table has no rows",
        lambda frame, col: "provide at least one assessment row",
    ),
)


def table_violations(frame: pd.DataFrame) -> list[Violation]:
    """Run :data:`TABLE_RULES` on a table whose column names are normalised.

    A header read as one column is reported once (not as every required column
    missing); a required column named by a misspelling is reported as the misspelling.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame(columns=["patient_id;assessment_date;cancer_type"])
    >>> [v.rule for v in table_violations(frame)]
    ['unsplit_header', 'empty_table']

    """
    found = [v for rule in TABLE_RULES for v in rule.violations(frame)]
    if any(v.rule == "unsplit_header" for v in found):
        return [v for v in found if v.rule != "missing_column"]
    meant = set(_misspelt(frame).values())
    return [v for v in found if not (v.rule == "missing_column" and v.column in meant)]


def first_reappearance(codes: npt.NDArray[np.intp]) -> int | None:
    """The first row at which a patient's rows start again after other patients' rows.

    The one row-order check of the contract's readers: ``flare-ml validate``
    (:func:`flare_ml.data.check_grouped`) and streamed scoring
    (:func:`flare_ml.serving.batch.iter_patient_chunks`) both name this row.

    Parameters
    ----------
    codes : ndarray of int
        The patient of each row, factorized (``pandas.factorize`` of the ids), in file
        order.

    Returns
    -------
    int or None
        The 0-based row, or None when every patient's rows are contiguous.

    Examples
    --------
    >>> first_reappearance(np.array([0, 0, 1, 2, 1, 0])), first_reappearance(np.array([0, 1]))
    (4, None)

    """
    if len(codes) == 0:
        return None
    starts = _block_starts(codes)
    again = pd.Series(codes[starts]).duplicated().to_numpy()
    return int(starts[np.argmax(again)]) if again.any() else None


def not_grouped_error(source: str, pid: str, row: int, date: str) -> ContractError:
    """The error for a file whose patient rows are not contiguous (rule ``not_grouped_by_patient``).

    A timepoint *file* keeps each patient's rows together (sorted by ``patient_id``,
    ``assessment_date`` is the usual way), because batch scoring reads it in chunks of
    whole patients; :func:`~flare_ml.data.load_timepoints` (behind ``flare-ml validate``)
    and :func:`~flare_ml.serving.batch.score_file` (behind ``flare-ml score``) refuse the
    same files with this error. A table in memory may come in any order: validation
    sorts it.

    Parameters
    ----------
    source : str
        The file.
    pid : str
        The patient that reappears.
    row : int
        The data row (1-based, header not counted) where it reappears.
    date : str
        That row's assessment date, as written.

    Returns
    -------
    ContractError
        The error, with one violation.

    Examples
    --------
    >>> not_grouped_error("t.csv", "P1", 3, "2024-01-01").violations[0].rule
    'not_grouped_by_patient'

    """
    return ContractError(
        f"the timepoint table '{source}' is not grouped by patient: the rows of patient "
        f"'{pid}' continue at row {row} after rows of other patients. Batch scoring reads "
        "the file in chunks of whole patients, so each patient's rows must be contiguous",
        [
            Violation(
                c.PATIENT_ID,
                "not_grouped_by_patient",
                ((pid, date),),
                1,
                f"patient '{pid}' reappears at data row {row} after other patients' rows",
                "sort the table by patient_id, assessment_date (for example "
                "`df.sort_values(['patient_id', 'assessment_date'])` or ORDER BY in SQL) "
                "and score it again",
            )
        ],
    )


# --- rules about rows: reading the values ---------------------------------------------------
def _unreadable(table: TimepointColumns, col: str) -> BoolArray:
    return table.unreadable[col]


def _quoted_unreadable(table: TimepointColumns, col: str) -> str:
    return quote(table.unreadable_values[col])


def _unknown_category_message(table: TimepointColumns, col: str, mask: BoolArray) -> str:
    allowed = ", ".join(c.VOCABULARIES[col])
    return f"unknown category {_quoted_unreadable(table, col)}; allowed: {allowed}"


def _fractional_message(table: TimepointColumns, col: str, mask: BoolArray) -> str:
    values = table.lesions[table.fractional_lesions][:50].tolist()
    return f"not a whole number ({quote(list(dict.fromkeys(values)))})"


def _missing_required(imaging_only: bool) -> Flags:
    def flags(table: TimepointColumns, col: str) -> BoolArray:
        if col not in table.present:  # reported once, as missing_column
            return np.zeros(table.n, dtype=bool)
        missing = table.missing(col)
        return missing & table.is_imaging if imaging_only else missing

    return flags


# --- rules about rows: values and dates -----------------------------------------------------
def _alp(table: TimepointColumns) -> tuple[npt.NDArray[np.float64], BoolArray]:
    alp = table.numbers[c.ALP_U_L]
    low, high = c.ALP_PLAUSIBLE_RANGE
    return alp, (alp < low) | (alp > high)


def _alp_message(table: TimepointColumns, col: str, mask: BoolArray) -> str:
    alp, implausible = _alp(table)
    low, high = c.ALP_PLAUSIBLE_RANGE
    shown = quote([f"{v:g}" for v in dict.fromkeys(alp[implausible][:50].tolist())])
    return f"ALP outside the plausible range {low:g}-{high:g} U/L ({shown})"


def _before_treatment_start(table: TimepointColumns, col: str) -> BoolArray:
    start = table.dates[c.TREATMENT_START_DATE]
    assessment = table.dates[c.ASSESSMENT_DATE]
    both = ~np.isnat(start) & ~np.isnat(assessment)
    early = np.zeros(table.n, dtype=bool)
    early[both] = assessment[both] < start[both]
    return early


def _duplicate_assessment(table: TimepointColumns, col: str) -> BoolArray:
    """Rows sharing patient and date with another row (adjacent in the sorted order)."""
    o = table.order
    keyed = ((table.patient_codes != -1) & ~np.isnat(table.dates[c.ASSESSMENT_DATE]))[o]
    pid_key = table.patient_key[o]
    date_key = table.date_key[o]
    same = keyed[1:] & keyed[:-1] & (pid_key[1:] == pid_key[:-1])
    same &= date_key[1:] == date_key[:-1]
    duplicate = np.zeros(table.n, dtype=bool)
    duplicate[o[1:][same]] = True
    duplicate[o[:-1][same]] = True
    return duplicate


# --- rules about rows: patients -------------------------------------------------------------
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


def _constant_values(table: TimepointColumns, col: str) -> npt.NDArray[np.float64]:
    """A patient constant as floats (NaN missing; an unknown category counts as missing)."""
    if col in table.dates:
        values = table.dates[col]
        return np.where(np.isnat(values), np.nan, values.astype(np.int64))
    if col in table.categories:
        codes = table.categories[col].codes
        return np.where(codes == -1, np.nan, codes)
    return table.booleans[col].to_numpy(dtype=np.float64, na_value=np.nan)


def _not_constant(table: TimepointColumns, col: str) -> BoolArray:
    if col not in table.present:
        return np.zeros(table.n, dtype=bool)
    blocks = _block_starts(table.patient_key[table.order])
    varies = _varies_within(_constant_values(table, col), table.order, blocks)
    return varies & (table.patient_codes != -1)  # rows without patient_id form no patient


def _not_constant_message(table: TimepointColumns, col: str, mask: BoolArray) -> str:
    codes = table.patient_codes
    patients = int(np.unique(codes[mask]).size)
    first = table.first(mask)
    values = pd.Series(table.canonical(col))
    seen = values[codes == codes[first]].dropna()
    shown = quote([str(v) for v in dict.fromkeys(seen.astype(str).tolist())])
    return f"changes between rows of the same patient ({plural(patients, 'patient')}; e.g. {shown})"


# --- rules about rows: findings and row types -----------------------------------------------
def _morphology(table: TimepointColumns) -> tuple[BoolArray, BoolArray]:
    """Rows whose morphology is ``none``, and rows naming new lesions (``unknown`` too)."""
    morph = table.categories[c.NEW_LESION_MORPHOLOGY].codes
    is_none = morph == c.MORPHOLOGIES.index("none")
    positive = np.isin(morph, [c.MORPHOLOGIES.index(m) for m in _POSITIVE_MORPHOLOGIES])
    return np.asarray(is_none), positive


def _imaging_finding(table: TimepointColumns, col: str) -> BoolArray:
    """Rows that carry an imaging finding in ``col``."""
    if col == c.EXTRAOSSEOUS_RESPONSE:
        return ~table.missing(col)
    if col == c.SLD_MM:
        return ~np.isnan(table.numbers[col])
    if col == c.NEW_BONE_LESIONS:
        return table.lesions > 0
    if col == c.NEW_LESION_MORPHOLOGY:
        return _morphology(table)[1]
    return table.flag(col)


def _outcome_on_non_index_row(table: TimepointColumns, col: str) -> BoolArray:
    lesions = table.lesions
    # a count already reported as wrong (or missing) does not also make its outcome wrong
    unusable = table.unreadable[c.NEW_BONE_LESIONS] | table.fractional_lesions
    unusable |= (lesions < 0) | np.isnan(lesions)
    has_outcome = ~table.missing(c.OUTCOME)
    return has_outcome & table.is_imaging & ~table.is_index & ~unusable


#: every rule about rows, in the order violations are reported
RULES: tuple[Rule, ...] = (
    Rule(
        "unknown_category",
        tuple(c.VOCABULARIES),
        _unreadable,
        _unknown_category_message,
        "use one of the allowed values (case and surrounding spaces do not matter)",
    ),
    Rule(
        "invalid_boolean",
        c.BOOL_COLUMNS,
        _unreadable,
        lambda table, col, mask: f"not a yes/no value ({_quoted_unreadable(table, col)})",
        "use true/false, yes/no or 1/0, or leave empty when unknown",
    ),
    Rule(
        "not_a_number",
        (*c.FLOAT_COLUMNS, *c.INT_COLUMNS),
        _unreadable,
        lambda table, col, mask: f"not a number ({_quoted_unreadable(table, col)})",
        "write plain numbers with a decimal point (read decimal commas with --decimal , or "
        "decimal=','), or leave empty when unknown",
    ),
    Rule(
        "not_an_integer",
        (c.NEW_BONE_LESIONS,),
        lambda table, col: table.fractional_lesions,
        _fractional_message,
        "give the count of new bone lesions as a whole number",
    ),
    Rule(
        "missing_value",
        tuple(col for col in c.REQUIRED_COLUMNS if col not in c.IMAGING_REQUIRED_COLUMNS),
        _missing_required(imaging_only=False),
        "required value is missing",
        lambda col: f"fill '{col}' on every row",
    ),
    Rule(
        "missing_imaging_value",
        c.IMAGING_REQUIRED_COLUMNS,
        _missing_required(imaging_only=True),
        "value is missing on an imaging row",
        lambda col: f"fill '{col}' on every imaging row, or mark lab-only visits row_type=lab",
    ),
    Rule(
        "unparseable_date",
        c.DATE_COLUMNS,
        _unreadable,
        lambda table, col, mask: f"date cannot be parsed ({_quoted_unreadable(table, col)})",
        "write dates as ISO 8601, YYYY-MM-DD, or say how they are written (--dayfirst or "
        "--date-format %d/%m/%Y; dayfirst= / date_format= in Python)",
    ),
    Rule(
        "negative_count",
        (c.NEW_BONE_LESIONS,),
        lambda table, col: table.lesions < 0,
        "count of new bone lesions is negative",
        "counts are 0 or more; use 0 when no new lesion was seen",
    ),
    Rule(
        "negative_value",
        (c.SLD_MM,),
        lambda table, col: table.numbers[col] < 0,
        "sum of longest diameters is negative",
        "give diameters in mm, 0 or more",
    ),
    Rule(
        "alp_out_of_range",
        (c.ALP_U_L,),
        lambda table, col: _alp(table)[1],
        _alp_message,
        "check units (ukat/L x 60 = U/L) and typos",
    ),
    Rule(
        "before_treatment_start",
        (c.ASSESSMENT_DATE,),
        _before_treatment_start,
        "assessment is before treatment_start_date",
        "check both dates; assessments before the start of this line of therapy belong "
        "to an earlier line (give it its own patient_id, e.g. P1-L1)",
    ),
    Rule(
        "duplicate_assessment",
        (c.ASSESSMENT_DATE,),
        _duplicate_assessment,
        "more than one row for the same patient_id and assessment_date",
        "merge them into one row per patient and date (lab values of a scan day go on "
        "the imaging row)",
    ),
    Rule(
        "not_constant_per_patient",
        c.PATIENT_CONSTANT_COLUMNS,
        _not_constant,
        _not_constant_message,
        lambda col: (
            f"'{col}' must be the same on every row of a patient; a new line of therapy "
            "gets its own patient_id (e.g. P1-L2)"
        ),
    ),
    Rule(
        "morphology_none_with_lesions",
        (c.NEW_LESION_MORPHOLOGY,),
        lambda table, col: _morphology(table)[0] & (table.lesions > 0),
        "morphology is 'none' but new_bone_lesions is positive",
        "give the morphology of the new lesions (blastic, lytic or mixed; unknown when the "
        "modality cannot tell, e.g. a bone scan), or fix the count",
    ),
    Rule(
        "morphology_without_lesions",
        (c.NEW_LESION_MORPHOLOGY,),
        lambda table, col: _morphology(table)[1] & (table.lesions == 0) & ~table.is_lab,
        "morphology of new lesions is given but new_bone_lesions is 0",
        "use 'none' when there is no new bone lesion, or fix the count",
    ),
    Rule(
        "lab_row_with_imaging",
        IMAGING_FINDING_COLUMNS,
        lambda table, col: _imaging_finding(table, col) & table.is_lab,
        "a lab-only row (row_type=lab) carries an imaging finding",
        "leave imaging columns empty on lab rows (new_bone_lesions 0 or empty), or "
        "mark the row row_type=imaging",
    ),
    Rule(
        "lab_row_with_outcome",
        (c.OUTCOME,),
        lambda table, col: ~table.missing(col) & table.is_lab,
        "a lab-only row (row_type=lab) has an outcome",
        _OUTCOME_FIX,
    ),
    Rule(
        "outcome_on_non_index_row",
        (c.OUTCOME,),
        _outcome_on_non_index_row,
        "outcome is set on an imaging row without new bone lesions (not an index row)",
        _OUTCOME_FIX,
    ),
)


def find_violations(table: TimepointColumns, rules: Sequence[Rule] = RULES) -> list[Violation]:
    """Run every rule on a parsed table; return the violations in registry order.

    Parameters
    ----------
    table : TimepointColumns
        The parsed table.
    rules : sequence of Rule, default=RULES
        The rules to run.

    Returns
    -------
    list of Violation
        Empty when the table keeps every rule.

    Examples
    --------
    >>> import pandas as pd
    >>> from flare_ml.data.parsing import parse_timepoints
    >>> table = parse_timepoints(pd.DataFrame({"patient_id": ["P1"], "sld_mm": [-3.0]}))
    >>> [(v.column, v.rule) for v in find_violations(table)][-1]
    ('sld_mm', 'negative_value')

    """
    return [v for rule in rules for v in rule.violations(table)]
