"""SHAP explanations: exact additivity, clinical grouping, reasons in words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from flare_ml.cases import seed_case_timeline
from flare_ml.explain import (
    SIGNALS,
    reasons,
    shap_contributions,
    signal_contributions,
)
from flare_ml.features import FEATURE_NAMES
from flare_ml.simulate import simulate_cohort
from flare_ml.training import fit_bundle


@pytest.fixture(scope="module")
def bundle_and_cohort():
    table = simulate_cohort(1200, site="default", seed=21).timepoints
    return fit_bundle(table, n_candidates=2, outer_folds=None), table


def test_contributions_add_up_to_the_margin(bundle_and_cohort):
    bundle, table = bundle_and_cohort
    features = bundle.features(table)
    contrib, bias = shap_contributions(bundle.booster, features)
    matrix = xgb.DMatrix(
        features.to_numpy(np.float32), feature_names=bundle.feature_names, missing=np.nan
    )
    margin = bundle.booster.predict(matrix, output_margin=True)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy() + bias, margin, atol=1e-4)


def test_every_feature_maps_to_at_most_one_signal():
    members = [f for group in SIGNALS.values() for f in group]
    assert len(members) == len(set(members))
    unmapped = set(FEATURE_NAMES) - set(members)
    # only the identifiers of the row's own context are left out (marrow is in bone)
    assert unmapped == set(), unmapped


def test_signal_sums_preserve_the_total(bundle_and_cohort):
    bundle, table = bundle_and_cohort
    contrib, _ = shap_contributions(bundle.booster, bundle.features(table))
    grouped = signal_contributions(contrib)
    np.testing.assert_allclose(grouped.sum(axis=1), contrib.sum(axis=1), atol=1e-5)


def _row(**values) -> pd.DataFrame:
    row = dict.fromkeys(FEATURE_NAMES, 0.0)
    row.update(values)
    return pd.DataFrame([row])


def test_reasons_quote_values_and_sign():
    features = _row(
        extraosseous_response_ordinal=1.0,
        sld_percent_change_from_baseline=-35.0,
        alp_change_from_baseline_u_l=45.0,
        alp_percent_change_from_baseline=30.0,
        alp_u_l=195.0,
        days_since_treatment_start=90.0,
        new_bone_lesion_count=3.0,
        new_lesion_morphology_blastic=1.0,
    )
    shap = pd.DataFrame([dict.fromkeys(SIGNALS, 0.0)])
    shap.loc[0, "extraosseous response"] = 1.2
    shap.loc[0, "ALP course"] = -2.0
    shap.loc[0, "time since treatment start"] = 0.4
    (row,) = reasons(features, shap, top=3)
    assert row[0] == "ALP rose 45 U/L since baseline (+30%): toward progression"
    assert row[1] == "extraosseous partial response (SLD -35% from baseline): toward flare"
    assert row[2] == "new bone lesions 90 days (3.0 months) after treatment start: toward flare"


def test_missing_alp_is_said_so():
    features = _row(alp_missing=1.0, alp_u_l=np.nan)
    shap = pd.DataFrame([dict.fromkeys(SIGNALS, 0.0)])
    shap.loc[0, "ALP course"] = -0.5
    assert reasons(features, shap, top=1)[0][0].startswith("ALP not measured")


def test_seed_case_reads_as_flare_for_the_right_reasons(bundle_and_cohort):
    bundle, _ = bundle_and_cohort
    out = bundle.predict(seed_case_timeline())
    assert len(out) == 1
    assert out["p_flare"].iloc[0] > 0.7
    text = out["reasons"].iloc[0]
    toward_flare = [r for r in text.split("; ") if r.endswith("toward flare")]
    assert len(toward_flare) >= 2
    assert any("partial response" in r or "osteoblastic" in r or "days" in r for r in toward_flare)


def test_report_lists_every_signal_of_the_seed_case(bundle_and_cohort):
    from flare_ml.explain import SIGNALS
    from flare_ml.report import seed_case_prediction

    bundle, _ = bundle_and_cohort
    reasons_text = seed_case_prediction(bundle)["reasons"].iloc[0].split("; ")
    assert len(reasons_text) == len(SIGNALS) > bundle.top_reasons
    assert all(r.endswith(("toward flare", "toward progression")) for r in reasons_text)
    for finding in ("partial response", "osteoblastic", "90 days", "ALP"):
        assert any(finding in r for r in reasons_text), finding
    assert bundle.top_reasons == 3  # the model itself still gives its top three
