"""Shared test helpers: small valid timepoint tables and the session's serving fixtures.

``make_valid_table`` is a plain function (import it with ``from conftest import
make_valid_table``) so that hypothesis tests can call it; the ``valid_table`` fixture
wraps it for ordinary tests. The session fixtures ``mlflow_store`` (the small session
model registered in a throw-away sqlite store), ``rest_server`` (``mlflow models serve``
of it on loopback) and ``spark`` (a local[2] SparkSession) are started once, by the first
test that needs them, and shared by every test module.

The session fails when it leaves an MLflow store behind in the checkout: ``mlruns/``,
``mlartifacts/`` or ``mlflow.db`` created or changed in the repository root or in
``tests/`` (MLflow writes them to the working directory by default; every test must use a
temporary store and folder instead).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

from flare_ml.data import contract as c
from serving_helpers import register_model, serve, skip_without_spark

# No test is timed (speed lives in benchmarks): hypothesis's per-example deadline only
# turned a busy machine into failures ("Unreliable test timings"), so it is off everywhere.
settings.register_profile("flare-ml", deadline=None)
settings.load_profile("flare-ml")

REPO_ROOT = Path(__file__).resolve().parents[1]
#: MLflow's default stores in the working directory, which no test may leave behind
STRAY_STORES = tuple(
    folder / name
    for folder in (REPO_ROOT, REPO_ROOT / "tests")
    for name in ("mlruns", "mlartifacts", "mlflow.db")
)
_STORES_BEFORE = pytest.StashKey[dict[Path, object]]()


def store_state(path: Path) -> tuple[object, ...] | None:
    """What a default-store path holds now: None when absent, else its entries or mtime."""
    if not path.exists():
        return None
    if path.is_dir():
        return tuple(sorted(p.relative_to(path).as_posix() for p in path.rglob("*")))
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns)


def stray_stores(before: dict[Path, object], paths: tuple[Path, ...] = STRAY_STORES) -> list[Path]:
    """The default-store paths that differ from ``before`` (created or written to)."""
    return [path for path in paths if store_state(path) != before.get(path)]


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STORES_BEFORE] = {path: store_state(path) for path in STRAY_STORES}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_STORES_BEFORE, None)
    if before is None or hasattr(session.config, "workerinput"):  # xdist workers: not here
        return
    stray = stray_stores(before)
    if stray:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stray)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"the test session created or changed MLflow stores in the checkout: {names}; "
            "a test is using the default tracking store or ./mlruns (give it a temporary "
            "store and working folder)"
        )
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(f"FAILED {message}", red=True, bold=True)
        else:
            print(message, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: (cancer_type, therapy_class) pairs the helper draws from
CONTEXTS = (
    ("nsclc", "egfr_tki"),
    ("breast", "endocrine"),
    ("prostate", "ar_pathway"),
    ("nsclc", "alk_tki"),
    ("breast", "cdk46_endocrine"),
    ("other", "chemotherapy"),
)

#: days after treatment start of each patient's rows, and their kind
SCHEDULE = (
    (0, "baseline"),  # imaging, extraosseous "baseline", no new lesion
    (21, "lab"),  # lab-only visit: ALP and context, imaging columns empty
    (56, "follow_up"),  # imaging, no new lesion
    (84, "index"),  # imaging with new bone lesions and an outcome
    (140, "follow_up"),  # imaging after the index row, no new lesion, no outcome
)


def make_valid_table(
    n_patients: int = 3,
    seed: int = 0,
    *,
    validated: bool = False,
    with_lab_rows: bool = True,
) -> pd.DataFrame:
    """Build a valid timepoint table of ``n_patients`` patients (vectorised, so 1M rows is fine).

    Each patient has a baseline imaging row on the treatment start date
    (``extraosseous_response`` "baseline", ``new_bone_lesions`` 0, morphology "none"), a
    lab-only row at day 21, a follow-up scan at day 56, one index row (new bone lesions,
    blastic/lytic/mixed, outcome flare or progression, both outcomes present from two
    patients on) between days 84 and 114, and a last follow-up scan at day 140. Dates are
    ``datetime64``, categories plain text, booleans nullable ``boolean``, counts ``Int64``:
    a raw table as an in-memory source would give it. Rows come patient by patient in
    schedule order; ``validated=True`` returns ``validate_timepoints`` of it.
    """
    rng = np.random.default_rng(seed)
    schedule = [s for s in SCHEDULE if with_lab_rows or s[1] != "lab"]
    k = len(schedule)
    n = n_patients * k
    patient = np.repeat(np.arange(n_patients), k)
    kind = np.tile(np.array([s[1] for s in schedule]), n_patients)
    day = np.tile(np.array([s[0] for s in schedule]), n_patients)
    day = day + np.where(kind == "index", np.repeat(rng.integers(0, 31, n_patients), k), 0)

    context = rng.integers(0, len(CONTEXTS), n_patients)
    cancer = np.array([ctx[0] for ctx in CONTEXTS])[context][patient]
    therapy = np.array([ctx[1] for ctx in CONTEXTS])[context][patient]
    start = np.datetime64("2022-01-03") + rng.integers(0, 900, n_patients).astype("timedelta64[D]")
    start_rows = start[patient]
    assessment = start_rows + day.astype("timedelta64[D]")

    is_lab = kind == "lab"
    is_index = kind == "index"
    flare = np.arange(n_patients) % 2 == 0
    flare_rows = flare[patient]

    response = np.where(
        kind == "baseline",
        "baseline",
        np.where(is_index, np.where(flare_rows, "PR", "PD"), rng.choice(["SD", "PR"], n)),
    ).astype(object)
    response[is_lab] = None
    lesions = pd.array(np.where(is_index, rng.integers(1, 6, n), 0), dtype="Int64")
    lesions[is_lab] = pd.NA
    morphology = np.where(
        is_index, np.where(flare_rows, "blastic", rng.choice(["lytic", "mixed"], n)), "none"
    ).astype(object)
    morphology[is_lab] = None
    outcome = np.where(is_index, np.where(flare_rows, "flare", "progression"), None)

    def flags(p: float) -> pd.arrays.BooleanArray:
        values = pd.array(rng.random(n) < p, dtype="boolean")
        values[is_lab] = pd.NA
        return values

    sld = np.round(rng.uniform(10.0, 120.0, n), 1)
    sld[is_lab] = np.nan
    alp = np.round(rng.uniform(40.0, 400.0, n), 1)
    alp[rng.random(n) < 0.1] = np.nan  # missing optional values are missing, not zero
    marrow = pd.array(rng.random(n_patients) < 0.3, dtype="boolean")[patient]

    table = pd.DataFrame(
        {
            c.PATIENT_ID: np.char.add("P", np.char.zfill((patient + 1).astype(str), 6)),
            c.TREATMENT_START_DATE: start_rows.astype("datetime64[s]"),
            c.ASSESSMENT_DATE: assessment.astype("datetime64[s]"),
            c.ROW_TYPE: np.where(is_lab, "lab", "imaging"),
            c.CANCER_TYPE: cancer,
            c.THERAPY_CLASS: therapy,
            c.EXTRAOSSEOUS_RESPONSE: response,
            c.NEW_EXTRAOSSEOUS_LESION: flags(0.1),
            c.SLD_MM: sld,
            c.NEW_BONE_LESIONS: lesions,
            c.NEW_LESION_MORPHOLOGY: morphology,
            c.PROGRESSIVE_LYSIS: flags(0.1),
            c.KNOWN_LESION_SCLEROSIS: flags(0.2),
            c.ALP_U_L: alp,
            c.BASELINE_MARROW_INVOLVEMENT: marrow,
            c.CLINICAL_DETERIORATION: flags(0.1),
            c.OUTCOME: outcome,
        }
    )
    table[c.PATIENT_ID] = table[c.PATIENT_ID].astype("str")
    for col in (c.ROW_TYPE, c.CANCER_TYPE, c.THERAPY_CLASS):
        table[col] = table[col].astype("str")
    for col in (c.EXTRAOSSEOUS_RESPONSE, c.NEW_LESION_MORPHOLOGY, c.OUTCOME):
        table[col] = table[col].astype("str")  # None stays missing in the str dtype
    if validated:
        from flare_ml.data import validate_timepoints

        return validate_timepoints(table)
    return table


@pytest.fixture
def valid_table() -> pd.DataFrame:
    """A raw valid table of three patients (see ``make_valid_table``)."""
    return make_valid_table()


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The session model registered as ``flare-classifier`` in a sqlite store in tmp.

    Returns ``{"root": folder, "uri": "sqlite:///.../mlflow.db"}``.
    """
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow-store")
    return {"root": root, "uri": register_model(root)}


@pytest.fixture(scope="session")
def rest_server(mlflow_store: dict[str, object]) -> Iterator[str]:
    """Base URL of ``mlflow models serve -m models:/flare-classifier/latest`` on 127.0.0.1.

    The server log is ``server.log`` beside the store.
    """
    root = Path(str(mlflow_store["root"]))
    with serve(str(mlflow_store["uri"]), root / "server.log") as base:
        yield base


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """A local[2] SparkSession (UTC, Arrow, no UI); skipped without Java or pyspark."""
    skip_without_spark()
    from pyspark.sql import SparkSession

    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    os.environ.update(dict.fromkeys(saved, sys.executable))
    session = (
        SparkSession.builder.master("local[2]")
        .appName("flare-ml-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of this test session (tests/postgres_helpers.py): its URL.

    Started in a temporary folder on a free loopback port, stopped at the end of the
    session; skipped only when the PostgreSQL binaries are absent.
    """
    from postgres_helpers import find_postgres_bin, postgres_server

    if find_postgres_bin() is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in "
            "/usr/lib/postgresql/*/bin; .ci/run installs Debian's postgresql package"
        )
    import tempfile

    # a fresh folder under /tmp: as root the server runs as nobody, who cannot enter
    # pytest's private temporary tree
    folder = Path(tempfile.mkdtemp(prefix="flare-ml-postgres-"))
    folder.chmod(0o755)
    try:
        with postgres_server(folder / "pg") as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)
