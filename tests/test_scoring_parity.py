"""One scoring path, proven: six ways of scoring a cohort give the same answers.

The session's small training run (``serving_helpers.small_training``: one call of
:func:`flare_ml.training.train_and_validate`) has the scoring cohort as its external
cohort. That cohort is scored through every path a number can reach a user by:

- ``estimator``: the fitted :class:`~flare_ml.models.FlareXGBClassifier` on the training
  run's own feature rows (calibrated ``predict_proba``), decisions and prediction sets
  from the run's conformal thresholds, reasons from exact TreeSHAP of its booster
  (:func:`flare_ml.explain.shap_contributions`, :func:`flare_ml.explain.reasons`);
- ``bundle_reloaded``: the saved bundle read back from its JSON files;
- ``pyfunc_fresh_process``: the registered MLflow pyfunc model
  (``models:/flare-classifier/latest`` in a sqlite store in tmp) loaded in a fresh
  Python process from its shipped code;
- ``batch_cli``: ``flare-ml score`` in a subprocess on the saved bundle folder, reading
  the cohort from Parquet in chunks of whole patients and writing Parquet;
- ``spark``: :func:`flare_ml.spark.score_spark` in local[2] (skipped, with the reason,
  without Java or pyspark);
- ``rest_server``: ``mlflow models serve`` of the registered model on 127.0.0.1.

Each is compared, row by row on (patient_id, assessment_date), with the training run's
bundle (the object its report, MLflow run and serving are computed with): ``p_flare``
within 1e-9, ``decision``, ``prediction_set`` and ``reasons`` exactly. The P(flare) that
the training run reports for the cohort must be that same number. The MLflow store, the
REST server and the Spark session are the session fixtures of ``conftest.py``, shared
with the other serving tests.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from flare_ml.bundle import OUTPUT_COLUMNS, FlareModelBundle
from flare_ml.data import contract as c
from flare_ml.data import write_table
from flare_ml.explain import reasons, shap_contributions, signal_contributions
from flare_ml.serving.schema import to_wire_format
from flare_ml.training import MODEL_NAME, PreparedCohort
from serving_helpers import (
    REGISTERED_NAME,
    SCORING_PATIENTS,
    SCORING_SEED,
    SPARK_WARNINGS,
    bundle_copy,
    scoring_cohort,
    small_bundle,
    small_training,
)

pytestmark = [
    pytest.mark.slow,  # part of `make test`; subprocesses, a server and Spark
    *SPARK_WARNINGS,
]

#: largest allowed |difference| of p_flare between two paths
P_FLARE_ATOL = 1e-9
KEYS = [c.PATIENT_ID, c.ASSESSMENT_DATE]
EXACT = ["decision", "prediction_set", "reasons"]
MODEL_URI = f"models:/{REGISTERED_NAME}/latest"
SUBPROCESS_TIMEOUT_S = 180


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """Output rows with ISO-date text keys, sorted by (patient_id, assessment_date)."""
    assert list(frame.columns) == list(OUTPUT_COLUMNS), list(frame.columns)
    out = pd.DataFrame(
        {
            c.PATIENT_ID: [str(v) for v in frame[c.PATIENT_ID]],
            c.ASSESSMENT_DATE: pd.to_datetime(frame[c.ASSESSMENT_DATE])
            .dt.strftime("%Y-%m-%d")
            .tolist(),
            "p_flare": frame["p_flare"].to_numpy(dtype=np.float64),
            **{col: frame[col].astype(object).tolist() for col in EXACT},
        }
    )
    assert not out.duplicated(KEYS).any(), "two output rows for one index assessment"
    return out.sort_values(KEYS, ignore_index=True)


def _request_records(rows: pd.DataFrame) -> list[dict[str, object]]:
    """The rows in the served model's wire format as JSON-ready records (exact floats).

    Built with ``json`` rather than ``DataFrame.to_json``, which keeps only 10
    significant digits of a number.
    """
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        for record in to_wire_format(rows).to_dict(orient="records")
    ]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without Python/MLflow settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MLFLOW"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def external() -> PreparedCohort:
    """The training run's external cohort: the scoring cohort, featurized in training."""
    (cohort,) = small_training().externals
    assert f"({SCORING_PATIENTS} patients, seed {SCORING_SEED})" in cohort.label
    pd.testing.assert_frame_equal(cohort.timepoints, scoring_cohort())
    return cohort


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """What a user sends to be scored: the cohort's timepoint rows without outcomes."""
    return scoring_cohort().drop(columns=[c.OUTCOME])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity")


@pytest.fixture(scope="module")
def rows_file(rows: pd.DataFrame, workdir: Path) -> Path:
    return write_table(rows, workdir / "cohort.parquet")


@pytest.fixture(scope="module")
def reference(rows: pd.DataFrame) -> pd.DataFrame:
    """The training run's own bundle, in memory: what its report and MLflow run used."""
    out = _keyed(small_bundle().predict(rows))
    # every decision and set kind occurs, so that the comparison exercises all of them
    assert set(out["decision"]) == {"flare", "progression", "uncertain"}
    assert "flare,progression" in set(out["prediction_set"])
    assert all(out["reasons"])
    return out


# --- the six paths --------------------------------------------------------------------------
def _estimator(request: pytest.FixtureRequest) -> pd.DataFrame:
    """The fitted classifier on the training run's feature rows; same decision policy."""
    result = small_training()
    cohort: PreparedCohort = request.getfixturevalue("external")
    features = cohort.features
    p_flare = result.model.predict_proba(features)[:, 1]
    decision, prediction_set = result.bundle.conformal.decide(p_flare)
    contrib, _ = shap_contributions(result.model.get_booster(), features)
    top = reasons(features, signal_contributions(contrib), result.config.uncertainty.top_reasons)
    return pd.DataFrame(
        {
            c.PATIENT_ID: features.index.get_level_values(c.PATIENT_ID),
            c.ASSESSMENT_DATE: features.index.get_level_values(c.ASSESSMENT_DATE),
            "p_flare": p_flare,
            "decision": decision,
            "prediction_set": prediction_set,
            "reasons": ["; ".join(r) for r in top],
        }
    )


def _bundle_reloaded(request: pytest.FixtureRequest) -> pd.DataFrame:
    folder = bundle_copy(request.getfixturevalue("workdir") / "bundle-reloaded")
    return FlareModelBundle.load(folder).predict(request.getfixturevalue("rows"))


PYFUNC_SCRIPT = """\
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.DataFrame(json.load(open(sys.argv[2])))
out = model.predict(rows)
import flare_ml
json.dump({"flare_ml": flare_ml.__file__, "rows": out.to_dict(orient="records")},
          open(sys.argv[3], "w"))
"""


def _pyfunc_fresh_process(request: pytest.FixtureRequest) -> pd.DataFrame:
    """The registered pyfunc model in a new interpreter that has only MLflow's shipped code."""
    store = request.getfixturevalue("mlflow_store")
    workdir: Path = request.getfixturevalue("workdir")
    body = workdir / "records.json"
    body.write_text(json.dumps(_request_records(request.getfixturevalue("rows"))))
    answer = workdir / "pyfunc-answer.json"
    result = subprocess.run(
        [sys.executable, "-c", PYFUNC_SCRIPT, MODEL_URI, str(body), str(answer)],
        cwd=workdir,
        env=_clean_env(PYTHONPATH="", MLFLOW_TRACKING_URI=str(store["uri"])),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(answer.read_text())
    # the shipped copy of flare_ml ran, not the source tree
    assert Path(str(store["root"])).resolve() in Path(loaded["flare_ml"]).resolve().parents
    return pd.DataFrame(loaded["rows"], columns=list(OUTPUT_COLUMNS))


def _batch_cli(request: pytest.FixtureRequest) -> pd.DataFrame:
    """``flare-ml score`` in a subprocess, with the saved bundle folder as the model."""
    workdir: Path = request.getfixturevalue("workdir")
    out = workdir / "batch-scores.parquet"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "flare-ml"), "score",
            "--model", str(bundle_copy(workdir / "bundle-batch")),
            "--input", str(request.getfixturevalue("rows_file")),
            "--output", str(out),
            "--chunk-rows", "300",
        ],
        cwd=workdir,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return pd.read_parquet(out)


def _spark(request: pytest.FixtureRequest) -> pd.DataFrame:
    """:func:`flare_ml.spark.score_spark` in local[2] with the saved bundle folder."""
    spark = request.getfixturevalue("spark")
    from flare_ml.spark import score_spark

    folder = bundle_copy(request.getfixturevalue("workdir") / "bundle-spark")
    frame = spark.read.parquet(str(request.getfixturevalue("rows_file")))
    return score_spark(frame, str(folder)).toPandas()


def _rest_server(request: pytest.FixtureRequest) -> pd.DataFrame:
    """One POST of the whole cohort to ``mlflow models serve``."""
    base = request.getfixturevalue("rest_server")
    response = requests.post(
        f"{base}/invocations",
        data=json.dumps({"dataframe_records": _request_records(request.getfixturevalue("rows"))}),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 200, response.text[-3000:]
    return pd.DataFrame(response.json()["predictions"], columns=list(OUTPUT_COLUMNS))


PATHS: dict[str, Callable[[pytest.FixtureRequest], pd.DataFrame]] = {
    "estimator": _estimator,
    "bundle_reloaded": _bundle_reloaded,
    "pyfunc_fresh_process": _pyfunc_fresh_process,
    "batch_cli": _batch_cli,
    "spark": _spark,
    "rest_server": _rest_server,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_gives_the_same_answers(
    path: str, request: pytest.FixtureRequest, reference: pd.DataFrame
) -> None:
    got = _keyed(PATHS[path](request))
    assert got[KEYS].values.tolist() == reference[KEYS].values.tolist(), path
    delta = np.abs(got["p_flare"].to_numpy() - reference["p_flare"].to_numpy())
    print(f"{path}: {len(delta)} rows, max |p_flare difference| {delta.max():.3g}")
    assert float(delta.max()) <= P_FLARE_ATOL, (
        f"{path}: max |p_flare difference| {delta.max():.3g} on "
        f"{int((delta > P_FLARE_ATOL).sum())} of {len(delta)} rows"
    )
    for col in EXACT:
        pairs = zip(got[col], reference[col], strict=True)
        differ = [i for i, (a, b) in enumerate(pairs) if a != b]
        assert not differ, (
            f"{path}: {col} differs on {len(differ)} of {len(got)} rows, first "
            f"{got.loc[differ[0], KEYS].tolist()}: {got[col][differ[0]]!r} != "
            f"{reference[col][differ[0]]!r}"
        )


def test_reported_scores_are_the_served_scores(
    external: PreparedCohort, reference: pd.DataFrame
) -> None:
    """The P(flare) and coverage the training run reports for the cohort are served ones."""
    result = small_training()
    assert external.y is not None
    index = external.features.index
    reported = pd.DataFrame(
        {
            c.PATIENT_ID: index.get_level_values(c.PATIENT_ID).astype(str),
            c.ASSESSMENT_DATE: index.get_level_values(c.ASSESSMENT_DATE).strftime("%Y-%m-%d"),
            "p_flare": result.scores[external.label][MODEL_NAME],
            "outcome": np.where(external.y == 1, "flare", "progression"),
        }
    ).sort_values(KEYS, ignore_index=True)
    assert reported[KEYS].values.tolist() == reference[KEYS].values.tolist()
    np.testing.assert_allclose(reported["p_flare"], reference["p_flare"], rtol=0, atol=P_FLARE_ATOL)
    # the conformal coverage the run reports is that of the served prediction sets
    covered = [
        outcome in served.split(",")
        for outcome, served in zip(reported["outcome"], reference["prediction_set"], strict=True)
    ]
    assert result.coverage[external.label]["coverage"] == pytest.approx(np.mean(covered))
