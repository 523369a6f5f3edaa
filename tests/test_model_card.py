"""The model card: TRIPOD+AI 2024 items by number, filled from the run it describes.

The card of the session's small training run (``serving_helpers.small_training``, shared
with the serving tests, so nothing new is trained) is checked against counts computed
here from its cohorts: Table 1, events per cohort, the decision tables. One training
workflow (``workflows.train`` on a copy of that run, logged to a throw-away MLflow
store) checks that the card written to disk and logged to MLflow names the run it
belongs to.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest

from flare_ml import model_card as mc
from flare_ml import report, workflows
from flare_ml.bundle import SYNTHETIC_CAVEAT
from flare_ml.data import contract as c
from flare_ml.data import index_row_mask
from flare_ml.decision_policy import ErrorBudget
from flare_ml.evaluation import decision_table
from serving_helpers import small_training

REPO = Path(__file__).resolve().parents[1]
RUN = {"run_id": "0123456789abcdef", "registered_version": "7", "model_uri": "models:/m/7"}


@pytest.fixture(scope="module")
def result():
    return small_training()


@pytest.fixture(scope="module")
def card(result) -> str:
    return mc.model_card(
        result, report.target_checks(result), report.coverage_table(result), run=RUN
    )


def _cohorts(result):
    return [result.training, *result.externals]


def _analysed_patients(cohort) -> pd.DataFrame:
    """One row per patient with an index row, from the raw timepoints (not the featurizer)."""
    t = cohort.timepoints
    idx = t[index_row_mask(t).to_numpy()]
    return t[t[c.PATIENT_ID].isin(set(idx[c.PATIENT_ID]))].drop_duplicates(c.PATIENT_ID)


def test_items_are_cited_by_tripod_ai_2024_number(card):
    assert "TRIPOD+AI" in card and "2024" in card
    for number in ("1", "3b", "8a", "9b", "10", "11", "12f", "14", "15", "20b", "21", "22"):
        assert f"**{number}. {mc.TRIPOD_AI_ITEMS[number]}.**" in card, number
    for number in ("23a", "24", "26", "27a"):
        assert f"**{number}. {mc.TRIPOD_AI_ITEMS[number]}.**" in card, number
    # the index lists every checklist item once, each addressed or marked as not filled
    index = card[card.index("## Checklist index") :]
    for number, title in mc.TRIPOD_AI_ITEMS.items():
        assert re.search(rf"^\| {re.escape(number)} +\| {re.escape(title)} +\|", index, re.M)
    assert index.count("not applicable (synthetic data)") >= 4
    # the card does not claim an item it leaves unfilled (e.g. ethics approval)
    assert "**17. Ethical approval.**" not in card
    for heading in ("## Intended use", "## Data", "## Predictors", "## Outcome"):
        assert heading in card
    for heading in ("## Missing data", "## Performance", "## Subgroups", "## Limitations"):
        assert heading in card


def test_synthetic_caveat_leads_and_no_file_outside_the_repository(card):
    head = "\n".join(card.splitlines()[:4])
    assert SYNTHETIC_CAVEAT in head and "NOT FOR CLINICAL USE" in head
    assert "literature.md" not in card and "DESIGN.md" not in card
    for path in set(re.findall(r"\b(?:docs|src|tests|experiments)/[\w./-]*[\w/]", card)):
        assert (REPO / path).exists(), path


def test_events_per_cohort_match_the_cohorts(result, card):
    size = mc.sample_size_table(result).set_index("cohort")
    for cohort in _cohorts(result):
        t = cohort.timepoints
        is_index = index_row_mask(t).to_numpy()
        outcome = t.loc[is_index, c.OUTCOME].astype(str)
        row = size.loc[cohort.label]
        assert row["patients"] == t[c.PATIENT_ID].nunique()
        assert row["patients analysed"] == t.loc[is_index, c.PATIENT_ID].nunique()
        assert row["index assessments"] == int(is_index.sum())
        assert row["flares"] == int((outcome == "flare").sum())
        assert row["progressions"] == int((outcome == "progression").sum())
    n_pred = len(result.model.feature_names_in_)
    events = min(size.iloc[0]["flares"], size.iloc[0]["progressions"])
    assert size.iloc[0]["events per candidate predictor"].startswith(f"{events / n_pred:.1f} ")
    assert mc.sample_size_table(result).to_markdown(index=False) in card


def test_table_one_counts_match_the_cohorts(result, card):
    t1 = mc.table_one(_cohorts(result))
    assert t1.to_markdown() in card
    for cohort in _cohorts(result):
        col = t1[cohort.label]
        patients = _analysed_patients(cohort)
        n_pat = len(patients)
        assert col["patients analysed (at least one index assessment), n"] == str(n_pat)
        for cancer in c.CANCER_TYPES:
            n = int((patients[c.CANCER_TYPE].astype(str) == cancer).sum())
            assert col[f"cancer type: {cancer}, n (%) of patients"] == mc._n_pct(n, n_pat)
        for therapy in set(patients[c.THERAPY_CLASS].astype(str)):
            n = int((patients[c.THERAPY_CLASS].astype(str) == therapy).sum())
            assert col[f"therapy class: {therapy}, n (%) of patients"] == mc._n_pct(n, n_pat)
        t = cohort.timepoints
        index = t[index_row_mask(t).to_numpy()]
        for morphology in ("blastic", "lytic", "mixed"):
            n = int((index[c.NEW_LESION_MORPHOLOGY].astype(str) == morphology).sum())
            key = f"new-lesion morphology: {morphology}, n (%) of index assessments"
            assert col[key] == mc._n_pct(n, len(index))
        for response in ("CR", "PR", "SD", "PD"):
            n = int((index[c.EXTRAOSSEOUS_RESPONSE].astype(str) == response).sum())
            key = f"extraosseous response at index scan: {response}, n (%)"
            assert col[key] == mc._n_pct(n, len(index))
        first = cohort.features.groupby(level=c.PATIENT_ID).head(1)
        q1, med, q3 = np.nanpercentile(first["alp_baseline_u_l"], [25, 50, 75])
        assert col["baseline ALP, U/L, median [IQR]"] == f"{med:.0f} [{q1:.0f}, {q3:.0f}]"
        assert col["age"] == "not in the data contract"


def test_decision_tables_are_the_runs_with_rates_and_cis(result, card):
    assert result.decision_tables
    for table in result.decision_tables:
        assert table.sentence() in card
        assert table.to_frame().reset_index().to_markdown(index=False) in card
        for _, rate in table.rates().iterrows():
            assert f"{int(rate['count'])} / {int(rate['of'])}" in card
            assert f"{rate['rate']:.3f} [{rate['ci_low']:.3f}, {rate['ci_high']:.3f}]" in card
    assert result.config.decision_policy.budget().describe() in card


def test_a_missed_budget_is_said_plainly_with_the_remedy(result):
    y = np.r_[np.zeros(100, dtype=int), np.ones(50, dtype=int)]
    decisions = np.r_[["flare"] * 20, ["progression"] * 80, ["flare"] * 50]
    missed = decision_table(
        y, decisions, ErrorBudget(), cohort="external: site X", thresholds="shipped"
    )
    held = decision_table(y, np.where(y == 1, "flare", "progression"), ErrorBudget())
    assert not missed.held() and held.held()
    text = mc.model_card(
        dataclasses.replace(result, decision_tables=[held, missed]), pd.DataFrame(), pd.DataFrame()
    )
    assert "**The budget was missed** on: external: site X: shipped." in text
    assert "flare-ml calibrate" in text
    fine = mc.model_card(
        dataclasses.replace(result, decision_tables=[held]), pd.DataFrame(), pd.DataFrame()
    )
    assert "The budget was missed" not in fine


def test_rules_get_ranking_metrics_only(result):
    ev = result.evaluations[result.training.label]
    table = mc.performance_table(ev, list(result.rules)).set_index("scorer")
    for rule in result.rules:
        assert table.loc[rule, "AUROC"] == f"{ev.estimate(rule, 'auroc'):.3f}"
        assert table.loc[rule, "calibration slope"] == "n/a (ranking score)"
        assert table.loc[rule, "Brier"] == "n/a (ranking score)"
    assert table.loc["xgboost", "Brier"] == f"{ev.estimate('xgboost', 'brier'):.3f}"


def test_subgroups_carry_intervals_when_computed_and_flag_small_n():
    sub = pd.DataFrame(
        {
            "scorer": ["xgboost", "xgboost", "seed_criteria"],
            "variable": ["cancer_type"] * 3,
            "level": ["breast", "other", "breast"],
            "n": [200, 12, 200],
            "n_flare": [80, 5, 80],
            "n_progression": [120, 7, 120],
            "auroc": [0.81, np.nan, 0.7],
            "auroc_ci_low": [0.75, np.nan, 0.6],
            "auroc_ci_high": [0.86, np.nan, 0.8],
            "sensitivity": [0.5, np.nan, 0.4],
            "sensitivity_ci_low": [0.4, np.nan, 0.3],
            "sensitivity_ci_high": [0.6, np.nan, 0.5],
        }
    )
    table = mc.subgroup_table(SimpleNamespace(subgroups=sub))
    assert list(table["level"]) == ["breast", "other"]  # the model's rows only
    assert table.loc[0, "AUROC"] == "0.810 [0.750, 0.860]"
    assert table.loc[0, "sensitivity"] == "0.500 [0.400, 0.600]"
    assert table.loc[0, "note"] == "" and "small n" in table.loc[1, "note"]
    assert table.loc[1, "AUROC"] == "-"


def test_version_block_names_version_digest_commit_and_run(result, card):
    assert f"`{result.bundle.digest()}`" in card
    assert f"`{RUN['run_id']}`" in card and "version 7" in card
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    if head:
        assert mc.source_commit().startswith(head)
        assert f"`{head}" in card
    unlogged = mc.model_card(result, pd.DataFrame(), pd.DataFrame())
    assert "MLflow run id | not yet logged" in unlogged


def test_commit_is_unknown_outside_a_checkout_of_the_package(tmp_path, monkeypatch):
    fake = tmp_path / "site-packages" / "flare_ml" / "model_card.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("")
    monkeypatch.setattr(mc, "__file__", str(fake))
    assert mc.source_commit() == "unknown"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``workflows.train`` on a copy of the session run, in a throw-away MLflow store."""
    root = tmp_path_factory.mktemp("model-card")
    result = copy.deepcopy(small_training())
    cfg = result.config.model_copy(
        update={
            "experiment_name": "model-card-test",
            "output_dir": str(root / "out"),
            "tracking": result.config.tracking.model_copy(
                update={"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"}
            ),
        }
    )
    result.config = cfg
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(root)  # MLflow's artifacts go under ./mlruns: keep them in tmp
        mp.setattr(workflows, "train_and_validate", lambda *args, **kwargs: result)
        try:
            outcome = workflows.train(cfg)
        finally:
            mlflow.set_tracking_uri(previous)
    return outcome


def test_card_on_disk_and_in_mlflow_names_its_run(trained):
    text = trained.model_card.read_text()
    assert trained.run_id and f"MLflow run id | `{trained.run_id}`" in text
    assert f"version {trained.registered_version} |" in text
    client = mlflow.MlflowClient(tracking_uri=trained.tracking_uri)
    logged = Path(client.download_artifacts(trained.run_id, "report/model_card.md"))
    assert logged.read_text() == text
