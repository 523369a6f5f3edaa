"""Reproducible experiments: one YAML file, one command, one committed results table.

``experiments/NAME.yaml`` names an experiment kind, its MLflow experiment and its seed;
``flare-ml experiment run experiments/NAME.yaml`` (or :func:`run_experiment`) validates it,
simulates the cohorts, trains and evaluates, writes ``experiments/results/NAME.md`` and
logs one parent MLflow run with a nested run per condition. The results file holds no
date, run id or timing, so a rerun with the same seed and software reproduces it byte for
byte. Kinds: ``headline`` (model vs rules vs oracle, out-of-fold and external),
``ablations`` (drop each clinical signal), ``learning_curve`` (training size),
``robustness`` (missing ALP, label noise, schedule and case-mix shift),
``literature_cases`` (published courses as timelines, read by the model) and ``coverage``
(conformal coverage across sites: transported vs recalibrated on the site's own labelled
patients). All cohorts are synthetic.

Layout, bottom to top: :mod:`~flare_ml.experiments.config` (the YAML),
:mod:`~flare_ml.experiments.outputs` and :mod:`~flare_ml.experiments.context` (shared
types, cohorts and fits), :mod:`~flare_ml.experiments.readout` (numbers from
evaluations), :mod:`~flare_ml.experiments.registry` (kind name -> computation),
:mod:`~flare_ml.experiments.kinds` (one module per kind: numbers only),
:mod:`~flare_ml.experiments.render` (one renderer per kind: Markdown text),
:mod:`~flare_ml.experiments.mlflow_runs` and :mod:`~flare_ml.experiments.runner`
(:func:`execute`, :func:`run_experiment`).
"""

from __future__ import annotations

from flare_ml.experiments.config import (
    KINDS,
    CohortSpec,
    ExperimentConfig,
    cohort_label,
    load_experiment,
    site_with_overrides,
)
from flare_ml.experiments.render.text import markdown_table
from flare_ml.experiments.runner import ExperimentRun, execute, run_experiment

__all__ = [
    "KINDS",
    "CohortSpec",
    "ExperimentConfig",
    "ExperimentRun",
    "cohort_label",
    "execute",
    "load_experiment",
    "markdown_table",
    "run_experiment",
    "site_with_overrides",
]
