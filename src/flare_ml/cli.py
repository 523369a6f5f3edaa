"""The ``flare-ml`` command line: thin verbs over the library.

Each command parses its options, calls one library function and prints the result with
rich. Expected user errors (a table that breaks the data contract, a bad config, a missing
file) are printed as a clear message without a traceback and exit with status 2; nothing is
half-written because the library writes outputs atomically.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from flare_ml import __version__
from flare_ml.errors import FlareMLError

#: ``-h`` is ``--help`` on the app and on every command (click passes it down)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

#: the model a command uses when ``--model`` is not given
DEFAULT_MODEL = "models:/flare-classifier/latest"
#: the registered-model alias that ``flare-ml demo`` (``make demo``) points at its model
DEMO_ALIAS = "champion"

app = typer.Typer(
    name="flare-ml",
    help="Tell bone flare from true bone progression in oncology timepoint tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # reflow docstring paragraphs to the terminal width; markdown reads `<id>` as an HTML
    # tag, so help texts put such placeholders in backticks
    rich_markup_mode="markdown",
    context_settings=CONTEXT_SETTINGS,
)
# rich wraps at 80 columns when output is not a terminal (a log, a pipe); tables of
# metrics read better a little wider there
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors_exit_2(func: F) -> F:
    """Print a :class:`~flare_ml.errors.FlareMLError` as a message and exit with status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FlareMLError as exc:
            err_console.print(
                f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"flare-ml {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version (flare-ml VERSION) and exit.",
        ),
    ] = False,
) -> None:
    """Tell bone flare from true bone progression in oncology timepoint tables."""
    # MLflow's INFO lines (creating tables, validating the input example) are not for
    # this command's reader; its warnings and errors still show. MLflow reads the variable
    # when it is imported (later, by the command); a level the user set is kept.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


#: ``--model`` of every command that uses a trained model
ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help="Model URI (`models:/NAME/VERSION`, `runs:/<id>/model`), MLflow model folder, "
        "bundle folder, or `prior` (the literature prior shipped in the package).",
    ),
]


def _plural(count: int, word: str) -> str:
    """Return ``"1 chunk"``, ``"2 chunks"``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _at_least(minimum: int) -> Callable[[int], int]:
    """Check an integer option in a callback (``min=`` would widen the type column)."""

    def check(value: int) -> int:
        if value < minimum:
            raise typer.BadParameter(f"{value} is less than {minimum}.")
        return value

    return check


# Commands are added below, one function each, by the modules' owners.


@app.command()
@user_errors_exit_2
def simulate(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output table (.csv or .parquet); with --format omop a .duckdb file, with "
            "--format fhir a directory.",
        ),
    ],
    patients: Annotated[int, typer.Option("--patients", min=1, help="Number of patients.")] = 2000,
    site: Annotated[
        str, typer.Option("--site", help="Site profile name or YAML path.")
    ] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    reports: Annotated[
        bool,
        typer.Option(
            "--reports", help="Also write a radiology report per scan (NAME.reports.EXT)."
        ),
    ] = False,
    bone_scan_share: Annotated[
        float,
        typer.Option(
            "--bone-scan-share",
            min=0.0,
            max=1.0,
            help="With --reports: share of follow-up scans reported as bone scans.",
        ),
    ] = 0.3,
    confirmation_scans: Annotated[
        bool,
        typer.Option(
            "--confirmation-scans",
            help="Give lines that end at a progression index a confirmation scan 6-16 "
            "weeks later (for `flare-ml label`); rows of the cohort without them unchanged. "
            "Always on with --format omop or fhir (records are for labelling).",
        ),
    ] = False,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="`table` (the timepoint table, its oracle and lab table), `omop` (an OMOP "
            "CDM 5.4 DuckDB file at --out, which must not exist: NAME.duckdb) or `fhir` "
            "(FHIR R4 bulk NDJSON records in the --out directory); records hold the reports.",
        ),
    ] = "table",
) -> None:
    """Simulate a synthetic cohort at a site; write the table, its oracle and its lab table.

    With --reports, also the report table (patient_id, assessment_date, modality, text).
    With --format omop, --out is an OMOP CDM 5.4 DuckDB file holding the cohort's records;
    with --format fhir, a directory of FHIR R4 NDJSON records (for `flare-ml ingest`).
    """
    from flare_ml.simulate import simulate_cohort, write_cohort

    if output_format not in ("table", "omop", "fhir"):
        raise typer.BadParameter(
            f"{output_format!r} is not one of table, omop, fhir", param_hint="--format"
        )
    records = output_format != "table"
    if output_format == "omop" and out.suffix.lower() not in (".duckdb", ".db"):
        raise typer.BadParameter(
            f"--format omop writes a DuckDB file: name it .duckdb, not {out.name!r}",
            param_hint="--out",
        )
    if output_format == "fhir" and out.suffix.lower() in (".csv", ".gz", ".parquet", ".pq"):
        raise typer.BadParameter(
            f"--format fhir writes a folder of NDJSON files, not a table: {out.name!r}",
            param_hint="--out",
        )
    if output_format == "omop" and out.exists():
        raise FlareMLError(f"--out {out} exists; choose a new file or remove it first")
    cohort = simulate_cohort(
        patients, site=site, seed=seed, confirmation_scans=confirmation_scans or records
    )
    if output_format == "fhir":
        _simulate_fhir(cohort, out, seed, bone_scan_share)
        return
    tp = cohort.timepoints
    if output_format == "omop":
        from flare_ml.simulate.omop import write_omop

        written = write_omop(cohort, out, bone_scan_share=bone_scan_share)
        console.print(
            f"simulated [bold]{tp['patient_id'].nunique()}[/bold] synthetic patients at site "
            f"[bold]{cohort.site.name}[/bold] (seed {seed}) as an OMOP CDM 5.4 database "
            f"({int((tp['row_type'] == 'imaging').sum())} reports in NOTE)"
        )
        console.print(f"  omop        {written}", highlight=False, soft_wrap=True)
        return
    paths = write_cohort(cohort, out)
    if reports:
        from flare_ml.simulate.reports import write_reports

        paths["reports"] = write_reports(tp, out, seed=seed, bone_scan_share=bone_scan_share)
    n_index = int(tp["outcome"].notna().sum())
    console.print(
        f"simulated [bold]{tp['patient_id'].nunique()}[/bold] synthetic patients at site "
        f"[bold]{cohort.site.name}[/bold] (seed {seed}): {len(tp)} rows, {n_index} index rows"
    )
    for what, path in paths.items():
        console.print(f"  {what:<11} {path}")


def _simulate_fhir(cohort: Any, out: Path, seed: int, bone_scan_share: float) -> None:
    """Write a simulated cohort as FHIR R4 NDJSON records (``simulate --format fhir``)."""
    from flare_ml.simulate.fhir import write_fhir

    tp = cohort.timepoints
    export = write_fhir(cohort, None, out, bone_scan_share=bone_scan_share)
    console.print(
        f"simulated [bold]{tp['patient_id'].nunique()}[/bold] synthetic patients at site "
        f"[bold]{cohort.site.name}[/bold] (seed {seed}) as FHIR R4 NDJSON in {export.directory}"
    )
    for what, count in export.counts.items():
        console.print(f"  {what:<30} {count}")
    _print_notices(export.notes)


# --- how input files are written (validate and score) ----------------------------------
SepOption = Annotated[
    str | None,
    typer.Option(
        "--sep",
        help="CSV delimiter: ',', ';', tab (or '\\t'), '|' ... Default: detected from the "
        "header line (comma, semicolon or tab).",
    ),
]
DateFormatOption = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="Format of non-ISO dates, e.g. %d/%m/%Y (ISO YYYY-MM-DD is always read).",
    ),
]
DayfirstOption = Annotated[
    bool,
    typer.Option("--dayfirst", help="Read dates like 03/10/2021 day first (3 October)."),
]
DecimalOption = Annotated[
    str, typer.Option("--decimal", help="Decimal mark of numbers, e.g. ',' for 123,5.")
]
LabsOption = Annotated[
    Path | None,
    typer.Option(
        "--labs",
        help="Long lab table (patient_id, sample_date, test, value, unit); its ALP samples "
        "replace alp_u_l.",
    ),
]
WindowDaysOption = Annotated[
    int,
    typer.Option(
        "--window-days",
        callback=_at_least(0),  # not min=0: see MaxProgressionCalledFlare
        help="Oldest ALP sample used, in days before (0 or more).",
    ),
]
ColumnsOption = Annotated[
    Path | None,
    typer.Option(
        "--columns",
        help="YAML file mapping the file's column names to contract names "
        "(e.g. `ALP (U/L): alp_u_l`).",
    ),
]


def _read_options(
    sep: str | None, date_format: str | None, dayfirst: bool, decimal: str, columns: Path | None
) -> Any:
    from flare_ml.data import ReadOptions

    return ReadOptions(sep, date_format, dayfirst, decimal, columns)


def _print_notices(notices: list[str]) -> None:
    for line in notices:
        err_console.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)


@app.command()
@user_errors_exit_2
def validate(
    path: Annotated[Path, typer.Argument(help="Timepoint table (.csv, .csv.gz, .parquet or .pq).")],
    labs: LabsOption = None,
    window_days: WindowDaysOption = 30,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
    dayfirst: DayfirstOption = False,
    decimal: DecimalOption = ".",
    columns: ColumnsOption = None,
) -> None:
    """Check a timepoint table against the data contract and print a cohort summary.

    With --labs, alp_u_l is replaced by the latest ALP sample of the lab table at or
    before each assessment, within --window-days. Problems are listed all at once (column,
    rule, offending rows) and the command exits with status 2. A column outside the
    contract is reported and ignored, unless it is a close misspelling of a contract
    column the file lacks (an error); each patient's rows must be contiguous, as
    `flare-ml score` requires.
    """
    import dataclasses

    from flare_ml.data import attach_alp, read_lab_table, read_timepoints, summarize_cohort
    from flare_ml.data.contract import ALP_U_L

    options = _read_options(sep, date_format, dayfirst, decimal, columns)
    loaded = read_timepoints(path, options=options)
    table, report = loaded.table, loaded.columns
    if labs is not None:
        table = attach_alp(table, read_lab_table(labs), window_days=window_days, source=str(labs))
        report = dataclasses.replace(report, absent=tuple(x for x in report.absent if x != ALP_U_L))
    _print_notices(report.notices())
    summary = summarize_cohort(table, columns=report)
    console.print(summary.to_rich_table(title=f"{path.name}: valid timepoint table"))


@app.command()
@user_errors_exit_2
def features(
    input_path: Annotated[
        Path,
        typer.Option("--input", help="Timepoint table (.csv, .csv.gz, .parquet or .pq)."),
    ],
    output_path: Annotated[
        Path,
        typer.Option("--output", help="Feature table to write (.csv, .csv.gz, .parquet or .pq)."),
    ],
) -> None:
    """Compute the point-in-time features of every index row and write them as a table.

    The input is validated first. The output has one row per index row (an imaging
    assessment with new bone lesions): patient_id and assessment_date, then the features.
    """
    from flare_ml.data import load_timepoints, table_format, write_table
    from flare_ml.features import TimepointFeaturizer

    table_format(output_path)  # an unknown extension fails before any work
    table = load_timepoints(input_path)
    result = TimepointFeaturizer().fit_transform(table)
    written = write_table(result.reset_index(), output_path)
    console.print(
        f"wrote [bold]{len(result)}[/bold] index rows x {result.shape[1]} features to {written}"
    )


class _RichProgress:
    """Adapter from the library's ``progress(step, done, total)`` to rich progress bars."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.tasks[step], completed=done, total=total)


def _progress_bar() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def _print_table(frame: Any, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[escape(str(v)) for v in row])
    console.print(table)


def _print_coverage(coverage: Any) -> None:
    from flare_ml.tracking import cohort_key

    frame = coverage.copy()
    frame["cohort"] = frame["cohort"].map(cohort_key)
    frame = frame[
        [
            "cohort",
            "thresholds",
            "coverage_flare",
            "coverage_progression",
            "uncertain_fraction",
            "both classes within 0.02",
        ]
    ]
    frame.columns = ["cohort", "thresholds", "flare", "progression", "uncertain", "within 0.02"]
    flare, prog = (float(coverage[f"target_{k}"].iloc[0]) for k in ("flare", "progression"))
    _print_table(
        frame,
        f"Conformal coverage (external), target flare {flare:.0%}, progression {prog:.0%}: "
        "shipped training thresholds vs recalibrated on the site (`flare-ml calibrate`)",
    )


def _rate_text(row: Any) -> str:
    text = f"{row['rate']:.1%} [{100 * row['ci_low']:.1f}-{100 * row['ci_high']:.1f}]"
    return f"{text} {row['status']}" if row["status"] else text


def _print_decisions(tables: list[Any], title: str) -> None:
    """Decisions against outcomes: realised rates with CIs and the budget's verdict."""
    from flare_ml.tracking import cohort_key

    if not tables:
        return
    budget = tables[0].budget
    rows = []
    for t in tables:
        r = t.rates()
        rows.append(
            {
                "cohort": cohort_key(t.cohort) if t.cohort else "",
                "thresholds": t.thresholds,
                "progressions called flare": _rate_text(r.iloc[0]),
                "flares called progression": _rate_text(r.iloc[1]),
                "uncertain": f"{r.iloc[2]['rate']:.1%}",
            }
        )
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame = frame[[col for col in frame if frame[col].astype(str).str.len().gt(0).any()]]
    limit = f" (budget: {budget.describe()})" if budget is not None else ""
    _print_table(frame, f"{title}{limit}")


def _print_training(outcome: Any) -> None:
    from flare_ml.report import compact_headline

    _print_table(
        compact_headline(outcome.headline),
        "Headline: model vs rules vs oracle (SYNTHETIC cohorts; not for clinical use)",
    )
    for label in outcome.headline["cohort"].unique():
        console.print(f"  {label}")
    if outcome.targets is not None and len(outcome.targets):
        from flare_ml.tracking import cohort_key

        targets = outcome.targets.copy()
        targets["cohort"] = targets["cohort"].map(cohort_key)
        targets.columns = [str(c).split(" (")[0] for c in targets.columns]
        _print_table(
            targets,
            "Targets (external): gap to oracle <= 0.03, margin over best "
            "rule >= 0.05, calibration slope 0.8-1.2",
        )
    _print_decisions(
        outcome.decision_tables,
        "Decisions against outcomes, index assessments, Wilson 95% CI",
    )
    if outcome.coverage is not None and len(outcome.coverage):
        _print_coverage(outcome.coverage)
    console.print(f"report      {outcome.report}")
    console.print(f"model card  {outcome.model_card}")
    console.print(f"model       {outcome.model_uri} (bundle: {outcome.bundle_dir})")
    if outcome.registered_version:
        name = outcome.registered_name
        console.print(
            f"registered  models:/{name}/{outcome.registered_version} "
            f"(also models:/{name}/latest"
            + (f", models:/{name}@{outcome.alias}" if outcome.alias else "")
            + ")"
        )
    console.print(
        f"MLflow      {outcome.tracking_uri} (run {outcome.run_id}); browse with `mlflow ui "
        f"--backend-store-uri {outcome.tracking_uri}`"
    )


@app.command()
@user_errors_exit_2
def train(
    config: Annotated[
        Path | None, typer.Option("--config", help="Training config YAML (default: shipped).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled timepoint table; default: simulate.")
    ] = None,
    external: Annotated[
        list[Path] | None,
        typer.Option("--external", help="Labelled external cohort (repeatable)."),
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option(
            "--alias",
            metavar="NAME",
            help="Point this alias of the registered model at the new version "
            "(e.g. champion; `make demo` sets champion).",
        ),
    ] = None,
) -> None:
    """Train, cross-validate and externally validate the model; log it to MLflow."""
    from flare_ml.workflows import train as run_train

    with _progress_bar() as bar:
        outcome = run_train(config, data, external, progress=_RichProgress(bar), alias=alias)
    _print_training(outcome)


@app.command()
@user_errors_exit_2
def evaluate(
    *,  # keyword-only, so --model (with its default) stays first in the help
    model: ModelOption = DEFAULT_MODEL,
    data: Annotated[Path, typer.Option("--data", help="Labelled timepoint table.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the report and tables.")
    ] = None,
    resamples: Annotated[
        int,
        typer.Option(
            "--resamples",
            callback=_at_least(0),  # not min=0: see MaxProgressionCalledFlare
            help="Bootstrap resamples (by patient) for the confidence intervals.",
        ),
    ] = 1000,
) -> None:
    """Evaluate a trained model and the rule baselines on a labelled cohort."""
    from flare_ml.workflows import ensure_exists
    from flare_ml.workflows import evaluate as run_evaluate

    ensure_exists(data)
    result = run_evaluate(model, data, out, n_resamples=resamples)
    _print_notices(result["notices"])
    summary = result["evaluation"].summary_table()
    summary["threshold"] = summary["threshold"].astype(float).round(3)
    _print_table(
        summary,
        f"{result['label']} (SYNTHETIC unless you supplied real data; not for clinical use)",
    )
    _print_decisions(
        result["decision_tables"],
        "Decisions against outcomes, index assessments, Wilson 95% CI",
    )
    for key, source in (
        ("coverage", "model's thresholds"),
        ("site_coverage", "recalibrated on this cohort, cross-fitted estimate"),
    ):
        cov = result.get(key)
        if cov is not None:
            console.print(
                f"conformal coverage ({source}): {cov['coverage']:.3f} (flare "
                f"{cov['coverage_flare']:.3f}, progression {cov['coverage_progression']:.3f}); "
                f"uncertain decisions {cov['uncertain_fraction']:.1%}"
            )
    if result["written"] is not None:
        console.print(f"report      {result['written'].report}")
        console.print(f"predictions {Path(result['written'].report).parent / 'predictions.csv'}")


def _share_in_range(value: float | None) -> float | None:
    if value is not None and not 0.005 <= value <= 0.3:
        raise typer.BadParameter(f"{value} is not between 0.005 and 0.3.")
    return value


# checked by a callback, not min/max: typer would print the range in the type column and
# squeeze every option's help text at 80 columns
MaxProgressionCalledFlare = Annotated[
    float | None,
    typer.Option(
        "--max-progression-called-flare",
        callback=_share_in_range,
        rich_help_panel="Error budget",
        help="Share of true progressions that may be decided flare, 0.005 to 0.3 "
        "(default: the model's budget, usually 0.05).",
    ),
]


@app.command()
@user_errors_exit_2
def calibrate(
    *,
    model: ModelOption = DEFAULT_MODEL,
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="The site's labelled timepoint table (outcome on every index row)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the recalibrated model.")],
    max_progression_called_flare: MaxProgressionCalledFlare = None,
    max_flare_called_progression: Annotated[
        float | None,
        typer.Option(
            "--max-flare-called-progression",
            callback=_share_in_range,
            rich_help_panel="Error budget",
            help="Share of true flares that may be decided progression, 0.005 to 0.3 "
            "(default: the model's budget, usually 0.10).",
        ),
    ] = None,
    register: Annotated[
        str | None,
        typer.Option("--register", help="Also log to MLflow and register under this name."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a model folder already at --out.")
    ] = False,
) -> None:
    """Recalibrate the decisions on a site's own labelled patients.

    Keeps the trees and probability calibration; refits the class-conditional conformal
    thresholds (hence the decision column) on the site's index assessments for the
    model's error budget (or the one given), prints the coverage the old thresholds gave
    there and the coverage to expect from the new ones (cross-fitted), and writes the
    new model folder (usable with --model anywhere).
    """
    from flare_ml.workflows import calibrate as run_calibrate

    outcome = run_calibrate(
        model,
        data,
        out,
        max_progression_called_flare=max_progression_called_flare,
        max_flare_called_progression=max_flare_called_progression,
        register_as=register,
        overwrite=force,
    )
    site = outcome.calibration
    table = site.summary().round(3).reset_index(names="thresholds")
    target = site.bundle.conformal.class_coverage
    _print_table(
        table,
        f"Conformal coverage on {site.label}, target flare {target['flare']:.0%}, "
        f"progression {target['progression']:.0%} (SYNTHETIC unless you supplied real data)",
    )
    console.print(f"decision policy: {site.bundle.conformal.budget.describe()}")
    counts = ", ".join(f"{n} {k}" for k, n in site.n_calibration.items())
    spread = ", ".join(f"{k} ±{s:.3f}" for k, s in site.expected_spread().items())
    console.print(
        f"calibrated on {counts} index assessments; on new patients of this site the "
        f"coverage of these thresholds varies with the sample by about {spread} (one SD)"
    )
    thresholds = site.thresholds
    console.print(
        f"flare in the set when p_flare >= {1 - thresholds['flare']:.3f}; progression when "
        f"p_flare <= {thresholds['progression']:.3f}"
    )
    console.print(f"model       {outcome.bundle_dir}")
    model_ref = str(outcome.bundle_dir)
    if outcome.model_uri:
        model_ref = outcome.model_uri
        console.print(f"registered  {outcome.model_uri}")
    console.print(f"score with  flare-ml score --model {model_ref} --input ... --output ...")


@app.command()
@user_errors_exit_2
def adapt(
    *,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="The site's labelled timepoint table (outcome on every index row; rows "
            "`flare-ml label` left indeterminate are left out).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the adapted model.")],
    prior: Annotated[
        str,
        typer.Option(
            "--prior",
            help="The model to adapt: `prior` (the shipped literature prior) or any model "
            "URI, MLflow model folder or bundle folder that --model takes.",
        ),
    ] = "prior",
    register: Annotated[
        str | None,
        typer.Option("--register", help="Also log to MLflow and register under this name."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every fold and fit.")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a model folder already at --out.")
    ] = False,
) -> None:
    """Adapt a prior model to a site's own labelled patients.

    Compares, by patient-grouped repeated cross-validation on the site, the prior as is,
    recalibration (intercept; intercept and slope), residual boosting on the prior's
    log-odds and a full refit; keeps the simplest within one standard error of the best
    log loss; prints the table and the choice, and writes the adapted model folder
    (usable with --model anywhere). Its decision thresholds are cross-conformal on the
    site (docs/adapt.md).
    """
    from flare_ml.workflows import adapt as run_adapt

    outcome = run_adapt(prior, data, out, register_as=register, seed=seed, overwrite=force)
    result = outcome.adaptation
    counts = result.counts
    _print_table(
        result.summary(),
        f"Site adaptation on {outcome.label} ({counts['patients']} patients, "
        f"{counts['index_rows']} index rows, {counts['flares']} flares): patient-grouped "
        "cross-validation (SYNTHETIC unless you supplied real data)",
    )
    console.print(f"chosen      {result.chosen}: {result.reason}")
    bundle = result.bundle
    console.print(
        f"thresholds  cross-conformal on the site ({len(result.conformal_choices)} folds; "
        f"the procedure chose {', '.join(result.conformal_choices)}); "
        f"{bundle.conformal.budget.describe()}"
    )
    console.print(f"time        {result.seconds:.1f} s")
    _print_notices(outcome.notices)
    console.print(f"model       {outcome.bundle_dir}")
    model_ref = str(outcome.bundle_dir)
    if outcome.model_uri:
        model_ref = outcome.model_uri
        console.print(f"registered  {outcome.model_uri}")
    console.print(f"score with  flare-ml score --model {model_ref} --input ... --output ...")


@app.command()
@user_errors_exit_2
def score(
    *,
    model: ModelOption = DEFAULT_MODEL,
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            help="Timepoint table to score (.parquet, .csv, .csv.gz); each patient's rows "
            "contiguous (sorted by patient_id, assessment_date).",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            help="Predictions (.parquet, .csv or .csv.gz). CSV gives p_flare 6 significant "
            "digits; Parquet keeps full float64 precision.",
        ),
    ],
    no_reasons: Annotated[
        bool, typer.Option("--no-reasons", help="Skip the reasons (SHAP); faster.")
    ] = False,
    chunk_rows: Annotated[
        int,
        typer.Option(
            "--chunk-rows",
            callback=_at_least(1),  # not min=1: see MaxProgressionCalledFlare
            help="Rows read at a time (at least 1); memory is bounded by this.",
        ),
    ] = 200_000,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
    dayfirst: DayfirstOption = False,
    decimal: DecimalOption = ".",
    columns: ColumnsOption = None,
    labs: LabsOption = None,
    window_days: WindowDaysOption = 30,
    max_progression_called_flare: MaxProgressionCalledFlare = None,
) -> None:
    """Write p_flare, decision, prediction set and reasons for every index row.

    decision = flare keeps the model's error budget (by default at most 5% of true
    progressions decided flare, on patients like its calibration patients);
    --max-progression-called-flare tightens it. The file is streamed in chunks of whole
    patients; the output appears only when every chunk was scored, with OUTPUT.json
    beside it (model, version, decision policy). Rows that break the data contract stop
    the command with a message and exit status 2, leaving no output. When the input
    records outcomes, decisions are shown against them.
    """
    from flare_ml.workflows import ensure_exists
    from flare_ml.workflows import score as run_score

    ensure_exists(input)
    options = _read_options(sep, date_format, dayfirst, decimal, columns)
    with _progress_bar() as bar:
        summary = run_score(
            model,
            input,
            output,
            with_reasons=not no_reasons,
            chunk_rows=chunk_rows,
            progress=_RichProgress(bar),
            read_options=options,
            max_progression_called_flare=max_progression_called_flare,
            labs_path=labs,
            window_days=window_days,
        )
    _print_notices(summary.notices)
    console.print(summary.to_rich_table(title=f"{escape(input.name)}: scored"))
    table = summary.decision_table()
    if table is not None:
        _print_decisions([table], "Decisions against the outcomes recorded in the input")
    elif summary.budget is not None:
        console.print(f"decision policy: {summary.budget.describe()}", highlight=False)
    console.print(
        f"wrote {_plural(summary.index_rows, 'prediction')} to {escape(str(summary.output))} "
        f"(read in {_plural(summary.chunks, 'chunk')}); metadata in "
        f"{escape(str(summary.metadata))}",
        highlight=False,
        soft_wrap=True,
    )


def _prefer(value: str | None) -> str | None:
    if value is not None and value not in ("reports", "timepoints"):
        raise typer.BadParameter(f"{value!r} is not one of 'reports', 'timepoints'.")
    return value


@app.command()
@user_errors_exit_2
def findings(
    *,
    reports: Annotated[
        Path,
        typer.Option(
            "--reports",
            help="Report table (.csv, .csv.gz, .parquet): patient_id, assessment_date, text, "
            "optional modality; other columns kept.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output table (.csv, .csv.gz, .parquet or .pq).")
    ],
    timepoints: Annotated[
        Path | None,
        typer.Option(
            "--timepoints",
            help="Timepoint table whose imaging columns the reports fill; the output is "
            "that table, filled.",
        ),
    ] = None,
    prefer: Annotated[
        str | None,
        typer.Option(
            "--prefer",
            callback=_prefer,
            help="`reports` or `timepoints`: which side wins where a filled timepoint "
            "value differs from its report (default: that is an error).",
        ),
    ] = None,
    review: Annotated[
        Path | None,
        typer.Option("--review", help="Also write a self-contained HTML review page."),
    ] = None,
) -> None:
    """Read radiology reports into the contract's imaging findings.

    Without --timepoints, writes one row per report: the imaging columns,
    findings_uncertain and the evidence (JSON). With --timepoints, fills that table's
    imaging columns, matching reports on (patient_id, assessment_date): a report with no
    row becomes a new imaging row, a report of a patient the table lacks is dropped and
    reported, and a filled value that differs from the report is an error naming the rows
    unless --prefer is given. Bad input (no text column, empty text, unparseable dates)
    exits with status 2 and writes nothing.
    """
    from flare_ml.workflows import findings as run_findings

    summary = run_findings(reports, out, timepoints_path=timepoints, prefer=prefer, review=review)
    _print_notices(summary.notices)
    parts = [f"{_plural(summary.reports, 'report')} read"]
    if summary.rows_filled is not None:
        parts.append(f"{_plural(summary.rows_filled, 'row')} filled")
        parts.append(f"{_plural(summary.rows_added or 0, 'row')} added")
    parts.append(f"{summary.uncertain} with uncertain new lesions")
    if summary.rows_filled is not None:
        resolved = f" (kept the {prefer}' values)" if summary.conflicts else ""
        parts.append(f"{_plural(summary.conflicts, 'conflict')}{resolved}")
        if summary.dropped:
            parts.append(f"{_plural(summary.dropped, 'report')} dropped")
    console.print("; ".join(parts), highlight=False, soft_wrap=True)
    console.print(f"wrote {escape(str(summary.output))}", highlight=False, soft_wrap=True)
    if summary.review is not None:
        console.print(f"review page: {escape(str(summary.review))}", highlight=False)


@app.command()
@user_errors_exit_2
def label(
    *,
    input: Annotated[
        Path, typer.Option("--input", help="Timepoint table (.csv, .csv.gz, .parquet or .pq).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Labelled table to write (.csv, .csv.gz, .parquet, .pq).")
    ],
    rule: Annotated[
        str, typer.Option("--rule", help="Adjudication rule: `pcwg3` (default) or `irecist`.")
    ] = "pcwg3",
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML with `pcwg3:` / `irecist:` blocks of numbers."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace outcomes the table already has.")
    ] = False,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
    dayfirst: DayfirstOption = False,
    decimal: DecimalOption = ".",
    columns: ColumnsOption = None,
) -> None:
    """Adjudicate each index row's outcome from follow-up imaging (PCWG3 2+2 or iRECIST).

    Writes the table with outcome (flare, progression, or empty when indeterminate),
    label_rule, label_reason and label_confirm_date on index rows, and prints the counts
    per outcome and reason. Only imaging findings are read (not ALP or clinical
    deterioration, which are model inputs). Rules and numbers: docs/labels.md. A table
    that breaks the contract, or already has outcomes without --overwrite, exits with
    status 2 and writes nothing.
    """
    from flare_ml.workflows import label as run_label

    options = _read_options(sep, date_format, dayfirst, decimal, columns)
    summary = run_label(
        input, out, rule=rule, config_path=config, overwrite=overwrite, read_options=options
    )
    _print_notices(summary.notices)
    console.print(
        f"{_plural(summary.index_rows, 'index row')} adjudicated by {escape(summary.rule)}; "
        f"indeterminate share {summary.indeterminate_share:.1%}",
        highlight=False,
        soft_wrap=True,
    )
    for outcome, group in summary.counts.groupby("outcome", sort=True):
        console.print(f"  {outcome:<13} {int(group['n'].sum()):>7}", highlight=False)
        for row in group.itertuples(index=False):
            console.print(f"    {row.reason:<34} {int(row.n):>7}", highlight=False)
    console.print(f"wrote {escape(str(summary.output))}", highlight=False, soft_wrap=True)


@app.command()
@user_errors_exit_2
def timeline(
    *,
    input: Annotated[
        Path, typer.Option("--input", help="Timepoint table (.parquet, .csv, .csv.gz).")
    ],
    patient: Annotated[str, typer.Option("--patient", help="The patient_id to draw.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="PATH.png (the figure) or PATH.html (figure and index-scan table)."
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model to score the index scans with (URI, MLflow model folder or bundle "
            "folder), e.g. `models:/flare-classifier/latest`. Default: none, the figure "
            "shows the data only.",
        ),
    ] = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
    dayfirst: DayfirstOption = False,
    decimal: DecimalOption = ".",
    columns: ColumnsOption = None,
) -> None:
    """Draw one patient's course: ALP, scans, new bone lesions, P(flare) and decision.

    Weeks since treatment start on a shared axis: the ALP course (lab and imaging rows,
    U/L, with the upper limit of normal), every scan with its RECIST response, the new
    bone lesions by morphology, the index scans with the recorded outcome and, with
    --model, P(flare), the decision and the top reasons. How to read it: docs/timeline.md.
    """
    from flare_ml.workflows import timeline as run_timeline

    options = _read_options(sep, date_format, dayfirst, decimal, columns)
    outcome = run_timeline(input, patient, out, model_uri=model, read_options=options)
    _print_notices(outcome.notices)
    scored = "with P(flare) and decisions" if outcome.scored else "data only, no --model"
    console.print(
        f"wrote the timeline of patient {escape(outcome.patient_id)} "
        f"({_plural(outcome.index_rows, 'index scan')}; {scored}) to "
        f"{escape(str(outcome.path))} (SYNTHETIC unless you supplied real data)",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@user_errors_exit_2
def demo(
    config: Annotated[
        Path | None, typer.Option("--config", help="Training config YAML (default: shipped).")
    ] = None,
    from_records: Annotated[
        bool,
        typer.Option(
            "--from-records",
            help="Instead: a simulated site's OMOP records -> ingest -> label -> adapt the "
            "prior -> evaluate, printing what each step kept and dropped.",
        ),
    ] = False,
) -> None:
    """Simulate a training site and two external sites, validate, train, evaluate, report.

    The model is registered with the alias `champion` (`models:/flare-classifier@champion`).
    With --from-records, the path a site takes from its records instead (docs/records.md).
    """
    if from_records:
        from flare_ml.train_config import load_train_config
        from flare_ml.workflows import records_story

        story = records_story(load_train_config(config).output_dir)
        for step, lines in story.steps:
            console.print(f"[bold]{step}[/bold]")
            for line in lines:
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
        console.print(f"everything is in {escape(str(story.folder))} (SYNTHETIC data)")
        return
    from flare_ml.data import load_timepoints, summarize_cohort
    from flare_ml.simulate import simulate_cohort, write_cohort
    from flare_ml.train_config import load_train_config
    from flare_ml.training import simulated_label
    from flare_ml.workflows import train as run_train

    cfg = load_train_config(config)
    folder = Path(cfg.output_dir) / "cohorts"
    folder.mkdir(parents=True, exist_ok=True)
    for role, spec in [("train", cfg.data.train), *[("external", s) for s in cfg.data.external]]:
        cohort = simulate_cohort(spec.patients, site=spec.site, seed=spec.seed)
        written = write_cohort(cohort, folder / f"{role}_{spec.site}.parquet")
        summary = summarize_cohort(load_timepoints(written["timepoints"]))
        console.print(f"[bold]{role}[/bold]: {simulated_label(spec)} -> {written['timepoints']}")
        console.print(summary.to_rich_table())
    # train on the same simulated cohorts (same sites and seeds as the files above)
    with _progress_bar() as bar:
        outcome = run_train(cfg, progress=_RichProgress(bar), alias=DEMO_ALIAS)
    _print_training(outcome)
    # a real site has 50-300 labelled patients: the shipped prior, out of the box and
    # adapted on a small labelled sample of the first external site
    from flare_ml.workflows import small_site_story

    spec = cfg.data.external[0]
    console.print(f"[bold]A small site[/bold]: adapting the literature prior at {spec.site} ...")
    story = small_site_story(
        f"models:/{outcome.registered_name}@{DEMO_ALIAS}",
        folder / f"external_{spec.site}.parquet",
        cfg.output_dir,
        site=spec.site,
        seed=spec.seed + 10_000,
    )
    _print_table(
        story,
        f"A site with 150 labelled patients: evaluated on {simulated_label(spec)} "
        "(SYNTHETIC; AUROC with 95% patient-bootstrap CI, 200 resamples)",
    )
    console.print(
        "From a site's own records (OMOP, FHIR) to labels and a model: "
        "`flare-ml demo --from-records` (docs/records.md)"
    )


# --- experiments (flare_ml.experiments) ------------------------------------------------

experiment_app = typer.Typer(
    help="Reproducible experiments: one YAML file, one command, one committed results table.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("run")
@user_errors_exit_2
def experiment_run(
    path: Annotated[Path, typer.Argument(help="Experiment file, e.g. experiments/headline.yaml.")],
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow store (default: $MLFLOW_TRACKING_URI, the file's tracking_uri, "
            "else sqlite:///mlflow.db).",
        ),
    ] = None,
) -> None:
    """Run an experiment: write its results table and log it to MLflow.

    The file is validated first (an unknown key is an error naming it). The results go to
    `results/NAME.md` beside the experiment file, without date or run id, so a rerun with
    the same seed reproduces the file byte for byte; MLflow gets one parent run and a
    nested run per condition.
    """
    from flare_ml.experiments import execute

    with _progress_bar() as bar:
        run = execute(path, tracking_uri, progress=_RichProgress(bar))
    console.print(f"results     {run.results}")
    console.print(f"MLflow      {run.tracking_uri} (parent run {run.run_id})")
    console.print(f"wall time   {run.wall_time_s:.0f} s (SYNTHETIC cohorts; not for clinical use)")


# --- the literature prior (flare_ml.prior) ---------------------------------------------

prior_app = typer.Typer(
    help="The literature prior: a model trained on many randomised simulated sites.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(prior_app, name="prior")

PriorConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Prior config YAML (default: the shipped configs/prior)."),
]


@prior_app.command("build")
@user_errors_exit_2
def prior_build(
    config: PriorConfigOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Bundle folder to write (default: the package's prior)."),
    ] = None,
) -> None:
    """Train the literature prior on the config's randomised simulated sites.

    Writes an ordinary model bundle (XGBoost JSON + JSON) recording the config digest and
    software versions; `--model prior` scores with the shipped one. All data simulated.
    """
    from flare_ml.prior import PRIOR_DIR, build_prior, folder_size_kb, load_prior_config

    with _progress_bar() as bar:
        built = build_prior(load_prior_config(config), progress=_RichProgress(bar))
    folder = built.bundle.save(out or PRIOR_DIR)
    console.print(f"prior       {folder} ({folder_size_kb(folder):.0f} KB)")
    console.print(
        f"trained on  {built.n_patients} simulated patients, {built.n_index_rows} index rows, "
        f"{built.n_flare} flares (SYNTHETIC; not for clinical use)"
    )
    console.print(f"digest      {built.bundle.metadata['config_digest']}")
    console.print(f"build time  {built.seconds:.0f} s")


@prior_app.command("measure")
@user_errors_exit_2
def prior_measure(
    model: ModelOption = "prior",
    config: PriorConfigOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the table as CSV here.")
    ] = None,
) -> None:
    """Per-class coverage and uncertain share at the shipped sites and fresh random sites.

    Sites and seeds come from the config's `measure` block (never used in the build).
    """
    from flare_ml.prior import (
        load_prior_config,
        measure_prior,
        measurement_frame,
        measurement_summary,
    )
    from flare_ml.serving.flavor import load_bundle

    bundle = load_bundle(model)
    with _progress_bar() as bar:
        results = measure_prior(bundle, load_prior_config(config), progress=_RichProgress(bar))
    frame = measurement_frame(results)
    if out is not None:
        frame.to_csv(out, index=False)
    console.print(frame.to_string(index=False), soft_wrap=True)
    console.print(measurement_summary(frame).T.to_string(), soft_wrap=True)
    met = int(frame["both >= 0.88"].sum())
    console.print(
        f"{met} of {len(frame)} sites reach per-class coverage >= 0.88 "
        "(SYNTHETIC cohorts; not for clinical use)"
    )


# --- from a site's records (flare_ml.records) -------------------------------------------

ingest_app = typer.Typer(
    help="Turn a site's records (FHIR R4, OMOP CDM) into a validated timepoint table.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(ingest_app, name="ingest")


def _print_ingest(outcome: Any) -> None:
    for line in outcome.result.summary():
        console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    console.print(f"wrote {len(outcome.result.timepoints)} rows -> {outcome.out}")


@ingest_app.command("omop")
@user_errors_exit_2
def ingest_omop(
    db: Annotated[
        str,
        typer.Option(
            "--db",
            help="DuckDB file path, or a SQLAlchemy URL (`postgresql+psycopg://user@host/db`).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Timepoint table to write (.csv/.parquet).")],
    schema: Annotated[
        str | None, typer.Option("--schema", help="Database schema of the CDM tables.")
    ] = None,
) -> None:
    """Read an OMOP CDM 5.4/5.3 database into a timepoint table (no `outcome`: see `label`).

    Prints what was kept and what was dropped and why; writes nothing (exit 2) when no
    patient has a mapped cancer diagnosis, an anticancer drug and an imaging report.
    """
    from flare_ml.workflows import ingest_omop as run

    outcome = run(db, out, schema=schema)
    console.print(f"read {escape(outcome.source)}")
    _print_ingest(outcome)


@ingest_app.command("fhir")
@user_errors_exit_2
def ingest_fhir(
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            help="FHIR R4 records: a directory of bulk NDJSON or Bundle JSON files, or one file.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Timepoint table (.csv or .parquet).")],
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Stop at the first invalid resource instead of skipping it."),
    ] = False,
) -> None:
    """Read FHIR R4 records into a timepoint table: patients, lines, ALP, imaging reports.

    Every resource is parsed with the FHIR R4 models; invalid ones are skipped and listed
    (or, with --strict, stop the command). Prints what was kept and what was dropped, and
    why. Nothing is written when the result would break the data contract.
    """
    from flare_ml.workflows import ingest_fhir as run

    outcome = run(input_path, out, strict=strict)
    console.print(f"read {escape(outcome.source)}")
    _print_ingest(outcome)
