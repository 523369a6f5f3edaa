"""Class-conditional split conformal: per-class coverage, decisions, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_ml.uncertainty import (
    DECISIONS,
    ClassConditionalConformal,
    coverage_report,
)


def _exchangeable(n: int, seed: int, flare_rate: float = 0.3):
    """Scores and outcomes from one distribution (calibration and test alike)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < flare_rate).astype(int)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return p, y


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_each_class_reaches_its_coverage_on_new_data(coverage):
    p_cal, y_cal = _exchangeable(4000, seed=1)
    p_test, y_test = _exchangeable(20000, seed=2)
    cp = ClassConditionalConformal(coverage).fit(p_cal, y_cal)
    report = coverage_report(cp.predict_sets(p_test), y_test)
    # per-class guarantee: >= target (minus sampling noise), and not wastefully above it
    for key in ("coverage_flare", "coverage_progression"):
        assert coverage - 0.02 <= report[key] <= coverage + 0.03, (key, report)


def test_marginal_calibration_would_undercover_the_rare_class():
    """Why class-conditional: a single threshold favours the majority class."""
    p_cal, y_cal = _exchangeable(4000, seed=3, flare_rate=0.1)
    p_test, y_test = _exchangeable(20000, seed=4, flare_rate=0.1)
    scores = np.where(y_cal == 1, 1 - p_cal, p_cal)
    q = np.sort(scores)[int(np.ceil(0.9 * (len(scores) + 1))) - 1]
    marginal_flare_cov = np.mean((1 - p_test[y_test == 1]) <= q)
    cp = ClassConditionalConformal(0.9).fit(p_cal, y_cal)
    conditional = coverage_report(cp.predict_sets(p_test), y_test)["coverage_flare"]
    assert conditional > marginal_flare_cov


def test_decisions_follow_the_sets():
    cp = ClassConditionalConformal(0.9)
    cp.thresholds_ = {"flare": 0.6, "progression": 0.5}
    decisions, labels = cp.decide(np.array([0.95, 0.05, 0.45]))
    assert decisions.tolist() == ["flare", "progression", "uncertain"]
    assert labels.tolist() == ["flare", "progression", "flare,progression"]
    # an empty set (both classes nonconforming) is uncertain too
    cp.thresholds_ = {"flare": 0.3, "progression": 0.4}
    decisions, labels = cp.decide(np.array([0.5]))
    assert decisions.tolist() == ["uncertain"] and labels.tolist() == [""]
    assert set(decisions) <= set(DECISIONS)


def test_too_few_calibration_cases_give_always_include():
    cp = ClassConditionalConformal(0.95).fit(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0]))
    assert cp.thresholds_["flare"] == np.inf
    sets = cp.predict_sets(np.array([0.0, 1.0]))
    assert sets[:, 1].all()  # flare never excluded without evidence


def test_json_round_trip():
    p, y = _exchangeable(500, seed=5)
    cp = ClassConditionalConformal(0.9).fit(p, y)
    again = ClassConditionalConformal.from_dict(json.loads(json.dumps(cp.to_dict())))
    np.testing.assert_array_equal(cp.predict_sets(p), again.predict_sets(p))


def test_rejects_bad_coverage():
    with pytest.raises(ValueError, match="coverage"):
        ClassConditionalConformal(1.2)


@settings(max_examples=50, deadline=None)
@given(
    p=st.lists(st.floats(0, 1), min_size=30, max_size=200),
    coverage=st.floats(0.5, 0.95),
    seed=st.integers(0, 100),
)
def test_in_sample_coverage_is_at_least_the_target(p, coverage, seed):
    p = np.array(p)
    y = np.random.default_rng(seed).integers(0, 2, len(p))
    cp = ClassConditionalConformal(coverage).fit(p, y)
    report = coverage_report(cp.predict_sets(p), y)
    for cls, key in ((1, "coverage_flare"), (0, "coverage_progression")):
        if (y == cls).any():
            assert report[key] >= coverage - 1e-12


# --- the error budget drives the decision, and the operating point is the decision -----
from flare_ml.decision_policy import ErrorBudget  # noqa: E402
from flare_ml.evaluation import classification_metrics, decision_table  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    a=st.sampled_from([0.01, 0.02, 0.05, 0.1, 0.2]),
    b=st.sampled_from([0.01, 0.05, 0.1, 0.2]),
)
def test_decision_thresholds_are_exactly_the_decision_column(seed, a, b):
    p_cal, y_cal = _exchangeable(600, seed)
    cp = ClassConditionalConformal.from_budget(ErrorBudget(a, b)).fit(p_cal, y_cal)
    rng = np.random.default_rng(seed + 1)
    # new values, the calibration values themselves and their float neighbours
    p = np.concatenate(
        [rng.uniform(size=300), p_cal, np.nextafter(p_cal, 2), np.nextafter(p_cal, -1)]
    )
    p = np.clip(p, 0, 1)
    decision, _ = cp.decide(p)
    assert ((decision == "flare") == (p >= cp.flare_threshold())).all()
    assert ((decision == "progression") == (p <= cp.progression_threshold())).all()


def test_metrics_at_the_flare_threshold_are_the_decision_tables_rates():
    p_cal, y_cal = _exchangeable(3000, seed=5)
    p, y = _exchangeable(4000, seed=6)
    budget = ErrorBudget(0.05, 0.10)
    cp = ClassConditionalConformal.from_budget(budget).fit(p_cal, y_cal)
    table = decision_table(y, cp.decide(p)[0], budget)
    metrics = classification_metrics(y, p, threshold=cp.flare_threshold())
    rates = table.rates()
    assert metrics["progression_called_flare"] == pytest.approx(
        rates.loc["progressions called flare", "rate"]
    )
    # on exchangeable data the budget is kept (up to sampling error)
    assert rates.loc["progressions called flare", "rate"] <= 0.05 + 0.015
    assert rates.loc["flares called progression", "rate"] <= 0.10 + 0.025


def test_a_tighter_budget_decides_flare_less_often_without_refitting():
    p_cal, y_cal = _exchangeable(4000, seed=7)
    cp = ClassConditionalConformal.from_budget(ErrorBudget(0.05, 0.10)).fit(p_cal, y_cal)
    strict = cp.with_budget(ErrorBudget(0.02, 0.10))
    assert strict.flare_threshold() > cp.flare_threshold()
    assert strict.thresholds_["flare"] == cp.thresholds_["flare"]  # the other class is kept
    refit = ClassConditionalConformal.from_budget(ErrorBudget(0.02, 0.10)).fit(p_cal, y_cal)
    assert strict.thresholds_ == refit.thresholds_  # a grid budget is the exact quantile
    between = cp.with_budget(ErrorBudget(0.0234, 0.10))  # rounds down to the 2% grid point
    assert between.thresholds_ == strict.thresholds_
    with pytest.raises(ValueError, match="below the smallest"):
        cp.with_budget(ErrorBudget(0.001, 0.10))
    again = ClassConditionalConformal.from_dict(json.loads(json.dumps(cp.to_dict())))
    assert again.with_budget(ErrorBudget(0.02, 0.10)).thresholds_ == strict.thresholds_


@pytest.mark.parametrize("share", [0, 0.5, 0.7, -0.1, True])
def test_a_budget_outside_zero_to_a_half_is_refused(share):
    with pytest.raises(ValueError, match=r"strictly between 0 and 0\.5"):
        ErrorBudget(max_progression_called_flare=share)
