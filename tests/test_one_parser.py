"""One contract parser: the featurizer accepts exactly the tables validation accepts.

Issue 11: the featurizer used to re-parse the timepoint table with its own tokens (``y``
and ``t`` were flags to it, not to validation) and mapped unknown categories instead of
refusing them, so a table could train a model that every serving path refused. Both now
read a table through the data layer's parser and rules. For any generated table, valid
or given faults, :func:`~flare_ml.data.validate_timepoints` accepts it if and only if
:meth:`TimepointFeaturizer.transform` does, the refusals are the same error, and the
features of the raw table equal those of its validated form.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings

from flare_ml.data import ContractError, validate_timepoints
from flare_ml.features import TimepointFeaturizer, index_outcomes
from strategies import faulty_tables


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=faulty_tables())
def test_validation_accepts_a_table_if_and_only_if_the_featurizer_does(
    table: pd.DataFrame,
) -> None:
    featurizer = TimepointFeaturizer()
    try:
        validated = validate_timepoints(table)
    except ContractError as refusal:
        event("refused")
        with pytest.raises(ContractError) as info:
            featurizer.transform(table)
        assert info.value.violations == refusal.violations
        assert str(info.value) == str(refusal)
        return
    event("accepted")
    features = featurizer.transform(table)
    pd.testing.assert_frame_equal(features, featurizer.transform(validated), check_exact=True)
    for level in range(features.index.nlevels):
        assert features.index.levels[level].dtype == validated.dtypes.iloc[level * 2]
    outcomes = index_outcomes(table, allow_missing=True)
    pd.testing.assert_series_equal(outcomes, index_outcomes(validated, allow_missing=True))
    pd.testing.assert_index_equal(outcomes.index, features.index)
