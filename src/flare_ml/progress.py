"""The progress callback that long jobs report through, and its silent default.

Training, calibration, experiments and batch scoring call ``progress(step, done, total)``
as they go; the CLI passes a rich progress bar, the Python API defaults to
:func:`no_progress`. Keeping the type here, below every job, lets each module accept a
callback without importing the CLI or each other.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(step, done, total)``: a named step, units done so far, units in all
Progress = Callable[[str, int, int], None]


def no_progress(step: str, done: int, total: int) -> None:
    """Ignore a progress report (the default of every job).

    Examples
    --------
    >>> no_progress("cross-validation", 1, 5) is None
    True

    """
    return None
