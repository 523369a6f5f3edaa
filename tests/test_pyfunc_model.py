"""The logged pyfunc model: no pickle, explicit signature, fresh-process load, wire format.

One small model is logged once per module to a temporary sqlite tracking store; the
tests check the artifact on disk, load it in a fresh Python process from its shipped
code, and score wire-format requests in process (the real HTTP server is exercised in
``test_rest_serving.py``). Request handling is checked through MLflow's own scoring
function, which maps exceptions to HTTP status codes exactly as the server does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flare_ml.bundle import _joined_reasons
from flare_ml.data import contract as c
from flare_ml.explain import reasons, shap_contributions, signal_contributions
from flare_ml.serving.flavor import (
    input_example,
    input_schema,
    log_model,
    model_requirements,
    model_signature,
)
from flare_ml.serving.schema import to_wire_format
from serving_helpers import bundle_copy, scoring_cohort, small_bundle

mlflow = pytest.importorskip("mlflow")

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".cloudpickle")


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Log and register the small model to a throw-away sqlite store."""
    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "path", list(sys.path))  # loading a model prepends its code folder
        uri = f"sqlite:///{root / 'mlflow.db'}"
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            experiment = mlflow.create_experiment(
                "pyfunc-test", artifact_location=(root / "artifacts").as_uri()
            )
            bundle_dir = bundle_copy(root / "bundle")
            with mlflow.start_run(experiment_id=experiment):
                info = log_model(bundle_dir, "flare-classifier")
            # list the stored files before anything loads (and maybe compiles) the code
            stored = sorted(p for p in (root / "artifacts").rglob("*"))
            model_dir = Path(mlflow.artifacts.download_artifacts(info.model_uri))
            model = mlflow.pyfunc.load_model(info.model_uri)
            yield {
                "info": info,
                "dir": model_dir,
                "model": model,
                "root": root,
                "uri": uri,
                "stored": stored,
            }
        finally:
            mlflow.set_tracking_uri(previous)


def _has_pickle_magic(path: Path) -> bool:
    head = path.read_bytes()[:2]
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def test_artifact_has_no_pickle_and_no_bytecode(logged):
    stored = logged["stored"]
    files = [p for p in stored if p.is_file()]
    assert any(p.name == "booster.json" for p in files)
    assert any(p.name == "pyfunc_model.py" for p in files)
    offenders = [
        p for p in files if p.suffix in (*PICKLE_SUFFIXES, ".pyc", ".pyo") or _has_pickle_magic(p)
    ]
    assert offenders == []
    assert not [p for p in stored if p.name == "__pycache__"]


def test_artifact_layout_and_signature(logged):
    model_dir = logged["dir"]
    assert (model_dir / "code" / "flare_ml" / "serving" / "pyfunc_model.py").exists()
    bundle_files = sorted(p.name for p in (model_dir / "artifacts" / "bundle").iterdir())
    assert bundle_files == sorted(
        ["booster.json", "calibrator.json", "conformal.json", "featurizer.json", "manifest.json"]
    )
    signature = logged["model"].metadata.signature
    assert signature.to_dict() == model_signature().to_dict()
    inputs = {spec.name: spec for spec in signature.inputs.inputs}
    assert list(inputs) == list(c.CONTRACT_COLUMNS)
    for name, spec in inputs.items():
        assert spec.required == (name in c.REQUIRED_COLUMNS), name
    assert inputs["new_bone_lesions"].type.name == "double"
    assert inputs["progressive_lysis"].type.name == "string"
    example = json.loads((model_dir / "serving_input_example.json").read_text())
    assert "NaN" not in json.dumps(example)  # missing values are null in the stored example


def test_requirements_are_pinned_to_the_installed_versions(logged):
    pins = (logged["dir"] / "requirements.txt").read_text().split()
    assert pins == model_requirements()
    assert all("==" in pin for pin in pins)


def test_registered_latest_resolves(logged):
    client = mlflow.MlflowClient()
    versions = client.search_model_versions("name='flare-classifier'")
    assert [str(v.version) for v in versions] == ["1"]
    model = mlflow.pyfunc.load_model("models:/flare-classifier/latest")
    wire = to_wire_format(scoring_cohort().drop(columns=[c.OUTCOME]))
    expected = small_bundle().predict(scoring_cohort())
    got = model.predict(wire)
    np.testing.assert_allclose(got["p_flare"], expected["p_flare"], rtol=0, atol=1e-12)


def test_in_process_predictions_equal_the_bundle(logged):
    table = scoring_cohort()
    expected = small_bundle().predict(table)
    got = logged["model"].predict(to_wire_format(table))
    assert list(got.columns) == [
        "patient_id",
        "assessment_date",
        "p_flare",
        "decision",
        "prediction_set",
        "reasons",
    ]
    assert got["patient_id"].tolist() == expected["patient_id"].tolist()
    assert got["assessment_date"].tolist() == (
        expected["assessment_date"].dt.strftime("%Y-%m-%d").tolist()
    )
    np.testing.assert_array_equal(got["p_flare"].to_numpy(), expected["p_flare"].to_numpy())
    assert got["decision"].tolist() == expected["decision"].tolist()
    assert got["prediction_set"].tolist() == expected["prediction_set"].tolist()
    assert got["reasons"].tolist() == expected["reasons"].tolist()
    assert set(got["decision"]) <= {"flare", "progression", "uncertain"}
    # one output row per index row; other rows are history only
    assert len(got) == int(
        ((table["new_bone_lesions"].fillna(0) > 0) & (table["row_type"] == "imaging")).sum()
    )


def test_with_reasons_param(logged):
    wire = input_example()
    full = logged["model"].predict(wire)
    quick = logged["model"].predict(wire, params={"with_reasons": False})
    assert full["reasons"].iloc[0] != ""
    assert quick["reasons"].tolist() == [""]
    assert quick["p_flare"].tolist() == full["p_flare"].tolist()


# --- requests as the scoring server parses them -------------------------------------------
def _invoke(model, payload) -> tuple[int, dict]:
    """Answer a JSON body the way ``mlflow models serve`` does: (HTTP status, JSON)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    body = payload if isinstance(payload, str) else json.dumps(payload)
    try:
        result = scoring_server.invocations(
            body, "application/json", model, model.metadata.get_input_schema()
        )
    except MlflowException as error:
        return error.get_http_status_code(), json.loads(error.serialize_as_json())
    return result.status, json.loads(result.response)


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_rest_payload_with_json_types(logged):
    records = _records(input_example())
    for record in records:  # counts as JSON integers, not doubles
        if record["new_bone_lesions"] is not None:
            record["new_bone_lesions"] = int(record["new_bone_lesions"])
    status, answer = _invoke(logged["model"], {"dataframe_records": records})
    assert status == 200, answer
    (row,) = answer["predictions"]
    assert row["patient_id"] == "DeBondt2020-L1"
    assert row["assessment_date"] == "2019-04-07"
    expected = small_bundle().predict(input_example())
    assert row["p_flare"] == pytest.approx(float(expected["p_flare"].iloc[0]), abs=1e-12)


def test_rest_booleans_true_false_null_and_missing_optional_columns(logged):
    model = logged["model"]
    base = _records(input_example())
    index = next(i for i, r in enumerate(base) if r["new_bone_lesions"])

    def score(records):
        status, answer = _invoke(model, {"dataframe_records": records})
        assert status == 200, answer
        return answer["predictions"][0]["p_flare"]

    with_flags = [dict(r) for r in base]
    with_flags[index]["progressive_lysis"] = True
    lysis_true = score(with_flags)
    with_flags[index]["progressive_lysis"] = False
    lysis_false = score(with_flags)
    with_flags[index]["progressive_lysis"] = None
    lysis_null = score(with_flags)
    with_flags[index]["progressive_lysis"] = "yes"
    assert score(with_flags) == lysis_true
    # null is missing, not False: it matches a table with the value missing
    table = input_example()
    table.loc[table.index[index], "progressive_lysis"] = None
    missing = float(small_bundle().predict(table)["p_flare"].iloc[0])
    assert lysis_null == pytest.approx(missing, abs=1e-12)
    assert lysis_true != lysis_false
    # optional columns may be left out altogether (without row_type every row is
    # imaging, so the lab-only rows go too)
    optional = [col for col in c.CONTRACT_COLUMNS if col not in c.REQUIRED_COLUMNS]
    imaging = [r for r in base if r["row_type"] == "imaging"]
    bare = [{k: v for k, v in r.items() if k not in optional} for r in imaging]
    table = input_example()
    table = table[table["row_type"] == "imaging"]
    table = table.drop(columns=[o for o in optional if o in table])
    expected = float(small_bundle().predict(table)["p_flare"].iloc[0])
    assert score(bare) == pytest.approx(expected, abs=1e-12)


def test_rest_no_index_row_gives_no_prediction(logged):
    records = [r for r in _records(input_example()) if not r["new_bone_lesions"]]
    status, answer = _invoke(logged["model"], {"dataframe_records": records})
    assert (status, answer) == (200, {"predictions": []})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing_column", "missing inputs ['cancer_type']"),
        ("unknown_category", "unknown category 'lung'"),
        ("wrong_type", "new_bone_lesions"),
        ("fractional_count", "not a whole number"),
        ("bad_flag", "not a yes/no value"),
        ("bad_date", "assessment_date"),
        ("duplicate_visit", "more than one row for the same patient_id"),
        ("empty_records", "missing inputs"),
        ("empty_split", "no rows"),
        ("no_payload_key", "dataframe_records"),
        ("not_json", "valid JSON"),
    ],
)
def test_malformed_requests_get_400_with_a_clear_message(logged, change, message):
    records = _records(input_example())
    payload: object
    if change == "missing_column":
        payload = {
            "dataframe_records": [
                {k: v for k, v in r.items() if k != "cancer_type"} for r in records
            ]
        }
    elif change == "unknown_category":
        payload = {"dataframe_records": [dict(r, cancer_type="lung") for r in records]}
    elif change == "wrong_type":
        payload = {"dataframe_records": [dict(r, new_bone_lesions="many") for r in records]}
    elif change == "fractional_count":
        payload = {
            "dataframe_records": [
                dict(r, new_bone_lesions=2.5) if r["new_bone_lesions"] else r for r in records
            ]
        }
    elif change == "bad_flag":
        payload = {"dataframe_records": [dict(r, progressive_lysis="maybe") for r in records]}
    elif change == "bad_date":
        payload = {"dataframe_records": [dict(r, assessment_date="07/04/2019") for r in records]}
    elif change == "duplicate_visit":
        payload = {"dataframe_records": [*records, records[-1]]}
    elif change == "empty_records":
        payload = {"dataframe_records": []}
    elif change == "empty_split":
        payload = {"dataframe_split": {"columns": list(records[0]), "data": []}}
    elif change == "no_payload_key":
        payload = {}
    else:
        payload = "{not json"
    status, answer = _invoke(logged["model"], payload)
    assert 400 <= status < 500, answer
    assert message in answer["message"], answer["message"][-500:]


def test_contract_error_names_column_rule_and_rows(logged):
    records = _records(input_example())
    status, answer = _invoke(
        logged["model"], {"dataframe_records": [dict(r, cancer_type="lung") for r in records]}
    )
    assert status == 400
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "column 'cancer_type'" in answer["message"]
    assert "(DeBondt2020-L1, 2019-01-07)" in answer["message"]


# --- the bundle's fast reasons ------------------------------------------------------------
def test_fast_reasons_equal_explain_reasons():
    bundle = small_bundle()
    features = bundle.features(scoring_cohort())
    contrib, _ = shap_contributions(bundle.booster, features)
    signals = signal_contributions(contrib)
    slow = ["; ".join(r) for r in reasons(features, signals, top=bundle.top_reasons)]
    assert _joined_reasons(features, signals, bundle.top_reasons) == slow
    assert bundle.explain(features) == slow


def test_bundle_files_round_trip():
    bundle = small_bundle()
    files = bundle.to_files()
    assert all(name.endswith(".json") for name in files)
    again = type(bundle).from_files(files)
    table = scoring_cohort()
    pd.testing.assert_frame_equal(again.predict(table), bundle.predict(table))
    with pytest.raises(ValueError, match="unexpected file"):
        type(bundle).from_files({"model.pkl": b"\x80\x04"})


def test_input_schema_matches_the_contract():
    schema = input_schema()
    assert schema.input_names() == list(c.CONTRACT_COLUMNS)
    assert schema.required_input_names() == list(c.REQUIRED_COLUMNS)
