"""Fill a timepoint table's imaging columns from the findings of its radiology reports.

:func:`merge_findings` takes a timepoint table (raw, as read from a file; its imaging
columns may be empty or absent) and the findings frame of its reports (one row per report,
as :func:`flare_ml.reports.read_reports` returns it) and returns the table with the imaging
columns filled, validated against the data contract. The rules, documented in
``docs/reports_cli.md``: reports are matched to rows on ``(patient_id, assessment_date)``;
a report with no matching row becomes a new imaging row whose patient-constant columns
(treatment start, cancer type, therapy class) come from the patient's other rows; a report
for a patient the table does not have is dropped and reported (the timepoint table defines
the cohort; a report extract is often wider); a value the table already has that differs
from the report's is a conflict, an error naming the rows and columns unless ``prefer`` is
given (a report's silence is no conflict: a flag it does not mention, read as False, or a
morphology its modality cannot tell, ``unknown``, only fills an empty cell); reports of one
patient on one day (a CT and a bone scan) are combined first.
``baseline_marrow_involvement`` is a patient-constant column: the patient's earliest report
decides it. A bone scan cannot see disease outside bone: a bone-scan report that states no
response, on a row whose table value is empty too, gives ``extraosseous_response = NE``
(RECIST: not evaluable), with a notice; any other imaging row left without a response is a
contract error naming it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.data import validate_timepoints
from flare_ml.data._parse import (
    parse_bool,
    parse_category,
    parse_date,
    parse_number,
    parse_text_id,
)
from flare_ml.data.parsing import normalise_column_names
from flare_ml.errors import ContractError, Violation
from flare_ml.reports.findings import (
    EVIDENCE,
    FINDINGS_UNCERTAIN,
    IMAGING_FINDINGS,
    MODALITY,
)

__all__ = ["MergeResult", "Prefer", "combine_same_day", "merge_findings"]

#: which side wins a conflict: ``None`` (an error), ``"reports"`` or ``"timepoints"``
Prefer = Literal["reports", "timepoints"] | None
#: the timepoint columns a merge needs (the others may be absent; imaging ones are added)
MERGE_REQUIRED: Final = (
    c.PATIENT_ID,
    c.ASSESSMENT_DATE,
    c.TREATMENT_START_DATE,
    c.CANCER_TYPE,
    c.THERAPY_CLASS,
)
#: copied from a patient's other rows onto a new row added from a report
COPIED_TO_NEW_ROWS: Final = (c.TREATMENT_START_DATE, c.CANCER_TYPE, c.THERAPY_CLASS)
#: the imaging columns set per row (``baseline_marrow_involvement`` is per patient)
ROW_FINDINGS: Final = tuple(x for x in IMAGING_FINDINGS if x != c.BASELINE_MARROW_INVOLVEMENT)
#: RECIST's "not evaluable": the response of a timepoint whose only scan is a bone scan
NOT_EVALUABLE: Final = "NE"
BONE_SCAN: Final = "bone_scan"
_MORPHOLOGY_RANK: Final = {"none": 0, "unknown": 1, "blastic": 2, "lytic": 2, "mixed": 3}


@dataclass(frozen=True)
class Conflict:
    """One cell where the timepoint table and the report disagree."""

    patient_id: str
    assessment_date: str
    column: str
    table_value: Any
    report_value: Any


@dataclass
class MergeResult:
    """What :func:`merge_findings` produced.

    Attributes
    ----------
    table : pandas.DataFrame
        The timepoint table with the imaging columns filled, validated (canonical dtypes,
        sorted by patient and date) plus ``findings_uncertain`` (missing on rows no report
        touched).
    reports : int
        Reports read (rows of the findings frame).
    rows_filled, rows_added : int
        Existing rows that got at least one value from a report; new imaging rows.
    cells_filled : int
        Empty cells filled.
    uncertain : int
        Rows whose new-lesion statement is hedged.
    conflicts : list of Conflict
        Cells where the table and a report disagreed (resolved by ``prefer``).
    dropped : int
        Reports dropped because their patient is not in the table.
    notices : list of str
        What was ignored or resolved, in words (dropped reports, combined reports,
        columns not carried over, conflicts resolved).

    """

    table: pd.DataFrame
    reports: int
    rows_filled: int = 0
    rows_added: int = 0
    cells_filled: int = 0
    uncertain: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    dropped: int = 0
    notices: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return "<missing>"
    if isinstance(value, np.datetime64 | pd.Timestamp):
        return str(pd.Timestamp(value).date())
    return str(value)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and np.isnan(value)


def _keys(frame: pd.DataFrame, what: str) -> tuple[list[Any], list[Any]]:
    """Parsed ``patient_id`` and ``assessment_date`` values, refusing bad or missing ones."""
    ids = parse_text_id(frame[c.PATIENT_ID])
    dates, bad, bad_values = parse_date(frame[c.ASSESSMENT_DATE])
    raw_ids = frame[c.PATIENT_ID].astype(object).tolist()
    raw_dates = frame[c.ASSESSMENT_DATE].astype(object).tolist()
    violations = []
    missing_id = ids.isna().to_numpy()
    if missing_id.any():
        rows = np.flatnonzero(missing_id)
        violations.append(
            Violation(
                c.PATIENT_ID,
                "missing_value",
                tuple((_text(raw_ids[i]), _text(raw_dates[i])) for i in rows[:5]),
                len(rows),
                "empty patient_id",
                "give every row its patient",
            )
        )
    missing_date = np.isnat(dates) & ~bad
    for mask, rule, message in (
        (bad, "unparseable_date", f"dates that are not ISO 8601: {bad_values[:5]}"),
        (missing_date, "missing_value", "empty assessment_date"),
    ):
        if mask.any():
            rows = np.flatnonzero(mask)
            violations.append(
                Violation(
                    c.ASSESSMENT_DATE,
                    rule,
                    tuple((_text(raw_ids[i]), _text(raw_dates[i])) for i in rows[:5]),
                    len(rows),
                    message,
                    "write dates as YYYY-MM-DD",
                )
            )
    if violations:
        raise ContractError(
            f"the {what} cannot be matched on (patient_id, assessment_date):", violations
        )
    return ids.tolist(), [pd.Timestamp(d) for d in dates]


def _morphology(values: Iterable[Any]) -> Any:
    """One morphology for several reports of a day: blastic + lytic = mixed."""
    seen = {v for v in values if not _is_missing(v)}
    if not seen:
        return None
    if "mixed" in seen or {"blastic", "lytic"} <= seen:
        return "mixed"
    return max(seen, key=lambda v: _MORPHOLOGY_RANK.get(v, 1))


def combine_same_day(findings: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Combine the findings of reports of one patient on one day into one row.

    A CT and a bone scan of the same day describe one timepoint: the larger count, the
    morphologies together (blastic and lytic make ``mixed``; ``unknown`` yields to a
    known one), a finding true in either, the response one of them states (two different
    stated responses are an error), ``findings_uncertain`` only when every report that
    sees new lesions hedges them, the evidence of both.

    Parameters
    ----------
    findings : pandas.DataFrame
        Findings rows with parsed keys (``patient_id`` text, ``assessment_date``
        timestamps), the imaging columns, ``findings_uncertain`` and, optionally,
        ``evidence`` (JSON text).

    Returns
    -------
    tuple of (pandas.DataFrame, int)
        One row per key, in first-seen order, and the number of reports folded into
        another.

    Raises
    ------
    ContractError
        When reports of one day state different responses outside bone.

    Examples
    --------
    >>> import pandas as pd
    >>> day = pd.Timestamp("2024-03-01")
    >>> rows = pd.DataFrame({"patient_id": ["P1", "P1"], "assessment_date": [day, day],
    ...     "extraosseous_response": [None, "SD"], "new_extraosseous_lesion": [False, False],
    ...     "new_bone_lesions": [2, 3], "new_lesion_morphology": ["unknown", "blastic"],
    ...     "progressive_lysis": [False, False], "known_lesion_sclerosis": [False, True],
    ...     "baseline_marrow_involvement": [False, False],
    ...     "findings_uncertain": [True, False]})
    >>> one, folded = combine_same_day(rows)
    >>> row = one.iloc[0]
    >>> int(row["new_bone_lesions"]), row["new_lesion_morphology"], row["extraosseous_response"]
    (3, 'blastic', 'SD')
    >>> bool(one.iloc[0]["findings_uncertain"]), folded
    (False, 1)

    """
    key = [c.PATIENT_ID, c.ASSESSMENT_DATE]
    duplicated = findings.duplicated(key, keep=False)
    if not duplicated.any():
        return findings, 0
    single = findings.loc[~duplicated]
    combined = []
    clashes: list[tuple[str, str]] = []
    for (pid, date), group in findings.loc[duplicated].groupby(key, sort=False):
        row = group.iloc[0].to_dict()
        counts = [int(v) for v in group[c.NEW_BONE_LESIONS] if not _is_missing(v)]
        row[c.NEW_BONE_LESIONS] = max(counts) if counts else None
        row[c.NEW_LESION_MORPHOLOGY] = _morphology(group[c.NEW_LESION_MORPHOLOGY])
        for name in (
            c.NEW_EXTRAOSSEOUS_LESION,
            c.PROGRESSIVE_LYSIS,
            c.KNOWN_LESION_SCLEROSIS,
            c.BASELINE_MARROW_INVOLVEMENT,
        ):
            row[name] = any(bool(v) for v in group[name] if not _is_missing(v))
        stated = list(
            dict.fromkeys(v for v in group[c.EXTRAOSSEOUS_RESPONSE] if not _is_missing(v))
        )
        if len(stated) > 1:
            clashes.append((str(pid), _text(date)))
        row[c.EXTRAOSSEOUS_RESPONSE] = stated[0] if stated else None
        seeing = group[[_count(v) > 0 for v in group[c.NEW_BONE_LESIONS]]]
        row[FINDINGS_UNCERTAIN] = bool(len(seeing)) and all(
            bool(v) for v in seeing[FINDINGS_UNCERTAIN]
        )
        if MODALITY in group:
            seen = [m for m in group[MODALITY] if not _is_missing(m)]
            other = [m for m in seen if m != BONE_SCAN]
            row[MODALITY] = other[0] if other else (seen[0] if seen else None)
        if EVIDENCE in group:
            merged: list[Any] = []
            for text in group[EVIDENCE]:
                merged.extend(json.loads(text) if isinstance(text, str) and text else [])
            row[EVIDENCE] = json.dumps(merged)
        combined.append(row)
    if clashes:
        raise ContractError(
            "reports of one patient on one day disagree:",
            [
                Violation(
                    c.EXTRAOSSEOUS_RESPONSE,
                    "conflicting_reports",
                    tuple(clashes[:5]),
                    len(clashes),
                    "two reports of the same day state different responses outside bone",
                    "correct one of the reports, or give them different dates",
                )
            ],
        )
    out = pd.concat([single, pd.DataFrame(combined, columns=findings.columns)], ignore_index=True)
    return out, int(duplicated.sum()) - len(combined)


def _stated(rec: dict[Hashable, Any]) -> set[str] | None:
    """The fields a report's evidence supports (None when the frame has no evidence)."""
    evidence = rec.get(EVIDENCE)
    if evidence is None or _is_missing(evidence):
        return None
    items = json.loads(evidence) if isinstance(evidence, str) else evidence
    return {str(e["field"] if isinstance(e, dict) else e.field) for e in items}


def _silent(rec: dict[Hashable, Any], name: str, said: Any) -> bool:
    """Whether the report's value only says the report is silent, not that it disagrees.

    A morphology ``unknown`` (the modality cannot tell), and a flag read as False with no
    evidence for its field (the report does not mention it), fill an empty cell but never
    contradict a filled one.
    """
    if name == c.NEW_LESION_MORPHOLOGY:
        return said == "unknown"
    if name in c.BOOL_COLUMNS and said is False:
        stated = _stated(rec)
        return stated is not None and name not in stated
    return False


def _not_assessed(rec: dict[Hashable, Any]) -> bool:
    """A bone scan that states no response outside bone (it cannot see that disease)."""
    return rec.get(MODALITY) == BONE_SCAN and _is_missing(rec.get(c.EXTRAOSSEOUS_RESPONSE))


def _count(value: Any) -> int:
    return 0 if _is_missing(value) else int(value)


def _parsed_column(table: pd.DataFrame, name: str) -> list[Any]:
    """The table's values of one imaging column as Python values (raw text when invalid)."""
    series = table[name]
    raw = series.astype(object).tolist()
    if name in c.VOCABULARIES:
        values, bad, _ = parse_category(series, name)
        parsed = [None if _is_missing(v) else str(v) for v in values]
    elif name in c.BOOL_COLUMNS:
        values, bad, _ = parse_bool(series)
        parsed = [None if _is_missing(v) else bool(v) for v in values]
    else:
        numbers, bad, _ = parse_number(series)
        parsed = [
            None if np.isnan(v) else (int(v) if float(v).is_integer() else v) for v in numbers
        ]
    return [raw[i] if bad[i] else parsed[i] for i in range(len(raw))]


def _report_value(name: str, value: Any) -> Any:
    """A report's value in the table's vocabulary (None when the report states nothing)."""
    if _is_missing(value):
        return None
    if name == c.NEW_BONE_LESIONS:
        return int(value)
    if name in c.BOOL_COLUMNS:
        return bool(value)
    return str(value)


def merge_findings(
    timepoints: pd.DataFrame,
    findings: pd.DataFrame,
    *,
    prefer: Prefer = None,
    source: str | None = None,
) -> MergeResult:
    """Fill the imaging columns of a timepoint table from its reports' findings.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        A raw timepoint table (any dtypes validation reads). It needs ``patient_id``,
        ``assessment_date``, ``treatment_start_date``, ``cancer_type`` and
        ``therapy_class``; imaging columns may be empty or absent. Not modified.
    findings : pandas.DataFrame
        One row per report: ``patient_id``, ``assessment_date``, the imaging columns of
        :data:`~flare_ml.reports.findings.IMAGING_FINDINGS` and ``findings_uncertain``
        (what :func:`flare_ml.reports.read_reports` returns; other columns are not
        carried over, and are named in the notices).
    prefer : {None, "reports", "timepoints"}
        Which side wins where a cell the table has filled differs from its report:
        ``None`` (default) makes that an error, naming the rows and columns.
    source : str, optional
        Where the timepoint table came from, named in error messages.

    Returns
    -------
    MergeResult
        The filled and validated table with the counts and notices.

    Raises
    ------
    ContractError
        A key column missing or unparseable in either table; conflicts without
        ``prefer``; reports of one day stating different responses; a merged table
        that breaks the data contract (for example an imaging row whose report states no
        response outside bone while the table has none either).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"patient_id": ["P1", "P1"],
    ...     "treatment_start_date": ["2024-01-01"] * 2,
    ...     "assessment_date": ["2024-01-01", "2024-04-01"], "cancer_type": ["nsclc"] * 2,
    ...     "therapy_class": ["egfr_tki"] * 2, "extraosseous_response": ["baseline", ""],
    ...     "new_bone_lesions": ["0", ""], "new_lesion_morphology": ["none", ""]})
    >>> reports = pd.DataFrame({"patient_id": ["P1", "P1"],
    ...     "assessment_date": ["2024-04-01", "2024-07-01"],
    ...     "extraosseous_response": ["PR", "SD"], "new_extraosseous_lesion": [False, False],
    ...     "new_bone_lesions": [3, 0], "new_lesion_morphology": ["blastic", "none"],
    ...     "progressive_lysis": [False, False], "known_lesion_sclerosis": [False, False],
    ...     "baseline_marrow_involvement": [False, False],
    ...     "findings_uncertain": [False, False]})
    >>> result = merge_findings(table, reports)
    >>> result.rows_filled, result.rows_added
    (1, 1)
    >>> result.table["new_bone_lesions"].tolist()
    [0, 3, 0]

    """
    if prefer not in (None, "reports", "timepoints"):
        raise ValueError(f"prefer must be None, 'reports' or 'timepoints', got {prefer!r}")
    where = f" ({source})" if source else ""
    table = normalise_column_names(timepoints).astype(object)
    missing = [name for name in MERGE_REQUIRED if name not in table.columns]
    if missing:
        raise ContractError(
            f"the timepoint table{where} cannot take report findings:",
            [
                Violation(name, "missing_column", message="required column is absent",
                          hint="add the column (one value per patient row)")
                for name in missing
            ],
        )  # fmt: skip
    absent_findings = [n for n in (*IMAGING_FINDINGS, FINDINGS_UNCERTAIN) if n not in findings]
    if absent_findings:
        raise ContractError(
            f"the findings frame lacks columns {absent_findings}; "
            "give it the frame flare_ml.reports.read_reports returns"
        )
    reports = len(findings)
    for name in (*IMAGING_FINDINGS, c.ROW_TYPE):
        if name not in table.columns:
            table[name] = None
    t_ids, t_dates = _keys(table, f"timepoint table{where}")
    f_ids, f_dates = _keys(findings, "report table")
    notices: list[str] = []

    frame = findings.copy()
    frame[c.PATIENT_ID] = f_ids
    frame[c.ASSESSMENT_DATE] = f_dates
    frame, folded = combine_same_day(frame)
    if folded:
        notices.append(
            f"{folded} report(s) shared a patient and date with another report and were "
            "combined with it (larger count, morphologies together, findings of either)"
        )
    known = (c.PATIENT_ID, c.ASSESSMENT_DATE, *IMAGING_FINDINGS, FINDINGS_UNCERTAIN)
    extra = [x for x in findings.columns if x not in known]
    if extra:
        notices.append(
            "report columns not carried into the timepoint table: " + ", ".join(map(str, extra))
        )

    row_of: dict[tuple[str, pd.Timestamp], int] = {}
    rows_of_patient: dict[str, list[int]] = defaultdict(list)
    for i, (pid, date) in enumerate(zip(t_ids, t_dates, strict=True)):
        row_of[(pid, date)] = i
        rows_of_patient[pid].append(i)
    current = {name: _parsed_column(table, name) for name in IMAGING_FINDINGS}
    row_types = [
        None if _is_missing(v) else str(v).strip().lower() for v in table[c.ROW_TYPE].tolist()
    ]
    uncertain_col: list[Any] = [None] * len(table)

    conflicts: list[Conflict] = []
    filled_rows: set[int] = set()
    cells_filled = 0
    new_rows: list[dict[Hashable, Any]] = []
    dropped: dict[str, int] = defaultdict(int)
    earliest: dict[str, tuple[pd.Timestamp, bool]] = {}
    uncertain = 0
    lab_rows: list[str] = []
    not_evaluable: list[str] = []
    records = frame.to_dict("records")
    for rec in records:
        pid, date = rec[c.PATIENT_ID], rec[c.ASSESSMENT_DATE]
        if pid not in rows_of_patient:
            dropped[pid] += 1
            continue
        marrow = bool(
            _report_value(c.BASELINE_MARROW_INVOLVEMENT, rec[c.BASELINE_MARROW_INVOLVEMENT])
        )
        if pid not in earliest or date < earliest[pid][0]:
            earliest[pid] = (date, marrow)
        hedged = (
            bool(rec[FINDINGS_UNCERTAIN]) if not _is_missing(rec[FINDINGS_UNCERTAIN]) else False
        )
        uncertain += hedged
        i = row_of.get((pid, date))
        if i is None:
            first = rows_of_patient[pid][0]
            new = {name: table[name].iloc[first] for name in COPIED_TO_NEW_ROWS}
            new[c.PATIENT_ID] = pid
            new[c.ASSESSMENT_DATE] = str(date.date())
            new[c.ROW_TYPE] = "imaging"
            for name in ROW_FINDINGS:
                new[name] = _report_value(name, rec[name])
            if _not_assessed(rec):
                new[c.EXTRAOSSEOUS_RESPONSE] = NOT_EVALUABLE
                not_evaluable.append(f"({pid}, {date.date()})")
            new[FINDINGS_UNCERTAIN] = hedged
            new_rows.append(new)
            continue
        uncertain_col[i] = hedged
        if row_types[i] == "lab":
            row_types[i] = "imaging"
            lab_rows.append(f"({pid}, {date.date()})")
        for name in ROW_FINDINGS:
            said = _report_value(name, rec[name])
            if said is None:
                continue
            have = current[name][i]
            if have is None:
                current[name][i] = said
                cells_filled += 1
                filled_rows.add(i)
            elif have != said and not _silent(rec, name, said):
                conflicts.append(Conflict(pid, str(date.date()), name, have, said))
                if prefer == "reports":
                    current[name][i] = said
        if _not_assessed(rec) and current[c.EXTRAOSSEOUS_RESPONSE][i] is None:
            current[c.EXTRAOSSEOUS_RESPONSE][i] = NOT_EVALUABLE
            cells_filled += 1
            filled_rows.add(i)
            not_evaluable.append(f"({pid}, {date.date()})")

    # baseline_marrow_involvement: one value per patient, from the earliest report
    marrow_name = c.BASELINE_MARROW_INVOLVEMENT
    marrow_new: dict[str, bool] = {}
    for pid, (_, stated) in earliest.items():
        rows = rows_of_patient[pid]
        have = {current[marrow_name][i] for i in rows} - {None}
        value = stated
        if stated and have == {False}:
            conflicts.append(Conflict(pid, _text(t_dates[rows[0]]), marrow_name, False, True))
            value = prefer == "reports"
        elif have:
            value = next(iter(have)) if len(have) == 1 else stated
        for i in rows:
            if current[marrow_name][i] is None:
                cells_filled += 1
            if current[marrow_name][i] is None or prefer == "reports":
                current[marrow_name][i] = value
        marrow_new[pid] = value

    if conflicts and prefer is None:
        by_column: dict[str, list[Conflict]] = defaultdict(list)
        for conflict in conflicts:
            by_column[conflict.column].append(conflict)
        raise ContractError(
            f"the timepoint table{where} and its reports disagree "
            f"({len(conflicts)} cell(s)); nothing was written:",
            [
                Violation(
                    name,
                    "report_conflict",
                    tuple((x.patient_id, x.assessment_date) for x in found[:5]),
                    len(found),
                    "the table and the report differ: "
                    + "; ".join(
                        f"({x.patient_id}, {x.assessment_date}) table {x.table_value!r}, "
                        f"report {x.report_value!r}"
                        for x in found[:3]
                    ),
                    "correct one of them, or pass --prefer reports (or --prefer timepoints)",
                )
                for name, found in by_column.items()
            ],
        )
    if conflicts:
        notices.append(
            f"{len(conflicts)} cell(s) where the table and a report disagreed: "
            f"the {prefer}' values were kept"
        )
    if not_evaluable:
        notices.append(
            f"{len(not_evaluable)} bone-scan row(s) with no response outside bone in the "
            f"table or report: extraosseous_response set to {NOT_EVALUABLE} (a bone scan "
            "does not assess disease outside bone): "
            + ", ".join(not_evaluable[:5])
            + (", ..." if len(not_evaluable) > 5 else "")
        )
    if lab_rows:
        notices.append(
            f"{len(lab_rows)} lab row(s) have a report and are imaging rows now: "
            + ", ".join(lab_rows[:5])
            + (", ..." if len(lab_rows) > 5 else "")
        )
    if dropped:
        shown = ", ".join(list(dropped)[:5]) + (", ..." if len(dropped) > 5 else "")
        notices.append(
            f"{sum(dropped.values())} report(s) of {len(dropped)} patient(s) not in the "
            f"timepoint table were dropped: {shown}"
        )

    for name in IMAGING_FINDINGS:
        table[name] = current[name]
    table[c.ROW_TYPE] = row_types
    table[FINDINGS_UNCERTAIN] = uncertain_col
    for new in new_rows:
        new[marrow_name] = marrow_new[new[c.PATIENT_ID]]
    merged = pd.concat([table, pd.DataFrame(new_rows, columns=table.columns)], ignore_index=True)
    merged[FINDINGS_UNCERTAIN] = merged[FINDINGS_UNCERTAIN].astype("boolean")
    try:
        validated = validate_timepoints(merged, source=source)
    except ContractError as error:
        raise ContractError(
            f"the timepoint table{where} filled from its reports breaks the data contract "
            "(an imaging row needs every imaging value, from its report or the table); "
            "nothing was written:",
            error.violations,
        ) from error
    return MergeResult(
        table=validated,
        reports=reports,
        rows_filled=len(filled_rows),
        rows_added=len(new_rows),
        cells_filled=cells_filled,
        uncertain=uncertain,
        conflicts=conflicts,
        dropped=sum(dropped.values()),
        notices=notices,
    )
