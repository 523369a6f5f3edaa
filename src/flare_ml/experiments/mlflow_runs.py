"""MLflow for experiments: one parent run per experiment file, a nested run per condition.

Where the wall time and the run ids live (the results file has neither): the parent run
holds the kind, seed, config digest, cohorts, wall time and, as artifacts, the experiment
file and its results table; each nested run holds one condition's parameters and metrics.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from flare_ml.experiments.config import ExperimentConfig
from flare_ml.experiments.outputs import KindOutput
from flare_ml.experiments.render.text import shown_path
from flare_ml.train_config import DEFAULT_TRACKING_URI


def _key(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", str(text)).strip("_")[:250]


def _params(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {_key(k): str(v)[:6000] for k, v in mapping.items()}


def _finite(mapping: Mapping[str, float]) -> dict[str, float]:
    return {_key(k): float(v) for k, v in mapping.items() if v is not None and np.isfinite(v)}


def log_experiment(
    tracking_uri: str,
    name: str,
    config: ExperimentConfig,
    config_path: Path,
    results_path: Path,
    digest: str,
    output: KindOutput,
    wall_time_s: float,
) -> str:
    """Log one parent run and a nested run per condition; return the parent run id.

    The parent run (named after the experiment file) holds the kind, seed, config digest,
    the cohorts, the wall time and, as artifacts, the experiment file and the results
    table; each nested run holds one condition's parameters and metrics.

    Examples
    --------
    >>> log_experiment("sqlite:///mlflow.db", "headline", cfg, path, results, digest, out,
    ...                30.0)  # doctest: +SKIP
    '4b1f...'

    """
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(config.experiment_name)
    with mlflow.start_run(run_name=name) as parent:
        mlflow.set_tags(
            {"flare_ml.kind": config.kind, "flare_ml.config_digest": digest, "synthetic": "true"}
        )
        mlflow.log_params(
            _params(
                {
                    "kind": config.kind,
                    "seed": config.seed,
                    "config_digest": digest,
                    "bootstrap_resamples": config.bootstrap_resamples,
                    "experiment_file": shown_path(config_path),
                    **{
                        f"cohort.{i}.{role}": label
                        for i, (role, label) in enumerate(output.cohorts)
                    },
                }
            )
        )
        mlflow.log_metric("wall_time_s", wall_time_s)
        for condition in output.conditions:
            with mlflow.start_run(run_name=condition.name, nested=True):
                mlflow.log_params(_params({"condition": condition.name, **condition.params}))
                metrics = _finite(condition.metrics)
                if metrics:
                    mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(config_path), artifact_path="experiment")
        mlflow.log_artifact(str(results_path), artifact_path="results")
        return str(parent.info.run_id)


def tracking_uri_for(config: ExperimentConfig, explicit: str | None = None) -> str:
    """``explicit``, else ``$MLFLOW_TRACKING_URI``, else the file's, else sqlite:///mlflow.db.

    Examples
    --------
    >>> cfg = ExperimentConfig(kind="headline", experiment_name="x", seed=1)
    >>> tracking_uri_for(cfg, "sqlite:///other.db")
    'sqlite:///other.db'

    """
    return (
        explicit
        or os.environ.get("MLFLOW_TRACKING_URI")
        or config.tracking_uri
        or DEFAULT_TRACKING_URI
    )


__all__ = ["log_experiment", "tracking_uri_for"]
