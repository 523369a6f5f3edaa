"""Shared helpers of the serving tests: one small training run per test session.

Training is the slow part of every serving test, so one small training run
(:func:`flare_ml.training.train_and_validate` with a small config: 400 training patients,
one candidate, two folds, at most 60 trees, no bootstrap; the scoring cohort as its
external cohort) is made once and cached for the whole session. Its bundle is the model
every serving test scores with, its fitted estimator and reported scores are what the
parity test compares serving against; each test gets its own copy of the saved folder
when it needs files. :func:`register_model` and :func:`serve` log that model to a
throw-away MLflow store and serve it with ``mlflow models serve`` (the session fixtures
of ``conftest.py`` use them, so the suite starts one server).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

from flare_ml.bundle import FlareModelBundle
from flare_ml.simulate import simulate_cohort
from flare_ml.train_config import SimulatedCohortSpec, TrainConfig
from flare_ml.training import TrainingResult, train_and_validate

TRAIN_PATIENTS = 400
TRAIN_SEED = 11
#: the scoring cohort (also the training run's external cohort)
SCORING_PATIENTS = 120
SCORING_SEED = 5
REGISTERED_NAME = "flare-classifier"
SERVER_STARTUP_TIMEOUT_S = 90


def quick_config() -> TrainConfig:
    """A training config small enough for tests (seconds, not minutes)."""
    cfg = TrainConfig()
    model = cfg.model.model_copy(
        update={
            "n_candidates": 1,
            "outer_folds": 2,
            "inner_folds": 2,
            "n_estimators_max": 60,
            "early_stopping_rounds": 10,
            "n_jobs": 1,
        }
    )
    return cfg.model_copy(update={"model": model})


def training_config() -> TrainConfig:
    """:func:`quick_config` with the session's cohorts and no bootstrap resampling."""
    cfg = quick_config()
    data = cfg.data.model_copy(
        update={
            "train": SimulatedCohortSpec(patients=TRAIN_PATIENTS, seed=TRAIN_SEED),
            "external": [SimulatedCohortSpec(patients=SCORING_PATIENTS, seed=SCORING_SEED)],
        }
    )
    evaluation = cfg.evaluation.model_copy(update={"bootstrap_resamples": 0})
    return cfg.model_copy(update={"data": data, "evaluation": evaluation})


@functools.cache
def _fitted() -> tuple[TrainingResult, Path]:
    result = train_and_validate(training_config())
    folder = result.bundle.save(Path(tempfile.mkdtemp(prefix="flare-ml-test-bundle-")) / "bundle")
    return result, folder


def small_training() -> TrainingResult:
    """The session's small training run (fitted estimator, bundle, reported scores)."""
    return _fitted()[0]


def small_bundle() -> FlareModelBundle:
    """The session's small trained bundle (with conformal thresholds)."""
    return _fitted()[0].bundle


def bundle_copy(target: Path) -> Path:
    """A copy of the session bundle's folder at ``target``."""
    return Path(shutil.copytree(_fitted()[1], target))


@functools.cache
def scoring_cohort(patients: int = SCORING_PATIENTS, seed: int = SCORING_SEED) -> pd.DataFrame:
    """A synthetic cohort to score (a different seed from the training cohort)."""
    return simulate_cohort(patients, seed=seed).timepoints


# --- MLflow store and REST server ----------------------------------------------------------
def register_model(root: Path, folder: Path | None = None) -> str:
    """Log and register the session model as ``flare-classifier`` in a sqlite store.

    ``folder``: a saved bundle to register instead of the session model.

    Returns the tracking URI (``sqlite:///<root>/mlflow.db``); artifacts go under
    ``root / "artifacts"``. The process's tracking URI and ``sys.path`` (loading a
    model prepends its code folder) are restored afterwards.
    """
    import mlflow

    from flare_ml.serving.flavor import log_model

    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    saved_path = list(sys.path)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment(
            "serving-tests", artifact_location=(root / "artifacts").as_uri()
        )
        with mlflow.start_run(experiment_id=experiment):
            log_model(folder or bundle_copy(root / "bundle"), REGISTERED_NAME)
    finally:
        mlflow.set_tracking_uri(previous)
        sys.path[:] = saved_path
    return uri


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(tracking_uri: str, log: Path) -> Iterator[str]:
    """Run ``mlflow models serve`` on the registered model; yield its base URL.

    Served exactly as docs/serving.md says (``-m models:/flare-classifier/latest --env-manager
    local``) on a free port of 127.0.0.1, in its own process group, stopped by its PID on
    exit. Fails the test when the server exits or answers no ``/ping`` in time.
    """
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"  # uvicorn is looked up there
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [
        str(bin_dir / "mlflow"), "models", "serve",
        "-m", f"models:/{REGISTERED_NAME}/latest",
        "--env-manager", "local",
        "-h", "127.0.0.1",
        "-p", str(port),
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=log.parent,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no /ping after {SERVER_STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


#: pyspark 4.3 warns about pandas 3 (supported versions, the copy keyword); not ours to fix
SPARK_WARNINGS = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def skip_without_spark(*, module: bool = False) -> None:
    """Skip (the test, or with ``module`` the whole module) without Java or pyspark."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip(
            "Spark needs a Java runtime (none on PATH, JAVA_HOME unset)",
            allow_module_level=module,
        )
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
