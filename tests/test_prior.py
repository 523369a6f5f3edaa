"""The literature prior: shipped, current, plain JSON, and usable as `--model prior`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import flare_ml.prior as prior_module
from flare_ml.bundle import MANIFEST
from flare_ml.cli import app
from flare_ml.config_io import CONFIG_ROOT
from flare_ml.data import write_table
from flare_ml.decision_policy import ErrorBudget
from flare_ml.errors import ConfigError
from flare_ml.prior import (
    ACROSS_SITES,
    PRIOR_DIR,
    across_sites_conformal,
    folder_size_kb,
    load_prior,
    load_prior_config,
    prior_digest,
)
from flare_ml.serving.flavor import PRIOR_MODEL, load_bundle, resolve_bundle
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.config import BIOLOGY_PATH
from flare_ml.simulate.worlds import PRIOR_CONFIG_PATH
from flare_ml.uncertainty import ClassConditionalConformal, coverage_report
from serving_helpers import bundle_copy, small_bundle


def _manifest() -> dict:
    return json.loads((PRIOR_DIR / MANIFEST).read_text())


def test_shipped_prior_was_built_from_the_current_configs():
    recorded = _manifest()["metadata"]["config_digest"]
    assert recorded == prior_digest(), (
        "the prior's config (configs/prior/default.yaml), the literature biology, its base "
        "site profile or the training config's features/decision policy changed since the "
        "shipped prior was built: run `flare-ml prior build` and commit "
        "src/flare_ml/priors/literature"
    )


def _copy(path: Path, target: Path, edit) -> Path:
    data = yaml.safe_load(path.read_text())
    edit(data)
    target.write_text(yaml.safe_dump(data))
    return target


def test_digest_changes_with_every_config_it_depends_on(tmp_path, monkeypatch):
    current = prior_digest()
    wider = _copy(
        PRIOR_CONFIG_PATH,
        tmp_path / "prior.yaml",
        lambda d: d["worlds"]["site"]["label_noise"].update(high=0.09),
    )
    assert prior_digest(config_path=wider) != current
    other_base = _copy(
        PRIOR_CONFIG_PATH,
        tmp_path / "base.yaml",
        lambda d: d["worlds"]["site"].update(base="nordic"),
    )
    assert prior_digest(config_path=other_base) != current
    budget = _copy(
        CONFIG_ROOT / "train" / "default.yaml",
        tmp_path / "train.yaml",
        lambda d: d["decision_policy"].update(max_progression_called_flare=0.04),
    )
    with_budget = _copy(
        PRIOR_CONFIG_PATH, tmp_path / "p2.yaml", lambda d: d.update(train_config=str(budget))
    )
    assert prior_digest(config_path=with_budget) != current
    biology = _copy(
        BIOLOGY_PATH,
        tmp_path / "literature.yaml",
        lambda d: d["primary_bone_progression_probability"].update(value=0.55),
    )
    monkeypatch.setattr(prior_module, "BIOLOGY_PATH", biology)
    assert prior_digest() != current


def test_measure_seeds_never_reuse_build_seeds(tmp_path):
    overlap = _copy(
        PRIOR_CONFIG_PATH,
        tmp_path / "prior.yaml",
        lambda d: d["measure"].update(random_seed=d["build"]["seed"] + 3),
    )
    with pytest.raises(ConfigError, match="build seeds"):
        load_prior_config(overlap)


def test_shipped_prior_is_plain_json_small_and_documented():
    files = sorted(p.name for p in PRIOR_DIR.iterdir())
    assert files and all(name.endswith(".json") for name in files), files
    for name in files:
        json.loads((PRIOR_DIR / name).read_text())  # no pickle, no binary
    assert folder_size_kb(PRIOR_DIR) < 2048
    meta = _manifest()["metadata"]
    assert meta["training"]["n_patients"] >= 50_000
    assert meta["prior"]["sites"] >= 50
    assert meta["prior"]["data"] == "literature-encoded simulation, not patients"
    assert meta["conformal_calibration"] == ACROSS_SITES
    assert {"flare_ml", "python", "numpy", "xgboost", "scikit_learn", "pandas"} <= set(
        meta["software"]
    )
    cfg = load_prior_config()
    best = meta["prior"]["best_params"]
    assert best["max_depth"] <= max(cfg.model.search_space["max_depth"])
    assert best["n_estimators"] <= cfg.model.n_estimators_max
    bundle = load_prior()
    assert bundle.budget == ErrorBudget(0.05, 0.10)  # the shipped decision policy


def test_prior_resolves_without_a_tracking_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert load_bundle(PRIOR_MODEL).digest() == load_prior().digest()
    assert resolve_bundle("prior").digest() == load_prior().digest()
    assert not (tmp_path / "mlflow.db").exists()
    # a bundle folder called "prior" in the working directory is what the user meant
    bundle_copy(tmp_path / "prior")
    assert load_bundle("prior").digest() == small_bundle().digest()


def test_score_model_prior_writes_decisions_sets_and_reasons(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cohort = simulate_cohort(80, site="community", seed=4242).timepoints
    write_table(cohort, tmp_path / "cohort.csv")
    result = CliRunner().invoke(
        app, ["score", "--model", "prior", "--input", "cohort.csv", "--output", "scores.csv"]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "scores.csv")
    n_index = int((cohort["new_bone_lesions"].fillna(0) > 0).sum())
    assert len(scores) == n_index > 0
    assert set(scores["decision"]) <= {"flare", "progression", "uncertain"}
    assert scores["prediction_set"].notna().all()
    assert scores["reasons"].str.len().gt(0).all()
    assert not (tmp_path / "mlflow.db").exists()
    assert not list(tmp_path.glob("mlruns*"))


def test_timeline_takes_the_prior(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cohort = simulate_cohort(30, seed=4243).timepoints
    index = cohort[cohort["new_bone_lesions"].fillna(0) > 0]
    write_table(cohort, tmp_path / "cohort.csv")
    patient = str(index["patient_id"].iloc[0])
    result = CliRunner().invoke(
        app,
        ["timeline", "--input", "cohort.csv", "--patient", patient, "--out", "t.html",
         "--model", "prior"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.html").exists()
    assert not (tmp_path / "mlflow.db").exists()


def _sites(n_sites: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(flare) at sites whose score distributions differ (a site effect)."""
    rng = np.random.default_rng(seed)
    sites = np.repeat(np.arange(n_sites), 300)
    y = (rng.uniform(size=len(sites)) < 0.45).astype(int)
    shift = rng.normal(0.0, 0.6, n_sites)[sites]
    logit = (2 * y - 1) * 1.2 + shift + rng.normal(0.0, 1.0, len(sites))
    return 1.0 / (1.0 + np.exp(-logit)), y, sites


def _share_of_sites_covered(conformal, p, y, sites, target=0.88) -> float:
    met = []
    for s in np.unique(sites):
        rows = sites == s
        report = coverage_report(conformal.predict_sets(p[rows]), y[rows])
        met.append(min(report["coverage_flare"], report["coverage_progression"]) >= target)
    return float(np.mean(met))


def test_across_sites_thresholds_hold_at_more_new_sites_than_pooled():
    budget = ErrorBudget(0.05, 0.10)
    p, y, sites = _sites(60, seed=1)
    pooled = ClassConditionalConformal.from_budget(budget).fit(p, y)
    across = across_sites_conformal(p, y, sites, budget, site_quantile=0.9)
    new_p, new_y, new_sites = _sites(60, seed=2)
    share_pooled = _share_of_sites_covered(pooled, new_p, new_y, new_sites)
    share_across = _share_of_sites_covered(across, new_p, new_y, new_sites)
    assert share_across >= 0.85 > share_pooled
    # and the budget grid follows, so a tighter budget at scoring still works
    tighter = across.with_budget(ErrorBudget(0.02, 0.10))
    assert tighter.thresholds_["progression"] >= across.thresholds_["progression"]


def test_build_prior_pools_sites_and_groups_folds_by_site(monkeypatch):
    cfg = load_prior_config()
    small = cfg.model_copy(
        update={
            "build": cfg.build.model_copy(
                update={"sites": 3, "patients_per_site": 90, "site_folds": 3}
            ),
            "model": cfg.model.model_copy(update={"n_candidates": 1, "n_estimators_max": 10}),
        }
    )
    seen = []
    real = prior_module.grouped_folds

    def spy(y, groups, n_splits, seed):
        folds = real(y, groups, n_splits, seed)
        seen.append([set(np.asarray(groups)[test]) for _, test in folds])
        return folds

    monkeypatch.setattr(prior_module, "grouped_folds", spy)
    built = prior_module.build_prior(small)
    (held_out_sites,) = seen
    assert sorted(s for fold in held_out_sites for s in fold) == [0, 1, 2]  # one site a fold
    assert built.bundle.metadata["config_digest"] == prior_digest(small)
    assert built.n_patients == 270


def test_prior_build_and_measure_commands(tmp_path):
    def shrink(d):
        d["build"].update(sites=3, patients_per_site=80, site_folds=3)
        d["model"].update(n_candidates=1, n_estimators_max=10)
        d["measure"].update(
            shipped_sites=["nordic"], shipped_patients=100, random_sites=1, random_patients=100
        )

    config = _copy(PRIOR_CONFIG_PATH, tmp_path / "tiny.yaml", shrink)
    out = tmp_path / "tiny_prior"
    built = CliRunner().invoke(app, ["prior", "build", "--config", str(config), "--out", str(out)])
    assert built.exit_code == 0, built.output
    digest = prior_digest(config_path=config)
    assert digest in built.output and digest != prior_digest()
    assert json.loads((out / MANIFEST).read_text())["metadata"]["config_digest"] == digest
    measured = CliRunner().invoke(
        app,
        ["prior", "measure", "--model", str(out), "--config", str(config),
         "--out", str(tmp_path / "m.csv")],
    )  # fmt: skip
    assert measured.exit_code == 0, measured.output
    frame = pd.read_csv(tmp_path / "m.csv")
    assert list(frame["kind"]) == ["shipped", "random"]
    assert frame["coverage flare"].between(0, 1).all()


def test_evaluate_reads_every_rule_at_its_own_decision(tmp_path, monkeypatch):
    """A model that records no rule thresholds (the prior) still reads each rule at its own."""
    from flare_ml.rules import make_rules
    from flare_ml.workflows import evaluate

    monkeypatch.chdir(tmp_path)
    data = write_table(
        simulate_cohort(200, site="community", seed=77).timepoints, tmp_path / "c.csv"
    )
    result = evaluate(PRIOR_MODEL, data, n_resamples=0)
    summary = result["evaluation"].summary_table(formatted=False).set_index("scorer")
    for name, rule in make_rules(None).items():
        assert float(summary.loc[name, "threshold"]) == float(rule.decision_threshold), name
    assert not (tmp_path / "mlflow.db").exists()


def test_small_site_story_compares_rule_trained_prior_adapted_and_oracle(tmp_path, monkeypatch):
    from flare_ml.workflows import evaluate, small_site_story

    monkeypatch.chdir(tmp_path)
    cohort = simulate_cohort(300, site="community", seed=91)
    external = tmp_path / "external.parquet"
    from flare_ml.simulate import write_cohort

    write_cohort(cohort, external)  # with its oracle beside it
    model = bundle_copy(tmp_path / "trained")
    story = small_site_story(
        str(model),
        external,
        tmp_path / "out",
        site="community",
        labelled_patients=120,
        seed=92,
        n_resamples=0,
    )
    names = story["scorer"].tolist()
    assert names[0].startswith("best rule") and names[-1].startswith("oracle")
    assert [n.split(" (")[0] for n in names[1:4]] == [
        "model trained on another site",
        "literature prior, out of the box",
        "prior adapted on 120 labelled patients",
    ]
    # the prior's row is what evaluate says of the prior on the same cohort
    ev = evaluate(PRIOR_MODEL, external, n_resamples=0)["evaluation"]
    assert story.loc[2, "AUROC"] == f"{ev.estimate('xgboost', 'auroc'):.3f}"
    assert (tmp_path / "out" / "adapted-community" / MANIFEST).exists()
    assert not (tmp_path / "mlflow.db").exists()
