"""Shared machinery of the experiments: cohorts, fits, metrics, results files, MLflow.

Every experiment kind (:mod:`flare_ml.experiments.kinds`) simulates its cohorts through
:class:`Context` (cached, so a cohort used by several conditions is drawn once), fits the
XGBoost model with the experiment's training settings, evaluates scorers with the
patient-level bootstrap of :func:`flare_ml.evaluation.evaluate` and returns a
:class:`KindOutput`: tables, the cohorts it used, one record per condition and a few
computed findings. :func:`run_experiment` turns that into the committed Markdown file,
which carries no date, run id or timing so that a rerun with the same seed reproduces it
byte for byte, and into MLflow runs (one parent run, a nested run per condition) where
the wall time and the run ids live.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.evaluation import Evaluation, evaluate
from flare_ml.experiments.config import (
    CohortSpec,
    ExperimentConfig,
    _cohorts,
    canonical_json,
    cohort_label,
    load_experiment,
    resolve_train_config,
)
from flare_ml.models import FlareXGBClassifier
from flare_ml.train_config import DEFAULT_TRAIN_CONFIG, TrainConfig
from flare_ml.training import MODEL_NAME, ORACLE_NAME, PreparedCohort, make_model, prepare_cohort

Progress = Callable[[str, int, int], None]

#: scorers in table order
RULE_NAMES: tuple[str, ...] = ("seed_criteria", "pcwg3_window", "alp_only")
SCORER_LABELS: dict[str, str] = {
    MODEL_NAME: "XGBoost",
    "seed_criteria": "seed criteria",
    "pcwg3_window": "PCWG3 window",
    "alp_only": "ALP only",
    ORACLE_NAME: "oracle",
}
#: the caveat at the top of every results file
SYNTHETIC_NOTE = (
    "> **Synthetic cohorts, not for clinical use.** Every number below was computed on "
    "cohorts from flare-ml's own simulator and names the cohort it comes from."
)


def _no_progress(step: str, done: int, total: int) -> None:
    return None


# --- outputs of a kind -----------------------------------------------------------------


@dataclass
class Table:
    """One results table: a title, string cells and notes printed under it."""

    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass
class ConditionRecord:
    """One condition as MLflow sees it: a nested run with params and metrics."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass
class KindOutput:
    """What an experiment kind computed, before it is written and logged."""

    cohorts: list[tuple[str, str]]
    tables: list[Table]
    conditions: list[ConditionRecord]
    findings: list[str] = field(default_factory=list)


# --- cohorts and fits ------------------------------------------------------------------


@dataclass
class SimCohort:
    """A simulated, featurized cohort with its true (noise-free) outcomes."""

    spec: CohortSpec
    prepared: PreparedCohort
    true_y: np.ndarray

    @property
    def label(self) -> str:
        """The cohort's name in tables."""
        return self.prepared.label


class Context:
    """What every experiment kind gets: config, training config, caches, progress.

    Parameters
    ----------
    config : ExperimentConfig
        The validated experiment.
    train_config : TrainConfig
        The resolved training config (experiment seed, model overrides).
    progress : callable, optional
        ``progress(step, done, total)``.

    """

    def __init__(
        self,
        config: ExperimentConfig,
        train_config: TrainConfig,
        progress: Progress = _no_progress,
    ) -> None:
        from flare_ml.rules import make_rules
        from flare_ml.training import make_featurizer

        self.config = config
        self.train_config = train_config
        self.progress = progress
        self.seed = config.seed
        self.n_resamples = config.bootstrap_resamples
        self.featurizer = make_featurizer(train_config).fit(
            pd.DataFrame(columns=list(c.CONTRACT_COLUMNS))
        )
        self.rules = make_rules(train_config.rules.model_dump())
        self._cohorts: dict[str, SimCohort] = {}

    def cohort(self, spec: CohortSpec) -> SimCohort:
        """Simulate and featurize a cohort (once per spec)."""
        from flare_ml.simulate import simulate_cohort

        key = canonical_json(spec.model_dump())
        if key not in self._cohorts:
            sim = simulate_cohort(spec.patients, site=spec.profile(), seed=spec.seed)
            prepared = prepare_cohort(
                sim.timepoints, self.featurizer, cohort_label(spec), sim.oracle
            )
            self._cohorts[key] = SimCohort(spec, prepared, true_outcomes(prepared, sim.oracle))
        return self._cohorts[key]

    def fit(
        self,
        cohort: PreparedCohort,
        rows: np.ndarray | None = None,
        drop: Iterable[str] = (),
    ) -> FlareXGBClassifier:
        """Fit the model (tuning, early stopping, calibration inside) on some rows/columns."""
        features = cohort.features.drop(columns=list(drop))
        y, groups = cohort.y, cohort.patient_ids
        assert y is not None
        if rows is not None:
            features, y, groups = features.iloc[rows], y[rows], groups[rows]
        return make_model(self.train_config).fit(features, y, groups=groups)

    def scores(
        self, cohort: PreparedCohort, model: FlareXGBClassifier | None = None
    ) -> dict[str, np.ndarray]:
        """Model (if given), rule and oracle scores on a cohort, in table order."""
        out: dict[str, np.ndarray] = {}
        if model is not None:
            out[MODEL_NAME] = model.predict_proba(cohort.features)[:, 1]
        for name, rule in self.rules.items():
            out[name] = rule.fit(cohort.features).decision_function(cohort.features)
        if cohort.oracle is not None:
            out[ORACLE_NAME] = cohort.oracle
        return out

    def evaluate(
        self,
        cohort: PreparedCohort,
        scores: Mapping[str, np.ndarray],
        reference: str | None = MODEL_NAME,
        y: np.ndarray | None = None,
        metrics: tuple[str, ...] = ("auroc", "brier", "calibration_slope"),
    ) -> Evaluation:
        """Paired patient-level bootstrap of some metrics (95% CIs)."""
        return evaluate(
            cohort.y if y is None else y,
            scores,
            patient_ids=cohort.patient_ids,
            thresholds=0.5,
            n_resamples=self.n_resamples,
            seed=self.seed,
            metrics=metrics,
            reference=reference,
            probability_scorers=[name for name in scores if name not in self.rules],
        )


def true_outcomes(cohort: PreparedCohort, oracle: pd.DataFrame) -> np.ndarray:
    """Noise-free outcome of each index row (1 = flare), from the simulator's oracle file.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.features import TimepointFeaturizer
    >>> sim = simulate_cohort(60, seed=2)
    >>> featurizer = TimepointFeaturizer().fit(sim.timepoints)
    >>> cohort = prepare_cohort(sim.timepoints, featurizer, "x", sim.oracle)
    >>> true_outcomes(cohort, sim.oracle).shape == cohort.y.shape
    True

    """
    keys = cohort.features.index.to_frame(index=False)
    keys[c.PATIENT_ID] = keys[c.PATIENT_ID].astype(str)
    o = oracle[[c.PATIENT_ID, c.ASSESSMENT_DATE, "true_outcome"]].copy()
    o[c.PATIENT_ID] = o[c.PATIENT_ID].astype(str)
    o[c.ASSESSMENT_DATE] = pd.to_datetime(o[c.ASSESSMENT_DATE]).astype(
        keys[c.ASSESSMENT_DATE].dtype
    )
    aligned = keys.merge(o, on=[c.PATIENT_ID, c.ASSESSMENT_DATE], how="left")
    return (aligned["true_outcome"] == "flare").to_numpy(dtype=int)


# --- numbers as text -------------------------------------------------------------------


def metric(ev: Evaluation, scorer: str, name: str) -> tuple[float, float, float]:
    """(estimate, ci_low, ci_high) of one scorer's metric; NaNs when it was not computed.

    Examples
    --------
    >>> ev = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9]}, [1, 2, 3, 4], n_resamples=0)
    >>> metric(ev, "m", "auroc")[0]
    1.0

    """
    m = ev.metrics
    row = m[(m["scorer"] == scorer) & (m["metric"] == name)]
    if row.empty:
        return (math.nan, math.nan, math.nan)
    return tuple(float(row[k].iloc[0]) for k in ("estimate", "ci_low", "ci_high"))  # type: ignore[return-value]


def versus(ev: Evaluation, scorer: str, name: str = "auroc") -> tuple[float, float, float]:
    """Reference minus ``scorer`` (positive: the reference is better) with its paired CI.

    Examples
    --------
    >>> ev = evaluate([0, 1, 0, 1], {"m": [0.2, 0.7, 0.4, 0.9], "r": [0.5, 0.5, 0.6, 0.4]},
    ...               [1, 2, 3, 4], n_resamples=20, reference="m")
    >>> round(versus(ev, "r")[0], 3)
    0.875

    """
    cmp = ev.comparisons
    row = cmp[(cmp["scorer"] == scorer) & (cmp["metric"] == name)]
    if row.empty:
        return (math.nan, math.nan, math.nan)
    d, lo, hi = (float(row[k].iloc[0]) for k in ("difference", "ci_low", "ci_high"))
    return (-d, -hi, -lo)


def fmt(value: float, digits: int = 3, sign: bool = False) -> str:
    """A number as text; ``-`` when missing.

    Examples
    --------
    >>> fmt(0.91234), fmt(-0.0004, sign=True), fmt(float("nan"))
    ('0.912', '-0.000', '-')

    """
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_ci(values: tuple[float, float, float], digits: int = 3, sign: bool = False) -> str:
    """``estimate [low, high]``.

    Examples
    --------
    >>> fmt_ci((0.9, 0.88, 0.92))
    '0.900 [0.880, 0.920]'
    >>> fmt_ci((0.02, -0.01, 0.05), sign=True)
    '+0.020 [-0.010, +0.050]'

    """
    est, low, high = values
    if not np.isfinite(est):
        return "-"
    if not (np.isfinite(low) and np.isfinite(high)):
        return fmt(est, digits, sign)
    return f"{fmt(est, digits, sign)} [{fmt(low, digits, sign)}, {fmt(high, digits, sign)}]"


def best_rule(ev: Evaluation) -> str:
    """The rule with the highest AUROC estimate on this cohort.

    Examples
    --------
    >>> y = [0, 1, 0, 1]
    >>> scores = {"seed_criteria": [0.1, 0.9, 0.2, 0.8], "pcwg3_window": [0.5, 0.5, 0.5, 0.5],
    ...           "alp_only": [0.9, 0.1, 0.8, 0.2]}
    >>> best_rule(evaluate(y, scores, [1, 2, 3, 4], n_resamples=0))
    'seed_criteria'

    """
    return max(RULE_NAMES, key=lambda r: metric(ev, r, "auroc")[0])


def evaluation_metrics(ev: Evaluation, prefix: str = "") -> dict[str, float]:
    """Flat MLflow metrics of an evaluation: ``<scorer>.<metric>[_ci_low|_ci_high]``.

    Examples
    --------
    >>> ev = evaluate([0, 1], {"m": [0.2, 0.7]}, [1, 2], n_resamples=0, metrics=("auroc",))
    >>> sorted(evaluation_metrics(ev))
    ['m.auroc', 'm.auroc_ci_high', 'm.auroc_ci_low']

    """
    out: dict[str, float] = {}
    for row in ev.metrics.itertuples(index=False):
        key = f"{prefix}{row.scorer}.{row.metric}"
        out[key] = float(row.estimate)
        out[f"{key}_ci_low"] = float(row.ci_low)
        out[f"{key}_ci_high"] = float(row.ci_high)
    for row in ev.comparisons.itertuples(index=False):
        out[f"{prefix}{row.scorer}_minus_{row.reference}.{row.metric}"] = float(row.difference)
    return out


# --- the results file ------------------------------------------------------------------


def markdown_table(frame: pd.DataFrame) -> str:
    r"""A plain GitHub Markdown table (cells as given; ``|`` escaped).

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"a": ["1"], "b": ["x|y"]})))
    | a | b |
    |---|---|
    | 1 | x\|y |

    """

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(col) for col in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


TITLES: dict[str, str] = {
    "headline": "Headline: model vs rules vs oracle",
    "ablations": "Ablations: drop one clinical signal at a time",
    "learning_curve": "Learning curve: training cohort size",
    "robustness": "Robustness: missing ALP, label noise, schedule and case-mix shift",
    "literature_cases": "Literature cases: the model's reading of published courses",
    "coverage": "Conformal coverage across sites: transported vs site-calibrated",
}


def software_versions() -> str:
    """Versions that decide the numbers (same versions + same seed = same file).

    Examples
    --------
    >>> software_versions().startswith("flare-ml ")
    True

    """
    import sklearn
    import xgboost

    from flare_ml import __version__

    return (
        f"flare-ml {__version__}, xgboost {xgboost.__version__}, scikit-learn "
        f"{sklearn.__version__}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"Python {platform.python_version()}"
    )


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (POSIX separators).

    Examples
    --------
    >>> shown_path(Path.cwd() / "experiments" / "headline.yaml")
    'experiments/headline.yaml'

    """
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


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
    from flare_ml.simulate import load_biology

    sites = {cohort_label(spec): spec.profile().model_dump() for _, spec in _cohorts(config.params)}
    payload = {
        "experiment": config.model_dump(exclude={"tracking_uri", "results"}),
        "training": train_config.model_dump(exclude={"tracking", "output_dir"}),
        "sites": sites,
        "biology": load_biology().model_dump(),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def render_markdown(
    name: str,
    config: ExperimentConfig,
    config_path: Path,
    digest: str,
    output: KindOutput,
) -> str:
    """The results file: header, cohorts, tables, computed findings. No date, no run id.

    Examples
    --------
    >>> from flare_ml.experiments.config import load_params
    >>> cfg = ExperimentConfig(kind="literature_cases", experiment_name="x", seed=1,
    ...                        params=load_params("literature_cases", {}))
    >>> out = KindOutput([("training", "simulated site default (20 patients, seed 1)")],
    ...                  [Table("T", pd.DataFrame({"a": ["1"]}))], [])
    >>> text = render_markdown("x", cfg, Path("x.yaml"), "0" * 64, out)
    >>> text.splitlines()[0]
    "# Literature cases: the model's reading of published courses (`x`)"

    """
    training = config.training
    train_source = (
        f"`{shown_path(Path(training.config))}`"
        if training.config
        else f"shipped `configs/train/{DEFAULT_TRAIN_CONFIG.name}`"
    )
    overrides = ", ".join(f"{k}={v}" for k, v in training.model.items()) or "none"
    lines = [
        f"# {TITLES[config.kind]} (`{name}`)",
        "",
        SYNTHETIC_NOTE,
        "",
    ]
    if config.description.strip():
        lines += [" ".join(config.description.split()), ""]
    header = pd.DataFrame(
        [
            ("command", f"`flare-ml experiment run {shown_path(config_path)}`"),
            ("kind", f"`{config.kind}`"),
            (
                "MLflow",
                f"experiment `{config.experiment_name}`: one parent run `{name}`, one nested "
                "run per condition (run ids and wall time are there, not here)",
            ),
            ("seed", str(config.seed)),
            (
                "config digest",
                f"`sha256:{digest[:16]}` (experiment, training config, sites, biology)",
            ),
            ("training config", f"{train_source}; model overrides: {overrides}"),
            (
                "confidence intervals",
                f"95%, patient-level bootstrap, {config.bootstrap_resamples} resamples "
                "(paired between scorers)"
                if config.bootstrap_resamples
                else "none (bootstrap_resamples: 0)",
            ),
            ("software", software_versions()),
            (
                "date",
                "none on purpose: rerunning the command with the same seed and software "
                "reproduces this file byte for byte",
            ),
        ],
        columns=["", "value"],
    )
    lines += [markdown_table(header), "", "## Cohorts", ""]
    lines += [f"- {role}: {label}" for role, label in output.cohorts]
    for table in output.tables:
        lines += ["", f"## {table.title}", "", markdown_table(table.frame)]
        if table.notes:
            lines += [""] + [f"{note}" for note in table.notes]
    if output.findings:
        lines += ["", "## Findings (computed from the tables above)", ""]
        lines += [f"- {finding}" for finding in output.findings]
    return "\n".join(lines).rstrip() + "\n"


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


# --- MLflow ----------------------------------------------------------------------------


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
    import mlflow

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
        or "sqlite:///mlflow.db"
    )


# --- the entry point -------------------------------------------------------------------


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
    progress: Progress = _no_progress,
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
    from flare_ml.experiments.kinds import RUNNERS

    start = time.perf_counter()
    config_path = Path(path)
    config = load_experiment(config_path)
    train_config = resolve_train_config(config, str(config_path), config_path.parent)
    digest = config_digest(config, train_config)
    context = Context(config, train_config, progress)
    output = RUNNERS[config.kind](context)
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
    "Context",
    "ExperimentRun",
    "KindOutput",
    "Table",
    "execute",
    "markdown_table",
    "run_experiment",
]
