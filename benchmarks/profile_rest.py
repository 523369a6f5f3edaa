"""Profile one REST request in process: where the milliseconds of a one-patient call go.

Logs the benchmark model (see ``_bench_common``) to a throw-away sqlite store, loads it
with ``mlflow.pyfunc.load_model`` as the scoring server does, and times the request of
``bench_rest.py`` (one simulated patient of about ten rows) stage by stage, medians over
``--calls`` calls: the whole of MLflow's ``scoring_server.invocations`` (JSON parsing,
schema enforcement, ``predict``, JSON output), then the flare-ml stages alone
(validation, features, DMatrix, prediction, calibration and decision, SHAP and reasons,
output frame). ``--cprofile N`` also prints the top functions of a cProfile of ``N``
calls. Nothing is written; this is a diagnostic, not one of the ``bench_*`` benchmarks.

Usage::

    .venv/bin/python benchmarks/profile_rest.py
    .venv/bin/python benchmarks/profile_rest.py --calls 300 --cprofile 300
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common
from bench_rest import _patient_payload, _register


def _median_ms(function: Callable[[], Any], calls: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--cprofile", type=int, default=0, help="cProfile this many calls")
    parser.add_argument("--model", default=None, help="model URI or bundle folder")
    args = parser.parse_args()

    import mlflow
    from mlflow.pyfunc import scoring_server

    from flare_ml.data import validate_timepoints
    from flare_ml.serving.schema import _wire_frame

    model_dir = common.bench_model_dir(args.model)
    body, n_rows = _patient_payload()
    quick = json.dumps(dict(json.loads(body), params={"with_reasons": False}))
    with tempfile.TemporaryDirectory(prefix="flare-ml-profile-rest-") as tmp:
        _register(model_dir, Path(tmp))
        model = mlflow.pyfunc.load_model("models:/flare-classifier/latest")
    schema = model.metadata.get_input_schema()
    python_model = model.unwrap_python_model()
    bundle = python_model.bundle
    wire = scoring_server._parse_json_data(body, model.metadata, schema).data  # as served
    table = validate_timepoints(wire, source="request")
    features = bundle.features(table)
    feats = features[bundle.feature_names]
    matrix = bundle._matrix(feats)
    booster = bundle._booster_for(len(feats))
    raw = booster.predict(matrix)
    p = np.clip(bundle.calibrator.transform(raw), 0.0, 1.0)
    scored = bundle.score_columns(features)

    parse_args = (body, model.metadata, schema)

    def invoke(payload: str) -> Callable[[], Any]:
        return lambda: scoring_server.invocations(payload, "application/json", model, schema)

    stages: list[tuple[str, Callable[[], Any]]] = [
        ("scoring_server.invocations, with reasons", invoke(body)),
        ("scoring_server.invocations, without reasons", invoke(quick)),
        ("  parse JSON to a DataFrame", lambda: scoring_server._parse_json_data(*parse_args)),
        ("pyfunc.predict (schema enforcement + predict)", lambda: model.predict(wire)),
        ("PythonModel.predict alone", lambda: python_model.predict(None, wire)),
        ("  validate_timepoints", lambda: validate_timepoints(wire, source="request")),
        ("  bundle.features", lambda: bundle.features(table)),
        ("  bundle.score_columns (all below)", lambda: bundle.score_columns(features)),
        ("    DMatrix", lambda: bundle._matrix(feats)),
        ("    booster.predict", lambda: booster.predict(matrix)),
        ("    calibrate + decide", lambda: bundle.decide(bundle.calibrator.transform(raw))),
        ("    pred_contribs", lambda: booster.predict(matrix, pred_contribs=True)),
        ("    explain (contribs + reasons)", lambda: bundle.explain(feats, matrix)),
        ("  output frame (_wire_frame)", lambda: _wire_frame(scored)),
    ]
    del p
    print(f"{n_rows} rows, {len(features)} index row(s); medians of {args.calls} calls")
    print(f"load average {common.load_average()}")
    for label, function in stages:
        print(f"{label:<50s} {_median_ms(function, args.calls):7.3f} ms", flush=True)
    if args.cprofile:
        profiler = cProfile.Profile()
        call = invoke(body)
        profiler.enable()
        for _ in range(args.cprofile):
            call()
        profiler.disable()
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(45)
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
