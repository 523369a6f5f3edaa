"""The experiment kinds: what each simulates, trains, scores and measures.

One module per kind; each computes a :class:`~flare_ml.experiments.outputs.KindResult`
subclass (numbers, evaluations, MLflow records; no text) from a
:class:`~flare_ml.experiments.context.Context` and registers its computation in
:mod:`flare_ml.experiments.registry`. Importing this package registers every kind:
:data:`REGISTRY` (and :func:`compute_for`) then knows them all. The model is
:class:`~flare_ml.models.FlareXGBClassifier` with the experiment's training settings
(tuning, early stopping and calibration inside the training data), scored through the
:class:`~flare_ml.bundle.FlareModelBundle` that serving loads; the rules are the three
baselines of :mod:`flare_ml.rules` (nothing learned); the oracle is the simulator's
Bayes-optimal P(flare).
"""

from __future__ import annotations

from flare_ml.experiments.kinds import (
    ablations,
    coverage,
    headline,
    learning_curve,
    literature_cases,
    robustness,
    small_cohorts,
)
from flare_ml.experiments.registry import REGISTRY, compute_for

__all__ = [
    "REGISTRY",
    "ablations",
    "compute_for",
    "coverage",
    "headline",
    "learning_curve",
    "literature_cases",
    "robustness",
    "small_cohorts",
]
