"""The package works installed as a wheel, not only from the source tree.

Builds the wheel from the repository, installs it without dependencies into a folder that
shadows the editable install (it comes first on ``PYTHONPATH``), and runs the command line
from a directory outside the repository: simulate a cohort, validate it, train a small
model on a reduced config, and score with that model; and score with the literature
prior shipped in the wheel (``--model prior``: no training, no tracking store). A config,
prior or data file missing from the wheel's package data (as when the configs were only a
symlink into the repository) fails here, as it would for anyone installing flare-ml from
an index.

It runs as its own step (``make test-wheel``, which ``.ci/run`` runs after ``make test``)
because building, installing and training from a fresh process takes about 30 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.wheel]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """Build the wheel, install it into a target folder, return the paths."""
    root = tmp_path_factory.mktemp("wheel")
    dist, target = root / "dist", root / "site"
    # build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    source = root / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(dist), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("flare_ml-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
         str(target), str(wheel)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    work = root / "elsewhere"
    work.mkdir()
    return {"wheel": wheel, "target": target, "work": work}


def _flare_ml(
    installed: dict[str, Path], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``flare-ml`` with the wheel's package first on the path, outside the repository."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(installed["target"])
    code = "import sys; from flare_ml.cli import app; sys.argv[0] = 'flare-ml'; app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd or installed["work"], env=env, capture_output=True, text=True, check=False,
        timeout=600,
    )  # fmt: skip


def test_wheel_ships_the_configs(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    configs = [n for n in names if n.startswith("flare_ml/configs/") and n.endswith(".yaml")]
    shipped = sorted(
        p.relative_to(REPO / "src").as_posix()
        for p in (REPO / "src" / "flare_ml" / "configs").rglob("*.yaml")
    )
    assert sorted(configs) == shipped
    assert "flare_ml/configs/simulation/default.yaml" in configs


def test_installed_package_is_the_wheel(installed):
    result = subprocess.run(
        [sys.executable, "-c", "import flare_ml; print(flare_ml.__file__)"],
        cwd=installed["work"], env={**os.environ, "PYTHONPATH": str(installed["target"])},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(result.stdout.strip()).is_relative_to(installed["target"])


def test_simulate_validate_train_score_from_the_wheel(installed):
    work = installed["work"]
    simulated = _flare_ml(
        installed, "simulate", "--patients", "60", "--site", "default", "--seed", "1",
        "--out", "cohort.csv",
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    assert (work / "cohort.csv").exists()

    validated = _flare_ml(installed, "validate", "cohort.csv")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "valid" in validated.stdout

    config = yaml.safe_load(
        (REPO / "src" / "flare_ml" / "configs" / "train" / "default.yaml").read_text()
    )
    config["data"] = {
        "train": {"site": "default", "patients": 150, "seed": 1},
        "external": [{"site": "community", "patients": 60, "seed": 2}],
    }
    config["model"].update(outer_folds=2, inner_folds=2, n_candidates=1, n_estimators_max=20)
    config["evaluation"]["bootstrap_resamples"] = 20
    config["tracking"]["tracking_uri"] = f"sqlite:///{work / 'mlflow.db'}"
    config["output_dir"] = str(work / "outputs")
    (work / "small.yaml").write_text(yaml.safe_dump(config))
    trained = _flare_ml(installed, "train", "--config", "small.yaml")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    model = work / "outputs" / "model"
    assert (model / "manifest.json").exists()
    # installed outside any repository: the registered version's commit is "unknown"
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=config["tracking"]["tracking_uri"])
    (version,) = client.search_model_versions("name='flare-classifier'")
    assert version.tags["flare_ml.git_commit"] == "unknown"
    assert "simulated site default (150 patients, seed 1)" in version.description

    scored = _flare_ml(
        installed, "score", "--model", str(model), "--input", "cohort.csv",
        "--output", "scores.csv",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stdout + scored.stderr
    scores = pd.read_csv(work / "scores.csv")
    cohort = pd.read_csv(work / "cohort.csv")
    n_index = int((cohort["new_bone_lesions"].fillna(0) > 0).sum())
    assert len(scores) == n_index > 0
    assert scores["p_flare"].between(0, 1).all()
    assert set(scores["decision"]) <= {"flare", "progression", "uncertain"}


def test_wheel_ships_the_prior(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    shipped = sorted(
        p.relative_to(REPO / "src").as_posix()
        for p in (REPO / "src" / "flare_ml" / "priors").rglob("*.json")
    )
    assert shipped and sorted(n for n in names if n.startswith("flare_ml/priors/")) == shipped


def test_score_with_the_prior_from_the_wheel(installed):
    work = installed["work"] / "prior"
    work.mkdir()
    simulated = _flare_ml(
        installed, "simulate", "--patients", "40", "--site", "nordic", "--seed", "7",
        "--out", "cohort.csv", cwd=work,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    scored = _flare_ml(
        installed, "score", "--model", "prior", "--input", "cohort.csv",
        "--output", "scores.csv", cwd=work,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stdout + scored.stderr
    scores = pd.read_csv(work / "scores.csv")
    assert len(scores) > 0
    assert set(scores["decision"]) <= {"flare", "progression", "uncertain"}
    assert scores["reasons"].str.len().gt(0).all()
    # no training, no tracking store: nothing MLflow in the working directory
    assert not (work / "mlflow.db").exists()
    assert not list(work.glob("mlruns*"))


def test_records_to_a_labelled_table_from_the_wheel(installed):
    """The mapping tables ship: simulate FHIR records, ingest, label, validate."""
    work = installed["work"] / "records"
    work.mkdir()
    steps = [
        ("simulate", "--patients", "25", "--seed", "3", "--format", "fhir", "--out", "fhir"),
        ("ingest", "fhir", "--input", "fhir", "--out", "table.csv"),
        ("label", "--input", "table.csv", "--out", "labelled.csv"),
        ("validate", "labelled.csv"),
    ]
    for args in steps:
        result = _flare_ml(installed, *args, cwd=work)
        assert result.returncode == 0, (args, result.stdout + result.stderr)
    labelled = pd.read_csv(work / "labelled.csv")
    assert labelled["patient_id"].nunique() >= 20
    assert set(labelled["outcome"].dropna()) <= {"flare", "progression"}
    assert labelled["label_rule"].dropna().str.startswith("pcwg3/").all()
