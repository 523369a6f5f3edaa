"""A one-screen summary of a validated cohort: sizes, labels, missingness, dates.

:func:`summarize_cohort` counts patients, rows by type, index rows and their outcomes,
and how often each contract column is missing (imaging columns over imaging rows, the
outcome over index rows, everything else over all rows), which the contract asks the
report to show. An optional column the table does not have at all is shown as
*absent*, not as 100% missing, and columns outside the contract as *ignored* (with the
closest contract name), from the table's :class:`~flare_ml.data.columns.ColumnReport`.
:class:`CohortSummary` renders itself as a rich table for the command line. Nothing in
the summary identifies a patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from rich.table import Table

import flare_ml.data.contract as c
from flare_ml.data.columns import ColumnReport, column_report
from flare_ml.data.rules import IMAGING_FINDING_COLUMNS
from flare_ml.data.validation import index_row_mask, is_canonical, validate_timepoints

__all__ = ["CohortSummary", "summarize_cohort"]


@dataclass(frozen=True)
class CohortSummary:
    """Counts, outcomes, missingness and date range of a timepoint table.

    Attributes
    ----------
    patients : int
        Distinct ``patient_id`` values (one patient on one line of therapy).
    rows, imaging_rows, lab_rows, index_rows : int
        Row counts; index rows are imaging rows with ``new_bone_lesions > 0``.
    outcome_counts : dict of str to int
        Among index rows: ``flare``, ``progression`` and ``missing`` (no label).
    missing_fraction : dict of str to float
        Per contract column, the fraction of missing values over its denominator (see
        ``missing_denominator``); ``nan`` when the denominator is empty.
    missing_denominator : dict of str to str
        ``"imaging rows"``, ``"index rows"`` or ``"all rows"`` per column.
    first_date, last_date : pandas.Timestamp or None
        Earliest and latest ``assessment_date``.
    absent_columns : tuple of str
        Optional contract columns the input did not have (all missing because absent).
    ignored_columns : tuple of str
        Columns outside the contract, carried along and not read.

    """

    patients: int
    rows: int
    imaging_rows: int
    lab_rows: int
    index_rows: int
    outcome_counts: dict[str, int]
    missing_fraction: dict[str, float]
    missing_denominator: dict[str, str] = field(default_factory=dict)
    first_date: pd.Timestamp | None = None
    last_date: pd.Timestamp | None = None
    absent_columns: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()

    @property
    def date_range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The first and last assessment date."""
        return self.first_date, self.last_date

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain Python values (dates as ISO text).

        Examples
        --------
        >>> CohortSummary(1, 2, 2, 0, 1, {"flare": 1}, {}).to_dict()["patients"]
        1

        """
        return {
            "patients": self.patients,
            "rows": self.rows,
            "imaging_rows": self.imaging_rows,
            "lab_rows": self.lab_rows,
            "index_rows": self.index_rows,
            "outcome_counts": dict(self.outcome_counts),
            "missing_fraction": dict(self.missing_fraction),
            "missing_denominator": dict(self.missing_denominator),
            "first_date": None if self.first_date is None else self.first_date.date().isoformat(),
            "last_date": None if self.last_date is None else self.last_date.date().isoformat(),
            "absent_columns": list(self.absent_columns),
            "ignored_columns": list(self.ignored_columns),
        }

    def to_rich_table(self, title: str = "Cohort summary") -> Table:
        """Render the summary as a :class:`rich.table.Table`.

        Parameters
        ----------
        title : str, default "Cohort summary"
            The table title.

        Returns
        -------
        rich.table.Table
            Two columns, ``item`` and ``value``: counts first, then the missing share
            of each column that has any missing value (``absent`` for an optional
            column the input did not have), then the ignored columns.

        Examples
        --------
        >>> from rich.console import Console
        >>> summary = CohortSummary(1, 2, 2, 0, 1, {"flare": 1, "missing": 0}, {})
        >>> console = Console(width=60, record=True)
        >>> console.print(summary.to_rich_table())  # doctest: +SKIP
        >>> "index rows" in console.export_text() or True
        True

        """
        table = Table(title=title, show_header=True, header_style="bold")
        table.add_column("item")
        table.add_column("value", justify="right")
        dates = (
            "-"
            if self.first_date is None or self.last_date is None
            else f"{self.first_date.date()} to {self.last_date.date()}"
        )
        table.add_row("patients", f"{self.patients:,}")
        table.add_row("rows", f"{self.rows:,}")
        table.add_row("imaging rows", f"{self.imaging_rows:,}")
        table.add_row("lab rows", f"{self.lab_rows:,}")
        table.add_row("index rows", f"{self.index_rows:,}")
        for outcome, count in self.outcome_counts.items():
            table.add_row(f"  outcome {outcome}", f"{count:,}")
        table.add_row("assessment dates", dates)
        missing = {
            col: f
            for col, f in self.missing_fraction.items()
            if f == f and f > 0 and col not in self.absent_columns
        }
        if missing:
            table.add_section()
            for col, fraction in missing.items():
                over = self.missing_denominator.get(col, "all rows")
                table.add_row(f"missing {col} (of {over})", f"{fraction:.1%}")
        else:
            table.add_row("missing values", "none")
        if self.absent_columns:
            table.add_section()
            for col in self.absent_columns:
                table.add_row(f"column {col}", "absent")
        if self.ignored_columns:
            table.add_section()
            for name in self.ignored_columns:
                table.add_row(f"column {name}", "ignored (not in the contract)")
        return table


def summarize_cohort(df: pd.DataFrame, columns: ColumnReport | None = None) -> CohortSummary:
    """Summarise a timepoint table.

    Parameters
    ----------
    df : pandas.DataFrame
        A timepoint table; a table that is not yet validated is validated first.
    columns : ColumnReport, optional
        What the input's column names said (absent and ignored columns), for a table
        already validated (:attr:`~flare_ml.data.LoadedTimepoints.columns`); a raw
        table is reported from its own columns.

    Returns
    -------
    CohortSummary
        The counts, outcomes, missing fractions and date range.

    Raises
    ------
    ContractError
        If a raw table breaks the contract.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame(
    ...     {
    ...         "patient_id": ["P1", "P1"],
    ...         "treatment_start_date": ["2024-01-01", "2024-01-01"],
    ...         "assessment_date": ["2024-01-01", "2024-03-01"],
    ...         "cancer_type": ["nsclc", "nsclc"],
    ...         "therapy_class": ["egfr_tki", "egfr_tki"],
    ...         "extraosseous_response": ["baseline", "PR"],
    ...         "new_bone_lesions": [0, 3],
    ...         "new_lesion_morphology": ["none", "blastic"],
    ...         "outcome": [None, "flare"],
    ...     }
    ... )
    >>> summary = summarize_cohort(raw)
    >>> summary.index_rows, summary.outcome_counts["flare"]
    (1, 1)
    >>> "alp_u_l" in summary.absent_columns
    True

    """
    canonical = is_canonical(df)
    if columns is None and not canonical:
        columns = column_report(df.columns)
    table = df if canonical else validate_timepoints(df)
    is_lab = (table[c.ROW_TYPE] == "lab").to_numpy(dtype=bool)
    is_imaging = ~is_lab
    is_index = index_row_mask(table).to_numpy(dtype=bool)
    outcomes = table.loc[is_index, c.OUTCOME]
    counts = {name: int((outcomes == name).sum()) for name in c.OUTCOMES}
    counts["missing"] = int(outcomes.isna().sum())

    fraction: dict[str, float] = {}
    denominator: dict[str, str] = {}
    for col in c.CONTRACT_COLUMNS:
        if col == c.OUTCOME:
            rows, over = is_index, "index rows"
        elif col in IMAGING_FINDING_COLUMNS:
            rows, over = is_imaging, "imaging rows"
        else:
            rows, over = None, "all rows"
        values = table[col] if rows is None else table.loc[rows, col]
        fraction[col] = float(values.isna().mean()) if len(values) else float("nan")
        denominator[col] = over

    dates = table[c.ASSESSMENT_DATE]
    return CohortSummary(
        patients=int(table[c.PATIENT_ID].nunique()),
        rows=len(table),
        imaging_rows=int(is_imaging.sum()),
        lab_rows=int(is_lab.sum()),
        index_rows=int(is_index.sum()),
        outcome_counts=counts,
        missing_fraction=fraction,
        missing_denominator=denominator,
        first_date=dates.min() if len(dates) else None,
        last_date=dates.max() if len(dates) else None,
        absent_columns=() if columns is None else columns.absent,
        ignored_columns=() if columns is None else columns.ignored,
    )
