"""Property tests: features are point-in-time correct and depend on the patient alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_ml.data import contract as c
from flare_ml.data import index_row_mask, validate_timepoints
from flare_ml.features import TimepointFeaturizer, index_outcomes
from strategies import timepoint_tables

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def featurize(table: pd.DataFrame) -> pd.DataFrame:
    return TimepointFeaturizer().fit_transform(table)


def assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right, check_exact=True, check_index_type=True)
    for level in range(left.index.nlevels):
        assert left.index.levels[level].dtype == right.index.levels[level].dtype


@SETTINGS
@given(table=timepoint_tables(), data=st.data())
def test_appending_later_rows_never_changes_earlier_features(
    table: pd.DataFrame, data: st.DataObject
) -> None:
    # a cut-off per patient (days after treatment start); rows after it are "appended later"
    patients = table[c.PATIENT_ID].unique().tolist()
    cutoffs = {pid: data.draw(st.integers(-1, 730), label=f"cutoff {pid}") for pid in patients}
    days = (table[c.ASSESSMENT_DATE] - table[c.TREATMENT_START_DATE]).dt.days
    earlier = table[days.to_numpy() <= table[c.PATIENT_ID].map(cutoffs).to_numpy()]

    full = featurize(table)
    before = featurize(earlier)
    assert before.index.isin(full.index).all()
    assert_same(before, full.loc[before.index])


@SETTINGS
@given(table=timepoint_tables(), data=st.data())
def test_row_order_never_changes_any_value(table: pd.DataFrame, data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(len(table))), label="row order")
    shuffled = table.iloc[list(order)]
    assert_same(featurize(shuffled), featurize(table))
    pd.testing.assert_series_equal(index_outcomes(shuffled), index_outcomes(table))


@SETTINGS
@given(table=timepoint_tables(min_patients=2), data=st.data())
def test_patients_alone_or_together_give_identical_values(
    table: pd.DataFrame, data: st.DataObject
) -> None:
    together = featurize(table)
    alone = pd.concat([featurize(rows) for _, rows in table.groupby(c.PATIENT_ID)])
    assert_same(alone, together)
    # any split of the cohort into two chunks, too
    patients = table[c.PATIENT_ID].unique().tolist()
    chunk = data.draw(st.sets(st.sampled_from(patients)), label="first chunk")
    in_chunk = table[c.PATIENT_ID].isin(chunk)
    parts = [part for part in (table[in_chunk], table[~in_chunk]) if len(part)]  # no empty table
    chunked = pd.concat([featurize(part) for part in parts]).sort_index()
    assert_same(chunked, together)


@SETTINGS
@given(table=timepoint_tables(categories=True))
def test_text_or_category_columns_give_identical_values(table: pd.DataFrame) -> None:
    as_text = table.copy()
    for col in c.VOCABULARIES:
        if col in as_text.columns:
            as_text[col] = as_text[col].astype("str").where(as_text[col].notna())
    assert_same(featurize(as_text), featurize(table))


@SETTINGS
@given(table=timepoint_tables())
def test_one_row_per_index_row_aligned_with_outcomes(table: pd.DataFrame) -> None:
    features = featurize(table)
    outcomes = index_outcomes(table)
    index_rows = table[table[c.NEW_BONE_LESIONS].fillna(0).to_numpy() > 0]
    assert index_rows.index.equals(table.index[index_row_mask(table).to_numpy()])
    expected = pd.MultiIndex.from_frame(
        index_rows[list(c.KEY_COLUMNS)].sort_values(list(c.KEY_COLUMNS))
    )
    assert features.index.equals(outcomes.index)
    assert features.index.equals(expected)
    assert features.index.is_monotonic_increasing
    assert (features.dtypes == np.float64).all()
    assert not np.isinf(features.to_numpy()).any()
    flare = index_rows.set_index(list(c.KEY_COLUMNS))[c.OUTCOME].eq("flare").astype(int)
    assert outcomes.tolist() == flare.loc[outcomes.index].tolist()


@SETTINGS
@given(table=timepoint_tables())
def test_validated_or_raw_input_gives_identical_values(table: pd.DataFrame) -> None:
    assert_same(featurize(validate_timepoints(table)), featurize(table))
