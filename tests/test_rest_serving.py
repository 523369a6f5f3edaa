"""End to end over HTTP: ``mlflow models serve`` answers one patient and refuses bad input.

The small session model is logged and registered as ``flare-classifier`` in a throw-away
sqlite tracking store, then served exactly as docs/serving.md says (``mlflow models serve -m
models:/flare-classifier/latest --env-manager local``) on a free port of 127.0.0.1 (the
session fixture ``rest_server`` of ``conftest.py``, shared with the parity test). One
patient's timeline must come back with one row per index row and the bundle's own
P(flare); malformed payloads (missing column, wrong type, unknown category, empty) must
get a 4xx with a clear message, never a 5xx. The server runs in its own process group
and is stopped by its PID at the end of the session. Set
``FLARE_ML_REST_EXAMPLE=<file.json>`` to keep the request and response (how
``docs/rest_example.md`` was made).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import requests

from flare_ml.data import contract as c
from flare_ml.serving.schema import to_wire_format
from serving_helpers import scoring_cohort, small_bundle

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.slow  # part of `make test` (CI); about 15-30 s


def _one_patient() -> pd.DataFrame:
    """The cohort's patient with an index row whose timeline is closest to 10 rows."""
    table = scoring_cohort()
    index = table.loc[table["new_bone_lesions"].fillna(0) > 0, "patient_id"].unique()
    sizes = table[table["patient_id"].isin(index)].groupby("patient_id").size()
    patient = (sizes - 10).abs().idxmin()
    return table[table["patient_id"] == patient].drop(columns=[c.OUTCOME])


def _post(base: str, payload: object) -> requests.Response:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return requests.post(
        f"{base}/invocations",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def test_rest_serving_end_to_end(rest_server):
    base = rest_server
    timeline = _one_patient()
    records = json.loads(to_wire_format(timeline).to_json(orient="records"))
    for record in records:  # a client sends counts as JSON integers
        if record["new_bone_lesions"] is not None:
            record["new_bone_lesions"] = int(record["new_bone_lesions"])
    expected = small_bundle().predict(timeline)

    response = _post(base, {"dataframe_records": records})
    assert response.status_code == 200, response.text
    answer = response.json()
    rows = answer["predictions"]
    assert len(rows) == len(expected) >= 1  # one row per index row
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        assert set(row) == {
            "patient_id", "assessment_date", "p_flare", "decision", "prediction_set",
            "reasons",
        }  # fmt: skip
        assert row["patient_id"] == want["patient_id"]
        assert row["assessment_date"] == want["assessment_date"].strftime("%Y-%m-%d")
        assert row["p_flare"] == pytest.approx(float(want["p_flare"]), abs=1e-6)
        assert row["decision"] == want["decision"]
        assert row["prediction_set"] == want["prediction_set"]
        assert row["reasons"] == want["reasons"] != ""

    quick = _post(base, {"dataframe_records": records, "params": {"with_reasons": False}})
    assert quick.status_code == 200, quick.text
    assert [r["reasons"] for r in quick.json()["predictions"]] == [""] * len(rows)

    if target := os.environ.get("FLARE_ML_REST_EXAMPLE"):
        Path(target).write_text(
            json.dumps({"request": {"dataframe_records": records}, "response": answer},
                       indent=2)
        )  # fmt: skip

    malformed = {
        "missing column": (
            {"dataframe_records": [{k: v for k, v in r.items() if k != "cancer_type"}
                                   for r in records]},
            "missing inputs ['cancer_type']",
        ),
        "wrong type": (
            {"dataframe_records": [dict(r, new_bone_lesions="many") for r in records]},
            "new_bone_lesions",
        ),
        "unknown category": (
            {"dataframe_records": [dict(r, cancer_type="lung") for r in records]},
            "unknown category 'lung'",
        ),
        "empty records": ({"dataframe_records": []}, "missing inputs"),
        "empty body": ("", "valid JSON"),
        "no rows": (
            {"dataframe_split": {"columns": list(records[0]), "data": []}},
            "the table has no rows",
        ),
    }  # fmt: skip
    for what, (payload, message) in malformed.items():
        response = _post(base, payload)
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
        assert message in response.json()["message"], (what, response.text[-800:])
