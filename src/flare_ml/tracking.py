"""MLflow tracking of a training run: runs, metrics, plots, config, model registry.

One parent run per training, with a nested run per scorer (the XGBoost model, each rule,
the oracle) holding that scorer's metrics on every cohort. The parent run holds the
headline metrics per external cohort (:func:`headline_metrics`, names in
``docs/serving.md``), the resolved config and its digest (:func:`config_digest`), the
data fingerprints (hashes and counts, never rows), plots, the report and model card, and
the pyfunc model, registered as a new version of ``flare-classifier`` with a
description, tags and optionally an alias. The default tracking store is
``sqlite:///mlflow.db`` in the working directory, so ``mlflow ui`` there shows the runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml

from flare_ml.serving.flavor import log_model
from flare_ml.train_config import TrainConfig

#: the scorer name of the model in an evaluation (the others are rules and the oracle)
MODEL_SCORER = "xgboost"
ORACLE_SCORER = "oracle"


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


def config_digest(config: TrainConfig) -> str:
    """SHA-256 of a training config (sorted, compact JSON), without where it is written.

    ``tracking`` and ``output_dir`` are left out: the same training logged to another
    store or folder has the same digest.

    Examples
    --------
    >>> a = TrainConfig()
    >>> b = a.model_copy(update={"output_dir": "elsewhere"})
    >>> c = a.model_copy(update={"seed": a.seed + 1})
    >>> config_digest(a) == config_digest(b), config_digest(a) == config_digest(c)
    (True, False)

    """
    payload = config.model_dump(mode="json", exclude={"tracking", "output_dir"})
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _metric_row(metrics: pd.DataFrame, scorer: str, metric: str) -> dict[str, float]:
    """``{"": estimate, "_ci_low": ..., "_ci_high": ...}``, finite values only."""
    rows = metrics[(metrics["scorer"] == scorer) & (metrics["metric"] == metric)]
    if rows.empty:
        return {}
    row = rows.iloc[0]
    out = {}
    for col, suffix in (("estimate", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high")):
        value = row.get(col)
        if value is not None and pd.notna(value) and math.isfinite(float(value)):
            out[suffix] = float(value)
    return out


def headline_metrics(result: Any) -> tuple[dict[str, float], dict[str, str]]:
    """The parent run's headline per external cohort: metrics, and the best rule's name.

    Per external cohort (prefix :func:`cohort_key`, e.g. ``external_community``):
    ``_model_auroc``, ``_model_brier``, ``_model_calibration_slope``,
    ``_model_progression_called_flare``, ``_best_rule_auroc`` (the rule with the highest
    AUROC there) and ``_oracle_auroc``, each with ``_ci_low``/``_ci_high`` when bootstrap
    intervals were computed; ``_model_margin_over_best_rule`` and ``_model_gap_to_oracle``.
    The best rule's name is returned as a tag ``flare_ml.<prefix>_best_rule``. Conformal
    coverage is logged beside them (``_conformal_*``, ``_site_conformal_*``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> table = pd.DataFrame({"scorer": ["xgboost", "alp_only"], "metric": ["auroc"] * 2,
    ...                       "estimate": [0.8, 0.7], "ci_low": [0.75, None],
    ...                       "ci_high": [0.85, None]})
    >>> result = SimpleNamespace(rules={"alp_only": None}, evaluations={
    ...     "external: simulated site nordic (10 patients, seed 1)":
    ...     SimpleNamespace(metrics=table)})
    >>> metrics, tags = headline_metrics(result)
    >>> metrics["external_nordic_model_auroc_ci_low"], tags
    (0.75, {'flare_ml.external_nordic_best_rule': 'alp_only'})

    """
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for label, ev in result.evaluations.items():
        if label.startswith("training"):
            continue
        prefix = cohort_key(label)
        found, best = _cohort_headline(ev.metrics, list(result.rules))
        metrics.update({f"{prefix}_{name}": value for name, value in found.items()})
        if best is not None:
            tags[f"flare_ml.{prefix}_best_rule"] = best
    return metrics, tags


def _cohort_headline(table: pd.DataFrame, rules: list[str]) -> tuple[dict[str, float], str | None]:
    """One cohort's headline metrics (names without the cohort prefix) and its best rule."""
    found: dict[str, float] = {}

    def put(name: str, scorer: str, metric: str) -> dict[str, float]:
        values = _metric_row(table, scorer, metric)
        found.update({f"{name}{suffix}": v for suffix, v in values.items()})
        return values

    model = put("model_auroc", MODEL_SCORER, "auroc")
    for metric in ("brier", "calibration_slope", "progression_called_flare"):
        put(f"model_{metric}", MODEL_SCORER, metric)
    rule_auroc = {name: _metric_row(table, name, "auroc").get("") for name in rules}
    ranked = {name: value for name, value in rule_auroc.items() if value is not None}
    best = max(ranked, key=ranked.__getitem__) if ranked else None
    if best is not None:
        rule = put("best_rule_auroc", best, "auroc")
        if "" in model:
            found["model_margin_over_best_rule"] = model[""] - rule[""]
    oracle = put("oracle_auroc", ORACLE_SCORER, "auroc")
    if "" in model and "" in oracle:
        found["model_gap_to_oracle"] = oracle[""] - model[""]
    return found, best


def log_training_run(
    result: Any,
    bundle_dir: Path,
    artifacts: dict[str, Path],
    figures: dict[str, bytes],
    *,
    alias: str | None = None,
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
    alias : str, optional
        Also point this alias of the registered model (e.g. ``champion``) at the new
        version.

    Returns
    -------
    dict
        ``run_id``, ``model_uri``, ``registered_version`` (empty when not registered),
        ``config_digest`` and ``alias`` (empty when none).

    """
    cfg = result.config
    digest = config_digest(cfg)
    mlflow.set_tracking_uri(cfg.tracking.tracking_uri)
    mlflow.set_experiment(cfg.experiment_name)
    with mlflow.start_run(run_name="train") as parent:
        mlflow.set_tags(
            {
                "flare_ml.data": "synthetic",
                "flare_ml.clinical_use": "no",
                "flare_ml.config_digest": digest,
            }
        )
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
        headline, best_rules = headline_metrics(result)
        mlflow.log_metrics(headline)
        mlflow.set_tags(best_rules)
        _log_scorer_runs(result)
        info = log_model(
            bundle_dir,
            cfg.tracking.registered_model_name,
            alias=alias,
            config_digest=digest,
        )
        run_id = parent.info.run_id
    version = getattr(info, "registered_model_version", None)
    return {
        "run_id": run_id,
        "model_uri": info.model_uri,
        "registered_version": str(version) if version is not None else "",
        "config_digest": digest,
        "alias": alias if alias and version is not None else "",
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
