"""Decisions against outcomes: the table that shows whether the error budget held.

Users act on the ``decision`` column (``flare``, ``progression``, ``uncertain``), not on
P(flare). :func:`decision_table` cross-tabulates those decisions with the recorded
outcomes of a cohort and gives the realised rates that the error budget
(:class:`~flare_ml.decision_policy.ErrorBudget`) promises to bound, each with a Wilson 95%
interval over index assessments: the share of true progressions called flare, the share of
true flares called progression, and the share of ``uncertain`` decisions. A rate is
``held`` when it is within its budget, ``within sampling error`` when it is above but its
interval reaches the budget, and ``missed`` otherwise. The report, the model card,
``flare-ml evaluate`` and ``flare-ml score`` (on a file with outcomes) all show this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from flare_ml.decision_policy import DECISIONS, FLARE, PROGRESSION, UNCERTAIN, ErrorBudget

__all__ = [
    "HELD",
    "MISSED",
    "WITHIN_SAMPLING_ERROR",
    "DecisionTable",
    "budget_status",
    "decision_table",
    "decision_table_from_counts",
    "wilson_interval",
]

HELD, WITHIN_SAMPLING_ERROR, MISSED = "held", "within sampling error", "missed"
#: the realised rates of a decision table, in order
RATE_NAMES = (
    "progressions called flare",
    "flares called progression",
    "uncertain",
)


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (NaN when ``n`` is 0).

    Examples
    --------
    >>> lo, hi = wilson_interval(5, 100)
    >>> round(lo, 3), round(hi, 3)
    (0.022, 0.112)
    >>> wilson_interval(0, 0)
    (nan, nan)

    """
    if n <= 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def budget_status(rate: float, ci_low: float, budget: float | None) -> str:
    """``held``, ``within sampling error`` or ``missed`` (empty without a budget).

    Examples
    --------
    >>> budget_status(0.04, 0.03, 0.05), budget_status(0.06, 0.04, 0.05)
    ('held', 'within sampling error')
    >>> budget_status(0.09, 0.07, 0.05)
    'missed'

    """
    if budget is None or not np.isfinite(rate):
        return ""
    if rate <= budget + 1e-12:
        return HELD
    return WITHIN_SAMPLING_ERROR if ci_low <= budget else MISSED


@dataclass
class DecisionTable:
    """Decisions against recorded outcomes on one cohort, with the budget's verdict.

    Attributes
    ----------
    counts : DataFrame
        Index assessments by decision (rows ``flare``, ``progression``, ``uncertain``)
        and recorded outcome (columns ``flare``, ``progression``).
    budget : ErrorBudget or None
        The budget the decisions promise to keep (None: no verdict).
    cohort : str
        Which cohort (for example ``external: community``).
    thresholds : str
        Which decision thresholds (for example ``shipped``, ``recalibrated at the site``).

    """

    counts: pd.DataFrame
    budget: ErrorBudget | None = None
    cohort: str = ""
    thresholds: str = ""
    _rates: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Index assessments in the table."""
        return int(self.counts.to_numpy().sum())

    def rates(self) -> pd.DataFrame:
        """The realised rates with Wilson 95% intervals, budgets and verdicts.

        Returns
        -------
        DataFrame
            Index :data:`RATE_NAMES`; columns ``count``, ``of`` (the denominator),
            ``rate``, ``ci_low``, ``ci_high``, ``budget`` (NaN for ``uncertain``, which has
            none) and ``status``.

        """
        if self._rates is not None:
            return self._rates
        k = self.counts
        parts = {
            RATE_NAMES[0]: (k.loc[FLARE, PROGRESSION], k[PROGRESSION].sum()),
            RATE_NAMES[1]: (k.loc[PROGRESSION, FLARE], k[FLARE].sum()),
            RATE_NAMES[2]: (k.loc[UNCERTAIN].sum(), self.n),
        }
        limits: dict[str, float | None] = {
            RATE_NAMES[0]: self.budget.max_progression_called_flare if self.budget else None,
            RATE_NAMES[1]: self.budget.max_flare_called_progression if self.budget else None,
            RATE_NAMES[2]: None,
        }
        rows = []
        for name, (count, of) in parts.items():
            rate = count / of if of else float("nan")
            lo, hi = wilson_interval(int(count), int(of))
            limit = limits[name]
            rows.append(
                {
                    "count": int(count),
                    "of": int(of),
                    "rate": float(rate),
                    "ci_low": lo,
                    "ci_high": hi,
                    "budget": float("nan") if limit is None else float(limit),
                    "status": budget_status(rate, lo, limit),
                }
            )
        self._rates = pd.DataFrame(rows, index=list(RATE_NAMES))
        return self._rates

    def held(self) -> bool:
        """True when neither budgeted rate is ``missed``."""
        return MISSED not in set(self.rates()["status"])

    def sentence(self) -> str:
        """The budget's verdict in one sentence.

        Examples
        --------
        >>> table = decision_table([0, 0, 1, 1], ["progression", "uncertain", "flare", "flare"],
        ...                        ErrorBudget(0.05, 0.1))
        >>> for part in table.sentence().split("; "):
        ...     print(part)
        decision = flare for 0.0% [0.0, 65.8] of 2 true progressions (budget 5%: held)
        decision = progression for 0.0% [0.0, 65.8] of 2 true flares (budget 10%: held)
        uncertain 25.0% of 4

        """
        r = self.rates()
        parts = []
        for name, what, who in (
            (RATE_NAMES[0], "flare", "progressions"),
            (RATE_NAMES[1], "progression", "flares"),
        ):
            row = r.loc[name]
            text = (
                f"decision = {what} for {row['rate']:.1%} [{100 * row['ci_low']:.1f}, "
                f"{100 * row['ci_high']:.1f}] of {row['of']} true {who}"
            )
            if np.isfinite(row["budget"]):
                text += f" (budget {row['budget']:.0%}: {row['status']})"
            parts.append(text)
        u = r.loc[RATE_NAMES[2]]
        parts.append(f"uncertain {u['rate']:.1%} of {u['of']}")
        return "; ".join(parts)

    def to_frame(self) -> pd.DataFrame:
        """Counts with row and column totals, for display (decision x outcome)."""
        frame = self.counts.copy()
        frame["total"] = frame.sum(axis=1)
        frame.loc["total"] = frame.sum(axis=0)
        frame.index.name = "decision"
        frame.columns.name = "outcome"
        return frame.astype(int)

    def to_records(self) -> list[dict[str, Any]]:
        """One flat record per rate (for CSV, MLflow and JSON metadata)."""
        out = []
        for name, row in self.rates().iterrows():
            out.append(
                {"cohort": self.cohort, "thresholds": self.thresholds, "rate_of": name, **row}
            )
        return out


def _labels(outcome: Any) -> np.ndarray:
    values = np.asarray(outcome, dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if isinstance(v, str):
            out[i] = v
        else:
            out[i] = FLARE if int(v) == 1 else PROGRESSION
    bad = sorted({str(v) for v in out if v not in (FLARE, PROGRESSION)})
    if bad:
        raise ValueError(f"outcomes must be flare/progression (or 1/0); got {bad[:3]}")
    return out


def decision_table(
    outcome: Any,
    decision: Any,
    budget: ErrorBudget | None = None,
    *,
    cohort: str = "",
    thresholds: str = "",
) -> DecisionTable:
    """Cross-tabulate decisions with recorded outcomes.

    Parameters
    ----------
    outcome : array-like
        Recorded outcome of each index assessment: ``flare``/``progression`` or 1/0.
    decision : array-like
        The ``decision`` column: ``flare``, ``progression`` or ``uncertain``.
    budget : ErrorBudget, optional
        The promised budget; gives each rate its verdict.
    cohort, thresholds : str
        Labels carried into displays and records.

    Returns
    -------
    DecisionTable

    Examples
    --------
    >>> table = decision_table([1, 1, 0, 0, 0], ["flare", "uncertain", "progression",
    ...                        "flare", "progression"], ErrorBudget(0.05, 0.10))
    >>> table.to_frame().loc["flare"].tolist()
    [1, 1, 2]
    >>> row = table.rates().loc["progressions called flare"]
    >>> int(row["count"]), int(row["of"]), row["status"]
    (1, 3, 'missed')

    """
    y = _labels(outcome)
    d = np.asarray(decision, dtype=object).astype(str)
    if len(y) != len(d):
        raise ValueError(f"{len(y)} outcomes but {len(d)} decisions")
    unknown = sorted(set(d) - set(DECISIONS))
    if unknown:
        raise ValueError(f"decisions must be one of {DECISIONS}; got {unknown[:3]}")
    counts = pd.DataFrame(
        {o: [int(((d == k) & (y == o)).sum()) for k in DECISIONS] for o in (FLARE, PROGRESSION)},
        index=list(DECISIONS),
    )
    return DecisionTable(counts=counts, budget=budget, cohort=cohort, thresholds=thresholds)


def decision_table_from_counts(
    counts: Mapping[tuple[str, str], int],
    budget: ErrorBudget | None = None,
    *,
    cohort: str = "",
    thresholds: str = "",
) -> DecisionTable:
    """:func:`decision_table` from ``{(decision, outcome): count}`` (for streamed scoring).

    Examples
    --------
    >>> t = decision_table_from_counts({("flare", "progression"): 1, ("flare", "flare"): 9})
    >>> int(t.counts.loc["flare"].sum())
    10

    """
    frame = pd.DataFrame(0, index=list(DECISIONS), columns=[FLARE, PROGRESSION], dtype=int)
    for (dec, out), n in counts.items():
        if dec not in DECISIONS or out not in (FLARE, PROGRESSION):
            raise ValueError(f"unknown decision/outcome pair {(dec, out)!r}")
        frame.loc[dec, out] += int(n)
    return DecisionTable(counts=frame, budget=budget, cohort=cohort, thresholds=thresholds)
