"""MLflow tracking of a training run: runs, metrics, plots, config, model registry.

One parent run per training, with a nested run per scorer (the XGBoost model, each rule,
the oracle) holding that scorer's metrics on every cohort. The parent run holds the
resolved config, the data fingerprints (hashes and counts, never rows), plots, the report
and model card, and the pyfunc model, registered as a new version of
``flare-classifier``. The default tracking store is ``sqlite:///mlflow.db`` in the working
directory, so ``mlflow ui`` there shows the runs.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml

from flare_ml.serving.flavor import log_model


def _metric_key(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", text).strip("_")


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested config into dotted keys for ``mlflow.log_params``.

    Examples
    --------
    >>> flatten({"model": {"outer_folds": 5}, "seed": 1})
    {'model.outer_folds': 5, 'seed': 1}

    """
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def cohort_key(label: str) -> str:
    """Short metric prefix for a cohort label, e.g. ``external_community``."""
    if label.startswith("training"):
        return "oof"
    match = re.search(r"site (\w+)", label)
    tail = match.group(1) if match else re.sub(r"\W+", "_", label.split(":")[-1]).strip("_")
    return f"external_{tail}"


def log_training_run(
    result: Any,
    bundle_dir: Path,
    artifacts: dict[str, Path],
    figures: dict[str, bytes],
) -> dict[str, str]:
    """Log one training run to MLflow; return run id, model URI and registered version.

    Parameters
    ----------
    result : TrainingResult
        From :func:`flare_ml.training.train_and_validate`.
    bundle_dir : Path
        The saved JSON bundle of the final model.
    artifacts : dict
        Extra files to log (report, model card, tables), name -> path.
    figures : dict
        PNG files to log under ``plots/``, file name -> PNG bytes (rendered once by the
        report, so MLflow holds exactly the images the report shows).

    """
    cfg = result.config
    mlflow.set_tracking_uri(cfg.tracking.tracking_uri)
    mlflow.set_experiment(cfg.experiment_name)
    with mlflow.start_run(run_name="train") as parent:
        mlflow.set_tags({"flare_ml.data": "synthetic", "flare_ml.clinical_use": "no"})
        mlflow.log_params(flatten(cfg.model_dump(exclude={"model": {"search_space"}})))
        mlflow.log_dict(cfg.model_dump(), "config/resolved_config.yaml")
        fingerprints = {
            cohort.label: cohort.fingerprint for cohort in [result.training, *result.externals]
        }
        mlflow.log_dict(fingerprints, "data/fingerprints.json")
        mlflow.log_dict(
            {
                "best_params": result.model.best_params_,
                "calibration": result.model.calibration_,
                "calibration_scores": result.model.calibration_scores_,
                "cv_results": result.model.cv_results_,
                "thresholds": result.thresholds,
            },
            "model/selection.json",
        )
        with tempfile.TemporaryDirectory(prefix="flare-ml-plots-") as tmp:
            for name, png in figures.items():
                (Path(tmp) / name).write_bytes(png)
            mlflow.log_artifacts(tmp, artifact_path="plots")
        for path in artifacts.values():
            mlflow.log_artifact(
                str(path), artifact_path="report" if path.suffix in (".html", ".md") else "tables"
            )
        for label, cov in result.coverage.items():
            mlflow.log_metrics({f"{cohort_key(label)}_conformal_{k}": v for k, v in cov.items()})
        for label, cov in getattr(result, "site_coverage", {}).items():
            mlflow.log_metrics(
                {f"{cohort_key(label)}_site_conformal_{k}": v for k, v in cov.items()}
            )
        _log_scorer_runs(result)
        info = log_model(bundle_dir, cfg.tracking.registered_model_name)
        run_id = parent.info.run_id
    version = getattr(info, "registered_model_version", None)
    return {
        "run_id": run_id,
        "model_uri": info.model_uri,
        "registered_version": str(version) if version is not None else "",
    }


def _log_scorer_runs(result: Any) -> None:
    """A nested run per scorer with its metrics (and CIs) on every cohort."""
    scorers: list[str] = []
    for ev in result.evaluations.values():
        for name in ev.metrics["scorer"].unique():
            if name not in scorers:
                scorers.append(name)
    for scorer in scorers:
        kind = "model" if scorer == "xgboost" else "oracle" if scorer == "oracle" else "rule"
        with mlflow.start_run(run_name=scorer, nested=True):
            mlflow.set_tag("flare_ml.scorer_kind", kind)
            if kind == "rule":
                mlflow.log_params(
                    {f"rule.{k}": v for k, v in result.rules[scorer].get_params().items()}
                )
            mlflow.log_param("operating_threshold", round(result.thresholds[scorer], 6))
            metrics: dict[str, float] = {}
            for label, ev in result.evaluations.items():
                prefix = cohort_key(label)
                rows = ev.metrics[ev.metrics["scorer"] == scorer]
                for _, row in rows.iterrows():
                    key = _metric_key(f"{prefix}_{row['metric']}")
                    for col, suffix in (
                        ("estimate", ""),
                        ("ci_low", "_ci_low"),
                        ("ci_high", "_ci_high"),
                    ):
                        value = row.get(col)
                        if value is not None and pd.notna(value):
                            metrics[key + suffix] = float(value)
            mlflow.log_metrics(metrics)


def write_yaml(data: dict[str, Any], path: Path) -> Path:
    """Write a mapping as YAML (used for the resolved config beside the report)."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def temp_dir() -> Path:
    """A fresh temporary folder."""
    return Path(tempfile.mkdtemp(prefix="flare-ml-"))
