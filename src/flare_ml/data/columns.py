"""What a table's column names say: unknown columns, likely misspellings, absent columns.

Validation reads the contract columns of a table and carries any other column along
untouched, so a column outside the contract never changes a prediction. That is safe
for a note or a site code, and dangerous for a misspelt contract column: ``alp_ul``
instead of ``alp_u_l`` would leave ALP missing on every row and move every P(flare).
:func:`column_report` therefore looks at the names only and sorts each unknown column
into one of two kinds: *ignored* (reported as a notice, nothing else happens) or
*misspelt* (close to a contract column the table lacks, see :data:`MISSPELLING_CUTOFF`;
the rule ``misspelt_column`` of :mod:`flare_ml.data.rules` refuses the table, naming the
suggestion). It also lists the optional contract columns the table does not have at all
(*absent*, as opposed to present and empty) and recognises a header that was read as
one column because the file uses another delimiter (:func:`unsplit_header`). The
provenance columns of an adjudicated outcome (:data:`~flare_ml.data.contract.PROVENANCE_COLUMNS`,
written by ``flare-ml label``) are known: carried along without a notice, never read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import flare_ml.data.contract as c

__all__ = [
    "MISSPELLING_CUTOFF",
    "SUGGESTION_CUTOFF",
    "ColumnReport",
    "UnknownColumn",
    "column_report",
    "contract_name",
    "suggest_column",
    "unsplit_header",
]

#: similarity (:class:`difflib.SequenceMatcher` ratio) from which an unknown column is
#: taken for a misspelling of an absent contract column, and refused (``alp_ul`` vs
#: ``alp_u_l``: 0.92; ``outcomes`` vs ``outcome``: 0.93; ``true_outcome``: 0.74)
MISSPELLING_CUTOFF = 0.8
#: similarity from which the closest contract column is suggested in a notice
SUGGESTION_CUTOFF = 0.6

#: characters that separate fields in the CSV files people export
_DELIMITERS = (",", ";", "\t", "|", ":")


def contract_name(name: Hashable) -> str:
    """Return a column name as validation matches it (trimmed; contract names lower-cased).

    Examples
    --------
    >>> contract_name(" Patient_ID "), contract_name(" Note ")
    ('patient_id', 'Note')

    """
    text = str(name).strip()
    return text.lower() if text.lower() in c.CONTRACT_COLUMNS else text


def _folded(name: str) -> str:
    """Lower case, every run of other characters than letters and digits as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def suggest_column(name: str, cutoff: float = SUGGESTION_CUTOFF) -> tuple[str | None, float]:
    """Return the contract column closest to ``name`` and how close it is (0 to 1).

    The name is compared after lower-casing and writing every run of punctuation or
    spaces as ``_`` (so ``ALP (U/L)`` is ``alp_u_l``, similarity 1).

    Parameters
    ----------
    name : str
        A column name that is not a contract column.
    cutoff : float, default :data:`SUGGESTION_CUTOFF`
        Below this similarity nothing is suggested.

    Returns
    -------
    tuple of (str or None, float)
        The suggestion (None when none is close enough) and its similarity.

    Examples
    --------
    >>> suggest_column("alp_ul")
    ('alp_u_l', 0.923...)
    >>> suggest_column("Patient ID")
    ('patient_id', 1.0)
    >>> suggest_column("site")
    (None, 0.0)

    """
    folded = _folded(name)
    if folded in c.CONTRACT_COLUMNS:
        return folded, 1.0
    close = difflib.get_close_matches(folded, c.CONTRACT_COLUMNS, n=1, cutoff=cutoff)
    if not close:
        return None, 0.0
    return close[0], difflib.SequenceMatcher(None, folded, close[0]).ratio()


@dataclass(frozen=True)
class UnknownColumn:
    """A column of the table that is not in the contract.

    Attributes
    ----------
    name : str
        The column name as found.
    suggestion : str or None
        The closest contract column, if any is close enough to suggest.
    misspelt : bool
        True when the suggestion is an absent contract column close enough
        (:data:`MISSPELLING_CUTOFF`) for this column to be meant as it: the table is
        refused rather than read without it.

    Examples
    --------
    >>> UnknownColumn("alp_ul", "alp_u_l", True).describe()
    "'alp_ul': did you mean 'alp_u_l'?"
    >>> UnknownColumn("site_note", None, False).describe()
    "'site_note': not a contract column, ignored"

    """

    name: str
    suggestion: str | None = None
    misspelt: bool = False

    def describe(self) -> str:
        """Render the column as one line of a report."""
        if self.misspelt:
            return f"'{self.name}': did you mean '{self.suggestion}'?"
        if self.suggestion:
            return (
                f"'{self.name}': not a contract column, ignored "
                f"(the closest contract column is '{self.suggestion}')"
            )
        return f"'{self.name}': not a contract column, ignored"


@dataclass(frozen=True)
class ColumnReport:
    """What the column names of a table say, before any value is read.

    Attributes
    ----------
    unknown : tuple of UnknownColumn
        Columns outside the contract, in table order.
    absent : tuple of str
        Optional contract columns the table does not have (validation adds them as
        all-missing).

    Examples
    --------
    >>> report = column_report(["patient_id", "alp_ul", "site_note"])
    >>> [u.name for u in report.misspelt], report.ignored
    (['alp_ul'], ('site_note',))
    >>> "alp_u_l" in report.absent
    True

    """

    unknown: tuple[UnknownColumn, ...] = ()
    absent: tuple[str, ...] = ()

    @property
    def misspelt(self) -> tuple[UnknownColumn, ...]:
        """The unknown columns taken for misspellings of absent contract columns."""
        return tuple(u for u in self.unknown if u.misspelt)

    @property
    def ignored(self) -> tuple[str, ...]:
        """The names of the unknown columns that are carried along and not read."""
        return tuple(u.name for u in self.unknown if not u.misspelt)

    def notices(self) -> list[str]:
        """One line per ignored column (absent columns are shown by the cohort summary).

        Examples
        --------
        >>> column_report(["patient_id", "site_note"]).notices()[0]
        "column 'site_note': not a contract column, ignored"

        """
        return [f"column {u.describe()}" for u in self.unknown if not u.misspelt]


def column_report(columns: Iterable[Hashable]) -> ColumnReport:
    """Sort a table's columns into contract, ignored, misspelt and absent ones.

    Parameters
    ----------
    columns : iterable of hashable
        The column names (for example ``df.columns``), as read.

    Returns
    -------
    ColumnReport
        The unknown columns (with suggestions) and the absent optional columns.

    Examples
    --------
    >>> report = column_report(["Patient_ID", "outcomes", "notes"])
    >>> [u.describe() for u in report.unknown]
    ["'outcomes': did you mean 'outcome'?", "'notes': not a contract column, ignored"]

    """
    names = [contract_name(name) for name in columns]
    present = {name for name in names if name in c.CONTRACT_COLUMNS}
    unknown = []
    for name in names:
        if name in c.CONTRACT_COLUMNS or name in c.PROVENANCE_COLUMNS:
            continue
        suggestion, similarity = suggest_column(name)
        misspelt = (
            suggestion is not None
            and suggestion not in present
            and similarity >= MISSPELLING_CUTOFF
        )
        unknown.append(UnknownColumn(name, suggestion, misspelt))
    absent = tuple(col for col in c.OPTIONAL_COLUMNS if col not in present)
    return ColumnReport(tuple(unknown), absent)


def unsplit_header(columns: Iterable[Hashable]) -> str | None:
    """Tell whether a header was read as one column; return the delimiter it seems to use.

    A table whose only column name holds two or more contract names joined by a
    delimiter (``patient_id;treatment_start_date;...``) was read with the wrong one.

    Parameters
    ----------
    columns : iterable of hashable
        The column names as read.

    Returns
    -------
    str or None
        The delimiter seen in the header, or None when the header looks split.

    Examples
    --------
    >>> unsplit_header(["patient_id;assessment_date;cancer_type"])
    ';'
    >>> unsplit_header(["patient_id", "assessment_date"]) is None
    True

    """
    names = [str(name) for name in columns]
    if len(names) != 1:
        return None
    header = names[0]
    counts = {sep: header.count(sep) for sep in _DELIMITERS}
    sep = max(counts, key=lambda s: counts[s])
    if counts[sep] == 0:
        return None
    parts = {contract_name(part.strip().strip("\"'")) for part in header.split(sep)}
    return sep if len(parts & set(c.CONTRACT_COLUMNS)) >= 2 else None
