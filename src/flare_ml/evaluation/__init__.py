"""Metrics for P(flare) scores, as a package (its modules follow in the next commit)."""

from flare_ml.evaluation.metrics import (
    DEFAULT_DECISION_THRESHOLDS,
    METRICS,
    THRESHOLD_METRICS,
    Evaluation,
    bootstrap_metrics,
    calibration_curve_table,
    choose_operating_threshold,
    classification_metrics,
    decision_curve,
    evaluate,
    patient_bootstrap_weights,
    subgroup_metrics,
    subgroups_from_features,
)

__all__ = [
    "DEFAULT_DECISION_THRESHOLDS",
    "METRICS",
    "THRESHOLD_METRICS",
    "Evaluation",
    "bootstrap_metrics",
    "calibration_curve_table",
    "choose_operating_threshold",
    "classification_metrics",
    "decision_curve",
    "evaluate",
    "patient_bootstrap_weights",
    "subgroup_metrics",
    "subgroups_from_features",
]
