"""The simulator: determinism, contract, sites, the oracle's exactness, config errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flare_ml.config_io import load_config, read_yaml
from flare_ml.data import read_table, validate_timepoints
from flare_ml.errors import ConfigError
from flare_ml.simulate import (
    available_sites,
    companion_paths,
    load_site,
    simulate_cohort,
    write_cohort,
)
from flare_ml.simulate.config import SIMULATION_DIR, SiteProfile


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(600, site="default", seed=11)


def test_same_seed_same_cohort(cohort):
    again = simulate_cohort(600, site="default", seed=11)
    pd.testing.assert_frame_equal(cohort.timepoints, again.timepoints)
    pd.testing.assert_frame_equal(cohort.oracle, again.oracle)
    pd.testing.assert_frame_equal(cohort.labs, again.labs)


def test_other_seed_other_cohort(cohort):
    other = simulate_cohort(600, site="default", seed=12)
    assert not cohort.timepoints["alp_u_l"].equals(other.timepoints["alp_u_l"])


def test_cohort_meets_the_contract(cohort):
    tp = cohort.timepoints
    validated = validate_timepoints(tp)
    assert len(validated) == len(tp)
    assert set(tp["row_type"].astype(str)) == {"imaging", "lab"}
    baseline = tp[tp["extraosseous_response"].astype(str) == "baseline"]
    # exactly one baseline row per patient, at treatment start
    assert baseline["patient_id"].is_unique
    assert set(baseline["patient_id"]) == set(tp["patient_id"])
    assert (baseline["assessment_date"] == baseline["treatment_start_date"]).all()


def test_oracle_rows_are_exactly_the_index_rows(cohort):
    tp = cohort.timepoints
    index = tp[(tp["row_type"].astype(str) == "imaging") & (tp["new_bone_lesions"] > 0)]
    keys = index[["patient_id", "assessment_date"]].reset_index(drop=True)
    oracle_keys = cohort.oracle[["patient_id", "assessment_date"]]
    pd.testing.assert_frame_equal(keys, oracle_keys, check_dtype=False)
    assert cohort.oracle["p_flare_oracle"].between(0, 1).all()
    # the oracle never sits in the timepoint table
    assert not any("oracle" in col for col in tp.columns)


def test_oracle_is_calibrated_on_a_large_cohort():
    """P(true flare) from the generative densities matches the true outcome frequency.

    If any term of the oracle's likelihood were wrong (a finding's density, the timing
    integral, the ALP mixture), its probabilities would be miscalibrated against the true
    courses drawn by the generator: within each decile of P the observed flare fraction
    must agree with the mean P up to binomial noise (|z| < 3.5).
    """
    big = simulate_cohort(8000, site="community", seed=5).oracle
    y = (big["true_outcome"] == "flare").to_numpy()
    p = big["p_flare_true_oracle"].to_numpy()
    bins = np.clip((p * 10).astype(int), 0, 9)
    checked = 0
    for b in range(10):
        in_bin = bins == b
        if in_bin.sum() >= 100:
            mean_p = p[in_bin].mean()
            se = np.sqrt(max(mean_p * (1 - mean_p), 1e-4) / in_bin.sum())
            assert abs(y[in_bin].mean() - mean_p) / se < 3.5, (b, y[in_bin].mean(), mean_p)
            checked += 1
    assert checked >= 6
    # and it is sharp: Brier score well below that of the base rate
    assert np.mean((p - y) ** 2) < 0.5 * y.mean() * (1 - y.mean())


def test_label_noise_enters_the_recorded_outcome_oracle(cohort):
    eps = cohort.site.label_noise.value
    o = cohort.oracle
    expected = eps + (1 - 2 * eps) * o["p_flare_true_oracle"]
    np.testing.assert_allclose(o["p_flare_oracle"], expected)


def test_sites_differ_in_schedule_units_and_missingness():
    assert {"default", "community", "nordic", "thoracic"} <= set(available_sites())
    units = {s: load_site(s).labs.unit for s in available_sites()}
    assert len(set(units.values())) >= 3
    gaps = {}
    for s in ("default", "community"):
        tp = simulate_cohort(300, site=s, seed=1).timepoints
        img = tp[tp["row_type"].astype(str) == "imaging"]
        gaps[s] = img.groupby("patient_id")["assessment_date"].diff().dt.days.median()
    assert gaps["community"] > gaps["default"] + 14


def test_lab_table_uses_site_units_and_converts_back():
    cohort = simulate_cohort(200, site="nordic", seed=2)
    assert set(cohort.labs["unit"]) == {"ukat/L"}
    # ukat/L values are about 60 times smaller than the U/L values in the table
    assert cohort.labs["value"].median() < 10
    assert cohort.timepoints["alp_u_l"].median() > 50


def test_write_cohort_writes_three_files(tmp_path, cohort):
    paths = write_cohort(cohort, tmp_path / "c.parquet")
    assert paths["oracle"] == companion_paths(tmp_path / "c.parquet")[0]
    back = read_table(paths["timepoints"])
    assert len(back) == len(cohort.timepoints)
    assert len(read_table(paths["oracle"])) == len(cohort.oracle)
    assert "oracle" not in " ".join(back.columns)


def test_unknown_site_lists_the_available_ones():
    with pytest.raises(ConfigError, match=r"unknown site 'mars'.*default"):
        load_site("mars")


def test_site_config_error_names_the_key(tmp_path):
    data = read_yaml(SIMULATION_DIR / "default.yaml")
    data["schedule"]["scan_intervall_days"] = data["schedule"].pop("scan_interval_days")
    data["case_mix"]["values"]["breast"] = 0.9
    bad = tmp_path / "bad.yaml"
    import yaml

    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(SiteProfile, bad)
    message = str(err.value)
    assert "schedule.scan_intervall_days: unknown key" in message
    assert "schedule.scan_interval_days" in message
    assert "case_mix.values" in message and "sum to 1" in message


def test_every_block_of_every_config_names_a_source():
    for path in [*SIMULATION_DIR.glob("*.yaml"), *SIMULATION_DIR.glob("biology/*.yaml")]:
        text = path.read_text()
        assert "source" in text, path
        # numbers without a source are marked as assumptions in the file itself
        assert "assumption" in text, path
