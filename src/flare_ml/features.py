"""Point-in-time features for every index assessment of a timepoint table.

This module turns the long timepoint table of the data contract (see
:mod:`flare_ml.data.contract`) into one row of named, numeric features per **index row**
(an imaging assessment with new bone lesions), ready for any scikit-learn classifier. The
table is read by the data layer (:func:`flare_ml.data.check_timepoints`): the same parser,
vocabularies and rules as :func:`flare_ml.data.validate_timepoints`, so the featurizer
refuses exactly the tables validation refuses, with the same error, and a raw table and
its validated form give identical features. Each feature is a pure function of the same
patient's rows dated at or before the index assessment and of the contract's fixed
vocabularies: nothing is learned from other patients, so a patient's features are
identical in whichever cohort, file or chunk they are computed, and appending later rows
never changes them. The work is vectorised (one sort, then grouped cumulative operations
over the whole table; no Python loop per patient). Missing inputs stay missing (``NaN``):
imputation and encodings that must be learned belong to the model stage.
:class:`TimepointFeaturizer` is the transformer; :func:`index_outcomes` gives the labels
aligned with its output, so that ``pipeline.fit(table, index_outcomes(table))`` works.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from flare_ml.data import TimepointColumns, check_timepoints, require_columns
from flare_ml.data import contract as c
from flare_ml.errors import ContractError, Violation

__all__ = [
    "FEATURE_DESCRIPTIONS",
    "FEATURE_GROUPS",
    "FEATURE_NAMES",
    "MISSING_CATEGORIES",
    "RESPONSE_ORDINAL",
    "TimepointFeaturizer",
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


#: vocabulary values that carry no category information: they go out as missing (NaN in
#: every indicator of their column), never as a column of their own. ``unknown``
#: morphology (the modality cannot tell blastic from lytic) joined the contract after the
#: shipped prior and saved models were trained; see :class:`TimepointFeaturizer`, Notes.
MISSING_CATEGORIES: dict[str, tuple[str, ...]] = {c.NEW_LESION_MORPHOLOGY: ("unknown",)}


def _one_hot_values(column: str) -> tuple[str, ...]:
    """The vocabulary values of ``column`` that get an indicator column, in order."""
    missing = MISSING_CATEGORIES.get(column, ())
    return tuple(value for value in c.VOCABULARIES[column] if value not in missing)


def _one_hot_names(column: str) -> tuple[str, ...]:
    return tuple(f"{column}_{value}" for value in _one_hot_values(column))


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


# --- input: the data layer's parsed columns, sorted ---------------------------------------


@dataclass
class _Timeline:
    """The columns the features need, sorted by patient, then date."""

    patient_id: np.ndarray
    assessment_date: np.ndarray
    day: np.ndarray
    start_day: np.ndarray
    imaging: np.ndarray
    is_index: np.ndarray
    codes: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray]
    groups: _Groups


def _days(values: np.ndarray) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of day-precision ``datetime64`` values."""
    return values.astype("datetime64[D]").astype(np.int64)


def _timeline(columns: TimepointColumns) -> _Timeline:
    """Sort the parsed columns of a valid table by (patient_id, assessment_date)."""
    order = columns.order
    assessment = columns.dates[c.ASSESSMENT_DATE][order]
    sorted_codes = columns.patient_key[order]
    codes = {
        col: np.asarray(columns.categories[col].codes, dtype=np.int64)[order]
        for col in _CATEGORY_COLUMNS
    }
    values = {
        col: columns.booleans[col].to_numpy(dtype=np.float64, na_value=np.nan)[order]
        for col in c.BOOL_COLUMNS
    }
    values.update({col: columns.numbers[col][order] for col in _NUMERIC_COLUMNS})
    imaging = codes[c.ROW_TYPE] != c.ROW_TYPES.index("lab")
    with np.errstate(invalid="ignore"):
        is_index = imaging & (values[c.NEW_BONE_LESIONS] > 0)
    return _Timeline(
        patient_id=columns.patient_text[order],
        assessment_date=assessment,
        day=_days(assessment),
        start_day=_days(columns.dates[c.TREATMENT_START_DATE][order]),
        imaging=imaging,
        is_index=is_index,
        codes=codes,
        numbers=values,
        groups=_Groups(sorted_codes),
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

    Rows outside the mask ``where`` (when given) count as missing too, and so do the
    values of :data:`MISSING_CATEGORIES` (``unknown`` morphology).
    """
    code = t.codes[column][rows]
    vocabulary = c.VOCABULARIES[column]
    known = (code >= 0) & ~np.isin(
        code, [vocabulary.index(v) for v in MISSING_CATEGORIES.get(column, ())]
    )
    if where is not None:
        known &= where[rows]
    return {
        f"{column}_{value}": np.where(
            known, (code == vocabulary.index(value)).astype(np.float64), np.nan
        )
        for value in _one_hot_values(column)
    }


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


def _refuse_sparse(X: Any) -> None:
    if sparse.issparse(X):
        raise TypeError(
            "TimepointFeaturizer: sparse input is not supported; pass a timepoint table "
            f"(a pandas DataFrame), not a {type(X).__name__}"
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

    The transformer learns nothing from the data, so it needs no ``fit`` (its
    scikit-learn tags say ``requires_fit=False``): ``transform`` works on a fresh
    instance, and features are identical in any cohort or chunk.

    Parameters
    ----------
    alp_upper_limit_normal : float, default=147.0
        Upper limit of normal for serum ALP in U/L (adult reference range 44-147 U/L,
        docs/sources.md, ALP), the denominator of ``alp_ratio_to_upper_limit_normal``.
    alp_slope_window_days : int, default=90
        ALP values dated in ``(t - window, t]`` enter the least-squares slope at an
        assessment dated ``t``.
    alp_slope_min_samples : int, default=2
        Fewest ALP values in the window for a slope; fewer give NaN.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns of the table seen in ``fit`` (set by ``fit`` only).
    n_features_in_ : int
        Number of those columns.
    categories_ : dict of str to list of str
        The fixed contract vocabularies behind the one-hot and ordinal columns (the
        values of :data:`MISSING_CATEGORIES` left out: they have no column).
    feature_names_out_ : ndarray of str
        The output columns, equal to :data:`FEATURE_NAMES`.

    Notes
    -----
    The input is read by the data layer (:func:`flare_ml.data.check_timepoints`), so
    it need not be validated first, and a table :func:`~flare_ml.data.validate_timepoints`
    returns is read at almost no cost. Whatever validation accepts is accepted:
    ``row_type`` may be absent (every row is then imaging), categories may be text or
    ``category`` (matched ignoring case and surrounding spaces), flags may be booleans,
    0/1 or ``true/false/yes/no`` text, numbers may be text, dates are read at day
    precision. Whatever validation refuses (an unknown category, an unreadable value, a
    missing required column or value, a duplicate ``(patient_id, assessment_date)``, an
    empty table, ...) raises the same :class:`~flare_ml.errors.ContractError`.

    ``transform`` does not compare its input's columns with those seen in ``fit``:
    the data contract, not the fit table, defines the input (optional columns may be
    absent at any call, extra columns are ignored), and every table is checked against
    the contract.

    The output's index is a ``MultiIndex`` (``patient_id`` as text, ``assessment_date``
    as :data:`flare_ml.data.DATE_DTYPE`), sorted; the identifiers are never features.

    Morphology ``unknown`` (new lesions whose morphology the modality cannot tell, such as
    a bone scan's new focus of uptake without a CT correlate) goes out as *missing*: NaN
    in all four ``new_lesion_morphology_*`` indicators, and no column of its own, so the
    output columns, the shipped prior and every saved model stay valid
    (:data:`MISSING_CATEGORIES`). NaN rather than all indicators 0, because all 0 is a
    combination no training row had, which a tree reads split by split as "not blastic"
    *and* "not lytic": in effect a definite morphology the report never stated (for the
    shipped prior, ``mixed``). NaN is what the information is, and XGBoost sends it down
    each split's missing-value branch, which a model retrained on tables with ``unknown``
    rows learns from them; the rules read it as an unknown criterion. A model trained
    without any missing morphology (the shipped prior) has branches for it that were not
    learned from data: on a simulated cohort it scores ``unknown`` closest to ``lytic``,
    lower P(flare) than ``blastic`` (docs/reports.md, "Migration: ``unknown``
    morphology").

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
    >>> features = TimepointFeaturizer().transform(table)
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
        """Stateless (no fit needed); input is a 2-D table of text, categories and NaN.

        Examples
        --------
        >>> TimepointFeaturizer().__sklearn_tags__().requires_fit
        False

        """
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
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

        Calling it is optional (``transform`` works without it); it records the input
        columns for scikit-learn's API.

        Parameters
        ----------
        X : pandas.DataFrame
            A timepoint table (data contract, :mod:`flare_ml.data.contract`).
        y : ignored
            Present for the scikit-learn API (a :class:`~sklearn.pipeline.Pipeline`
            passes the labels of :func:`index_outcomes`).

        Returns
        -------
        TimepointFeaturizer
            The fitted transformer.

        Raises
        ------
        TypeError
            If ``X`` is not a DataFrame.
        ContractError
            Naming every missing required column (as validation names them).

        Examples
        --------
        >>> from flare_ml.cases import seed_case_timeline
        >>> TimepointFeaturizer().fit(seed_case_timeline()).n_features_in_
        17

        """
        self._check_params()
        _refuse_sparse(X)
        require_columns(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_ = {
            **{col: list(_one_hot_values(col)) for col in _ONE_HOT},
            c.EXTRAOSSEOUS_RESPONSE: list(c.EXTRAOSSEOUS_RESPONSES),
        }
        self.feature_names_out_ = np.asarray(FEATURE_NAMES, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Compute the features of every index row.

        Parameters
        ----------
        X : pandas.DataFrame
            A timepoint table, raw or validated, in any row order; may hold several
            patients.

        Returns
        -------
        pandas.DataFrame
            One float64 row per index row, columns :data:`FEATURE_NAMES`, indexed by a
            sorted ``MultiIndex`` (``patient_id``, ``assessment_date``).

        Raises
        ------
        TypeError
            If ``X`` is not a DataFrame.
        ContractError
            When the table breaks the data contract: exactly the error
            :func:`flare_ml.data.validate_timepoints` raises on it.

        Examples
        --------
        >>> from flare_ml.cases import seed_case_timeline
        >>> row = TimepointFeaturizer().transform(seed_case_timeline()).iloc[0]
        >>> row[["days_since_treatment_start", "extraosseous_response_ordinal"]].tolist()
        [90.0, 1.0]

        """
        self._check_params()
        _refuse_sparse(X)
        timeline = _timeline(check_timepoints(X))
        rows = np.flatnonzero(timeline.is_index)
        features = _compute(timeline, self.get_params(), rows)
        block = np.empty((len(FEATURE_NAMES), rows.size))  # one float64 block, a row per feature
        for position, name in enumerate(FEATURE_NAMES):
            block[position] = features[name]
        return pd.DataFrame(
            block.T, columns=list(FEATURE_NAMES), index=_key_index(timeline, rows), copy=False
        )

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
        >>> names = TimepointFeaturizer().get_feature_names_out()
        >>> names[:2].tolist()
        ['days_since_treatment_start', 'days_since_previous_imaging']

        """
        return np.asarray(FEATURE_NAMES, dtype=object)


def index_outcomes(timepoints: pd.DataFrame, *, allow_missing: bool = False) -> pd.Series:
    """Return the outcome of every index row, aligned with the featurizer's output.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        A timepoint table with an ``outcome`` column (training data), raw or validated.
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
        If the ``outcome`` column is absent, the table breaks the data contract (an
        unknown outcome among others: the error of
        :func:`flare_ml.data.validate_timepoints`), or (unless ``allow_missing``) an
        index row has no outcome.

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> index_outcomes(seed_case_timeline()).tolist()
    [1]

    """
    require_columns(timepoints)
    if c.OUTCOME not in timepoints.columns.map(lambda name: str(name).strip().lower()):
        raise ContractError(
            "cannot give outcomes: the table has no 'outcome' column",
            [Violation(column=c.OUTCOME, rule="missing_column", hint="label the index rows")],
        )
    columns = check_timepoints(timepoints)
    t = _timeline(columns)
    rows = np.flatnonzero(t.is_index)
    codes = np.asarray(columns.categories[c.OUTCOME].codes)[columns.order][rows]
    unlabelled = codes < 0
    if unlabelled.any() and not allow_missing:
        mask = np.zeros(columns.n, dtype=bool)
        mask[columns.order[rows[unlabelled]]] = True
        raise ContractError(
            "cannot give outcomes for the index rows",
            [
                Violation(
                    column=c.OUTCOME,
                    rule="missing_value",
                    rows=columns.examples(mask),
                    count=int(unlabelled.sum()),
                    message="index row has no outcome",
                    hint="label every index row flare or progression",
                )
            ],
        )
    flare = codes == c.OUTCOMES.index("flare")
    index = _key_index(t, rows)
    if allow_missing:
        values = pd.array(np.where(unlabelled, pd.NA, flare.astype(np.int64)), dtype="Int64")
        return pd.Series(values, index=index, name=c.OUTCOME)
    return pd.Series(flare.astype(np.int64), index=index, name=c.OUTCOME)
