"""Exception types that flare-ml raises for problems a user can fix.

Every error a user can act on (a table that breaks the data contract, a configuration
with a bad key, an unknown unit in a lab table) derives from :class:`FlareMLError`; the
command line prints these as a message and exits with status 2, while anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class FlareMLError(Exception):
    """Base class for errors caused by user input rather than by a bug."""


class ConfigError(FlareMLError, ValueError):
    """A configuration file is missing, unreadable or has an invalid key or value."""


@dataclass(frozen=True)
class Violation:
    """One broken rule of the data contract, with a few offending rows.

    Parameters
    ----------
    column : str
        The contract column the rule is about (the first column involved when a rule
        spans several).
    rule : str
        A short stable code for the rule, for example ``"unknown_category"``.
    rows : tuple of (str, str)
        Up to five offending rows as ``(patient_id, assessment_date)`` pairs, written as
        text (``"<missing>"`` where a value is missing, the raw text where a date could
        not be parsed), in table order (sorted by patient and date).
    count : int
        Total number of offending rows.
    message : str
        The rule in plain words, with the offending values where they help.
    hint : str
        A short suggestion for the fix.
    key : str
        What the pairs in ``rows`` are, for the message; a lab table's rows are
        ``"patient_id, sample_date"``.

    """

    column: str
    rule: str
    rows: tuple[tuple[str, str], ...] = ()
    count: int = 0
    message: str = ""
    hint: str = ""
    key: str = "patient_id, assessment_date"

    def describe(self) -> str:
        r"""Render the violation as one readable line.

        Examples
        --------
        >>> violation = Violation(
        ...     "cancer_type", "unknown_category", (("P1", "2024-01-05"),), 1,
        ...     "unknown category 'lung'", "use one of the allowed values",
        ... )
        >>> print(violation.describe().replace(" -- ", "\n"))
        column 'cancer_type': unknown category 'lung'
        1 row (patient_id, assessment_date): (P1, 2024-01-05)
        fix: use one of the allowed values

        """
        text = f"column '{self.column}': {self.message or self.rule}"
        if self.count:
            text += f" -- {self.count} row{'s' if self.count != 1 else ''}"
            if self.rows:
                shown = ", ".join(f"({pid}, {date})" for pid, date in self.rows)
                more = self.count - len(self.rows)
                text += f" ({self.key}): {shown}" + (f" and {more} more" if more > 0 else "")
        if self.hint:
            text += f" -- fix: {self.hint}"
        return text


class ContractError(FlareMLError, ValueError):
    """A table breaks the data contract, or a data file cannot be read or written.

    Parameters
    ----------
    message : str
        The headline (or the whole message when there are no violations).
    violations : sequence of Violation, optional
        Every broken rule found, all at once; ``str(error)`` lists one per line.

    """

    def __init__(self, message: str, violations: Sequence[Violation] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations: list[Violation] = list(violations)

    def __str__(self) -> str:
        if not self.violations:
            return self.message
        lines = [self.message]
        lines.extend(f"  - {violation.describe()}" for violation in self.violations)
        return "\n".join(lines)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.violations))
