"""End-to-end jobs behind the command line: train, evaluate, score and the demo.

Each function runs one user-facing job on the library (training and validation,
reporting, MLflow tracking, model loading) and returns what the command prints, so the
CLI stays a thin layer of option parsing and display. Model URIs can be MLflow URIs
(``models:/flare-classifier/latest``, ``runs:/<id>/model``), a local MLflow model folder,
or a bundle folder written by :meth:`flare_ml.bundle.FlareModelBundle.save`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

import flare_ml.timeline as tl
from flare_ml import report, tracking
from flare_ml.adaptation import Adaptation, AdaptSettings, adapt_bundle
from flare_ml.bundle import MANIFEST, FlareModelBundle
from flare_ml.data import (
    ReadOptions,
    index_row_mask,
    read_lab_table,
    read_table,
    read_timepoints,
    table_format,
    write_table,
)
from flare_ml.data import contract as c
from flare_ml.data.fingerprint import data_fingerprint
from flare_ml.decision_policy import ErrorBudget
from flare_ml.errors import FlareMLError
from flare_ml.evaluation import DecisionTable
from flare_ml.evaluation import evaluate as evaluate_scores
from flare_ml.model_card import model_card
from flare_ml.plots import figure_to_png_bytes
from flare_ml.progress import Progress, no_progress
from flare_ml.rules import make_rules
from flare_ml.serving.batch import DEFAULT_CHUNK_ROWS, score_file
from flare_ml.serving.flavor import (
    PRIOR_MODEL,
    configure_tracking,
    load_bundle,
    log_model,
    resolve_bundle,
)
from flare_ml.site_calibration import SiteCalibration, calibrate_to_site, check_at_site
from flare_ml.train_config import TrainConfig, load_train_config
from flare_ml.training import (
    load_cohort_source,
    prepare_cohort,
    score_cohort_bundle,
    train_and_validate,
)

#: how ``evaluate``'s decision tables name the model's own (shipped or site) thresholds
MODEL_THRESHOLDS = "model's thresholds"


@dataclass
class TrainOutcome:
    """What a training job produced and where it is."""

    headline: pd.DataFrame
    targets: pd.DataFrame | None
    coverage: pd.DataFrame | None
    decision_tables: list[DecisionTable]
    output_dir: Path
    report: Path
    model_card: Path
    bundle_dir: Path
    run_id: str
    model_uri: str
    registered_version: str
    tracking_uri: str
    registered_name: str = "flare-classifier"
    alias: str = ""


def train(
    config: TrainConfig | str | Path | None = None,
    data_path: str | Path | None = None,
    external_paths: list[str | Path] | None = None,
    progress: Progress = no_progress,
    alias: str | None = None,
) -> TrainOutcome:
    """Train, validate, report and track one model; register it in MLflow.

    The registered version gets a description and tags (training cohort, config digest,
    commit, version); with ``alias`` (``flare-ml demo`` uses ``champion``) that alias of
    the registered model points at it, so ``models:/flare-classifier@champion`` loads it.
    """
    cfg = config if isinstance(config, TrainConfig) else load_train_config(config)
    tracking_uri = configure_tracking(
        None if "MLFLOW_TRACKING_URI" in os.environ else cfg.tracking.tracking_uri
    )
    cfg = cfg.model_copy(
        update={"tracking": cfg.tracking.model_copy(update={"tracking_uri": tracking_uri})}
    )
    result = train_and_validate(cfg, data_path, external_paths, progress)
    result.bundle.metadata["thresholds"] = result.thresholds
    result.bundle.metadata["rules"] = {k: r.get_params() for k, r in result.rules.items()}
    result.bundle.metadata["config_digest"] = tracking.config_digest(cfg)

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    bundle_dir = result.bundle.save(out / "model")
    progress("report", 0, 1)
    written = report.write_training_report(result, out)
    progress("report", 1, 1)
    progress("MLflow", 0, 1)
    run = tracking.log_training_run(
        result, bundle_dir, written.artifacts, written.figures, alias=alias
    )
    # the card names the run and registered version, known only now: re-render, re-log
    card = model_card(result, report.target_checks(result), report.coverage_table(result), run=run)
    written.model_card.write_text(card)
    mlflow.MlflowClient(tracking_uri).log_artifact(run["run_id"], str(written.model_card), "report")
    progress("MLflow", 1, 1)
    return TrainOutcome(
        headline=written.headline,
        targets=pd.read_csv(written.artifacts["targets.csv"]),
        coverage=pd.read_csv(written.artifacts["coverage.csv"]),
        decision_tables=result.decision_tables,
        output_dir=out,
        report=written.report,
        model_card=written.model_card,
        bundle_dir=bundle_dir,
        run_id=run["run_id"],
        model_uri=run["model_uri"],
        registered_version=run["registered_version"],
        tracking_uri=tracking_uri,
        registered_name=cfg.tracking.registered_model_name,
        alias=run["alias"],
    )


def score(
    model_uri: str | FlareModelBundle,
    input_path: str | Path,
    output_path: str | Path,
    *,
    with_reasons: bool = True,
    chunk_rows: int | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
    read_options: ReadOptions | None = None,
    max_progression_called_flare: float | None = None,
    labs_path: str | Path | None = None,
    window_days: int = 30,
) -> Any:
    """Score every index row of a cohort file in chunks of whole patients; write them.

    Streams the file (see :func:`flare_ml.serving.batch.score_file`): memory is bounded
    by ``chunk_rows``, a patient is never split, and the output appears only when every
    chunk was scored.

    Parameters
    ----------
    model_uri : str or FlareModelBundle
        ``models:/flare-classifier/latest``, ``runs:/<id>/model``, an MLflow model
        folder, a bundle folder, or a bundle.
    input_path, output_path : str or Path
        Timepoint table to score, predictions to write (CSV or Parquet).
    with_reasons : bool, default True
        Compute the top reasons; False is faster.
    chunk_rows : int, optional
        Rows per chunk (default :data:`flare_ml.serving.batch.DEFAULT_CHUNK_ROWS`).
    progress : callable, optional
        ``progress("scoring", rows_done, total_rows_or_None)`` after each chunk.
    read_options : flare_ml.data.ReadOptions, optional
        How the input is written: delimiter, date format, decimal mark, column mapping.
    max_progression_called_flare : float, optional
        Decide with this share of true progressions called flare instead of the model's
        (for example 0.02 to tighten the default 5%); the model's share of flares called
        progression is kept.
    labs_path : str or Path, optional
        A long lab table whose ALP samples replace ``alp_u_l`` (as-of join within
        ``window_days``), as ``flare-ml validate --labs`` does.
    window_days : int, default 30
        How old an ALP sample may be, in days before the assessment.

    Returns
    -------
    flare_ml.serving.batch.ScoreSummary
        Rows, patients, index rows, chunks, decision counts (against outcomes when the
        input records them), ignored columns and notices, the decision policy, and the
        output and metadata paths.

    Examples
    --------
    >>> summary = score("models:/flare-classifier/latest", "cohort.parquet",
    ...                 "scores.parquet")  # doctest: +SKIP
    >>> summary.decisions  # doctest: +SKIP
    {'flare': 812, 'progression': 1420, 'uncertain': 301}

    """
    labs = None
    if labs_path is not None:
        labs = read_lab_table(ensure_exists(labs_path))
    return score_file(
        model_uri,
        ensure_exists(input_path),
        output_path,
        chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS,
        with_reasons=with_reasons,
        progress=progress,
        read_options=read_options,
        max_progression_called_flare=max_progression_called_flare,
        metadata=(
            (lambda: {"uri": model_uri, **registered_version(model_uri)})
            if isinstance(model_uri, str)
            else None
        ),
        labs=labs,
        window_days=window_days,
        labs_source=None if labs_path is None else str(labs_path),
    )


def registered_version(model_uri: str) -> dict[str, str]:
    """The registered model name and version a ``models:/`` URI points to (else empty).

    ``models:/NAME/3``, ``models:/NAME/latest`` and ``models:/NAME@ALIAS`` resolve to
    ``{"registered_model": NAME, "version": "3"}``; anything else, or a registry that
    cannot be read, gives ``{}``.

    Examples
    --------
    >>> registered_version("outputs/latest/model")
    {}

    """
    if not model_uri.startswith("models:/"):
        return {}
    ref = model_uri[len("models:/") :]
    client = mlflow.MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = client.get_model_version_by_alias(name, alias).version
        else:
            name, _, wanted = ref.partition("/")
            if wanted in ("", "latest"):
                found = client.search_model_versions(f"name = '{name}'")
                version = str(max(int(v.version) for v in found)) if found else ""
            else:
                version = wanted
    except Exception:  # MLflow raises many types; the metadata then has the URI only
        return {}
    return {"registered_model": name, "version": str(version)} if version else {}


def evaluate(
    model_uri: str,
    data_path: str | Path,
    output_dir: str | Path | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a registered model and the rule baselines on a labelled cohort file."""
    bundle = load_bundle(model_uri)
    table, oracle, label = load_cohort_source(path=data_path)
    cohort = prepare_cohort(table, bundle.featurizer, f"evaluation: {label}", oracle)
    assert cohort.y is not None
    rules = {
        name: rule.fit(cohort.features, cohort.y)
        for name, rule in make_rules(bundle.metadata.get("rules")).items()
    }
    scores = score_cohort_bundle(cohort, bundle, rules)
    # the model at its decision, each rule at its own decision, the oracle where training
    # read it (0.5 when the model records none)
    thresholds = {
        **dict(bundle.metadata.get("thresholds", {})),
        **{name: float(rule.decision_threshold) for name, rule in rules.items()},
        "xgboost": bundle.threshold,
    }
    ev = evaluate_scores(
        cohort.y,
        scores,
        patient_ids=cohort.patient_ids,
        thresholds={k: thresholds.get(k, 0.5) for k in scores},
        subgroups=cohort.context,
        n_resamples=n_resamples,
        seed=seed,
        probability_scorers=[k for k in scores if k not in rules],
    )
    predictions = bundle.predict_features(cohort.features)
    predictions["outcome"] = np.where(cohort.y == 1, "flare", "progression")
    coverage = site_coverage = None
    decisions: list[DecisionTable] = []
    if bundle.conformal is not None:
        check = check_at_site(
            bundle.conformal,
            predictions["p_flare"].to_numpy(),
            cohort.y,
            cohort.patient_ids,
            cohort=cohort.label,
            model_thresholds=MODEL_THRESHOLDS,
            seed=seed,
        )
        coverage, site_coverage, decisions = (
            check.coverage,
            check.site_coverage,
            check.decision_tables,
        )
    out = Path(output_dir) if output_dir else None
    written = None
    if out is not None:
        coverage_rows = None
        if bundle.conformal is not None:
            coverage_rows = report.evaluation_coverage_table(
                cohort.label, coverage, site_coverage, bundle.conformal.class_coverage
            )
        written = report.write_evaluation_report(
            cohort, scores, ev, out, coverage_rows, decision_tables=decisions, bundle=bundle
        )
        write_table(predictions, out / "predictions.csv")
    return {
        "label": cohort.label,
        "evaluation": ev,
        "predictions": predictions,
        "coverage": coverage,
        "site_coverage": site_coverage,
        "decision_tables": decisions,
        "written": written,
        "notices": _indeterminate_notice(table) if cohort.indeterminate else [],
    }


@dataclass
class CalibrateOutcome:
    """What ``flare-ml calibrate`` produced and where it is."""

    calibration: SiteCalibration
    bundle_dir: Path
    model_uri: str | None
    registered_version: str | None


def calibrate(
    model_uri: str,
    data_path: str | Path,
    output_dir: str | Path,
    *,
    max_progression_called_flare: float | None = None,
    max_flare_called_progression: float | None = None,
    register_as: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> CalibrateOutcome:
    """Recalibrate a model's decisions on a site's labelled cohort; save it.

    The recalibrated decisions keep the model's error budget, with either share replaced
    by ``max_progression_called_flare`` / ``max_flare_called_progression`` when given.

    Loads the model and the site's labelled timepoint table, refits the conformal
    thresholds on the site's index assessments
    (:func:`flare_ml.site_calibration.calibrate_to_site`) and writes the recalibrated
    bundle to ``output_dir`` (written to a temporary folder first, so a failure leaves
    nothing behind). An existing model folder at ``output_dir`` is replaced only with
    ``overwrite``, and never when it is the model being recalibrated. With
    ``register_as`` it is also logged to MLflow and registered under that name, ready for
    ``mlflow models serve`` or ``flare-ml score``.

    Examples
    --------
    >>> outcome = calibrate("models:/flare-classifier/latest", "site.parquet",
    ...                     "outputs/site-model")  # doctest: +SKIP
    >>> outcome.calibration.summary()  # doctest: +SKIP

    """
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).exists():
            raise FlareMLError(
                f"--out {out} exists and is not a flare-ml model folder; choose a new folder"
            )
        if Path(model_uri).exists() and out.resolve() == Path(model_uri).resolve():
            raise FlareMLError(f"--out {out} is the model being recalibrated; choose a new folder")
        if not overwrite:
            raise FlareMLError(
                f"--out {out} already holds a model; choose a new folder or pass --force to "
                "replace it"
            )
    bundle = load_bundle(model_uri)
    own = bundle.budget or ErrorBudget()
    try:
        budget = ErrorBudget(
            max_progression_called_flare or own.max_progression_called_flare,
            max_flare_called_progression or own.max_flare_called_progression,
        )
    except ValueError as exc:
        raise FlareMLError(str(exc)) from None
    table, _, label = load_cohort_source(path=ensure_exists(data_path))
    site = calibrate_to_site(
        bundle,
        table,
        coverage=budget.coverage,
        label=label,
        seed=seed,
        fingerprint=data_fingerprint(table),
    )
    site.bundle.metadata["site_calibration"]["base_model"] = model_uri
    save_model_folder(site.bundle, out)
    model_uri_out = version = None
    if register_as:
        configure_tracking()
        mlflow.set_experiment("flare-ml-site-calibration")
        with mlflow.start_run(run_name=f"calibrate {label}"):
            mlflow.log_params({"base_model": model_uri, **site.bundle.conformal.budget.to_dict()})
            for name, report in (("transported", site.transported), ("site", site.cross_fitted)):
                if report is not None:
                    mlflow.log_metrics({f"{name}_conformal_{k}": v for k, v in report.items()})
            info = log_model(out, register_as)
        version = str(getattr(info, "registered_model_version", "") or "")
        model_uri_out = f"models:/{register_as}/{version}" if version else info.model_uri
    return CalibrateOutcome(site, out, model_uri_out, version)


@dataclass
class AdaptOutcome:
    """What ``flare-ml adapt`` produced and where it is."""

    adaptation: Adaptation
    label: str
    bundle_dir: Path
    model_uri: str | None
    registered_version: str | None
    notices: list[str] = field(default_factory=list)


def adapt(
    prior_uri: str,
    data_path: str | Path,
    output_dir: str | Path,
    *,
    register_as: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    settings: AdaptSettings | None = None,
) -> AdaptOutcome:
    """Adapt a prior model to a site's labelled patients; save (and register) the result.

    Chooses by patient-grouped repeated cross-validation how far to update the prior
    (none, intercept, intercept and slope, residual boosting or a full refit;
    :func:`flare_ml.adaptation.adapt_bundle`) and writes the adapted model, an ordinary
    model folder, to ``output_dir``: staged in a temporary folder beside it and renamed
    when complete, so a failure leaves nothing behind. An existing model folder there is
    replaced only with ``overwrite``, and never when it is the prior. With
    ``register_as`` it is also logged to MLflow and registered under that name.

    Parameters
    ----------
    prior_uri : str
        Any model URI that ``score`` accepts; ``"prior"`` is the shipped literature
        prior.
    data_path : str or Path
        The site's labelled timepoint table (an outcome on every index row; rows that
        ``flare-ml label`` left indeterminate are left out of the targets).
    output_dir : str or Path
        Folder for the adapted model.
    register_as : str, optional
        Registered model name in MLflow.
    seed : int, default 0
        Seed of every fold and fit (the same seed and data give the same model).
    overwrite : bool, default False
        Replace a model folder already at ``output_dir``.
    settings : AdaptSettings, optional
        Folds, repeats and candidates (default :class:`AdaptSettings` with ``seed``).

    Raises
    ------
    FlareMLError
        A missing input, a table without outcomes or with too few labelled patients, a
        prior that cannot be loaded, or an output folder that is not free.

    Examples
    --------
    >>> outcome = adapt("prior", "site.csv", "outputs/site-model")  # doctest: +SKIP
    >>> outcome.adaptation.chosen  # doctest: +SKIP
    'intercept'

    """
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).exists():
            raise FlareMLError(
                f"--out {out} exists and is not a flare-ml model folder; choose a new folder"
            )
        if Path(prior_uri).exists() and out.resolve() == Path(prior_uri).resolve():
            raise FlareMLError(f"--out {out} is the prior being adapted; choose a new folder")
        if not overwrite:
            raise FlareMLError(
                f"--out {out} already holds a model; choose a new folder or pass --force to "
                "replace it"
            )
    source = ensure_exists(data_path)
    try:
        prior = load_bundle(prior_uri)
    except FlareMLError as exc:
        if prior_uri != PRIOR_MODEL:
            raise
        raise FlareMLError(
            f"the shipped literature prior ({PRIOR_MODEL!r}) cannot be loaded here ({exc}); "
            "pass --prior with a model URI or a model folder to adapt"
        ) from None
    table, _, label = load_cohort_source(path=source)
    settings = settings or AdaptSettings(seed=seed)
    adaptation = adapt_bundle(prior, table, settings, label=label, prior_uri=prior_uri)
    save_model_folder(adaptation.bundle, out)
    model_uri_out = version = None
    if register_as:
        configure_tracking()
        mlflow.set_experiment("flare-ml-site-adaptation")
        with mlflow.start_run(run_name=f"adapt {label}"):
            mlflow.log_params(
                {"prior": prior_uri, "chosen_update": adaptation.chosen, "seed": settings.seed}
            )
            mlflow.log_metrics(
                {
                    f"cv_{name}_{metric}": float(value)
                    for name, row in adaptation.table.iterrows()
                    for metric, value in row.items()
                    if metric != "chosen" and np.isfinite(value)
                }
            )
            info = log_model(out, register_as)
        version = str(getattr(info, "registered_model_version", "") or "")
        model_uri_out = f"models:/{register_as}/{version}" if version else info.model_uri
    return AdaptOutcome(
        adaptation, label, out, model_uri_out, version, _indeterminate_notice(table)
    )


def _indeterminate_notice(table: pd.DataFrame) -> list[str]:
    """A warning when ``flare-ml label`` left index rows indeterminate (docs/labels.md)."""
    if c.LABEL_REASON not in table.columns:
        return []
    index = index_row_mask(table)
    n_index = int(index.sum())
    left = int((index & table[c.OUTCOME].isna()).sum())
    if not left:
        return []
    return [
        f"{left} of {n_index} index rows ({left / n_index:.0%}) were left indeterminate by "
        "flare-ml label and are not trained on; adjudicated labels over-represent what "
        "could be confirmed, so decision thresholds recalibrated on them may miss the "
        "error budget (docs/labels.md, Limits)"
    ]


@dataclass
class TimelineOutcome:
    """What ``flare-ml timeline`` wrote."""

    path: Path
    patient_id: str
    index_rows: int
    scored: bool
    notices: list[str]


#: what ``flare-ml timeline --out`` can write
TIMELINE_SUFFIXES = (".png", ".html")


def timeline(
    input_path: str | Path,
    patient_id: str,
    output_path: str | Path,
    *,
    model_uri: str | FlareModelBundle | None = None,
    read_options: ReadOptions | None = None,
) -> TimelineOutcome:
    """Draw one patient's timeline (:mod:`flare_ml.timeline`) to a PNG or an HTML page.

    Reads and validates the table the way ``flare-ml validate`` does (same options, same
    errors; the row order does not matter here), picks the patient and, with a model,
    scores the patient's index rows the way ``score`` does
    (:meth:`~flare_ml.bundle.FlareModelBundle.predict`, reasons included). Without a
    model the figure shows the data only. Nothing is written when anything fails; the
    file appears whole (written beside the target, then renamed).

    Parameters
    ----------
    input_path : str or Path
        Timepoint table (.csv, .csv.gz, .parquet, .pq).
    patient_id : str
        The patient to draw.
    output_path : str or Path
        ``.png`` (the figure) or ``.html`` (a self-contained page: the figure and a
        table of the index scans).
    model_uri : str or FlareModelBundle, optional
        Model URI, MLflow model folder, bundle folder or bundle; None: no predictions.
    read_options : flare_ml.data.ReadOptions, optional
        How the input is written: delimiter, date format, decimal mark, column mapping.

    Returns
    -------
    TimelineOutcome
        The file written, the patient, the number of index scans, whether a model
        scored them, and notes on the input's columns.

    Raises
    ------
    FlareMLError
        Unknown output extension, missing input, a table that breaks the contract, an
        unknown patient (the message lists some ids), or a model that cannot be loaded.

    Examples
    --------
    >>> timeline("cohort.csv", "DEF1-005", "DEF1-005.html")  # doctest: +SKIP

    """
    out = Path(output_path)
    suffix = out.suffix.lower()
    if suffix not in TIMELINE_SUFFIXES:
        raise FlareMLError(
            f"--out {out}: write a .png (the figure) or an .html page (figure and index "
            f"table), not {suffix or 'a file without extension'!r}"
        )
    source = ensure_exists(input_path)
    loaded = read_timepoints(source, options=read_options, require_grouped=False)
    rows = tl.patient_timepoints(loaded.table, patient_id, source=source.name)
    predictions = None
    uln = tl.DEFAULT_ALP_ULN
    if model_uri is not None:
        bundle = resolve_bundle(model_uri)
        predictions = predictions_frame(bundle, rows)
        uln = bundle.featurizer.alp_upper_limit_normal
    fig = tl.plot_patient_timeline(rows, predictions, alp_upper_limit_normal=uln)
    if suffix == ".png":
        content = figure_to_png_bytes(fig, dpi=110)
    else:
        table = tl.index_table(rows, predictions)
        title = f"Patient {patient_id}: timeline ({source.name})"
        content = tl.timeline_html(fig, table, title).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial")
    staging.write_bytes(content)
    staging.replace(out)
    return TimelineOutcome(
        path=out,
        patient_id=str(patient_id),
        index_rows=int(index_row_mask(rows).sum()),
        scored=predictions is not None,
        notices=[  # the label columns are shown, not ignored
            f"column {u.describe()}"
            for u in loaded.columns.unknown
            if not u.misspelt and u.name not in (tl.LABEL_REASON, tl.LABEL_CONFIRM_DATE)
        ],
    )


def small_site_story(
    trained_model: str,
    external_path: str | Path,
    output_dir: str | Path,
    *,
    site: str,
    labelled_patients: int = 150,
    seed: int = 0,
    n_resamples: int = 200,
) -> pd.DataFrame:
    """What a site with a small labelled cohort gets: prior, adapted prior, trained model.

    On one labelled external cohort, side by side: the best rule, the model trained on
    another site (``trained_model``), the shipped literature prior out of the box, the
    prior adapted on ``labelled_patients`` simulated patients of the same site (another
    seed), and the simulator's oracle. Each row gives AUROC with its patient-bootstrap
    interval and, for the models, the decision table's share of progressions decided
    flare (with its verdict) and of ``uncertain`` decisions. The adapted model is written
    to ``output_dir/adapted-<site>`` and the labelled cohort beside it.

    Returns
    -------
    DataFrame
        One row per scorer; columns ``scorer``, ``AUROC``, ``progressions decided flare``
        and ``uncertain``.

    Examples
    --------
    >>> small_site_story("models:/flare-classifier@champion", "external_community.parquet",
    ...                  "outputs/latest", site="community")  # doctest: +SKIP

    """
    from flare_ml.simulate import simulate_cohort, write_cohort

    out = Path(output_dir)
    labelled = write_cohort(
        simulate_cohort(labelled_patients, site=site, seed=seed),
        out / "cohorts" / f"labelled_{site}_{labelled_patients}.parquet",
    )["timepoints"]
    adapted = adapt(PRIOR_MODEL, labelled, out / f"adapted-{site}", seed=seed, overwrite=True)
    rows = []
    models = [
        (f"model trained on another site ({trained_model})", trained_model),
        ("literature prior, out of the box", PRIOR_MODEL),
        (
            f"prior adapted on {labelled_patients} labelled patients ({adapted.adaptation.chosen})",
            str(adapted.bundle_dir),
        ),
    ]
    for i, (name, uri) in enumerate(models):
        result = evaluate(uri, external_path, n_resamples=n_resamples, seed=seed)
        ev, table = result["evaluation"], result["decision_tables"][0]
        if i == 0:
            rules = [k for k in ev.scorers if k not in ("xgboost", "oracle")]
            best = max(rules, key=lambda k: ev.estimate(k, "auroc"))
            rows.append(_story_row(f"best rule ({best})", ev, best))
        rate = table.rates()
        rows.append(
            {
                **_story_row(name, ev, "xgboost"),
                "progressions decided flare": (
                    f"{rate.iloc[0]['rate']:.1%} [{100 * rate.iloc[0]['ci_low']:.1f}, "
                    f"{100 * rate.iloc[0]['ci_high']:.1f}] {rate.iloc[0]['status']}"
                ),
                "uncertain": f"{rate.iloc[2]['rate']:.1%}",
            }
        )
        if i == len(models) - 1 and "oracle" in ev.scorers:
            rows.append(_story_row("oracle (simulator's Bayes-optimal ceiling)", ev, "oracle"))
    return pd.DataFrame(rows).fillna("")


def _story_row(name: str, ev: Any, scorer: str) -> dict[str, str]:
    m = ev.metrics
    row = m[(m["scorer"] == scorer) & (m["metric"] == "auroc")].iloc[0]
    ci = "" if np.isnan(row["ci_low"]) else f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    return {"scorer": name, "AUROC": f"{row['estimate']:.3f}{ci}"}


def save_model_folder(bundle: FlareModelBundle, out: Path) -> Path:
    """Write ``bundle`` to ``out`` atomically: staged beside it, renamed when complete.

    A failure leaves nothing behind; an existing folder at ``out`` is replaced (callers
    decide whether that is allowed). The folder gets the permissions of the umask.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; a model folder is not
    try:
        bundle.save(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def predictions_frame(bundle: FlareModelBundle, table: pd.DataFrame) -> pd.DataFrame:
    """Predictions with the identifying columns first (helper for custom scripts)."""
    out = bundle.predict(table)
    return out[[c.PATIENT_ID, c.ASSESSMENT_DATE, *[k for k in out if k not in c.KEY_COLUMNS]]]


def ensure_exists(path: str | Path) -> Path:
    """Refuse a missing input file with a clear message."""
    p = Path(path)
    if not p.exists():
        raise FlareMLError(f"input file not found: {p}")
    return p


@dataclass
class FindingsSummary:
    """What ``flare-ml findings`` did: counts for the summary and what it wrote."""

    reports: int
    uncertain: int
    output: Path
    review: Path | None = None
    rows_filled: int | None = None
    rows_added: int | None = None
    conflicts: int = 0
    dropped: int = 0
    notices: list[str] = field(default_factory=list)


def findings(
    reports_path: str | Path,
    out: str | Path,
    *,
    timepoints_path: str | Path | None = None,
    prefer: str | None = None,
    review: str | Path | None = None,
    reader: Any = None,
) -> FindingsSummary:
    """Read a report table into findings, or fill a timepoint table's imaging columns.

    Without ``timepoints_path`` the output is one findings row per report
    (:func:`flare_ml.reports.read_reports`); with it, the timepoint table with its imaging
    columns filled from the reports (:func:`flare_ml.reports.merge.merge_findings`, whose
    rules ``docs/reports_cli.md`` describes). ``review`` also writes the HTML review page
    (:func:`flare_ml.reports.review.review_page`). Everything is computed before anything
    is written, and each file is staged beside its target and renamed: a bad input writes
    nothing.

    Parameters
    ----------
    reports_path : str or Path
        The report table (CSV or Parquet): ``patient_id``, ``assessment_date``,
        ``text``, optional ``modality``; other columns kept.
    out : str or Path
        The output table (``.csv``, ``.csv.gz``, ``.parquet``, ``.pq``).
    timepoints_path : str or Path, optional
        A timepoint table to fill.
    prefer : {None, "reports", "timepoints"}
        Which side wins a conflict; ``None``: a conflict is an error.
    review : str or Path, optional
        Where to write the review page.
    reader : flare_ml.reports.ReportReader, optional
        A reader to reuse.

    Returns
    -------
    FindingsSummary

    Raises
    ------
    ContractError
        A report or timepoint table that breaks its contract, a conflict, an unknown
        output extension; nothing is written then.

    Examples
    --------
    >>> summary = findings("cohort.reports.csv", "filled.csv",
    ...                    timepoints_path="cohort.csv")  # doctest: +SKIP
    >>> summary.rows_filled, summary.rows_added, summary.conflicts  # doctest: +SKIP
    (1450, 0, 0)

    """
    from flare_ml.data import column_report, read_table, table_format
    from flare_ml.reports import read_reports
    from flare_ml.reports.findings import FINDINGS_UNCERTAIN, MODALITY, TEXT
    from flare_ml.reports.merge import merge_findings
    from flare_ml.reports.review import review_page

    out = Path(out)
    table_format(out)  # an unknown extension is refused before the work
    raw = read_table(ensure_exists(reports_path))
    found = read_reports(raw, reader, source=str(reports_path))
    notices = []
    known = {c.PATIENT_ID, c.ASSESSMENT_DATE, MODALITY, TEXT}
    extra = [str(x) for x in raw.columns if str(x).strip().lower() not in known]
    if extra:
        notices.append("report columns kept unchanged: " + ", ".join(extra))
    summary = FindingsSummary(
        reports=len(found), uncertain=int(found[FINDINGS_UNCERTAIN].sum()), output=out
    )
    table = found
    if timepoints_path is not None:
        timepoints = read_table(ensure_exists(timepoints_path))
        result = merge_findings(timepoints, found, prefer=prefer, source=str(timepoints_path))
        table = result.table
        summary.rows_filled, summary.rows_added = result.rows_filled, result.rows_added
        summary.conflicts, summary.dropped = len(result.conflicts), result.dropped
        notices = [n for n in result.notices if not n.startswith("report columns not")]
        notices += [
            f"timepoint table: {line} (kept in the output)"
            for line in column_report(timepoints.columns).notices()
            if f"'{FINDINGS_UNCERTAIN}'" not in line
        ]
    summary.notices = notices
    page = None
    if review is not None:
        summary.review = Path(review)
        page = review_page(found, title=f"{Path(reports_path).name}: report findings")
    _write_staged(table, out, page, summary.review)
    return summary


def _write_staged(table: pd.DataFrame, out: Path, page: str | None, review: Path | None) -> None:
    """Write the table (and the page) beside their targets, then rename them together."""
    staged: list[tuple[Path, Path]] = []
    try:
        table_tmp = out.with_name(f".{os.getpid()}.staged.{out.name}")
        write_table(table, table_tmp)
        staged.append((table_tmp, out))
        if page is not None and review is not None:
            try:
                fd, name = tempfile.mkstemp(prefix=f".{review.name}.", dir=review.parent)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(page)
            except OSError as exc:
                raise FlareMLError(f"cannot write the review page '{review}': {exc}") from exc
            os.chmod(name, 0o644)
            staged.append((Path(name), review))
        for tmp, target in staged:
            os.replace(tmp, target)
        staged = []
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


@dataclass
class LabelSummary:
    """What ``flare-ml label`` did: the counts it prints and the file it wrote."""

    output: Path
    rule: str
    index_rows: int
    counts: pd.DataFrame
    indeterminate_share: float
    notices: list[str] = field(default_factory=list)


def label(
    input_path: str | Path,
    out: str | Path,
    *,
    rule: str = "pcwg3",
    config_path: str | Path | None = None,
    overwrite: bool = False,
    read_options: ReadOptions | None = None,
) -> LabelSummary:
    """Adjudicate the outcome of every index row (:func:`flare_ml.labels.adjudicate`).

    Reads and validates the table as ``flare-ml validate`` does, labels it by ``rule``
    (numbers from ``config_path``, a YAML file with ``pcwg3`` / ``irecist`` blocks) and
    writes it with ``outcome``, ``label_rule``, ``label_reason`` and
    ``label_confirm_date``. A table that already has outcomes is refused unless
    ``overwrite``. Everything is computed before anything is written; the file is staged
    beside its target and renamed, so a bad input writes nothing.

    Parameters
    ----------
    input_path, out : str or Path
        The timepoint table to read and the labelled table to write (``.csv``,
        ``.csv.gz``, ``.parquet``, ``.pq``).
    rule : {"pcwg3", "irecist"}
        The adjudication rule.
    config_path : str or Path, optional
        A label config YAML (:class:`flare_ml.labels.LabelConfig`).
    overwrite : bool, default False
        Replace outcomes the table already has.
    read_options : flare_ml.data.ReadOptions, optional
        How the input is written.

    Returns
    -------
    LabelSummary

    Raises
    ------
    FlareMLError
        Missing input, a table that breaks the contract, existing outcomes without
        ``overwrite``, a bad config or output extension; nothing is written then.

    Examples
    --------
    >>> summary = label("cohort.csv", "labelled.csv")  # doctest: +SKIP
    >>> summary.rule, round(summary.indeterminate_share, 2)  # doctest: +SKIP
    ('pcwg3/2', 0.25)

    """
    from flare_ml.data import table_format
    from flare_ml.labels import RULES, adjudicate, load_label_config

    out = Path(out)
    table_format(out)  # an unknown extension is refused before the work
    if rule not in RULES:
        raise FlareMLError(f"--rule {rule!r}: choose one of {', '.join(RULES)}")
    config = load_label_config(config_path)
    source = ensure_exists(input_path)
    loaded = read_timepoints(source, options=read_options, require_grouped=False)
    result = adjudicate(
        loaded.table,
        rule,
        config,
        overwrite=overwrite,
        source=str(source),  # type: ignore[arg-type]
    )
    _write_staged(result.table, out, None, None)
    notices = [*loaded.columns.notices(), *result.notices]
    if result.indeterminate:
        notices.append(
            f"{result.indeterminate} index row(s) left without an outcome (indeterminate): "
            "train, adapt and evaluate leave them out of the targets and keep them as "
            "history; calibrate refuses them (thresholds on the confirmed rows alone can "
            "miss the error budget; docs/labels.md)"
        )
    return LabelSummary(
        output=out,
        rule=result.rule,
        index_rows=result.index_rows,
        counts=result.counts,
        indeterminate_share=result.indeterminate_share,
        notices=notices,
    )


# --- records -> timepoint table (flare_ml.records) ------------------------------------


@dataclass
class IngestOutcome:
    """What ``flare-ml ingest`` wrote: the assembled result and where it went."""

    result: Any
    out: Path
    source: str


def ingest_omop(
    db: str | os.PathLike[str], out: Path, *, schema: str | None = None
) -> IngestOutcome:
    """Read an OMOP CDM, assemble its timepoint table and write it atomically.

    Parameters
    ----------
    db : str or PathLike
        A DuckDB file path or a SQLAlchemy URL (:func:`flare_ml.records.omop.read_omop`).
    out : Path
        The table to write (``.csv`` or ``.parquet``); nothing is written when no patient
        can be assembled (a :class:`~flare_ml.errors.ContractError` says why).
    schema : str, optional
        The database schema of the CDM tables.

    Returns
    -------
    IngestOutcome
        ``result`` is the :class:`~flare_ml.records.assemble.IngestResult` (counts and
        drops for the command line).

    """
    from flare_ml.records.omop import read_omop

    table_format(out)  # a bad --out is refused before the database is read
    return _assemble_and_write(read_omop(db, schema=schema), out)


def _assemble_and_write(events: Any, out: str | Path) -> IngestOutcome:
    """The part of every ``ingest``: assemble the table (or say why nobody is left), write it."""
    from flare_ml.records.assemble import assemble_timepoints

    result = assemble_timepoints(events)
    write_table(result.timepoints, out)
    return IngestOutcome(result=result, out=Path(out), source=events.source)


def ingest_fhir(input_path: str | Path, out: str | Path, *, strict: bool = False) -> IngestOutcome:
    """Read FHIR R4 records, assemble the timepoint table and write it atomically.

    ``read_fhir`` -> ``assemble_timepoints`` -> ``write_table``. The output's extension is
    checked before anything is read; nothing is written when reading or assembling fails
    (a :class:`~flare_ml.errors.FlareMLError` naming the file, resource or rule) or when no
    patient is left.

    Returns
    -------
    IngestOutcome
        ``result`` is the :class:`~flare_ml.records.assemble.IngestResult`: the table
        (``.timepoints``), what was dropped and why (``.dropped``) and the summary lines
        the command prints (``.summary()``).

    """
    from flare_ml.data import table_format
    from flare_ml.records.fhir import read_fhir

    table_format(out)
    return _assemble_and_write(read_fhir(input_path, strict=strict), out)


@dataclass
class RecordsStory:
    """What ``flare-ml demo --from-records`` did, step by step, and where it wrote."""

    steps: list[tuple[str, list[str]]]
    table: pd.DataFrame
    folder: Path


def records_story(
    output_dir: str | Path,
    *,
    site: str = "community",
    patients: int = 300,
    seed: int = 2026,
    heldout_patients: int = 2000,
    n_resamples: int = 200,
) -> RecordsStory:
    """From a simulated site's OMOP records to an adapted model, every step reported.

    Simulates ``patients`` patients at ``site`` (with confirmation scans) and writes them as
    an OMOP CDM DuckDB file, ingests it (:func:`ingest_omop`), adjudicates the outcomes
    from follow-up (:func:`label`, PCWG3), compares the labels with the simulator's true
    outcomes, adapts the literature prior on the labelled table (:func:`adapt`) and
    evaluates the prior and the adapted model on ``heldout_patients`` fresh simulated
    patients of the same site (another seed; the simulator's outcomes). Everything is
    written under ``output_dir/records``.

    Returns
    -------
    RecordsStory
        The steps, each with the lines the command prints, and the evaluation table.

    Examples
    --------
    >>> story = records_story("outputs/latest")  # doctest: +SKIP

    """
    from flare_ml.simulate import simulate_cohort, write_cohort
    from flare_ml.simulate.omop import write_omop

    folder = Path(output_dir) / "records"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    steps: list[tuple[str, list[str]]] = []
    cohort = simulate_cohort(patients, site=site, seed=seed, confirmation_scans=True)
    db = write_omop(cohort, folder / f"{site}.duckdb")
    tp = cohort.timepoints
    steps.append(
        (
            "records",
            [
                f"simulated site {site} ({patients} patients, seed {seed}, confirmation scans) "
                f"written as an OMOP CDM 5.4 DuckDB file: {db}",
                f"{int((tp[c.ROW_TYPE] == 'imaging').sum())} radiology reports in NOTE, "
                f"{len(cohort.labs)} ALP results in MEASUREMENT; no outcome column anywhere",
            ],
        )
    )
    ingested = ingest_omop(db, folder / "ingested.parquet")
    steps.append(("ingest", [str(line) for line in ingested.result.summary()]))
    labelled = label(ingested.out, folder / "labelled.parquet")
    truth = cohort.oracle[[c.PATIENT_ID, c.ASSESSMENT_DATE, "true_outcome"]]
    table = read_table(labelled.output)
    got = table[table[c.OUTCOME].notna()][[c.PATIENT_ID, c.ASSESSMENT_DATE, c.OUTCOME]]
    got = got.assign(**{c.ASSESSMENT_DATE: pd.to_datetime(got[c.ASSESSMENT_DATE])})
    both = got.merge(
        truth.assign(**{c.ASSESSMENT_DATE: pd.to_datetime(truth[c.ASSESSMENT_DATE])}),
        on=[c.PATIENT_ID, c.ASSESSMENT_DATE],
    )
    agree = float((both[c.OUTCOME] == both["true_outcome"]).mean()) if len(both) else np.nan
    lines = [
        f"{labelled.index_rows} index rows adjudicated by {labelled.rule}; "
        f"{labelled.indeterminate_share:.1%} left indeterminate (not used for training)"
    ]
    lines += [f"{r.outcome:<13} {r.reason:<34} {int(r.n):>5}" for r in labelled.counts.itertuples()]
    lines.append(
        f"labels agree with the simulator's true outcome on {agree:.1%} of {len(both)} "
        "labelled index rows (a real site cannot measure this)"
    )
    steps.append(("label", lines))
    adapted = adapt(PRIOR_MODEL, labelled.output, folder / "adapted-model", seed=seed)
    steps.append(
        (
            "adapt",
            [
                f"the literature prior adapted on {adapted.label}: chose "
                f"{adapted.adaptation.chosen}",
                *(f"note: {n}" for n in adapted.notices),
                f"model folder {adapted.bundle_dir}",
            ],
        )
    )
    heldout = write_cohort(
        simulate_cohort(heldout_patients, site=site, seed=seed + 1),
        folder / f"heldout_{site}.parquet",
    )["timepoints"]
    rows = []
    for name, uri in (
        ("literature prior, out of the box", PRIOR_MODEL),
        ("prior adapted on the ingested, adjudicated records", str(adapted.bundle_dir)),
    ):
        result = evaluate(uri, heldout, n_resamples=n_resamples, seed=seed)
        ev, decisions = result["evaluation"], result["decision_tables"][0]
        rate = decisions.rates()
        rows.append(
            {
                **_story_row(name, ev, "xgboost"),
                "progressions decided flare": f"{rate.iloc[0]['rate']:.1%} "
                f"{rate.iloc[0]['status']}",
                "uncertain": f"{rate.iloc[2]['rate']:.1%}",
            }
        )
    story = pd.DataFrame(rows)
    steps.append(
        (
            "evaluate",
            [
                f"on simulated site {site} ({heldout_patients} patients, seed {seed + 1}; the "
                "simulator's outcomes):",
                *story.to_string(index=False).splitlines(),
            ],
        )
    )
    return RecordsStory(steps=steps, table=story, folder=folder)
