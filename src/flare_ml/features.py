"""Point-in-time features for every index assessment of a timepoint table.

This module turns the long timepoint table of the data contract (``DESIGN.md`` section 2)
into one row of named, numeric features per **index row** (an imaging assessment with new
bone lesions), ready for any scikit-learn classifier. Each feature is a pure function of
the same patient's rows dated at or before the index assessment and of the contract's
fixed vocabularies: nothing is learned from other patients, so a patient's features are
identical in whichever cohort, file or chunk they are computed, and appending later rows
never changes them. The work is vectorised (one sort, then grouped cumulative operations
over the whole table; no Python loop per patient). Missing inputs stay missing (``NaN``):
imputation and encodings that must be learned belong to the model stage.
:class:`TimepointFeaturizer` is the transformer; :func:`index_outcomes` gives the labels
aligned with its output, so that ``pipeline.fit(table, index_outcomes(table))`` works.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from flare_ml.data import DATE_DTYPE
from flare_ml.data import contract as c
from flare_ml.errors import ContractError, Violation

__all__ = [
    "FEATURE_DESCRIPTIONS",
    "FEATURE_GROUPS",
    "FEATURE_NAMES",
    "RESPONSE_ORDINAL",
    "TimepointFeaturizer",
    "UnknownCategoryWarning",
    "index_outcomes",
]

#: RECIST 1.1 response as an ordinal (higher is better); ``NE`` and ``baseline`` are missing
RESPONSE_ORDINAL: dict[str, float] = {"PD": -1.0, "SD": 0.0, "PR": 1.0, "CR": 2.0}

#: the categorical context that goes out one-hot, over the contract's fixed vocabulary
_ONE_HOT = (c.NEW_LESION_MORPHOLOGY, c.CANCER_TYPE, c.THERAPY_CLASS)

#: every categorical input column read by the featurizer
_CATEGORY_COLUMNS = (
    c.ROW_TYPE,
    c.CANCER_TYPE,
    c.THERAPY_CLASS,
    c.EXTRAOSSEOUS_RESPONSE,
    c.NEW_LESION_MORPHOLOGY,
)
_NUMERIC_COLUMNS = (c.SLD_MM, c.ALP_U_L, c.NEW_BONE_LESIONS)
#: what an unknown value becomes where the vocabulary has no ``other``: a row of unknown
#: type is history (its ALP counts), never an index row
_UNKNOWN_BECOMES = {c.ROW_TYPE: "lab"}

_TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_TEXT = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _one_hot_names(column: str) -> tuple[str, ...]:
    return tuple(f"{column}_{value}" for value in c.VOCABULARIES[column])


#: feature names by clinical group, in output column order
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "time": (
        "days_since_treatment_start",
        "days_since_previous_imaging",
        "imaging_assessment_number",
    ),
    "extraosseous": (
        "extraosseous_response_ordinal",
        "best_extraosseous_response_ordinal",
        "sld_percent_change_from_baseline",
        "sld_percent_change_from_nadir",
        "sld_change_from_nadir_mm",
        "new_extraosseous_lesion_now",
        "new_extraosseous_lesion_ever",
    ),
    "alp": (
        "alp_u_l",
        "alp_baseline_u_l",
        "alp_change_from_baseline_u_l",
        "alp_percent_change_from_baseline",
        "alp_change_from_previous_u_l",
        "alp_slope_u_l_per_30_days",
        "alp_samples_in_slope_window",
        "alp_max_rise_above_baseline_u_l",
        "alp_max_rise_above_baseline_percent",
        "alp_fall_from_peak_u_l",
        "alp_ratio_to_upper_limit_normal",
        "days_since_latest_alp",
        "alp_missing",
        "alp_baseline_missing",
    ),
    "bone": (
        "new_bone_lesion_count",
        "new_bone_lesion_count_cumulative",
        *_one_hot_names(c.NEW_LESION_MORPHOLOGY),
        "progressive_lysis_now",
        "progressive_lysis_ever",
        "known_lesion_sclerosis_now",
        "known_lesion_sclerosis_ever",
        "previous_index_events",
    ),
    "context": (
        *_one_hot_names(c.CANCER_TYPE),
        *_one_hot_names(c.THERAPY_CLASS),
        "baseline_marrow_involvement",
        "clinical_deterioration_now",
        "clinical_deterioration_ever",
    ),
}

#: every feature, in output column order
FEATURE_NAMES: tuple[str, ...] = tuple(name for group in FEATURE_GROUPS.values() for name in group)

#: one line per feature, in clinical words ("index" = the index assessment, "t")
FEATURE_DESCRIPTIONS: dict[str, str] = {
    "days_since_treatment_start": "days from treatment start to the index assessment",
    "days_since_previous_imaging": "days since the patient's previous imaging assessment",
    "imaging_assessment_number": "imaging assessments after treatment start up to the index "
    "one (1 = first follow-up scan)",
    "extraosseous_response_ordinal": "RECIST 1.1 response at the index scan: PD -1, SD 0, "
    "PR 1, CR 2 (NE missing)",
    "best_extraosseous_response_ordinal": "best RECIST response so far, same scale",
    "sld_percent_change_from_baseline": "percent change of the sum of longest diameters "
    "from baseline (latest at or before treatment start; missing when there is none)",
    "sld_percent_change_from_nadir": "percent change of the sum of longest diameters from "
    "the smallest earlier value (nadir, baseline included)",
    "sld_change_from_nadir_mm": "change of the sum of longest diameters from the nadir, mm",
    "new_extraosseous_lesion_now": "new non-bone lesion at the index scan (1/0)",
    "new_extraosseous_lesion_ever": "new non-bone lesion at any scan so far (1/0)",
    "alp_u_l": "latest serum ALP at or before the index assessment, U/L",
    "alp_baseline_u_l": "baseline ALP: latest at or before treatment start, else the first "
    "value, U/L",
    "alp_change_from_baseline_u_l": "ALP change from baseline, U/L",
    "alp_percent_change_from_baseline": "ALP change from baseline, percent",
    "alp_change_from_previous_u_l": "latest ALP minus the value before it, U/L",
    "alp_slope_u_l_per_30_days": "least-squares ALP slope over the slope window before the "
    "index assessment, U/L per 30 days",
    "alp_samples_in_slope_window": "ALP values in the slope window",
    "alp_max_rise_above_baseline_u_l": "largest ALP rise above baseline since treatment "
    "start (0 if none), U/L",
    "alp_max_rise_above_baseline_percent": "largest ALP rise above baseline since "
    "treatment start, percent",
    "alp_fall_from_peak_u_l": "highest ALP since treatment start minus the latest, U/L "
    "(a rise that fell back)",
    "alp_ratio_to_upper_limit_normal": "latest ALP divided by the upper limit of normal",
    "days_since_latest_alp": "age of the latest ALP value at the index assessment, days",
    "alp_missing": "no ALP value at or before the index assessment (1/0)",
    "alp_baseline_missing": "no ALP value at or before treatment start (1/0)",
    "new_bone_lesion_count": "new bone lesions at the index scan",
    "new_bone_lesion_count_cumulative": "new bone lesions at all scans so far",
    **{
        name: f"new lesion morphology at the index scan is {name.rsplit('_', 1)[1]} (1/0)"
        for name in _one_hot_names(c.NEW_LESION_MORPHOLOGY)
    },
    "progressive_lysis_now": "a known bone lesion shows growing lysis at the index scan (1/0)",
    "progressive_lysis_ever": "progressive lysis at any scan so far (1/0)",
    "known_lesion_sclerosis_now": "a known lytic lesion shows new sclerosis at the index "
    "scan (1/0)",
    "known_lesion_sclerosis_ever": "sclerosis of a known lesion at any scan so far (1/0)",
    "previous_index_events": "earlier scans of this patient with new bone lesions",
    **{
        f"{column}_{value}": f"{column.replace('_', ' ')} is {value} (1/0)"
        for column in (c.CANCER_TYPE, c.THERAPY_CLASS)
        for value in c.VOCABULARIES[column]
    },
    "baseline_marrow_involvement": "diffuse bone-marrow uptake on the baseline PET (1/0)",
    "clinical_deterioration_now": "new bone pain, ECOG worsening or a skeletal-related event "
    "at the index assessment (1/0)",
    "clinical_deterioration_ever": "clinical deterioration at any assessment so far (1/0)",
}


class UnknownCategoryWarning(UserWarning):
    """A category value outside the contract vocabulary was read (and mapped, not used)."""


# --- input normalisation ----------------------------------------------------------------


@dataclass
class _Timeline:
    """The columns the features need, normalised and sorted by patient, then date."""

    patient_id: np.ndarray
    assessment_date: np.ndarray
    day: np.ndarray
    start_day: np.ndarray
    imaging: np.ndarray
    is_index: np.ndarray
    codes: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray]
    groups: _Groups
    order: np.ndarray


def _offending_rows(
    pids: np.ndarray, dates: pd.Series, mask: np.ndarray
) -> tuple[tuple[tuple[str, str], ...], int]:
    where = np.flatnonzero(mask)
    rows = tuple(
        (
            "<missing>" if pd.isna(pids[i]) else str(pids[i]),
            "<missing>" if pd.isna(dates.iloc[i]) else str(dates.iloc[i]),
        )
        for i in where[:5]
    )
    return rows, int(where.size)


def _category_codes(
    series: pd.Series, column: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the contract vocabulary of ``column`` (-1 = missing) and an unknown mask.

    Values match the vocabulary after stripping spaces and ignoring case (as validation
    normalises them); an empty text is missing. Unknown values become ``other`` where the
    vocabulary has it, ``lab`` for ``row_type`` (so that a row of unknown type is never an
    index row) and missing otherwise; a note for the call's single warning is added to
    ``notes``.
    """
    vocabulary = c.VOCABULARIES[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        if list(series.dtype.categories) == list(vocabulary):  # validated: codes are final
            return series.array.codes.astype(np.int64), np.zeros(len(series), dtype=bool)
        cat = series
    else:
        cat = series.astype("category")
    categories = [str(value) for value in cat.cat.categories]
    lookup = {value.casefold(): code for code, value in enumerate(vocabulary)}
    keys = [value.strip().casefold() for value in categories]
    mapping = np.array([lookup.get(key, -2) if key else -1 for key in keys] + [-1])
    raw = cat.cat.codes.to_numpy()
    codes = mapping[raw]  # a raw code of -1 (missing) picks the trailing -1
    unknown = codes == -2
    if unknown.any():
        fallback = _UNKNOWN_BECOMES.get(column, "other" if "other" in vocabulary else None)
        seen = sorted({categories[k] for k in np.unique(raw[unknown])})
        notes.append(f"column '{column}': {seen} -> {fallback or 'missing'}")
        codes = np.where(unknown, vocabulary.index(fallback) if fallback else -1, codes)
    return codes, unknown


def _flag_values(series: pd.Series, column: str, notes: list[str]) -> np.ndarray:
    """Read a flag column as floats 1.0 / 0.0 / NaN, whatever its dtype."""
    if is_bool_dtype(series.dtype) or is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    cat = series.astype("category")
    texts = [str(value).strip().lower() for value in cat.cat.categories]
    mapping = np.array(
        [1.0 if t in _TRUE_TEXT else 0.0 if t in _FALSE_TEXT else -1.0 for t in texts] + [np.nan]
    )
    values = mapping[cat.cat.codes.to_numpy()]
    bad = values == -1.0
    if bad.any():
        seen = sorted(
            {str(cat.cat.categories[k]) for k in np.unique(cat.cat.codes.to_numpy()[bad])}
        )
        notes.append(f"column '{column}': {seen[:10]} are not true/false -> missing")
        values = np.where(bad, np.nan, values)
    return values


def _numeric_values(series: pd.Series, column: str, notes: list[str]) -> np.ndarray:
    """Read a numeric column as float64 with NaN for missing (text is parsed)."""
    if is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(parsed) & series.notna().to_numpy()
    if bad.any():
        seen = sorted({str(v) for v in series[bad].unique()[:10]})
        notes.append(f"column '{column}': {seen} are not numbers -> missing")
    return parsed


def _days(series: pd.Series) -> np.ndarray:
    """Dates floored to the day (``datetime64[D]``), NaT where missing or unreadable."""
    if not is_datetime64_any_dtype(series.dtype):
        series = pd.to_datetime(series, errors="coerce")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_localize(None)
    return series.to_numpy().astype("datetime64[D]")  # NumPy floors to the coarser unit


def _prepare(timepoints: pd.DataFrame, *, warn: bool = True) -> _Timeline:
    """Check keys, normalise dtypes cheaply and sort by (patient_id, assessment_date)."""
    _check_required(timepoints)
    pid_series = timepoints[c.PATIENT_ID]
    pid_text = pid_series if pid_series.dtype == "str" else pid_series.astype("str")
    pids = pid_text.to_numpy(dtype=object, na_value=None)
    raw_dates = {col: timepoints[col] for col in c.DATE_COLUMNS}
    dates = {col: _days(raw) for col, raw in raw_dates.items()}

    violations = []
    pid_missing = pid_series.isna().to_numpy()
    for col, raw in raw_dates.items():
        bad = np.isnat(dates[col]) & ~pid_missing
        if bad.any():
            unparseable = raw.notna().to_numpy() & bad
            rows, count = _offending_rows(pids, raw, bad)
            violations.append(
                Violation(
                    column=col,
                    rule="unparseable_date" if unparseable.any() else "missing_value",
                    rows=rows,
                    count=count,
                    message="date is missing or cannot be read as a date",
                    hint="write dates as YYYY-MM-DD",
                )
            )
    if pid_missing.any():
        rows, count = _offending_rows(pids, raw_dates[c.ASSESSMENT_DATE], pid_missing)
        violations.append(
            Violation(
                column=c.PATIENT_ID,
                rule="missing_value",
                rows=rows,
                count=count,
                message="patient_id is missing",
                hint="give every row its patient's id",
            )
        )
    if violations:
        raise ContractError("cannot compute features: bad identifiers or dates", violations)

    pid_codes, pid_uniques = pd.factorize(pid_text, sort=True)
    day = dates[c.ASSESSMENT_DATE].astype(np.int64)
    start_day = dates[c.TREATMENT_START_DATE].astype(np.int64)
    order = np.lexsort((day, pid_codes))
    sorted_codes = pid_codes[order]
    sorted_day = day[order]
    dup = np.zeros(order.size, dtype=bool)
    if order.size > 1:
        same = (sorted_codes[1:] == sorted_codes[:-1]) & (sorted_day[1:] == sorted_day[:-1])
        dup[1:] = same
        dup[:-1] |= same
    if dup.any():
        sorted_dates = pd.Series(dates[c.ASSESSMENT_DATE][order]).dt.strftime("%Y-%m-%d")
        rows, count = _offending_rows(pids[order], sorted_dates, dup)
        raise ContractError(
            "cannot compute features: assessments are not unique per patient",
            [
                Violation(
                    column=c.ASSESSMENT_DATE,
                    rule="duplicate_assessment",
                    rows=rows,
                    count=count,
                    message="more than one row for the same (patient_id, assessment_date)",
                    hint="merge the rows of one visit into one",
                )
            ],
        )

    notes: list[str] = []
    codes: dict[str, np.ndarray] = {}
    for col in _CATEGORY_COLUMNS:
        if col in timepoints.columns:
            codes[col] = _category_codes(timepoints[col], col, notes)[0][order]
        else:
            codes[col] = np.full(order.size, -1, dtype=np.int64)
    values: dict[str, np.ndarray] = {}
    for col in (*c.BOOL_COLUMNS, *_NUMERIC_COLUMNS):
        if col not in timepoints.columns:
            values[col] = np.full(order.size, np.nan)
        elif col in c.BOOL_COLUMNS:
            values[col] = _flag_values(timepoints[col], col, notes)[order]
        else:
            values[col] = _numeric_values(timepoints[col], col, notes)[order]
    if warn and notes:
        warnings.warn(
            "values outside the data contract were mapped, not used: "
            + "; ".join(notes)
            + ". Fix the input (vocabularies in flare_ml.data.contract) to silence this.",
            UnknownCategoryWarning,
            stacklevel=3,
        )

    # a missing row_type reads as the contract default, imaging
    imaging = codes[c.ROW_TYPE] != c.ROW_TYPES.index("lab")
    with np.errstate(invalid="ignore"):
        is_index = imaging & (values[c.NEW_BONE_LESIONS] > 0)
    return _Timeline(
        patient_id=np.asarray(pid_uniques, dtype=object)[sorted_codes],
        assessment_date=dates[c.ASSESSMENT_DATE][order].astype(DATE_DTYPE),
        day=sorted_day,
        start_day=start_day[order],
        imaging=imaging,
        is_index=is_index,
        codes=codes,
        numbers=values,
        groups=_Groups(sorted_codes),
        order=order,
    )


# --- grouped cumulative operations (table sorted by patient, then date) -------------------


class _Groups:
    """Patient blocks of a table sorted by patient: cumulative operations within blocks."""

    def __init__(self, codes: np.ndarray) -> None:
        n = codes.size
        first = np.ones(n, dtype=bool)
        first[1:] = codes[1:] != codes[:-1]
        firsts = np.flatnonzero(first)
        self.codes = codes
        self.start = np.repeat(firsts, np.diff(np.append(firsts, n)))
        self.n = n
        #: all rows belong to one patient (a request of one timeline)
        self.single = firsts.size == 1

    def last(self, mask: np.ndarray, *, strict: bool = False) -> np.ndarray:
        """Position of the latest row of the same patient where ``mask``, else -1.

        The row itself counts unless ``strict``.
        """
        pos = np.where(mask, np.arange(self.n), -1)
        latest = np.maximum.accumulate(pos) if self.n else pos
        if strict:
            latest = np.concatenate(([-1], latest[:-1]))
        return np.where(latest >= self.start, latest, -1)

    def cumsum(self, values: np.ndarray) -> np.ndarray:
        """Sum integer ``values`` cumulatively within each patient (exact)."""
        values = values.astype(np.int64)
        total = np.cumsum(values)
        return total - (total[self.start] - values[self.start])

    def cumsum_float(self, columns: list[np.ndarray]) -> np.ndarray:
        """Sum float columns cumulatively, restarting at every patient's first row.

        One grouped pass over all columns (pandas' compensated sum, column by column);
        returns an array of shape (rows, columns).
        """
        frame = pd.DataFrame(np.column_stack(columns), copy=False)
        return frame.groupby(self.codes, sort=False).cumsum().to_numpy()

    def running_max(self, values: np.ndarray) -> np.ndarray:
        """Largest non-missing value so far within each patient (NaN before the first)."""
        filled = np.where(np.isnan(values), -np.inf, values)
        if self.single:  # no grouping machinery for one patient
            out = np.maximum.accumulate(filled)
            # a tie keeps the earlier value, as the grouped cummax does; only 0.0 and
            # -0.0 tie with different bits, and NumPy may pick either
            zero = out == 0
            if zero.any():
                out[zero] = filled[np.argmax(zero)]
        else:
            out = pd.Series(filled).groupby(self.codes, sort=False).cummax().to_numpy()
        return np.where(np.isneginf(out), np.nan, out)

    def running_min(self, values: np.ndarray) -> np.ndarray:
        """Smallest non-missing value so far within each patient (NaN before the first)."""
        return -self.running_max(-values)

    def ever(self, flag: np.ndarray) -> np.ndarray:
        """1 if ``flag`` was 1 on any row so far, 0 if only 0 was seen, NaN if never seen."""
        n_true = self.cumsum(flag == 1.0)
        n_seen = self.cumsum(~np.isnan(flag))
        return np.where(n_true > 0, 1.0, np.where(n_seen > 0, 0.0, np.nan))

    def previous(self, values: np.ndarray) -> np.ndarray:
        """Shift ``values`` down one row within each patient (NaN on the first row)."""
        out = np.full(self.n, np.nan)
        if self.n > 1:
            out[1:] = values[:-1]
        return np.where(np.arange(self.n) > self.start, out, np.nan)


def _take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``values[pos]`` with NaN where ``pos`` is -1."""
    if values.size == 0:
        return np.full(pos.size, np.nan)
    return np.where(pos >= 0, values[pos], np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``scale * numerator / denominator``, NaN where the denominator is 0 or missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = scale * numerator / denominator
    return np.where(denominator == 0, np.nan, out)


def _baseline_position(t: _Timeline, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of the baseline value: latest at or before treatment start, else the first.

    Returns the position (-1 if none) and the position of the latest pre-treatment value.
    """
    g = t.groups
    pre = g.last(valid & (t.day <= t.start_day))
    first = g.last(valid & (g.cumsum(valid) == 1))
    return np.where(pre >= 0, pre, first), pre


def _window_sums(
    t: _Timeline, window_days: int, columns: list[np.ndarray], int_columns: list[np.ndarray]
) -> list[np.ndarray]:
    """Sum each column over the same patient's rows dated in ``(day - window_days, day]``."""
    g = t.groups
    if g.n == 0:
        return [np.zeros(0) for _ in (*columns, *int_columns)]
    span = int(t.day.max() - t.day.min()) + window_days + 1
    key = g.codes.astype(np.int64) * span + (t.day - t.day.min())
    first_in = np.searchsorted(key, key - window_days, side="right")
    before = first_in - 1
    has_before = before >= g.start
    before = np.where(has_before, before, 0)
    out = []
    for total in g.cumsum_float(columns).T if columns else []:
        out.append(total - np.where(has_before, total[before], 0.0))
    for values in int_columns:
        total = g.cumsum(values)
        out.append(total - np.where(has_before, total[before], 0))
    return out


# --- the features -----------------------------------------------------------------------


def _compute(t: _Timeline, params: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every feature at the positions ``rows`` (the index rows) of the sorted timeline.

    Running quantities are computed over all rows, then kept at ``rows`` only.
    """

    def at(values: np.ndarray) -> np.ndarray:
        return values[rows]

    g = t.groups
    v = t.numbers
    f: dict[str, np.ndarray] = {}
    img = t.imaging
    day = t.day.astype(np.float64)

    # time
    f["days_since_treatment_start"] = at(day - t.start_day)
    prev_img = g.last(img, strict=True)
    f["days_since_previous_imaging"] = at(day - _take(day, prev_img))
    f["imaging_assessment_number"] = at(g.cumsum(img & (t.day > t.start_day)).astype(np.float64))

    # extraosseous disease
    ordinal = np.array([RESPONSE_ORDINAL.get(r, np.nan) for r in c.EXTRAOSSEOUS_RESPONSES])
    resp_code = t.codes[c.EXTRAOSSEOUS_RESPONSE]
    response = np.where(img & (resp_code >= 0), ordinal[resp_code], np.nan)
    f["extraosseous_response_ordinal"] = at(response)
    f["best_extraosseous_response_ordinal"] = at(g.running_max(response))
    sld = np.where(img, v[c.SLD_MM], np.nan)
    # RECIST baseline: a pre-treatment measurement only (a later one is not a baseline)
    sld_base = _take(sld, _baseline_position(t, ~np.isnan(sld))[1])
    f["sld_percent_change_from_baseline"] = at(_ratio(sld - sld_base, sld_base, 100.0))
    nadir = g.previous(g.running_min(sld))  # smallest earlier value, baseline included
    f["sld_percent_change_from_nadir"] = at(_ratio(sld - nadir, nadir, 100.0))
    f["sld_change_from_nadir_mm"] = at(sld - nadir)
    new_eo = np.where(img, v[c.NEW_EXTRAOSSEOUS_LESION], np.nan)
    f["new_extraosseous_lesion_now"] = at(new_eo)
    f["new_extraosseous_lesion_ever"] = at(g.ever(new_eo))

    # alkaline phosphatase, from every row (imaging and lab)
    alp = v[c.ALP_U_L]
    has_alp = ~np.isnan(alp)
    latest = g.last(has_alp)
    current = _take(alp, latest)
    base_pos, pre_pos = _baseline_position(t, has_alp)
    base = _take(alp, base_pos)
    before_latest = np.where(latest >= 0, g.last(has_alp, strict=True)[latest], -1)
    f["alp_u_l"] = at(current)
    f["alp_baseline_u_l"] = at(base)
    f["alp_change_from_baseline_u_l"] = at(current - base)
    f["alp_percent_change_from_baseline"] = at(_ratio(current - base, base, 100.0))
    f["alp_change_from_previous_u_l"] = at(current - _take(alp, before_latest))
    x = np.where(has_alp, t.day - t.start_day[g.start], 0).astype(np.int64)
    y = np.where(has_alp, alp, 0.0)
    sy, sxy, n, sx, sxx = _window_sums(
        t,
        int(params["alp_slope_window_days"]),
        [y, x * y],
        [has_alp, x, x * x],
    )
    denominator = (n * sxx - sx * sx).astype(np.float64)
    enough = n >= int(params["alp_slope_min_samples"])
    slope = _ratio(n * sxy - sx * sy, denominator, 30.0)
    f["alp_slope_u_l_per_30_days"] = at(np.where(enough, slope, np.nan))
    f["alp_samples_in_slope_window"] = at(n.astype(np.float64))
    peak = g.running_max(np.where(has_alp & (t.day >= t.start_day), alp, np.nan))
    rise = np.maximum(peak - base, 0.0)
    f["alp_max_rise_above_baseline_u_l"] = at(rise)
    f["alp_max_rise_above_baseline_percent"] = at(_ratio(rise, base, 100.0))
    f["alp_fall_from_peak_u_l"] = at(peak - current)
    f["alp_ratio_to_upper_limit_normal"] = at(current / float(params["alp_upper_limit_normal"]))
    f["days_since_latest_alp"] = at(day - _take(day, latest))
    f["alp_missing"] = at((latest < 0).astype(np.float64))
    f["alp_baseline_missing"] = at((pre_pos < 0).astype(np.float64))

    # bone
    lesions = np.where(img, v[c.NEW_BONE_LESIONS], np.nan)
    f["new_bone_lesion_count"] = at(lesions)
    counted = np.where(np.isnan(lesions), 0, lesions).astype(np.int64)
    f["new_bone_lesion_count_cumulative"] = at(g.cumsum(counted).astype(np.float64))
    f.update(_one_hot(t, c.NEW_LESION_MORPHOLOGY, rows, img))
    for column in (c.PROGRESSIVE_LYSIS, c.KNOWN_LESION_SCLEROSIS):
        now = np.where(img, v[column], np.nan)
        f[f"{column}_now"] = at(now)
        f[f"{column}_ever"] = at(g.ever(now))
    f["previous_index_events"] = at((g.cumsum(t.is_index) - t.is_index).astype(np.float64))

    # context
    f.update(_one_hot(t, c.CANCER_TYPE, rows))
    f.update(_one_hot(t, c.THERAPY_CLASS, rows))
    marrow = v[c.BASELINE_MARROW_INVOLVEMENT]
    f["baseline_marrow_involvement"] = at(_take(marrow, g.last(~np.isnan(marrow))))
    deterioration = v[c.CLINICAL_DETERIORATION]
    f["clinical_deterioration_now"] = at(deterioration)
    f["clinical_deterioration_ever"] = at(g.ever(deterioration))
    return f


def _one_hot(
    t: _Timeline, column: str, rows: np.ndarray, where: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """One column per vocabulary value at ``rows``; NaN in all where the value is missing.

    Rows outside the mask ``where`` (when given) count as missing too.
    """
    code = t.codes[column][rows]
    known = code >= 0
    if where is not None:
        known &= where[rows]
    return {
        name: np.where(known, (code == k).astype(np.float64), np.nan)
        for k, name in enumerate(_one_hot_names(column))
    }


def _check_required(timepoints: pd.DataFrame) -> None:
    if not isinstance(timepoints, pd.DataFrame):
        raise TypeError(
            f"expected a pandas DataFrame (a timepoint table), got {type(timepoints).__name__}"
        )
    missing = [col for col in c.REQUIRED_COLUMNS if col not in timepoints.columns]
    if missing:
        raise ContractError(
            "the timepoint table lacks required columns",
            [
                Violation(
                    column=col,
                    rule="missing_column",
                    message="required column is missing",
                    hint="add it (see flare_ml.data.contract.REQUIRED_COLUMNS)",
                )
                for col in missing
            ],
        )


def _key_index(t: _Timeline, rows: np.ndarray) -> pd.MultiIndex:
    """The (patient_id, assessment_date) index of ``rows``, as ``MultiIndex.from_arrays``.

    Built from its levels (the sorted distinct values, as ``from_arrays`` makes them) and
    codes directly, which costs a fraction of ``from_arrays`` on a short request. The
    timeline is sorted by patient already, so the patient level needs no sort.
    """
    patients = t.patient_id[rows]
    new_patient = np.ones(patients.size, dtype=bool)
    new_patient[1:] = patients[1:] != patients[:-1]
    dates, date_codes = np.unique(t.assessment_date[rows], return_inverse=True)
    return pd.MultiIndex(
        levels=[pd.Index(patients[new_patient], dtype="str"), pd.DatetimeIndex(dates)],
        codes=[np.cumsum(new_patient) - 1, date_codes],
        names=list(c.KEY_COLUMNS),
        verify_integrity=False,
    )


class TimepointFeaturizer(TransformerMixin, BaseEstimator):
    """Turn a timepoint table into one feature row per index assessment.

    An index row is an imaging assessment with ``new_bone_lesions > 0``. Its features
    (see :data:`FEATURE_GROUPS` and :data:`FEATURE_DESCRIPTIONS`) use only rows of the same
    patient dated at or before it, in five groups: time, extraosseous disease (RECIST),
    alkaline phosphatase (from imaging and ``lab`` rows alike), bone findings, and
    context. All features are float64; flags are 1.0/0.0, categories go out one-hot over
    the fixed contract vocabulary, the RECIST response is an ordinal (:data:`RESPONSE_ORDINAL`:
    PD -1, SD 0, PR 1, CR 2; NE missing). Missing stays NaN; a model stage imputes.

    The transformer learns nothing from the data: ``fit`` only records the input columns
    and the fixed vocabularies, so features are identical in any cohort or chunk.

    Parameters
    ----------
    alp_upper_limit_normal : float, default=147.0
        Upper limit of normal for serum ALP in U/L (adult reference range 44-147 U/L,
        literature.md section 4), the denominator of ``alp_ratio_to_upper_limit_normal``.
    alp_slope_window_days : int, default=90
        ALP values dated in ``(t - window, t]`` enter the least-squares slope at an
        assessment dated ``t``.
    alp_slope_min_samples : int, default=2
        Fewest ALP values in the window for a slope; fewer give NaN.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns of the table seen in ``fit``.
    n_features_in_ : int
        Number of those columns.
    categories_ : dict of str to list of str
        The fixed contract vocabularies behind the one-hot and ordinal columns.
    feature_names_out_ : ndarray of str
        The output columns, equal to :data:`FEATURE_NAMES`.

    Notes
    -----
    Input need not be validated (:func:`flare_ml.data.validate_timepoints` is
    optional): ``row_type`` may be absent (every row is then imaging, the contract
    default), category columns may be text or ``category`` (matched ignoring case and
    surrounding spaces), flags may be booleans, 0/1 or text, numbers may be text, dates
    are read at day precision. Values outside the contract never stop the transform: an
    unknown category becomes ``other`` where the vocabulary has it (``cancer_type``,
    ``therapy_class``), ``lab`` for ``row_type`` (history, never an index row) and
    missing otherwise, and unreadable flags or numbers become missing, with one
    :class:`UnknownCategoryWarning` per call naming the columns and values.
    Missing required columns, missing identifiers or dates and duplicate
    ``(patient_id, assessment_date)`` raise :class:`~flare_ml.errors.ContractError`.

    The output's index is a ``MultiIndex`` (``patient_id`` as text, ``assessment_date``
    as :data:`flare_ml.data.DATE_DTYPE`), sorted; the identifiers are never features.

    Examples
    --------
    >>> import pandas as pd
    >>> from flare_ml.features import TimepointFeaturizer, index_outcomes
    >>> table = pd.DataFrame({
    ...     "patient_id": ["P1", "P1", "P1"],
    ...     "treatment_start_date": pd.to_datetime(["2024-01-01"] * 3),
    ...     "assessment_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
    ...     "row_type": ["imaging", "lab", "imaging"],
    ...     "cancer_type": "nsclc",
    ...     "therapy_class": "egfr_tki",
    ...     "extraosseous_response": ["baseline", None, "PR"],
    ...     "new_bone_lesions": [0, None, 3],
    ...     "new_lesion_morphology": ["none", None, "blastic"],
    ...     "alp_u_l": [120.0, 150.0, 110.0],
    ...     "outcome": [None, None, "flare"],
    ... })
    >>> features = TimepointFeaturizer().fit_transform(table)
    >>> features.index.tolist()
    [('P1', Timestamp('2024-03-01 00:00:00'))]
    >>> features.loc[("P1", "2024-03-01"), ["days_since_treatment_start",
    ...     "extraosseous_response_ordinal", "alp_change_from_baseline_u_l",
    ...     "alp_max_rise_above_baseline_u_l", "new_lesion_morphology_blastic"]].tolist()
    [60.0, 1.0, -10.0, 30.0, 1.0]
    >>> index_outcomes(table).tolist()
    [1]

    """

    def __init__(
        self,
        alp_upper_limit_normal: float = 147.0,
        alp_slope_window_days: int = 90,
        alp_slope_min_samples: int = 2,
    ) -> None:
        self.alp_upper_limit_normal = alp_upper_limit_normal
        self.alp_slope_window_days = alp_slope_window_days
        self.alp_slope_min_samples = alp_slope_min_samples

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        return tags

    def _check_params(self) -> None:
        uln = self.alp_upper_limit_normal
        if isinstance(uln, bool) or not isinstance(uln, Real) or not (0 < uln < np.inf):
            raise ValueError(
                f"TimepointFeaturizer: alp_upper_limit_normal must be a positive number of "
                f"U/L, got {uln!r}"
            )
        for name, low in (("alp_slope_window_days", 1), ("alp_slope_min_samples", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(
                    f"TimepointFeaturizer: {name} must be an integer >= {low}, got {value!r}"
                )

    def fit(self, X: pd.DataFrame, y: Any = None) -> TimepointFeaturizer:
        """Check the parameters and the table's columns; learn nothing from the rows.

        Parameters
        ----------
        X : pandas.DataFrame
            A timepoint table (data contract, ``DESIGN.md`` section 2).
        y : ignored
            Present for the scikit-learn API (a :class:`~sklearn.pipeline.Pipeline`
            passes the labels of :func:`index_outcomes`).

        Returns
        -------
        TimepointFeaturizer
            The fitted transformer.

        Examples
        --------
        >>> from flare_ml.cases import seed_case_timeline
        >>> TimepointFeaturizer().fit(seed_case_timeline()).n_features_in_
        17

        """
        self._check_params()
        _check_required(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_ = {
            col: list(c.VOCABULARIES[col]) for col in (*_ONE_HOT, c.EXTRAOSSEOUS_RESPONSE)
        }
        self.feature_names_out_ = np.asarray(FEATURE_NAMES, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Compute the features of every index row.

        Parameters
        ----------
        X : pandas.DataFrame
            A timepoint table, in any row order; may hold several patients.

        Returns
        -------
        pandas.DataFrame
            One float64 row per index row, columns :data:`FEATURE_NAMES`, indexed by a
            sorted ``MultiIndex`` (``patient_id``, ``assessment_date``).

        Raises
        ------
        ContractError
            For a missing required column, missing identifiers or dates, or duplicate
            assessments of a patient.

        Examples
        --------
        >>> from flare_ml.cases import seed_case_timeline
        >>> row = TimepointFeaturizer().fit_transform(seed_case_timeline()).iloc[0]
        >>> row[["days_since_treatment_start", "extraosseous_response_ordinal"]].tolist()
        [90.0, 1.0]

        """
        check_is_fitted(self, "feature_names_out_")
        self._check_params()
        timeline = _prepare(X)
        rows = np.flatnonzero(timeline.is_index)
        features = _compute(timeline, self.get_params(), rows)
        names = list(self.feature_names_out_)
        block = np.empty((len(names), rows.size))  # one float64 block, a row per feature
        for position, name in enumerate(names):
            block[position] = features[name]
        return pd.DataFrame(block.T, columns=names, index=_key_index(timeline, rows), copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns.

        Parameters
        ----------
        input_features : ignored
            Present for the scikit-learn API; the output names do not depend on it.

        Returns
        -------
        ndarray of str
            :data:`FEATURE_NAMES`, in output order.

        Examples
        --------
        >>> from flare_ml.cases import seed_case_timeline
        >>> names = TimepointFeaturizer().fit(seed_case_timeline()).get_feature_names_out()
        >>> names[:2].tolist()
        ['days_since_treatment_start', 'days_since_previous_imaging']

        """
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


def index_outcomes(timepoints: pd.DataFrame, *, allow_missing: bool = False) -> pd.Series:
    """Return the outcome of every index row, aligned with the featurizer's output.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        A timepoint table with an ``outcome`` column (training data).
    allow_missing : bool, default=False
        Keep index rows without an outcome as ``<NA>`` (dtype ``Int64``) instead of
        raising.

    Returns
    -------
    pandas.Series
        Named ``outcome``: **1 = flare, 0 = progression** (int64; ``Int64`` when
        ``allow_missing``), indexed like the featurizer's output (same rows, same order).

    Raises
    ------
    ContractError
        If the ``outcome`` column is absent, holds a value other than ``flare`` or
        ``progression``, or (unless ``allow_missing``) is missing on an index row.

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> index_outcomes(seed_case_timeline()).tolist()
    [1]

    """
    _check_required(timepoints)
    if c.OUTCOME not in timepoints.columns:
        raise ContractError(
            "cannot give outcomes: the table has no 'outcome' column",
            [Violation(column=c.OUTCOME, rule="missing_column", hint="label the index rows")],
        )
    t = _prepare(timepoints, warn=False)
    notes: list[str] = []
    codes, unknown = _category_codes(timepoints[c.OUTCOME], c.OUTCOME, notes)
    codes, unknown = codes[t.order], unknown[t.order]
    rows = np.flatnonzero(t.is_index)
    labelled_out = np.zeros(t.groups.n, dtype=bool)
    labelled_out[rows] = codes[rows] < 0
    problems = []
    if unknown.any():
        problems.append(("unknown_category", unknown, f"{notes[0]}; allowed: {c.OUTCOMES}"))
    if labelled_out.any() and not allow_missing:
        problems.append(("missing_value", labelled_out & ~unknown, "index row has no outcome"))
    violations = []
    dates = pd.Series(t.assessment_date).dt.strftime("%Y-%m-%d")
    for rule, mask, message in problems:
        if mask.any():
            shown, count = _offending_rows(t.patient_id, dates, mask)
            violations.append(
                Violation(column=c.OUTCOME, rule=rule, rows=shown, count=count, message=message)
            )
    if violations:
        raise ContractError("cannot give outcomes for the index rows", violations)
    flare = codes[rows] == c.OUTCOMES.index("flare")
    index = _key_index(t, rows)
    if allow_missing:
        values = pd.array(np.where(codes[rows] < 0, pd.NA, flare.astype(np.int64)), dtype="Int64")
        return pd.Series(values, index=index, name=c.OUTCOME)
    return pd.Series(flare.astype(np.int64), index=index, name=c.OUTCOME)
