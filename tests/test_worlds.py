"""Randomised worlds (flare_ml.simulate.worlds): valid, reproducible, and actually varied."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_ml.errors import ConfigError
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.config import Biology, SiteProfile, load_biology
from flare_ml.simulate.worlds import (
    PRIOR_CONFIG_PATH,
    Perturbation,
    _covered,
    load_world_ranges,
    matching_nodes,
    numeric_leaves,
    perturbation_plan,
    random_biology,
    random_site,
    random_world,
)

RANGES = load_world_ranges()
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _leaf(tree, path):
    for part in path.split("."):
        tree = tree[part]
    return tree


@FAST
@given(seed=SEEDS)
def test_random_site_is_valid_and_reproducible(seed):
    site = random_site(np.random.default_rng(seed), RANGES, name=f"w{seed}")
    # valid: re-validating the dump through the simulator's schema changes nothing
    assert SiteProfile.model_validate(site.model_dump()) == site
    assert random_site(np.random.default_rng(seed), RANGES, name=f"w{seed}") == site
    assert sum(site.case_mix.values.values()) == pytest.approx(1.0, abs=1e-9)
    for mix in site.therapy_mix.values.values():
        assert sum(mix.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(0.0 <= p <= 1.0 for p in mix.values())
    r = RANGES.site
    assert r.scan_interval_days.low <= site.schedule.scan_interval_days <= r.scan_interval_days.high
    assert site.labs.unit in r.lab_unit.choices
    assert r.label_noise.low <= site.label_noise.value <= r.label_noise.high
    for key, rng_range in r.missingness.items():
        assert rng_range.low <= getattr(site.missingness, key) <= rng_range.high


@FAST
@given(seed=SEEDS)
def test_random_biology_is_valid_and_reproducible(seed):
    bio = random_biology(np.random.default_rng(seed), RANGES)
    assert Biology.model_validate(bio.model_dump()) == bio
    assert random_biology(np.random.default_rng(seed), RANGES) == bio
    tree = bio.model_dump()
    plan = perturbation_plan(RANGES)
    for path, rule in plan.items():
        value = _leaf(tree, path)
        if isinstance(rule, Perturbation) and rule.scale == "dirichlet":
            assert sum(value.values()) == pytest.approx(1.0, abs=1e-9)
            assert all(0.0 <= p <= 1.0 for p in value.values())
        elif isinstance(rule, Perturbation) and rule.scale == "logit":
            assert 0.0 <= value <= 1.0
        elif isinstance(rule, Perturbation) and rule.scale == "log":
            assert value >= 0.0


def test_every_biology_parameter_has_a_range_or_a_reason_to_stay_fixed():
    plan = perturbation_plan(RANGES)
    leaves = list(numeric_leaves(load_biology().model_dump()))
    assert len(leaves) > 100
    assert [leaf for leaf in leaves if not _covered(leaf, plan)] == []


def test_every_rule_varies_something_and_states_its_reason():
    plan = perturbation_plan(RANGES)
    used = {id(rule) for rule in plan.values()}
    dead = [rule.path for rule in RANGES.biology.perturb if id(rule) not in used]
    assert dead == []
    raw = yaml.safe_load(PRIOR_CONFIG_PATH.read_text())["worlds"]
    assert all(len(rule["reason"]) > 10 for rule in raw["biology"]["perturb"])


def test_the_ranges_actually_vary_every_parameter():
    base = load_biology().model_dump()
    draws = [random_biology(np.random.default_rng(s), RANGES).model_dump() for s in range(12)]
    for path, rule in perturbation_plan(RANGES).items():
        if not isinstance(rule, Perturbation):
            assert all(_leaf(d, path) == _leaf(base, path) for d in draws), path
            continue
        if _leaf(base, path) == 0.0:  # a zero stays zero on the log and logit scales
            continue
        values = {repr(_leaf(d, path)) for d in draws}
        assert len(values) == len(draws), f"{path} did not vary"
    sites = [random_site(np.random.default_rng(s), RANGES) for s in range(30)]
    for getter in (
        lambda s: s.schedule.scan_interval_days,
        lambda s: s.schedule.lab_interval_days,
        lambda s: s.labs.unit,
        lambda s: s.label_noise.value,
        lambda s: s.case_mix.values["prostate"],
        lambda s: s.therapy_mix.values["nsclc"]["egfr_tki"],
        lambda s: s.missingness.progressive_lysis,
    ):
        assert len({getter(s) for s in sites}) > 1


def test_spread_follows_the_stated_sd():
    rule = perturbation_plan(RANGES)["timing_months.acquired_progression.median"]
    base = load_biology().timing_months.acquired_progression.median
    nominal = load_biology()
    draws = [random_biology(np.random.default_rng(s), RANGES, nominal) for s in range(150)]
    logs = [np.log(b.timing_months.acquired_progression.median / base) for b in draws]
    assert np.std(logs) == pytest.approx(rule.sd, rel=0.25)


def test_the_oracle_follows_the_world_biology():
    site, bio = random_world(11, RANGES)
    world = simulate_cohort(150, site=site, seed=3, biology=bio)
    assert world.oracle["p_flare_oracle"].between(0, 1).all()
    # a world without flares: the oracle knows it; only the site's label noise is left
    tree = bio.model_dump()
    flare = tree["flare_probability_given_response"]
    flare["values"] = dict.fromkeys(flare["values"], 0.0)
    flare["overrides"] = {k: dict.fromkeys(v, 0.0) for k, v in flare["overrides"].items()}
    no_flares = simulate_cohort(150, site=site, seed=3, biology=Biology.model_validate(tree))
    assert len(no_flares.oracle) > 0
    assert np.allclose(no_flares.oracle["p_flare_oracle"], site.label_noise.value)
    assert (world.oracle["p_flare_oracle"] > 0.0).any()


def test_matching_nodes_star():
    tree = {"a": {"x": 1.0, "y": {"z": 2.0}}, "b": {"x": 3.0}}
    assert [full for *_, full in matching_nodes(tree, "*.x")] == ["a.x", "b.x"]
    assert [full for *_, full in matching_nodes(tree, "a.*.z")] == ["a.y.z"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda w: w["site"]["label_noise"].update(low=0.3, high=0.2), "low"),
        (lambda w: w["site"]["label_noise"].update(high=0.6), "label_noise"),
        (lambda w: w["biology"]["perturb"][0].pop("reason"), "reason"),
        (lambda w: w["biology"]["perturb"][0].update(scale="log", sd=None), "needs an sd"),
    ],
)
def test_bad_ranges_are_config_errors(tmp_path, edit, message):
    data = yaml.safe_load(PRIOR_CONFIG_PATH.read_text())
    edit(data["worlds"])
    path = tmp_path / "prior.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_world_ranges(path)
