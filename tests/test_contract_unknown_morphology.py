"""The contract value ``unknown`` of ``new_lesion_morphology`` (issue 14, item 2).

A bone scan's new focus of uptake without a CT correlate cannot be called blastic or lytic.
These tests pin what each layer does with it: the contract and validation accept it on
rows with new bone lesions only (as ``blastic``, ``lytic`` and ``mixed``), the featurizer
gives it as missing morphology without a new column (the shipped prior's columns), the
rules leave the osteoblastic criterion unknown, and a table holding it scores with a finite
P(flare) through the bundle (batch file and wire paths).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flare_ml.cases import seed_case_timeline
from flare_ml.cli import app
from flare_ml.data import contract as c
from flare_ml.data import validate_timepoints
from flare_ml.data.validation import timepoint_schema
from flare_ml.errors import ContractError
from flare_ml.features import FEATURE_NAMES, TimepointFeaturizer
from flare_ml.prior import PRIOR_DIR, load_prior
from flare_ml.rules import ALPOnlyRule, PCWG3WindowRule, SeedCriteriaRule
from flare_ml.serving.batch import score_file
from flare_ml.serving.schema import score_wire, to_wire_format

MORPHOLOGY_FEATURES = [f"new_lesion_morphology_{m}" for m in ("none", "blastic", "lytic", "mixed")]


def with_morphology(morphology: str, *, lesions: int | None = None) -> pd.DataFrame:
    """The De Bondt seed case with its index row's morphology (and count) replaced."""
    table = seed_case_timeline()
    table[c.NEW_LESION_MORPHOLOGY] = table[c.NEW_LESION_MORPHOLOGY].astype(object)
    table[c.NEW_BONE_LESIONS] = table[c.NEW_BONE_LESIONS].astype(object)
    index = table[c.NEW_BONE_LESIONS].fillna(0).astype(int) > 0
    assert index.sum() == 1
    table.loc[index, c.NEW_LESION_MORPHOLOGY] = morphology
    if lesions is not None:
        table.loc[index, c.NEW_BONE_LESIONS] = lesions
        if lesions == 0:
            table[c.OUTCOME] = None  # no longer an index row
    return table


def index_label(table: pd.DataFrame) -> tuple[str, str]:
    row = table[table[c.NEW_LESION_MORPHOLOGY].isin(["unknown", "blastic"])].iloc[0]
    return str(row[c.PATIENT_ID]), pd.Timestamp(row[c.ASSESSMENT_DATE]).strftime("%Y-%m-%d")


# --- contract and validation ---------------------------------------------------------------
def test_unknown_is_appended_so_earlier_codes_do_not_move() -> None:
    assert c.MORPHOLOGIES[:4] == ("none", "blastic", "lytic", "mixed")
    assert c.MORPHOLOGIES[4] == "unknown"
    assert c.VOCABULARIES[c.NEW_LESION_MORPHOLOGY] == c.MORPHOLOGIES


@pytest.mark.parametrize("spelling", ["unknown", " Unknown ", "UNKNOWN"])
def test_validation_accepts_unknown_on_a_row_with_new_lesions(spelling: str) -> None:
    valid = validate_timepoints(with_morphology(spelling))
    assert (valid[c.NEW_LESION_MORPHOLOGY] == "unknown").sum() == 1
    assert len(timepoint_schema().validate(valid)) == len(valid)


def test_existing_tables_stay_valid() -> None:
    table = seed_case_timeline()
    valid = validate_timepoints(table)
    assert "unknown" not in set(valid[c.NEW_LESION_MORPHOLOGY].dropna())
    assert len(timepoint_schema().validate(valid)) == len(table)


def test_unknown_without_new_lesions_is_refused_with_column_rule_and_row() -> None:
    table = with_morphology("unknown", lesions=0)
    with pytest.raises(ContractError) as caught:
        validate_timepoints(table)
    [violation] = [v for v in caught.value.violations if v.column == c.NEW_LESION_MORPHOLOGY]
    assert violation.rule == "morphology_without_lesions"
    assert violation.count == 1
    row = index_label(table)
    assert row in violation.rows
    message = str(caught.value)
    assert "column 'new_lesion_morphology'" in message and f"({row[0]}, {row[1]})" in message
    assert "new_bone_lesions is 0" in message


def test_none_with_lesions_fix_names_unknown() -> None:
    with pytest.raises(ContractError) as caught:
        validate_timepoints(with_morphology("none"))
    [violation] = caught.value.violations
    assert violation.rule == "morphology_none_with_lesions"
    assert "unknown" in violation.hint


def test_unknown_on_a_lab_row_is_an_imaging_finding() -> None:
    table = with_morphology("unknown")
    lab = table.index[table[c.ROW_TYPE] == "lab"][0]
    table.loc[lab, c.NEW_LESION_MORPHOLOGY] = "unknown"
    with pytest.raises(ContractError) as caught:
        validate_timepoints(table)
    rules = {(v.column, v.rule) for v in caught.value.violations}
    assert (c.NEW_LESION_MORPHOLOGY, "lab_row_with_imaging") in rules


def test_cli_validate_accepts_unknown_and_refuses_it_without_lesions(tmp_path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    with_morphology("unknown").to_csv(good, index=False)
    with_morphology("unknown", lesions=0).to_csv(bad, index=False)
    ok = CliRunner().invoke(app, ["validate", str(good)], terminal_width=200)
    assert ok.exit_code == 0, ok.output
    refused = CliRunner().invoke(app, ["validate", str(bad)], terminal_width=200)
    assert refused.exit_code == 2
    assert "new_lesion_morphology" in refused.output
    assert (
        "new_bone_lesions is 0" in refused.output and "DeBondt2020-L1, 2019-04-07" in refused.output
    )


# --- features ------------------------------------------------------------------------------
def test_featurizer_columns_are_the_shipped_priors() -> None:
    manifest = json.loads((PRIOR_DIR / "manifest.json").read_text())
    assert list(FEATURE_NAMES) == manifest["feature_names"]
    features = TimepointFeaturizer().fit_transform(with_morphology("unknown"))
    assert list(features.columns) == manifest["feature_names"]
    assert "new_lesion_morphology_unknown" not in features.columns


def test_unknown_is_missing_morphology_and_nothing_else_changes() -> None:
    unknown = TimepointFeaturizer().transform(with_morphology("unknown"))
    blastic = TimepointFeaturizer().transform(with_morphology("blastic"))
    assert unknown[MORPHOLOGY_FEATURES].isna().all(axis=None)
    assert blastic[MORPHOLOGY_FEATURES].iloc[0].tolist() == [0.0, 1.0, 0.0, 0.0]
    others = [name for name in FEATURE_NAMES if name not in MORPHOLOGY_FEATURES]
    pd.testing.assert_frame_equal(unknown[others], blastic[others])


# --- rules ---------------------------------------------------------------------------------
def test_seed_criteria_cannot_call_unknown_lesions_blastic() -> None:
    X = {m: TimepointFeaturizer().transform(with_morphology(m)) for m in c.MORPHOLOGIES[1:]}
    rule = SeedCriteriaRule().fit(X["blastic"])
    criterion = {m: rule.criteria(x)["osteoblastic_new_lesions"].iloc[0] for m, x in X.items()}
    assert criterion["blastic"] == 1.0
    assert criterion["lytic"] == 0.0 and criterion["mixed"] == 0.0
    assert np.isnan(criterion["unknown"])  # neither holds nor fails
    # the seed case meets every other criterion: the known ones decide
    assert rule.predict(X["unknown"]).tolist() == [1]
    assert rule.predict(X["lytic"]).tolist() == [0]
    unknown_criteria = rule.criteria(X["unknown"]).iloc[0].drop("osteoblastic_new_lesions")
    assert (unknown_criteria == 1.0).all()


@pytest.mark.parametrize("rule", [PCWG3WindowRule(), ALPOnlyRule()])
def test_rules_without_morphology_ignore_unknown(rule) -> None:
    unknown = TimepointFeaturizer().transform(with_morphology("unknown"))
    blastic = TimepointFeaturizer().transform(with_morphology("blastic"))
    assert not set(rule.required_features()) & set(MORPHOLOGY_FEATURES)
    rule.fit(blastic)
    assert rule.predict(unknown).tolist() == rule.predict(blastic).tolist()
    assert rule.decision_function(unknown).tolist() == rule.decision_function(blastic).tolist()


# --- scoring -------------------------------------------------------------------------------
def test_a_row_with_unknown_scores_through_the_bundle(tmp_path) -> None:
    prior = load_prior()
    table = with_morphology("unknown").drop(columns=[c.OUTCOME])
    source, out = tmp_path / "cohort.csv", tmp_path / "scores.csv"
    table.to_csv(source, index=False)
    summary = score_file(prior, source, out, with_reasons=True)
    scored = pd.read_csv(out)
    assert summary.index_rows == 1 and len(scored) == 1
    p_batch = float(scored["p_flare"].iloc[0])
    assert 0.0 < p_batch < 1.0
    wire = score_wire(prior, to_wire_format(table))
    p_wire = float(wire["p_flare"].iloc[0])
    assert np.isfinite(p_wire) and p_wire == pytest.approx(p_batch, rel=1e-5)
    assert isinstance(wire["reasons"].iloc[0], str) and wire["reasons"].iloc[0]
    # missing morphology is not read as blastic: another probability than the blastic row
    blastic = score_wire(prior, to_wire_format(with_morphology("blastic")))
    assert float(blastic["p_flare"].iloc[0]) != pytest.approx(p_wire)
