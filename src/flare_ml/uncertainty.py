"""Class-conditional split-conformal prediction sets and the "uncertain" decision.

When the model cannot tell flare from progression with the required confidence, the
standard of care is a confirmatory scan at least six weeks later (PCWG3, iRECIST). This
module turns P(flare) into a prediction set with a per-class coverage guarantee: for each
class separately (Mondrian conformal prediction, so that flares and progressions each get
their own coverage whatever their prevalence), the nonconformity score ``1 - P(class)`` of
held-out calibration cases of that class sets a threshold; a new case's set holds every
class whose score is within its threshold. A set holding both classes (or, rarely,
neither) becomes the decision ``uncertain`` with the advice to confirm with imaging.

The per-class coverages are not free parameters: they are the clinical **error budget**
(:class:`ErrorBudget`), configured once. ``decision = flare`` needs progression to be
outside the set, so with progression coverage ``1 - a`` at most a share ``a`` of true
progressions is called flare (default 5%: a progression read as flare keeps a failing
drug); with flare coverage ``1 - b`` at most a share ``b`` of true flares is called
progression (default 10%). The same budget sets the operating point that the metrics
report (:meth:`ClassConditionalConformal.flare_threshold`), so the metrics describe the
``decision`` column users act on.

The guarantee needs the new cases to be exchangeable with the calibration cases. Patients
of another site are not: their scan schedule, case mix, missing data and outcome
adjudication differ. :func:`cross_fitted_sets` measures what calibrating on a site's own
labelled patients delivers there (see :mod:`flare_ml.site_calibration`).

MAPIE 1.x's ``SplitConformalClassifier`` gives marginal coverage only, so the
class-conditional quantiles are computed here (a few lines of NumPy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from flare_ml.decision_policy import (
    DECISIONS,
    FLARE,
    PROGRESSION,
    UNCERTAIN,
    ErrorBudget,
    per_class_coverage,
)
from flare_ml.model_selection import grouped_folds

__all__ = [
    "BUDGET_GRID",
    "CONFIRM_ADVICE",
    "DECISIONS",
    "FLARE",
    "PROGRESSION",
    "UNCERTAIN",
    "ClassConditionalConformal",
    "ErrorBudget",
    "coverage_report",
    "cross_fitted_sets",
    "decisions_from_sets",
    "min_calibration_cases",
    "per_class_coverage",
]

CONFIRM_ADVICE = (
    "uncertain: confirm with follow-up imaging in at least 6 weeks (PCWG3, iRECIST) "
    "before changing therapy"
)


#: error budgets at which fitted thresholds are kept, so that a budget can be tightened at
#: scoring time (:meth:`ClassConditionalConformal.with_budget`) without the calibration
#: cases: 0.5%, 1%, ..., 30% (only quantiles are kept, never a case)
BUDGET_GRID = tuple(round(0.005 * k, 3) for k in range(1, 61))


def min_calibration_cases(coverage: float) -> int:
    """Fewest calibration cases of one class that give it a finite threshold.

    With ``n`` cases the threshold is the ``ceil((n + 1) * coverage)``-th smallest score,
    which exists only when ``n >= coverage / (1 - coverage)``; below that the class is in
    every prediction set.

    Examples
    --------
    >>> min_calibration_cases(0.9), min_calibration_cases(0.95)
    (9, 19)

    """
    n = max(1, int(np.floor(coverage / (1.0 - coverage))) - 1)
    while int(np.ceil((n + 1) * coverage)) > n:  # the same arithmetic as the quantile
        n += 1
    return n


def _conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The ceil((n+1) coverage)-th smallest score (inf when n is too small)."""
    n = len(scores)
    rank = int(np.ceil((n + 1) * coverage))
    if n == 0 or rank > n:
        return float("inf")
    return float(np.sort(scores)[rank - 1])


class ClassConditionalConformal:
    """Split-conformal prediction sets with coverage guaranteed per class.

    Parameters
    ----------
    coverage : float or dict, default 0.9
        Target probability that the set contains the true class: one number for both
        classes, or ``{"flare": ..., "progression": ...}`` (:attr:`ErrorBudget.coverage`;
        build from a budget with :meth:`from_budget`).

    Attributes
    ----------
    thresholds_ : dict
        Nonconformity threshold per class (``flare``, ``progression``).
    n_calibration_ : dict
        Calibration cases per class.
    grid_thresholds_ : dict
        Per class, the threshold at each error budget of :data:`BUDGET_GRID` (for
        :meth:`with_budget`); quantiles only, no calibration case is kept.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p).astype(int)
    >>> cp = ClassConditionalConformal(coverage=0.9).fit(p, y)
    >>> sets = cp.predict_sets(p)
    >>> covered = np.where(y == 1, sets[:, 1], sets[:, 0])
    >>> bool(covered[y == 1].mean() >= 0.88 and covered[y == 0].mean() >= 0.88)
    True

    """

    def __init__(self, coverage: float | Mapping[str, float] = 0.9) -> None:
        per_class_coverage(coverage)  # validate early
        self.coverage = coverage

    @classmethod
    def from_budget(cls, budget: ErrorBudget) -> ClassConditionalConformal:
        """An unfitted predictor whose per-class coverage keeps ``budget``.

        Examples
        --------
        >>> ClassConditionalConformal.from_budget(ErrorBudget(0.05, 0.1)).class_coverage
        {'flare': 0.9, 'progression': 0.95}

        """
        return cls(budget.coverage)

    @property
    def class_coverage(self) -> dict[str, float]:
        """Target coverage of each class."""
        return per_class_coverage(self.coverage)

    @property
    def budget(self) -> ErrorBudget:
        """The error budget that this coverage keeps."""
        return ErrorBudget.from_coverage(self.coverage)

    def fit(self, p_flare: np.ndarray, y: np.ndarray) -> ClassConditionalConformal:
        """Set the per-class thresholds from held-out P(flare) and outcomes (1 = flare)."""
        p = np.asarray(p_flare, dtype=float)
        y = np.asarray(y, dtype=int)
        cov = self.class_coverage
        scores = {FLARE: 1.0 - p[y == 1], PROGRESSION: p[y == 0]}
        self.thresholds_ = {k: _conformal_quantile(scores[k], cov[k]) for k in (FLARE, PROGRESSION)}
        self.n_calibration_ = {FLARE: int((y == 1).sum()), PROGRESSION: int((y == 0).sum())}
        self.grid_thresholds_ = {
            k: [_conformal_quantile(scores[k], 1.0 - a) for a in BUDGET_GRID]
            for k in (FLARE, PROGRESSION)
        }
        return self

    def with_budget(self, budget: ErrorBudget) -> ClassConditionalConformal:
        """A copy that keeps another error budget, without refitting.

        Each class takes the threshold fitted at the largest budget of
        :data:`BUDGET_GRID` not above the one asked for (so a budget between grid points
        is kept conservatively); asking for the fitted budget changes nothing.

        Raises
        ------
        ValueError
            When the predictor holds no grid (fitted by an older version) or the budget
            is below the grid's smallest value.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(size=4000)
        >>> y = (rng.uniform(size=4000) < p).astype(int)
        >>> cp = ClassConditionalConformal.from_budget(ErrorBudget(0.05, 0.1)).fit(p, y)
        >>> strict = cp.with_budget(ErrorBudget(0.02, 0.1))
        >>> bool(strict.flare_threshold() > cp.flare_threshold())
        True

        """
        if budget == self.budget:
            return self
        grid = getattr(self, "grid_thresholds_", None)
        if not grid:
            raise ValueError(
                "this model's conformal thresholds were fitted without a budget grid; "
                "recalibrate it (flare-ml calibrate) or retrain it to change its budget"
            )
        new = ClassConditionalConformal(budget.coverage)
        new.n_calibration_ = dict(self.n_calibration_)
        new.grid_thresholds_ = {k: list(v) for k, v in grid.items()}
        new.thresholds_ = {}
        wanted = {
            FLARE: budget.max_flare_called_progression,
            PROGRESSION: budget.max_progression_called_flare,
        }
        for cls_name, alpha in wanted.items():
            usable = [i for i, a in enumerate(BUDGET_GRID) if a <= alpha + 1e-12]
            if not usable:
                raise ValueError(
                    f"a budget of {alpha:.1%} is below the smallest supported "
                    f"({BUDGET_GRID[0]:.1%})"
                )
            new.thresholds_[cls_name] = float(grid[cls_name][usable[-1]])
        return new

    def flare_threshold(self) -> float:
        """Smallest P(flare) whose decision is ``flare``: ``decision == flare`` iff ``p >= it``.

        The decision is monotone in P(flare): flare needs progression outside the set
        (``p > thresholds_["progression"]``) and flare inside it
        (``1 - p <= thresholds_["flare"]``). This is the operating point that the metrics
        read the model at, so their sensitivity and share of progressions called flare are
        those of the ``decision`` column; ``inf`` when no P(flare) is decided flare.

        Examples
        --------
        >>> cp = ClassConditionalConformal(0.9)
        >>> cp.thresholds_ = {"flare": 0.4, "progression": 0.7}
        >>> t = cp.flare_threshold()
        >>> cp.decide(np.array([t, np.nextafter(t, 0)]))[0].tolist()
        ['flare', 'uncertain']

        """
        t_prog, t_flare = self.thresholds_[PROGRESSION], self.thresholds_[FLARE]
        if not np.isfinite(t_prog) or t_prog >= 1.0:  # progression is in every set
            return float("inf")
        low = float(np.nextafter(t_prog, np.inf))  # progression leaves the set above t_prog
        if not np.isfinite(t_flare):
            return low
        # the least p in float arithmetic with (1 - p) <= t_flare
        cut = float(1.0 - t_flare)
        while cut > 0.0 and (1.0 - np.nextafter(cut, -np.inf)) <= t_flare:
            cut = float(np.nextafter(cut, -np.inf))
        while (1.0 - cut) > t_flare:
            cut = float(np.nextafter(cut, np.inf))
        return max(low, cut)

    def predict_sets(self, p_flare: np.ndarray) -> np.ndarray:
        """Boolean array (n, 2): column 0 progression in the set, column 1 flare."""
        p = np.asarray(p_flare, dtype=float)
        has_progression = p <= self.thresholds_[PROGRESSION]
        has_flare = (1.0 - p) <= self.thresholds_[FLARE]
        return np.column_stack([has_progression, has_flare])

    def decide(self, p_flare: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decisions (flare, progression, uncertain) and set labels for each case.

        Examples
        --------
        >>> cp = ClassConditionalConformal(0.9)
        >>> cp.thresholds_ = {"flare": 0.4, "progression": 0.7}
        >>> decisions, sets = cp.decide(np.array([0.9, 0.1, 0.65]))
        >>> decisions.tolist(), sets.tolist()
        (['flare', 'progression', 'uncertain'], ['flare', 'progression', 'flare,progression'])

        """
        return decisions_from_sets(self.predict_sets(p_flare))

    def progression_threshold(self) -> float:
        """Largest P(flare) whose decision is ``progression``: iff ``p <= it``.

        Progression must be in the set (``p <= thresholds_["progression"]``) and flare
        outside it (``1 - p > thresholds_["flare"]``); ``-inf`` when no P(flare) is
        decided progression.

        Examples
        --------
        >>> cp = ClassConditionalConformal(0.9)
        >>> cp.thresholds_ = {"flare": 0.4, "progression": 0.7}
        >>> t = cp.progression_threshold()
        >>> cp.decide(np.array([t, np.nextafter(t, 1)]))[0].tolist()
        ['progression', 'uncertain']

        """
        t_prog, t_flare = self.thresholds_[PROGRESSION], self.thresholds_[FLARE]
        if not np.isfinite(t_flare) or t_flare >= 1.0 or t_prog < 0.0:
            return float("-inf")  # flare is in every set, or progression in none
        cut = float(1.0 - t_flare)  # the largest p in float arithmetic with (1 - p) > t_flare
        while cut > 0.0 and (1.0 - cut) <= t_flare:
            cut = float(np.nextafter(cut, -np.inf))
        while (1.0 - np.nextafter(cut, np.inf)) > t_flare:
            cut = float(np.nextafter(cut, np.inf))
        return min(float(t_prog), cut)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (the budget, thresholds and counts; no calibration case)."""
        return {
            "coverage": self.class_coverage,
            "budget": self.budget.to_dict(),
            "thresholds": self.thresholds_,
            "n_calibration": self.n_calibration_,
            "budget_grid": list(BUDGET_GRID),
            "grid_thresholds": getattr(self, "grid_thresholds_", {}),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ClassConditionalConformal:
        """Rebuild from :meth:`to_dict` output (also of versions with one coverage)."""
        cp = cls(state["coverage"])
        cp.thresholds_ = {k: float(v) for k, v in state["thresholds"].items()}
        cp.n_calibration_ = dict(state.get("n_calibration", {}))
        grid = state.get("grid_thresholds") or {}
        if grid and list(state.get("budget_grid", [])) == list(BUDGET_GRID):
            cp.grid_thresholds_ = {k: [float(t) for t in v] for k, v in grid.items()}
        return cp


def decisions_from_sets(sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and set labels from prediction sets (column 0 progression, 1 flare).

    A set holding exactly one class decides it; both or neither is ``uncertain``.

    Examples
    --------
    >>> sets = np.array([[False, True], [True, True], [False, False]])
    >>> [d.tolist() for d in decisions_from_sets(sets)]
    [['flare', 'uncertain', 'uncertain'], ['flare', 'flare,progression', '']]

    """
    prog, flare = sets[:, 0], sets[:, 1]
    decision = np.where(
        flare & ~prog, FLARE, np.where(prog & ~flare, PROGRESSION, UNCERTAIN)
    ).astype(object)
    labels = np.where(
        flare & prog,
        "flare,progression",
        np.where(flare, FLARE, np.where(prog, PROGRESSION, "")),
    ).astype(object)
    return decision, labels


def cross_fitted_sets(
    p_flare: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    coverage: float | Mapping[str, float] = 0.9,
    n_folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Prediction sets of every case from thresholds calibrated on the other patients.

    The cases are split into patient-grouped, outcome-stratified folds; each fold's sets
    come from a :class:`ClassConditionalConformal` fitted on the remaining folds. The
    coverage of these sets estimates, without touching any case twice, the coverage that
    calibrating on all of these patients gives on new patients like them (for example a
    site calibrating the model on its own labelled cohort).

    Parameters
    ----------
    p_flare : array of shape (n,)
        Calibrated P(flare) of the frozen model.
    y : array of shape (n,)
        Recorded outcome, 1 = flare.
    groups : array of shape (n,)
        Patient of each case: a patient's cases never calibrate their own sets.
    coverage : float or dict, default 0.9
        Target coverage per class (one number, or one per class).
    n_folds : int, default 5
        Number of folds.
    seed : int, default 0
        Seed of the fold assignment.

    Returns
    -------
    ndarray of shape (n, 2)
        Column 0: progression in the set; column 1: flare in the set.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(size=3000)
    >>> y = (rng.uniform(size=3000) < p).astype(int)
    >>> sets = cross_fitted_sets(p, y, groups=np.arange(3000))
    >>> report = coverage_report(sets, y)
    >>> bool(abs(report["coverage_flare"] - 0.9) < 0.02)
    True

    """
    p = np.asarray(p_flare, dtype=float)
    y = np.asarray(y, dtype=int)
    sets = np.zeros((len(p), 2), dtype=bool)
    for fit_rows, held_out in grouped_folds(y, np.asarray(groups), n_folds, seed):
        conformal = ClassConditionalConformal(coverage).fit(p[fit_rows], y[fit_rows])
        sets[held_out] = conformal.predict_sets(p[held_out])
    return sets


def coverage_report(sets: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Empirical coverage overall and per class, and the share of uncertain decisions.

    Examples
    --------
    >>> sets = np.array([[True, False], [True, True], [False, True]])
    >>> coverage_report(sets, np.array([0, 1, 0]))["coverage_progression"]
    0.5

    """
    y = np.asarray(y, dtype=int)
    covered = np.where(y == 1, sets[:, 1], sets[:, 0])
    uncertain = sets[:, 0] == sets[:, 1]
    return {
        "coverage": float(covered.mean()),
        "coverage_flare": float(covered[y == 1].mean()) if (y == 1).any() else float("nan"),
        "coverage_progression": float(covered[y == 0].mean()) if (y == 0).any() else float("nan"),
        "uncertain_fraction": float(uncertain.mean()),
    }
