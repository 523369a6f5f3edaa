"""The clinical error budget that the ``decision`` column keeps, configured once.

A progression read as flare keeps a failing drug; a flare read as progression stops a
working one. :class:`ErrorBudget` states how often each may happen: ``decision = flare``
for at most a share of true progressions (default 5%), ``decision = progression`` for at
most a share of true flares (default 10%). The training config's ``decision_policy``
section, the conformal calibration (:mod:`flare_ml.uncertainty`, whose per-class coverage
is ``1 -`` each share), the operating point of the metrics, the decision tables of the
report and ``evaluate``, and ``flare-ml score --max-progression-called-flare`` all read
it from here. It holds on patients exchangeable with the calibration patients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FLARE, PROGRESSION, UNCERTAIN = "flare", "progression", "uncertain"
DECISIONS = (FLARE, PROGRESSION, UNCERTAIN)


@dataclass(frozen=True)
class ErrorBudget:
    """The clinical error budget that the ``decision`` column keeps.

    Parameters
    ----------
    max_progression_called_flare : float, default 0.05
        Largest share of true progressions that may get ``decision = flare`` (therapy
        continued although it fails).
    max_flare_called_progression : float, default 0.10
        Largest share of true flares that may get ``decision = progression`` (a working
        therapy stopped).

    Notes
    -----
    The budget holds on patients exchangeable with the calibration patients (the
    training site, or the site's own patients after ``flare-ml calibrate``); at another
    site it is an expectation to check, which the decision tables of ``evaluate`` and the
    training report do.

    Examples
    --------
    >>> budget = ErrorBudget()
    >>> budget.coverage
    {'flare': 0.9, 'progression': 0.95}
    >>> ErrorBudget.from_coverage(budget.coverage) == budget
    True
    >>> for part in budget.describe().split("; "):
    ...     print(part)
    decision = flare for at most 5% of true progressions
    decision = progression for at most 10% of true flares

    """

    max_progression_called_flare: float = 0.05
    max_flare_called_progression: float = 0.10

    def __post_init__(self) -> None:
        for name in ("max_progression_called_flare", "max_flare_called_progression"):
            value = getattr(self, name)
            if isinstance(value, bool) or not 0.0 < float(value) < 0.5:
                raise ValueError(f"{name} must lie strictly between 0 and 0.5, got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def coverage(self) -> dict[str, float]:
        """Conformal coverage per class that keeps this budget."""
        return {
            FLARE: round(1.0 - self.max_flare_called_progression, 6),
            PROGRESSION: round(1.0 - self.max_progression_called_flare, 6),
        }

    @classmethod
    def from_coverage(cls, coverage: float | Mapping[str, float]) -> ErrorBudget:
        """The budget whose per-class coverage is ``coverage`` (one number: both classes)."""
        cov = per_class_coverage(coverage)
        return cls(
            max_progression_called_flare=round(1.0 - cov[PROGRESSION], 6),
            max_flare_called_progression=round(1.0 - cov[FLARE], 6),
        )

    def to_dict(self) -> dict[str, float]:
        """JSON-ready form (the two shares)."""
        return {
            "max_progression_called_flare": self.max_progression_called_flare,
            "max_flare_called_progression": self.max_flare_called_progression,
        }

    def describe(self) -> str:
        """One sentence a clinician can read."""
        return (
            f"decision = flare for at most {self.max_progression_called_flare:.0%} of true "
            f"progressions; decision = progression for at most "
            f"{self.max_flare_called_progression:.0%} of true flares"
        )


def per_class_coverage(coverage: float | Mapping[str, float]) -> dict[str, float]:
    """Coverage of each class from one number (both classes) or a per-class mapping.

    Examples
    --------
    >>> per_class_coverage(0.9)
    {'flare': 0.9, 'progression': 0.9}

    """
    if isinstance(coverage, Mapping):
        if set(coverage) != {FLARE, PROGRESSION}:
            raise ValueError(f"coverage needs one value per class (flare, progression): {coverage}")
        cov = {FLARE: float(coverage[FLARE]), PROGRESSION: float(coverage[PROGRESSION])}
    else:
        cov = {FLARE: float(coverage), PROGRESSION: float(coverage)}
    for name, value in cov.items():
        if not 0.0 < value < 1.0:
            raise ValueError(f"coverage must be between 0 and 1, got {value} for {name}")
    return cov
