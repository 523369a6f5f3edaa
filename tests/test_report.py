"""The report's opening, headline and subgroup tables on small hand-made evaluations.

No model is trained here: an :class:`~flare_ml.evaluation.Evaluation` of a calibrated
score, a ranking rule and an oracle, and decision tables from known counts, are enough to
check what the first screen says (tests/test_training_workflow.py checks a real report).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from flare_ml.decision_policy import ErrorBudget
from flare_ml.evaluation import decision_table_from_counts, evaluate
from flare_ml.evaluation.subgroups import is_small_n
from flare_ml.report import (
    _summary,
    budget_verdict,
    cohort_sentence,
    subgroup_table,
    summary_html,
)
from flare_ml.site_calibration import SITE_CALIBRATED, TRANSPORTED

LABEL = "external: simulated site test (400 patients, seed 1)"


@pytest.fixture(scope="module")
def evaluation():
    rng = np.random.default_rng(7)
    n = 400
    p = rng.uniform(0.02, 0.98, size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    rule = np.round(p * 3 + rng.normal(0, 1, size=n))  # a coarse ranking, not a probability
    oracle = np.clip(p + rng.normal(0, 0.02, size=n), 0.001, 0.999)
    groups = pd.DataFrame({"cancer_type": np.where(np.arange(n) < 380, "breast", "nsclc")})
    return evaluate(
        y,
        {"xgboost": p, "seed_criteria": rule, "oracle": oracle},
        patient_ids=np.arange(n) // 2,
        thresholds={"xgboost": 0.6, "seed_criteria": 1.0, "oracle": 0.6},
        subgroups=groups,
        subgroup_min_size=10,
        n_resamples=60,
        probability_scorers=["xgboost", "oracle"],
    )


def tables(missed_first: bool = True):
    budget = ErrorBudget(0.05, 0.10)
    # 12 of 100 true progressions called flare (missed), then 3 of 100 (held)
    shipped = {
        ("flare", "progression"): 12 if missed_first else 3,
        ("progression", "progression"): 88 if missed_first else 97,
    }
    site = {("flare", "progression"): 3, ("progression", "progression"): 97}
    flares = {("flare", "flare"): 90, ("uncertain", "flare"): 10}
    return [
        decision_table_from_counts(
            {**shipped, **flares}, budget, cohort=LABEL, thresholds=TRANSPORTED
        ),
        decision_table_from_counts(
            {**site, **flares}, budget, cohort=LABEL, thresholds=SITE_CALIBRATED
        ),
    ]


def test_sentence_compares_model_best_rule_oracle_and_says_whether_the_budget_held(evaluation):
    shipped, site = tables()
    assert (budget_verdict(shipped), budget_verdict(site)) == ("missed", "held")
    sentence = cohort_sentence(LABEL, evaluation, [shipped, site])
    auc = evaluation.estimate("xgboost", "auroc")
    assert f"XGBoost AUROC {auc:.2f} [" in sentence
    assert (
        f"vs best rule (seed criteria) {evaluation.estimate('seed_criteria', 'auroc'):.2f}"
        in sentence
    )
    assert f"vs oracle {evaluation.estimate('oracle', 'auroc'):.2f}" in sentence
    assert "with the shipped thresholds: missed (progressions called flare 12.0% [" in sentence
    assert "after recalibration at the site: held (3.0% [" in sentence
    assert sentence.count(".") >= 1 and sentence.endswith(".")
    # the same verdicts once the shipped thresholds keep the budget
    shipped_ok, _ = tables(missed_first=False)
    assert "with the shipped thresholds: held" in cohort_sentence(
        LABEL, evaluation, [shipped_ok, site]
    )


def test_first_screen_has_one_sentence_per_cohort_targets_and_decision_cards(evaluation):
    shipped, site = tables()
    training = "training: simulated site default (800 patients, seed 1)"
    page = summary_html(
        [(LABEL, evaluation, [shipped, site]), (training, evaluation, [])],
        ErrorBudget(0.05, 0.10),
        [shipped, site],
    )
    assert page.count("<li>") == 2
    text = re.sub(r"<[^>]+>", "", page)
    assert "Training (training, out-of-fold;" in text
    # targets: met or missed, the budget row says missed for the shipped thresholds
    assert re.search(r"decision budget, shipped thresholds.*?12\.0% / 0\.0% ✗ missed", text)
    assert re.search(r"decision budget, recalibrated at the site.*?3\.0% / 0\.0% ✓ held", text)
    slope = evaluation.estimate("xgboost", "calibration_slope")
    verdict = "met" if 0.8 <= slope <= 1.2 else "missed"
    assert re.search(rf"calibration slope0\.8–1\.2{slope:.2f} \[[^]]+\] . {verdict}", text)
    # the decision card: counts of both threshold sources and the realised rates
    assert "Decisions against outcomes: test" in text
    assert "12.0% [" in text and "3.0% [" in text


def test_rules_get_ranking_metrics_only(evaluation):
    table = _summary(evaluation).set_index("scorer")
    for column in ("Brier", "calibration slope", "ECE", "threshold"):
        assert table.loc["seed_criteria", column] == ""
        assert table.loc["xgboost", column] != ""
    assert table.loc["seed_criteria", "AUROC"].startswith(
        f"{evaluation.estimate('seed_criteria', 'auroc'):.3f} ["
    )
    assert list(table.columns)[-1] == "threshold"


def test_subgroup_rows_carry_intervals_and_a_small_n_flag(evaluation):
    raw = evaluation.subgroups[evaluation.subgroups["scorer"] == "xgboost"].reset_index()
    shown = subgroup_table(evaluation)
    assert len(shown) == len(raw) == 2
    for (_, r), (_, row) in zip(raw.iterrows(), shown.iterrows(), strict=True):
        small = is_small_n(r["n"], r["n_flare"], r["n_progression"])
        assert ("small n" in row["flag"]) == small
        assert bool(r["small_n"]) == small
        for metric, column in (
            ("auroc", "AUROC"),
            ("sensitivity", "sensitivity"),
            ("specificity", "specificity"),
        ):
            if np.isfinite(r[metric]):
                assert re.fullmatch(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\]", row[column]), row[column]
    # the 20-row level is small, the 380-row level is not
    assert shown["flag"].tolist()[0] == "" and "small n" in shown["flag"].tolist()[1]
