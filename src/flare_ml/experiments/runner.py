"""Run an experiment file: validate, compute, render, write the results file, log to MLflow.

The orchestration above the kinds: :func:`execute` loads and validates the experiment
file, resolves its training config, looks the kind up in the registry (every kind is
registered by importing :mod:`flare_ml.experiments.kinds`), computes it, renders the
result (:mod:`flare_ml.experiments.render`), writes the Markdown results file atomically
and logs one parent MLflow run with a nested run per condition.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from flare_ml.experiments.config import (
    ExperimentConfig,
    _cohorts,
    canonical_json,
    cohort_label,
    load_experiment,
    resolve_train_config,
)
from flare_ml.experiments.context import Context, Progress, no_progress
from flare_ml.experiments.kinds import compute_for
from flare_ml.experiments.mlflow_runs import log_experiment, tracking_uri_for
from flare_ml.experiments.render import render_result
from flare_ml.experiments.render.document import render_markdown
from flare_ml.simulate import load_biology
from flare_ml.train_config import TrainConfig


def config_digest(config: ExperimentConfig, train_config: TrainConfig) -> str:
    """SHA-256 over everything configured: experiment, training config, sites, biology.

    Where the results are written and logged (``results``, ``tracking_uri``) is left out.

    Examples
    --------
    >>> from flare_ml.experiments.config import load_params
    >>> cfg = ExperimentConfig(kind="literature_cases", experiment_name="x", seed=1,
    ...                        params=load_params("literature_cases", {}))
    >>> len(config_digest(cfg, resolve_train_config(cfg, "inline")))
    64

    """
    sites = {cohort_label(spec): spec.profile().model_dump() for _, spec in _cohorts(config.params)}
    payload = {
        "experiment": config.model_dump(exclude={"tracking_uri", "results"}),
        "training": train_config.model_dump(exclude={"tracking", "output_dir"}),
        "sites": sites,
        "biology": load_biology().model_dump(),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file (never half-written).

    Examples
    --------
    >>> import tempfile
    >>> write_atomic(Path(tempfile.mkdtemp()) / "r.md", "x").read_text()
    'x'

    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)
    return path


@dataclass
class ExperimentRun:
    """Where an experiment's results went and how long it took (logging included)."""

    results: Path
    run_id: str
    tracking_uri: str
    wall_time_s: float


def results_path_for(config: ExperimentConfig, config_path: Path) -> Path:
    """The results file: ``results`` of the config, else ``results/<stem>.md`` beside it.

    Examples
    --------
    >>> cfg = ExperimentConfig(kind="headline", experiment_name="x", seed=1)
    >>> results_path_for(cfg, Path("experiments/headline.yaml")).as_posix()
    'experiments/results/headline.md'

    """
    if config.results:
        path = Path(config.results)
        return path if path.is_absolute() else config_path.parent / path
    return config_path.parent / "results" / f"{config_path.stem}.md"


def execute(
    path: str | Path,
    tracking_uri: str | None = None,
    progress: Progress = no_progress,
) -> ExperimentRun:
    """Run an experiment file; write its results table and log it to MLflow.

    What :func:`run_experiment` does, with a progress callback, returning the results
    path, the MLflow parent run id and store, and the wall time (logging included).

    Examples
    --------
    >>> run = execute("experiments/headline.yaml")  # doctest: +SKIP
    >>> run.results, round(run.wall_time_s)  # doctest: +SKIP
    (PosixPath('experiments/results/headline.md'), 29)

    """
    start = time.perf_counter()
    config_path = Path(path)
    config = load_experiment(config_path)
    train_config = resolve_train_config(config, str(config_path), config_path.parent)
    digest = config_digest(config, train_config)
    context = Context(config, train_config, progress)
    output = render_result(config.kind, compute_for(config.kind)(context))
    name = config_path.stem
    results = write_atomic(
        results_path_for(config, config_path),
        render_markdown(name, config, config_path, digest, output),
    )
    uri = tracking_uri_for(config, tracking_uri)
    wall = time.perf_counter() - start
    progress("MLflow", 0, 1)
    run_id = log_experiment(uri, name, config, config_path, results, digest, output, wall)
    progress("MLflow", 1, 1)
    return ExperimentRun(results, run_id, uri, time.perf_counter() - start)


def run_experiment(path: str | Path, tracking_uri: str | None = None) -> Path:
    """Run one experiment file and return the path of its results table.

    The experiment is validated first (:func:`load_experiment`; an unknown key is a
    :class:`~flare_ml.errors.ConfigError` naming it), then run; its Markdown results file
    (``results/<name>.md`` beside the experiment file unless the file says otherwise) is
    written atomically and the run is logged to MLflow under the file's
    ``experiment_name``: one parent run named after the file, a nested run per condition.

    Parameters
    ----------
    path : str or Path
        The experiment YAML (``experiments/headline.yaml``, ...).
    tracking_uri : str, optional
        MLflow store; default ``$MLFLOW_TRACKING_URI``, then the file's ``tracking_uri``,
        then ``sqlite:///mlflow.db`` in the working directory.

    Returns
    -------
    Path
        The results file.

    Examples
    --------
    >>> from flare_ml.experiments import run_experiment
    >>> run_experiment("experiments/literature_cases.yaml")  # doctest: +SKIP
    PosixPath('experiments/results/literature_cases.md')

    """
    return execute(path, tracking_uri).results


__all__ = [
    "ExperimentRun",
    "config_digest",
    "execute",
    "results_path_for",
    "run_experiment",
    "write_atomic",
]
