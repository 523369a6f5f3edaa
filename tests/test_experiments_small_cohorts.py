"""The ``small_cohorts`` experiment end to end on one tiny cell, twice.

One world (T1), one site size (40 patients), one draw and a 120-patient evaluation cohort
keep the run to seconds; the test checks the tables' structure, that every method is
evaluated on the same draw and that a rerun reproduces the results file (all but the
wall-time line, which is measured).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from flare_ml.errors import ConfigError
from flare_ml.experiments import load_experiment, run_experiment
from flare_ml.experiments.config import load_params
from flare_ml.experiments.kinds.small_cohorts import METHODS, draw_specs

TINY = {
    "kind": "small_cohorts",
    "experiment_name": "flare-ml-test-small-cohorts",
    "seed": 5,
    "bootstrap_resamples": 20,
    "training": {
        "model": {"n_jobs": 1, "n_candidates": 1, "inner_folds": 2, "n_estimators_max": 30}
    },
    "params": {
        "cells": [{"world": "T1", "sizes": [40]}],
        "draws": 1,
        "eval_patients": 120,
        "scratch_candidates": 1,
        "scratch_outer_folds": 2,
        "adapt_repeats": 1,
        "workers": 1,
    },
}


def _table(text: str, title: str) -> list[list[str]]:
    block = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    return [[cell.strip() for cell in ln.strip("|").split("|")] for ln in lines if "---" not in ln]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_cohorts")
    cwd = Path.cwd()
    os.chdir(folder)  # MLflow puts a new experiment's artifacts in ./mlruns
    try:
        path = folder / "tiny_small_cohorts.yaml"
        path.write_text(yaml.safe_dump(TINY, sort_keys=False))
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        first = run_experiment(path, tracking_uri=uri).read_text()
        second = run_experiment(path, tracking_uri=uri).read_text()
    finally:
        os.chdir(cwd)
    return first, second


@pytest.mark.slow
def test_tables_name_every_method_with_the_training_sample(two_runs):
    text = two_runs[0]
    cells = _table(text, "Site samples per world and size")
    assert cells[0][:3] == ["world", "patients", "draws"]
    assert len(cells) == 2 and cells[1][:3] == ["T1", "40", "1"]
    index_rows, flares = int(cells[1][3]), int(cells[1][4])
    assert 0 < flares < index_rows
    methods = _table(text, "Methods per world and size")
    header, rows = methods[0], methods[1:]
    assert header[:4] == ["world", "patients", "method", "AUROC"]
    assert [r[2] for r in rows] == list(METHODS)
    column = {name: header.index(name) for name in ("AUROC", "cal. slope", "coverage flare")}
    for row in rows:
        auroc = float(row[column["AUROC"]].split()[0])
        assert 0.0 <= auroc <= 1.0
    by_method = {r[2]: r for r in rows}
    assert by_method["best rule"][column["cal. slope"]] == "-"  # a ranking score
    assert by_method["small-n LR"][column["coverage flare"]] == "-"  # no conformal sets
    assert by_method["adapted prior"][column["coverage flare"]] != "-"
    assert "## Targets of issue 13" in text
    assert re.search(r"1 draws \(1 per cell\) ran on 1 parallel workers in \d+ s wall time", text)


@pytest.mark.slow
def test_rerun_reproduces_every_number(two_runs):
    def numbers(text: str) -> str:
        return re.sub(r"in \d+ s wall time \(\d+ s of draw time\)", "", text)

    first, second = two_runs
    assert numbers(first) == numbers(second)
    assert "wall time" in first


def test_draw_seeds_differ_by_size_and_draw_and_cycle_t1_worlds():
    params = load_params(
        "small_cohorts",
        {
            "cells": [{"world": "T1", "sizes": [40, 80]}, {"world": "T3", "sizes": [100]}],
            "draws": 11,
        },
    )
    specs = draw_specs(params)
    assert len(specs) == 33
    assert len({s.train_seed for s in specs}) == 33
    t1 = [s for s in specs if s.world == "T1" and s.size == 40]
    assert t1[0].world_seed == t1[10].world_seed != t1[1].world_seed
    assert len({s.world_seed for s in t1}) == 10
    assert all(s.eval_seed != s.train_seed for s in specs)


def test_unknown_small_n_feature_and_world_are_named(tmp_path):
    for params, needle in (
        ({**TINY["params"], "small_n_features": ["not_a_feature"]}, "not_a_feature"),
        ({**TINY["params"], "cells": [{"world": "T9", "sizes": [40]}]}, r"params\.cells\.0\.world"),
    ):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({**TINY, "params": params}))
        with pytest.raises(ConfigError, match=needle):
            load_experiment(path)


def test_a_sample_too_small_to_adapt_scores_the_prior_as_is():
    """At 20 patients a draw has too few of one outcome: adapt refuses, the prior stands.

    The draw still completes; a method the sample cannot fit is recorded as not fitted
    (NaN metrics), never as a crash of the whole run.
    """
    import math

    from flare_ml.experiments.kinds.small_cohorts import TOO_FEW, run_draw
    from flare_ml.train_config import TrainConfig

    params = load_params(
        "small_cohorts",
        {**TINY["params"], "cells": [{"world": "T0", "sizes": [20]}], "eval_patients": 150},
    )
    spec = draw_specs(params)[0]
    out = run_draw(spec, params, TrainConfig())
    assert out["chosen"] == TOO_FEW
    assert out["metrics"]["adapted prior"]["auroc"] == out["metrics"]["prior"]["auroc"]
    for method in out["not_fitted"]:
        assert math.isnan(out["metrics"][method]["auroc"])
    assert set(out["metrics"]) == set(METHODS)
