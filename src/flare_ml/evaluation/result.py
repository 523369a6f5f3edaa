"""The result of an evaluation: :class:`Evaluation`, tidy tables of several scorers.

An :class:`Evaluation` holds the metrics with their bootstrap intervals, the decision
curves, the calibration tables, the subgroup metrics and the paired comparisons with a
reference scorer, all as long pandas tables with a ``scorer`` column, together with the
thresholds and the bootstrap settings. It renders a headline table
(:meth:`Evaluation.summary_table`) and a JSON-ready dictionary (:meth:`Evaluation.to_dict`);
it computes nothing itself (:func:`flare_ml.evaluation.evaluate` builds it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.evaluation.metrics import PROBABILITY_METRICS

__all__ = ["Evaluation"]

_HEADLINE = (
    ("auroc", "AUROC"),
    ("auprc", "AUPRC"),
    ("brier", "Brier"),
    ("calibration_slope", "calibration slope"),
    ("ece", "ECE"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
)
_WITH_CI = frozenset({"auroc", "calibration_slope", "sensitivity", "specificity"})


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (NaN as None, numpy scalars as Python)."""
    records = []
    for record in frame.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            clean[str(key)] = value
        records.append(clean)
    return records


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Side-by-side evaluation of several scorers on one cohort, as tidy tables.

    Built by :func:`~flare_ml.evaluation.evaluate`; the positive class is flare throughout.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per scorer x metric: ``scorer``, ``metric``, ``estimate``, ``ci_low``,
        ``ci_high``, ``n_resamples``.
        Probability metrics of a ranking scorer are NaN.
    decision_curves : pandas.DataFrame
        :func:`~flare_ml.evaluation.decision_curve` of every probability scorer, with a
        ``scorer`` column.
    subgroups : pandas.DataFrame
        :func:`~flare_ml.evaluation.subgroup_metrics` of every scorer, with a ``scorer``
        column (empty without subgroups).
    calibration : pandas.DataFrame
        :func:`~flare_ml.evaluation.calibration_curve_table` of every probability scorer,
        with a ``scorer`` column.
    comparisons : pandas.DataFrame
        Paired bootstrap differences ``scorer - reference`` in AUROC, AUPRC and Brier
        (``scorer``, ``reference``, ``metric``, ``difference``, ``ci_low``, ``ci_high``;
        Brier only where both are probability scorers); empty without a reference.
    thresholds : dict of str to float
        Operating threshold of each scorer.
    n, n_flare, n_patients : int
        Index rows, flares among them, patients.
    n_resamples, seed : int
        Bootstrap settings.
    confidence : float
        Coverage of the intervals.
    probability_scorers : tuple of str or None
        The scorers whose scores are probabilities; the others are ranking scores. None
        means every scorer.

    Examples
    --------
    >>> from flare_ml.evaluation import evaluate
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(size=300)
    >>> y = (rng.uniform(size=300) < p).astype(int)
    >>> result = evaluate(y, {"model": p}, patient_ids=np.arange(300), n_resamples=50)
    >>> result.scorers, result.n
    (['model'], 300)
    >>> sorted(result.to_dict())[:3]
    ['calibration', 'comparisons', 'confidence']

    """

    metrics: pd.DataFrame
    decision_curves: pd.DataFrame
    subgroups: pd.DataFrame
    calibration: pd.DataFrame
    comparisons: pd.DataFrame
    thresholds: dict[str, float]
    n: int
    n_flare: int
    n_patients: int
    n_resamples: int
    seed: int
    confidence: float = 0.95
    probability_scorers: tuple[str, ...] | None = None

    @property
    def scorers(self) -> list[str]:
        """Scorer names in the order given to :func:`~flare_ml.evaluation.evaluate`.

        Examples
        --------
        >>> from flare_ml.evaluation import evaluate
        >>> evaluate([0, 1], {"b": [0.1, 0.9], "a": [0.4, 0.6]}, [1, 2], n_resamples=0).scorers
        ['b', 'a']

        """
        return list(dict.fromkeys(self.metrics["scorer"]))

    def is_probability(self, scorer: str) -> bool:
        """Whether a scorer's scores are probabilities (not a ranking score).

        Parameters
        ----------
        scorer : str
            Scorer name.

        Returns
        -------
        bool
            True for a probability scorer; False for a ranking score, whose probability
            metrics, calibration table and decision curve were not computed.

        Examples
        --------
        >>> from flare_ml.evaluation import evaluate
        >>> result = evaluate([0, 1], {"m": [0.2, 0.7], "rule": [-1.0, 3.0]}, [1, 2],
        ...                   n_resamples=0, probability_scorers=["m"])
        >>> result.is_probability("m"), result.is_probability("rule")
        (True, False)

        """
        if scorer not in self.thresholds:
            raise KeyError(f"no scorer {scorer!r}; the scorers are {self.scorers}")
        return self.probability_scorers is None or scorer in self.probability_scorers

    def estimate(self, scorer: str, metric: str) -> float:
        """One metric estimate of one scorer.

        Parameters
        ----------
        scorer : str
            Scorer name.
        metric : str
            Metric name (:data:`~flare_ml.evaluation.METRICS`).

        Returns
        -------
        float
            The estimate.

        Examples
        --------
        >>> from flare_ml.evaluation import evaluate
        >>> result = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4],
        ...                   n_resamples=0)
        >>> result.estimate("m", "auroc")
        1.0

        """
        rows = self.metrics[(self.metrics["scorer"] == scorer) & (self.metrics["metric"] == metric)]
        if rows.empty:
            raise KeyError(f"no metric {metric!r} for scorer {scorer!r}")
        return float(rows["estimate"].iloc[0])

    def summary_table(self, formatted: bool = True, digits: int = 3) -> pd.DataFrame:
        """Headline table: one row per scorer.

        Parameters
        ----------
        formatted : bool, default=True
            Text cells such as ``"0.812 [0.781, 0.840]"`` (AUROC, calibration slope,
            sensitivity and specificity with their intervals; ``"n/a"`` for the
            probability metrics of a ranking scorer, ``"NaN"`` for an undefined metric);
            with False, numeric columns ``<metric>``, ``<metric>_ci_low``,
            ``<metric>_ci_high`` (NaN where not computed).
        digits : int, default=3
            Decimals of the text cells.

        Returns
        -------
        pandas.DataFrame
            Columns: scorer, threshold, AUROC, AUPRC, Brier, calibration slope, ECE,
            sensitivity, specificity (the last two at the threshold).

        Examples
        --------
        >>> from flare_ml.evaluation import evaluate
        >>> result = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4],
        ...                   n_resamples=0)
        >>> result.summary_table(digits=2).loc[0, ["AUROC", "sensitivity"]].tolist()
        ['1.00', '1.00']

        """
        table = self.metrics.set_index(["scorer", "metric"])
        rows = []
        for scorer in self.scorers:
            row: dict[str, Any] = {"scorer": scorer, "threshold": self.thresholds[scorer]}
            ranking = not self.is_probability(scorer)
            for metric, label in _HEADLINE:
                if (scorer, metric) not in table.index:
                    continue
                est, low, high = table.loc[(scorer, metric), ["estimate", "ci_low", "ci_high"]]
                if not formatted:
                    row.update({metric: est, f"{metric}_ci_low": low, f"{metric}_ci_high": high})
                elif ranking and metric in PROBABILITY_METRICS:
                    row[label] = "n/a"
                elif metric in _WITH_CI and np.isfinite(low):
                    row[label] = f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
                else:
                    row[label] = "NaN" if not np.isfinite(est) else f"{est:.{digits}f}"
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready lists of records (NaN becomes None).

        Returns
        -------
        dict
            Keys ``summary``, ``metrics``, ``decision_curves``, ``subgroups``,
            ``calibration``, ``comparisons``, ``thresholds``, ``n``, ``n_flare``,
            ``n_patients``, ``n_resamples``, ``seed``, ``confidence`` and
            ``probability_scorers`` (the names of the probability scorers).

        Examples
        --------
        >>> from flare_ml.evaluation import evaluate
        >>> import json
        >>> result = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4],
        ...                   n_resamples=0)
        >>> json.loads(json.dumps(result.to_dict()))["summary"][0]["auroc"]
        1.0

        """
        return {
            "summary": _records(self.summary_table(formatted=False)),
            "metrics": _records(self.metrics),
            "decision_curves": _records(self.decision_curves),
            "subgroups": _records(self.subgroups),
            "calibration": _records(self.calibration),
            "comparisons": _records(self.comparisons),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "n": self.n,
            "n_flare": self.n_flare,
            "n_patients": self.n_patients,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "confidence": self.confidence,
            "probability_scorers": [s for s in self.scorers if self.is_probability(s)],
        }
