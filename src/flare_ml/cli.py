"""The ``flare-ml`` command line: thin verbs over the library.

Each command parses its options, calls one library function and prints the result with
rich. Expected user errors (a table that breaks the data contract, a bad config, a missing
file) are printed as a clear message without a traceback and exit with status 2; nothing is
half-written because the library writes outputs atomically.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from flare_ml.errors import FlareMLError

app = typer.Typer(
    name="flare-ml",
    help="Tell bone flare from true bone progression in oncology timepoint tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors_exit_2(func: F) -> F:
    """Print a :class:`~flare_ml.errors.FlareMLError` as a message and exit with status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FlareMLError as exc:
            err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


# Commands are added below, one function each, by the modules' owners.


@app.command()
@user_errors_exit_2
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Output table (.csv or .parquet).")],
    patients: Annotated[int, typer.Option("--patients", min=1, help="Number of patients.")] = 2000,
    site: Annotated[
        str, typer.Option("--site", help="Site profile name or YAML path.")
    ] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Simulate a synthetic cohort at a site; write the table, its oracle and its lab table."""
    from flare_ml.simulate import simulate_cohort, write_cohort

    cohort = simulate_cohort(patients, site=site, seed=seed)
    paths = write_cohort(cohort, out)
    tp = cohort.timepoints
    n_index = int(tp["outcome"].notna().sum())
    console.print(
        f"simulated [bold]{tp['patient_id'].nunique()}[/bold] synthetic patients at site "
        f"[bold]{cohort.site.name}[/bold] (seed {seed}): {len(tp)} rows, {n_index} index rows"
    )
    for what, path in paths.items():
        console.print(f"  {what:<11} {path}")


@app.command()
@user_errors_exit_2
def validate(
    path: Annotated[Path, typer.Argument(help="Timepoint table (.csv, .csv.gz, .parquet or .pq).")],
    labs: Annotated[
        Path | None,
        typer.Option("--labs", help="Long lab table (patient_id, sample_date, test, value, unit)."),
    ] = None,
    window_days: Annotated[
        int,
        typer.Option("--window-days", min=0, help="Oldest ALP sample used, in days before."),
    ] = 30,
) -> None:
    """Check a timepoint table against the data contract and print a cohort summary.

    With --labs, alp_u_l is replaced by the latest ALP sample of the lab table at or
    before each assessment, within --window-days. Problems are listed all at once (column,
    rule, offending rows) and the command exits with status 2.
    """
    from flare_ml.data import attach_alp, load_timepoints, read_lab_table, summarize_cohort

    table = load_timepoints(path)
    if labs is not None:
        table = attach_alp(table, read_lab_table(labs), window_days=window_days, source=str(labs))
    summary = summarize_cohort(table)
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
