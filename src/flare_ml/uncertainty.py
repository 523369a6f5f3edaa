"""Class-conditional split-conformal prediction sets and the "uncertain" decision.

When the model cannot tell flare from progression with the required confidence, the
standard of care is a confirmatory scan at least six weeks later (PCWG3, iRECIST). This
module turns P(flare) into a prediction set with a per-class coverage guarantee: for each
class separately (Mondrian conformal prediction, so that flares and progressions each get
their own coverage whatever their prevalence), the nonconformity score ``1 - P(class)`` of
held-out calibration cases of that class sets a threshold; a new case's set holds every
class whose score is within its threshold. A set holding both classes (or, rarely,
neither) becomes the decision ``uncertain`` with the advice to confirm with imaging.

The guarantee needs the new cases to be exchangeable with the calibration cases. Patients
of another site are not: their scan schedule, case mix, missing data and outcome
adjudication differ. :func:`cross_fitted_sets` measures what calibrating on a site's own
labelled patients delivers there (see :mod:`flare_ml.site_calibration`).

MAPIE 1.x's ``SplitConformalClassifier`` gives marginal coverage only, so the
class-conditional quantiles are computed here (a few lines of NumPy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flare_ml.model_selection import grouped_folds

FLARE, PROGRESSION, UNCERTAIN = "flare", "progression", "uncertain"
DECISIONS = (FLARE, PROGRESSION, UNCERTAIN)
CONFIRM_ADVICE = (
    "uncertain: confirm with follow-up imaging in at least 6 weeks (PCWG3, iRECIST) "
    "before changing therapy"
)


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
    coverage : float, default 0.9
        Target probability that the set contains the true class, for each class.

    Attributes
    ----------
    thresholds_ : dict
        Nonconformity threshold per class (``flare``, ``progression``).
    n_calibration_ : dict
        Calibration cases per class.

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

    def __init__(self, coverage: float = 0.9) -> None:
        if not 0.0 < coverage < 1.0:
            raise ValueError(f"coverage must be between 0 and 1, got {coverage}")
        self.coverage = coverage

    def fit(self, p_flare: np.ndarray, y: np.ndarray) -> ClassConditionalConformal:
        """Set the per-class thresholds from held-out P(flare) and outcomes (1 = flare)."""
        p = np.asarray(p_flare, dtype=float)
        y = np.asarray(y, dtype=int)
        self.thresholds_ = {
            FLARE: _conformal_quantile(1.0 - p[y == 1], self.coverage),
            PROGRESSION: _conformal_quantile(p[y == 0], self.coverage),
        }
        self.n_calibration_ = {FLARE: int((y == 1).sum()), PROGRESSION: int((y == 0).sum())}
        return self

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
        sets = self.predict_sets(p_flare)
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "coverage": self.coverage,
            "thresholds": self.thresholds_,
            "n_calibration": self.n_calibration_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ClassConditionalConformal:
        """Rebuild from :meth:`to_dict` output."""
        cp = cls(state["coverage"])
        cp.thresholds_ = {k: float(v) for k, v in state["thresholds"].items()}
        cp.n_calibration_ = dict(state.get("n_calibration", {}))
        return cp


def cross_fitted_sets(
    p_flare: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    coverage: float = 0.9,
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
    coverage : float, default 0.9
        Target coverage per class.
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
