"""The shortcuts that keep a one-patient request fast give exactly what the general code gives.

A REST request holds one patient's ten-odd rows, where pandas' fixed costs dominate, so
validation, features and scoring take cheaper routes on such input: NumPy instead of
grouped pandas operations for one patient, NumPy date parsing for plain ``YYYY-MM-DD``
text, category codes taken as they are from a validated table, index levels built
directly. Each test here checks a shortcut against the general computation, bit for bit
(signed zeros included), and the last one checks whole answers: every patient scored alone
equals the same patient scored in a cohort request.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_ml.data import contract as c
from flare_ml.data import validate_timepoints
from flare_ml.data._parse import (
    DATE_DTYPE,
    _parse_iso,
    _parse_iso_pandas,
    floor_days,
    parse_category,
    parse_date,
    parse_number,
)
from flare_ml.data.rules import _block_starts, _varies_within
from flare_ml.features import TimepointFeaturizer, _Groups
from flare_ml.serving.schema import score_wire, to_wire_format
from serving_helpers import small_bundle
from strategies import timepoint_tables

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: floats that trip up naive shortcuts: signed zeros, infinities, NaN, ties
TRICKY = st.one_of(
    st.sampled_from([0.0, -0.0, 1.5, -1.5, np.inf, -np.inf, np.nan]),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
)


def assert_bits_equal(left: np.ndarray, right: np.ndarray) -> None:
    """Same shape, dtype and bytes, so -0.0 differs from 0.0; every NaN counts as one value.

    (A NaN's payload bits carry no meaning anywhere in flare-ml, and pandas' masked
    arrays do not keep them either.)
    """
    assert left.dtype == right.dtype and left.shape == right.shape
    if left.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(left), np.isnan(right))
        left, right = (
            np.where(np.isnan(left), np.nan, left),
            np.where(np.isnan(right), np.nan, right),
        )
    assert np.ascontiguousarray(left).tobytes() == np.ascontiguousarray(right).tobytes()


# --- grouped running operations -------------------------------------------------------------
def grouped_running_max(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The general computation: pandas' grouped cummax, NaN before a patient's first value."""
    filled = np.where(np.isnan(values), -np.inf, values)
    out = pd.Series(filled).groupby(codes, sort=False).cummax().to_numpy()
    return np.where(np.isneginf(out), np.nan, out)


@SETTINGS
@given(values=st.lists(TRICKY, min_size=1, max_size=40), blocks=st.integers(1, 4))
def test_running_max_of_one_patient_equals_the_grouped_cummax(
    values: list[float], blocks: int
) -> None:
    array = np.array(values)
    codes = np.sort(np.arange(array.size) % blocks)  # sorted patient codes, as _prepare gives
    groups = _Groups(codes)
    assert groups.single == (np.unique(codes).size == 1)
    assert_bits_equal(groups.running_max(array), grouped_running_max(array, codes))
    assert_bits_equal(groups.running_min(array), -grouped_running_max(-array, codes))


@SETTINGS
@given(
    columns=st.integers(1, 3).flatmap(
        lambda k: st.lists(st.tuples(*[TRICKY] * k), min_size=1, max_size=30)
    ),
    blocks=st.integers(1, 4),
)
def test_cumsum_of_several_columns_equals_one_grouped_cumsum_per_column(
    columns: list[tuple[float, ...]], blocks: int
) -> None:
    values = np.array(columns, dtype=np.float64)
    codes = np.sort(np.arange(len(values)) % blocks)
    got = _Groups(codes).cumsum_float(list(values.T))
    for j in range(values.shape[1]):
        one = pd.Series(values[:, j]).groupby(codes, sort=False).cumsum().to_numpy()
        assert_bits_equal(got[:, j], one)


# --- validation ------------------------------------------------------------------------------
@SETTINGS
@given(
    rows=st.lists(
        st.tuples(st.integers(-1, 4), st.sampled_from([np.nan, 0.0, -0.0, 1.0, 2.0, 1e15])),
        min_size=1,
        max_size=30,
    )
)
def test_constant_per_patient_check_equals_grouped_min_and_max(
    rows: list[tuple[int, float]],
) -> None:
    codes = np.array([code for code, _ in rows])
    values = np.array([value for _, value in rows])
    grouped = pd.Series(values).groupby(codes)  # code -1 (no patient) forms no group
    low, high = grouped.transform("min"), grouped.transform("max")
    expected = ((low != high) & low.notna()).to_numpy() & (codes != -1)
    key = np.where(codes == -1, codes.max() + 1, codes)  # missing patients sort last
    order = np.argsort(key, kind="stable")
    got = _varies_within(values, order, _block_starts(key[order])) & (codes != -1)
    np.testing.assert_array_equal(got, expected)


def test_plain_dates_parse_as_pandas_reads_them_on_the_whole_calendar_grid() -> None:
    years = ("0000", "0001", "1582", "1600", "1677", "1900", "1970", "2000", "2024", "9999")
    for year in years:
        texts = [f"{year}-{m:02d}-{d:02d}" for m in range(14) for d in range(33)]
        pandas_days, pandas_ok = _parse_iso_pandas(texts)
        for i, text in enumerate(texts):  # one at a time: NumPy refuses a list with a bad date
            days, ok = _parse_iso([text])
            assert bool(ok[0]) == bool(pandas_ok[i]), text
            assert_bits_equal(days[:1], pandas_days[i : i + 1])


@SETTINGS
@given(
    texts=st.lists(
        st.builds(
            "{:04d}-{:02d}-{:02d}".format,
            st.integers(0, 9999),
            st.integers(0, 13),
            st.integers(0, 32),
        )
        | st.sampled_from(["2024-03-01T10:00", "2024-03-01 23:59:59+05:00", "2024-3-1"]),
        min_size=1,
        max_size=8,
    )
)
def test_plain_dates_parse_as_pandas_reads_them(texts: list[str]) -> None:
    days, ok = _parse_iso(texts)
    expected_days, expected_ok = _parse_iso_pandas(texts)
    assert_bits_equal(days, expected_days)
    np.testing.assert_array_equal(ok, expected_ok)


@SETTINGS
@given(
    values=st.lists(TRICKY, min_size=1, max_size=20)
    | st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=20)
)
def test_numpy_numbers_parse_as_the_masked_float_route(values: list[float]) -> None:
    series = pd.Series(values)
    expected = series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    expected_bad = ~np.isfinite(expected) & ~np.isnan(expected)
    expected[expected_bad] = np.nan
    got, bad, bad_values = parse_number(series)
    assert_bits_equal(got, expected)
    np.testing.assert_array_equal(bad, expected_bad)
    assert bad_values == []


# --- features --------------------------------------------------------------------------------
@SETTINGS
@given(
    stamps=st.lists(
        st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2200, 1, 1))
        | st.none(),
        min_size=1,
        max_size=10,
    ),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
    tz=st.sampled_from([None, "UTC", "Europe/Berlin"]),
)
def test_dates_of_datetime_columns_equal_pandas_floor(
    stamps: list[dt.datetime | None], unit: str, tz: str | None
) -> None:
    series = pd.Series(pd.to_datetime(stamps)).astype(f"datetime64[{unit}]")
    if tz is not None:
        series = series.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    expected = pd.to_datetime(series, errors="coerce")
    if expected.dt.tz is not None:
        expected = expected.dt.tz_localize(None)
    expected = expected.dt.floor("D").astype("datetime64[s]").to_numpy()
    days, bad, _ = parse_date(series)
    assert days.dtype == DATE_DTYPE
    assert not bad.any()
    assert_bits_equal(days, expected)
    assert_bits_equal(
        floor_days(series.dt.tz_localize(None).to_numpy() if tz else series.to_numpy()), expected
    )


@SETTINGS
@given(
    values=st.lists(st.sampled_from([*c.THERAPY_CLASSES, None]), min_size=1, max_size=20),
    order=st.permutations(c.THERAPY_CLASSES),
)
def test_category_codes_of_a_validated_column_equal_the_text_route(
    values: list[str | None], order: list[str]
) -> None:
    as_text = pd.Series(values, dtype="str")
    expected = parse_category(as_text, c.THERAPY_CLASS)[0].codes
    for categories in (list(c.THERAPY_CLASSES), list(order)):  # vocabulary order, or any
        parsed, unknown, _ = parse_category(
            as_text.astype(pd.CategoricalDtype(categories)), c.THERAPY_CLASS
        )
        assert_bits_equal(parsed.codes, expected)
        assert not unknown.any()


@SETTINGS
@given(table=timepoint_tables())
def test_feature_index_is_what_multiindex_from_arrays_builds(table: pd.DataFrame) -> None:
    features = TimepointFeaturizer().fit_transform(validate_timepoints(table))
    keys = [features.index.get_level_values(name) for name in c.KEY_COLUMNS]
    expected = pd.MultiIndex.from_arrays(
        [pd.Index(np.asarray(keys[0], dtype=object), dtype="str"), pd.DatetimeIndex(keys[1])],
        names=list(c.KEY_COLUMNS),
    )
    pd.testing.assert_index_equal(features.index, expected, exact=True)
    for got, want in zip(features.index.levels, expected.levels, strict=True):
        pd.testing.assert_index_equal(got, want, exact=True)
    for got, want in zip(features.index.codes, expected.codes, strict=True):
        assert_bits_equal(np.asarray(got), np.asarray(want))


# --- whole answers ---------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=timepoint_tables(min_patients=2, max_patients=4))
def test_each_patient_alone_gets_the_answer_of_the_cohort_request(table: pd.DataFrame) -> None:
    bundle = small_bundle()
    wire = to_wire_format(table.drop(columns=[c.OUTCOME]))
    together = score_wire(bundle, wire)
    alone = [score_wire(bundle, rows) for _, rows in wire.groupby(c.PATIENT_ID, sort=True)]
    answered = [frame for frame in alone if len(frame)]  # no index row: an empty answer
    expected = pd.concat(answered, ignore_index=True) if answered else alone[0]
    pd.testing.assert_frame_equal(expected, together, check_exact=True)
    assert_bits_equal(expected["p_flare"].to_numpy(), together["p_flare"].to_numpy())
