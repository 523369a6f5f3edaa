"""Decision tables: decisions against outcomes, Wilson intervals and the budget's verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_ml.decision_policy import ErrorBudget
from flare_ml.evaluation import decision_table, decision_table_from_counts, wilson_interval
from flare_ml.evaluation.decisions import HELD, MISSED, WITHIN_SAMPLING_ERROR, budget_status

DECISIONS = ["flare", "progression", "uncertain"]


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The textbook formula, written out independently of scipy."""
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 10), (5, 100), (37, 350), (350, 350)])
def test_wilson_interval_matches_the_formula(k, n):
    assert wilson_interval(k, n) == pytest.approx(_wilson(k, n), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(DECISIONS), st.sampled_from(["flare", "progression"])),
        min_size=1,
        max_size=200,
    )
)
def test_counts_and_rates_follow_the_rows(rows):
    decision = [d for d, _ in rows]
    outcome = [o for _, o in rows]
    table = decision_table(outcome, decision, ErrorBudget(0.05, 0.10))
    expected = pd.crosstab(pd.Series(decision), pd.Series(outcome))
    for d in expected.index:
        for o in expected.columns:
            assert table.counts.loc[d, o] == expected.loc[d, o]
    assert table.n == len(rows)
    rates = table.rates()
    n_prog = outcome.count("progression")
    called = sum(1 for d, o in rows if d == "flare" and o == "progression")
    got = rates.loc["progressions called flare", "rate"]
    assert (np.isnan(got) and n_prog == 0) or got == pytest.approx(called / n_prog)
    assert rates.loc["uncertain", "rate"] == pytest.approx(decision.count("uncertain") / len(rows))
    # streaming the same rows as counts gives the same table
    counts: dict[tuple[str, str], int] = {}
    for key in rows:
        counts[key] = counts.get(key, 0) + 1
    again = decision_table_from_counts(counts, ErrorBudget(0.05, 0.10))
    pd.testing.assert_frame_equal(again.counts, table.counts)


def test_verdicts():
    assert budget_status(0.05, 0.03, 0.05) == HELD
    assert budget_status(0.059, 0.043, 0.05) == WITHIN_SAMPLING_ERROR
    assert budget_status(0.084, 0.061, 0.05) == MISSED
    assert budget_status(0.2, 0.1, None) == ""
    # 40 of 500 progressions called flare is 8%: its interval excludes 5%
    table = decision_table(
        ["progression"] * 500 + ["flare"] * 10,
        ["flare"] * 40 + ["progression"] * 460 + ["flare"] * 10,
        ErrorBudget(0.05, 0.10),
    )
    assert table.rates().loc["progressions called flare", "status"] == MISSED
    assert not table.held()
    assert "budget 5%: missed" in table.sentence()


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="decisions must be one of"):
        decision_table([1, 0], ["flare", "maybe"])
    with pytest.raises(ValueError, match="outcomes must be flare/progression"):
        decision_table(["flare", "pd"], ["flare", "flare"])
    with pytest.raises(ValueError, match="2 outcomes but 1 decisions"):
        decision_table([1, 0], ["flare"])
