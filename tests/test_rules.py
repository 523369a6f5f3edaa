"""Tests of the rule baselines: known decisions, scores, input checks, scikit-learn API."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn.utils.estimator_checks as sk_checks
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from flare_ml.cases import seed_case_timeline
from flare_ml.config_io import read_yaml
from flare_ml.errors import ConfigError
from flare_ml.features import TimepointFeaturizer, index_outcomes
from flare_ml.rules import (
    RULES,
    ALPOnlyRule,
    PCWG3WindowRule,
    RuleClassifier,
    SeedCriteriaRule,
    make_rules,
)

NAN = float("nan")

#: an index row on which every seed criterion holds (the NSCLC case, in feature form)
FLARE_LIKE = {
    "days_since_treatment_start": 90.0,
    "extraosseous_response_ordinal": 1.0,  # PR
    "new_extraosseous_lesion_now": 0.0,
    "new_lesion_morphology_blastic": 1.0,
    "clinical_deterioration_now": 0.0,
    "alp_percent_change_from_baseline": -15.0,
    "previous_index_events": 0.0,
    "baseline_marrow_involvement": 1.0,
}


def rows(*changes: dict[str, float]) -> pd.DataFrame:
    """Feature rows: FLARE_LIKE with each dict of changes applied."""
    return pd.DataFrame([{**FLARE_LIKE, **change} for change in changes])


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, pd.Series]:
    from flare_ml.simulate import simulate_cohort

    co = simulate_cohort(1500, site="default", seed=11)
    return TimepointFeaturizer().fit_transform(co.timepoints), index_outcomes(co.timepoints)


# --- the seed case --------------------------------------------------------------------


def test_seed_case_reads_as_flare_under_the_seed_criteria() -> None:
    X = TimepointFeaturizer().fit_transform(seed_case_timeline())
    assert len(X) == 1
    rule = SeedCriteriaRule().fit(X, index_outcomes(seed_case_timeline()))
    assert rule.predict(X).tolist() == [1]
    assert rule.decision_function(X).tolist() == [1.0]
    assert rule.criteria(X).iloc[0].tolist() == [1.0] * 5
    # with De Bondt's fourth sign (diffuse marrow uptake on the baseline PET) as well
    marrow = SeedCriteriaRule(use_marrow_involvement=True).fit(X)
    assert marrow.predict(X).tolist() == [1]
    assert marrow.criteria(X)["baseline_marrow_involvement"].tolist() == [1.0]


def test_seed_case_under_the_other_rules() -> None:
    X = TimepointFeaturizer().fit_transform(seed_case_timeline())
    # the first follow-up is at day 90, just outside the 12-week PCWG3 window
    assert PCWG3WindowRule().fit(X).predict(X).tolist() == [0]
    assert PCWG3WindowRule(window_days=91).fit(X).predict(X).tolist() == [1]
    # ALP 13.75% below baseline: stable or falling
    assert ALPOnlyRule().fit(X).predict(X).tolist() == [1]


# --- seed criteria --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "decision", "score"),
    [
        ({}, 1, 1.0),
        ({"extraosseous_response_ordinal": -1.0}, 0, 0.8),  # extraosseous PD
        ({"extraosseous_response_ordinal": 0.0}, 1, 1.0),  # SD counts as stability
        ({"extraosseous_response_ordinal": 2.0}, 1, 1.0),  # CR
        ({"new_extraosseous_lesion_now": 1.0}, 0, 0.8),  # PR but a new soft-tissue lesion
        ({"new_lesion_morphology_blastic": 0.0}, 0, 0.8),  # lytic or mixed
        ({"clinical_deterioration_now": 1.0}, 0, 0.8),
        ({"days_since_treatment_start": 182.0}, 1, 1.0),  # edge of the early window
        ({"days_since_treatment_start": 183.0}, 0, 0.8),
        ({"alp_percent_change_from_baseline": 10.0}, 1, 1.0),  # within the tolerance
        ({"alp_percent_change_from_baseline": 25.0}, 0, 0.8),  # ALP rising
        # unknown criteria count neither way
        ({"alp_percent_change_from_baseline": NAN}, 1, 1.0),
        ({"clinical_deterioration_now": NAN}, 1, 1.0),
        ({"extraosseous_response_ordinal": NAN}, 1, 1.0),  # NE, no new lesion: unknown
        ({"extraosseous_response_ordinal": NAN, "new_extraosseous_lesion_now": 1.0}, 0, 0.8),
        ({"alp_percent_change_from_baseline": NAN, "clinical_deterioration_now": 1.0}, 0, 0.75),
        (
            {
                "extraosseous_response_ordinal": -1.0,
                "new_lesion_morphology_blastic": 0.0,
                "days_since_treatment_start": 300.0,
            },
            0,
            0.4,
        ),
    ],
)
def test_seed_criteria_decisions(change: dict[str, float], decision: int, score: float) -> None:
    X = rows(change)
    rule = SeedCriteriaRule().fit(X)
    assert rule.predict(X).tolist() == [decision]
    assert rule.decision_function(X)[0] == pytest.approx(score)


def test_seed_criteria_thresholds_are_parameters() -> None:
    X = rows({"days_since_treatment_start": 150.0, "alp_percent_change_from_baseline": 12.0})
    assert SeedCriteriaRule().fit(X).predict(X).tolist() == [0]  # ALP +12% > 10%
    assert SeedCriteriaRule(alp_rise_tolerance_percent=15).fit(X).predict(X).tolist() == [1]
    assert SeedCriteriaRule(early_window_days=120, alp_rise_tolerance_percent=15).fit(X).predict(
        X
    ).tolist() == [0]


def test_seed_criteria_marrow_option_and_nothing_known() -> None:
    X = rows({"baseline_marrow_involvement": 0.0}, {"baseline_marrow_involvement": NAN})
    assert SeedCriteriaRule().fit(X).predict(X).tolist() == [1, 1]
    rule = SeedCriteriaRule(use_marrow_involvement=True).fit(X)
    assert rule.predict(X).tolist() == [0, 1]
    assert rule.decision_function(X).tolist() == pytest.approx([5 / 6, 1.0])
    # a row with no known criterion is undecided: score 0.5, called progression
    unknown = pd.DataFrame([dict.fromkeys(FLARE_LIKE, NAN)])
    rule = SeedCriteriaRule().fit(unknown)
    assert rule.predict(unknown).tolist() == [0]
    assert rule.decision_function(unknown)[0] == 0.5


def test_seed_criteria_reads_nullable_dtypes() -> None:
    X = rows({}, {}).astype({"clinical_deterioration_now": "boolean"})
    X["clinical_deterioration_now"] = pd.array([pd.NA, True], dtype="boolean")
    X["new_lesion_morphology_blastic"] = pd.array([1, 1], dtype="Int64")
    rule = SeedCriteriaRule().fit(X)
    assert rule.predict(X).tolist() == [1, 0]


# --- PCWG3 window -----------------------------------------------------------------------


def test_pcwg3_window_decisions_and_score() -> None:
    X = pd.DataFrame(
        {
            "days_since_treatment_start": [0.0, 56.0, 84.0, 85.0, 200.0, 30.0, NAN],
            "previous_index_events": [0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0],
        }
    )
    rule = PCWG3WindowRule().fit(X)
    assert rule.predict(X).tolist() == [1, 1, 1, 0, 0, 0, 0]
    expected = [1.0, 84 / 140, 0.5, 84 / 169, 84 / 284, 0.0, 0.5]
    score = rule.decision_function(X)
    assert score == pytest.approx(expected)
    assert score[2] == 0.5  # the window's edge is flare
    assert score[6] < 0.5  # a missing day: no information, called progression
    assert PCWG3WindowRule(window_days=56).fit(X).predict(X).tolist() == [1, 1, 0, 0, 0, 0, 0]


# --- ALP only -------------------------------------------------------------------------


def test_alp_only_decisions_and_score() -> None:
    X = pd.DataFrame({"alp_percent_change_from_baseline": [-40.0, 0.0, 15.0, 15.5, 60.0, NAN]})
    rule = ALPOnlyRule().fit(X)
    assert rule.predict(X).tolist() == [1, 1, 1, 0, 0, 0]
    score = rule.decision_function(X)
    assert np.all(np.diff(score[:5]) < 0)  # falls as ALP rises
    change = X["alp_percent_change_from_baseline"].to_numpy()[:5]
    assert score[:5] == pytest.approx(1 / (1 + np.exp((change - 15.0) / 10.0)))
    assert score[2] == 0.5
    # missing ALP: no information, on the side of the threshold of missing_decision
    assert score[5] == pytest.approx(0.5) and score[5] < 0.5
    as_flare = ALPOnlyRule(missing_decision="flare").fit(X)
    assert as_flare.predict(X)[-1] == 1 and as_flare.decision_function(X)[-1] == 0.5
    assert ALPOnlyRule(max_rise_percent=0).fit(X).predict(X).tolist() == [1, 1, 0, 0, 0, 0]


# --- consistency on a simulated cohort --------------------------------------------------


@pytest.mark.parametrize("name", sorted(RULES))
def test_rules_on_a_simulated_cohort(name: str, cohort: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = cohort
    rule = RULES[name]().fit(X, y)
    score = rule.decision_function(X)
    decision = rule.predict(X)
    assert score.shape == (len(X),)
    assert ((score >= 0) & (score <= 1)).all()
    assert set(np.unique(decision)) <= {0, 1}
    # the score threshold reproduces the decision on every row (missing inputs: above)
    by_score = (score >= rule.decision_threshold).astype(int)
    assert np.array_equal(by_score, decision)
    # a ranking score, not a probability: no predict_proba
    assert not hasattr(rule, "predict_proba")
    # each rule reads its signals the right way round: better than chance
    assert roc_auc_score(y, score) > 0.6


def test_rules_ignore_extra_columns_and_order(cohort: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = cohort
    for cls in RULES.values():
        rule = cls().fit(X)
        needed = list(rule.required_features())[::-1]
        assert np.array_equal(rule.decision_function(X), rule.decision_function(X[needed]))
        shuffled = X.sample(frac=1.0, random_state=0)
        expected = pd.Series(rule.decision_function(X), index=X.index)
        got = pd.Series(rule.decision_function(shuffled), index=shuffled.index)
        assert np.array_equal(expected.loc[shuffled.index].to_numpy(), got.to_numpy())


# --- input errors -----------------------------------------------------------------------


def test_missing_feature_is_named() -> None:
    X = rows({}).drop(columns=["new_lesion_morphology_blastic"])
    with pytest.raises(ValueError, match="new_lesion_morphology_blastic"):
        SeedCriteriaRule().fit(X)
    fitted = SeedCriteriaRule().fit(rows({}))
    with pytest.raises(ValueError, match="new_lesion_morphology_blastic"):
        fitted.predict(X)
    with pytest.raises(ValueError, match="baseline_marrow_involvement"):
        SeedCriteriaRule(use_marrow_involvement=True).fit(
            rows({}).drop(columns=["baseline_marrow_involvement"])
        )


@pytest.mark.parametrize("cls", list(RULES.values()))
def test_arrays_and_bad_labels_are_refused(cls: type[RuleClassifier]) -> None:
    with pytest.raises(ValueError, match="DataFrame"):
        cls().fit(np.zeros((3, 8)))
    with pytest.raises(ValueError, match="flare"):
        cls().fit(rows({}, {}), [0, 2])
    with pytest.raises(ValueError, match="one label per row"):
        cls().fit(rows({}, {}), [0, 1, 1])
    with pytest.raises(ValueError, match="0 rows"):
        cls().fit(rows({}).iloc[:0])


def test_text_feature_is_refused_with_its_name() -> None:
    X = rows({}).astype({"days_since_treatment_start": object})
    X.loc[0, "days_since_treatment_start"] = "ninety"
    with pytest.raises(ValueError, match="days_since_treatment_start"):
        PCWG3WindowRule().fit(X).predict(X)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (SeedCriteriaRule(early_window_days=0), "early_window_days"),
        (SeedCriteriaRule(alp_rise_tolerance_percent=float("inf")), "alp_rise_tolerance"),
        (SeedCriteriaRule(use_marrow_involvement="yes"), "use_marrow_involvement"),
        (PCWG3WindowRule(window_days=-1), "window_days"),
        (PCWG3WindowRule(window_days=True), "window_days"),
        (ALPOnlyRule(scale_percent=0), "scale_percent"),
        (ALPOnlyRule(max_rise_percent="15"), "max_rise_percent"),
        (ALPOnlyRule(missing_decision="uncertain"), "missing_decision"),
    ],
)
def test_invalid_parameters_are_named(rule: RuleClassifier, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rule.fit(rows({}))


# --- scikit-learn API -------------------------------------------------------------------

_API_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_get_params_invariance",
    "check_set_params",
    "check_parameters_default_constructible",
    "check_estimators_unfitted",
)


@pytest.mark.parametrize("cls", list(RULES.values()), ids=list(RULES))
@pytest.mark.parametrize("check", _API_CHECKS)
def test_sklearn_api_checks(cls: type[RuleClassifier], check: str) -> None:
    # The data-driven checks of check_estimator feed numpy arrays; the rules read named
    # columns (tag two_d_array=False), so only the checks without data apply, and the
    # data behaviour is tested on DataFrames below.
    getattr(sk_checks, check)(cls.__name__, cls())


@pytest.mark.parametrize("cls", list(RULES.values()), ids=list(RULES))
def test_fit_clone_pickle(
    cls: type[RuleClassifier], cohort: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = cohort
    rule = cls()
    params = rule.get_params()
    assert rule.fit(X, y) is rule
    assert rule.get_params() == params  # fit does not touch the parameters
    assert rule.classes_.tolist() == [0, 1]
    assert rule.n_features_in_ == X.shape[1]
    assert rule.feature_names_in_.tolist() == X.columns.tolist()
    first = rule.decision_function(X)
    assert np.array_equal(rule.fit(X, y).decision_function(X), first)  # idempotent
    assert np.array_equal(rule.fit(X).decision_function(X), first)  # labels not used
    twin = clone(rule)
    assert twin.get_params() == params and not hasattr(twin, "classes_")
    restored = pickle.loads(pickle.dumps(rule))
    assert np.array_equal(restored.decision_function(X), first)
    assert rule.score(X, y) == pytest.approx(np.mean(rule.predict(X) == y.to_numpy()))


def test_set_params_changes_the_rule() -> None:
    X = rows({"days_since_treatment_start": 100.0})
    rule = PCWG3WindowRule().fit(X)
    assert rule.predict(X).tolist() == [0]
    assert rule.set_params(window_days=112).predict(X).tolist() == [1]


def test_rule_in_a_pipeline_and_cross_validation() -> None:
    from flare_ml.simulate import simulate_cohort

    table = simulate_cohort(400, site="default", seed=5).timepoints
    y = index_outcomes(table)
    pipe = make_pipeline(TimepointFeaturizer(), SeedCriteriaRule()).fit(table, y)
    assert pipe.predict(table).shape == (len(y),)
    X = TimepointFeaturizer().fit_transform(table)
    groups = X.index.get_level_values("patient_id")
    scores = cross_val_score(
        ALPOnlyRule(), X, y, groups=groups, cv=GroupKFold(3), scoring="roc_auc"
    )
    assert scores.shape == (3,) and np.isfinite(scores).all()


# --- make_rules -------------------------------------------------------------------------


def test_make_rules_defaults_and_overrides() -> None:
    rules = make_rules()
    assert list(rules) == ["seed_criteria", "pcwg3_window", "alp_only"]
    assert isinstance(rules["seed_criteria"], SeedCriteriaRule)
    assert rules["seed_criteria"].early_window_days == 182
    assert rules["seed_criteria"].alp_rise_tolerance_percent == 10
    assert rules["pcwg3_window"].window_days == 84
    assert rules["alp_only"].max_rise_percent == 15
    assert rules["alp_only"].missing_decision == "progression"
    custom = make_rules(
        {"seed_criteria": {"early_window_days": 120}, "alp_only": None, "pcwg3_window": {}}
    )
    assert custom["seed_criteria"].early_window_days == 120
    assert custom["seed_criteria"].alp_rise_tolerance_percent == 10
    assert custom["alp_only"].get_params() == ALPOnlyRule().get_params()


def test_make_rules_reads_the_shipped_training_config() -> None:
    from flare_ml.config_io import CONFIG_ROOT

    config = read_yaml(CONFIG_ROOT / "train" / "default.yaml")
    assert set(make_rules(config["rules"])) == set(RULES)


def test_make_rules_accepts_a_pydantic_like_model() -> None:
    class Model:
        def model_dump(self) -> dict[str, dict[str, float]]:
            return {"pcwg3_window": {"window_days": 56}}

    assert make_rules(Model())["pcwg3_window"].window_days == 56


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"seed_critera": {}}, r"rules\.seed_critera: unknown rule"),
        ({"seed_criteria": {"early_window": 100}}, r"rules\.seed_criteria\.early_window"),
        ({"pcwg3_window": {"window_weeks": 12}}, r"allowed: window_days"),
        ({"pcwg3_window": {"window_days": -5}}, r"rules\.pcwg3_window: .*window_days"),
        ({"alp_only": [1, 2]}, r"rules\.alp_only: must be a mapping"),
        ([("alp_only", {})], r"rules: must be a mapping"),
    ],
)
def test_make_rules_errors_name_the_key(config: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_rules(config)
