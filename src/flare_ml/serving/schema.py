"""The wire format of the served model: column types and JSON-safe conversions.

A REST client sends timepoint rows as JSON, so the served model's input schema declares
every column of the data contract in a type that survives JSON: dates are ISO 8601 text
(``"2024-03-01"``), categories are text, flags are text too so that JSON ``true``,
``false`` and ``null`` (or ``"yes"``/``"no"``) all arrive unchanged and a ``null`` stays
missing (MLflow's ``boolean`` type would turn ``null`` into ``False`` and ``"false"``
into ``True``), and numbers, including the count ``new_bone_lesions``, are ``double`` so
that JSON integers and ``null`` on lab rows both pass MLflow's dtype enforcement
(validation then checks that the count is a whole number). Required contract columns are
required in the signature, optional ones ``required=False``. The output has one row per
index assessment with the assessment date as ISO text. :func:`score_wire` is what the
pyfunc model runs: validate the rows against the data contract, score them with the
bundle, and return the JSON-safe predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flare_ml.bundle import OUTPUT_COLUMNS
from flare_ml.data import contract as c

__all__ = [
    "OUTPUT_COLUMNS",
    "WITH_REASONS_PARAM",
    "predictions_to_wire",
    "score_wire",
    "to_wire_format",
    "wire_type",
]

#: the inference parameter that switches the reasons off (``{"params": {...}}`` in REST)
WITH_REASONS_PARAM = "with_reasons"


def wire_type(column: str) -> str:
    """Return the MLflow data type of a contract column in the served model's signature.

    Parameters
    ----------
    column : str
        A column of :data:`flare_ml.data.contract.CONTRACT_COLUMNS`.

    Returns
    -------
    str
        ``"double"`` for numbers (counts included), ``"string"`` for everything else:
        identifiers, ISO dates, categories and flags.

    Examples
    --------
    >>> wire_type("new_bone_lesions"), wire_type("progressive_lysis")
    ('double', 'string')

    """
    if column in c.FLOAT_COLUMNS or column in c.INT_COLUMNS:
        return "double"
    return "string"


def to_wire_format(timepoints: pd.DataFrame) -> pd.DataFrame:
    """Convert a timepoint table to the JSON-friendly form that the served model accepts.

    Dates become ISO text (``YYYY-MM-DD``), categories and identifiers plain text,
    flags Python ``True``/``False``/``None`` (object dtype), numbers float64 with NaN
    for missing. Columns outside the contract are dropped. Serialise it with
    ``frame.to_json(orient="records")`` (NaN and None become ``null``).

    Parameters
    ----------
    timepoints : pandas.DataFrame
        A timepoint table, raw or validated.

    Returns
    -------
    pandas.DataFrame
        Same rows, contract columns only, in wire types.

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> wire = to_wire_format(seed_case_timeline())
    >>> wire["assessment_date"].iloc[0], wire["progressive_lysis"].iloc[1]
    ('2019-01-07', None)

    """
    out = pd.DataFrame(index=timepoints.index)
    for col in timepoints.columns:
        if col not in c.CONTRACT_COLUMNS:
            continue
        s = timepoints[col]
        if col in c.DATE_COLUMNS:
            dates = pd.to_datetime(s, errors="coerce")
            out[col] = pd.Series(
                np.where(dates.notna(), dates.dt.strftime("%Y-%m-%d"), None),
                index=s.index,
                dtype=object,
            )
        elif col in c.FLOAT_COLUMNS or col in c.INT_COLUMNS:
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
        elif col in c.BOOL_COLUMNS:
            out[col] = pd.Series(
                [None if pd.isna(v) else bool(v) for v in s.astype(object)],
                index=s.index,
                dtype=object,
            )
        else:
            values = s.astype(object)
            out[col] = pd.Series(
                [None if pd.isna(v) else str(v) for v in values], index=s.index, dtype=object
            )
    return out


def _as_text(column: pd.Series) -> pd.Series:
    """``column.astype(str)``, skipped when the column already holds text."""
    return column if column.dtype == "str" else column.astype(str)


def predictions_to_wire(predictions: pd.DataFrame) -> pd.DataFrame:
    """Convert predictions to JSON-safe types: ISO date text, float ``p_flare``, text.

    Examples
    --------
    >>> frame = pd.DataFrame({"patient_id": ["P1"], "assessment_date": [pd.Timestamp("2024-03-01")],
    ...                       "p_flare": [0.8], "decision": ["flare"],
    ...                       "prediction_set": ["flare"], "reasons": [""]})
    >>> predictions_to_wire(frame)["assessment_date"].tolist()
    ['2024-03-01']

    """
    dates = predictions[c.ASSESSMENT_DATE]
    if not pd.api.types.is_datetime64_dtype(dates.dtype):
        dates = pd.to_datetime(dates)
    columns = {
        col: _as_text(predictions[col]).to_numpy(dtype=object)
        for col in (c.PATIENT_ID, "decision", "prediction_set", "reasons")
    }
    columns[c.ASSESSMENT_DATE] = dates.to_numpy()
    columns["p_flare"] = predictions["p_flare"].to_numpy(dtype=np.float64)
    return _wire_frame(columns)


def _wire_frame(columns: dict[str, Any]) -> pd.DataFrame:
    """The served model's output from NumPy columns (text as object arrays, dates as datetime64)."""
    days = columns[c.ASSESSMENT_DATE].astype("datetime64[D]")
    return pd.DataFrame(
        {
            **columns,
            c.ASSESSMENT_DATE: days.astype(str).astype(object),
            "p_flare": np.asarray(columns["p_flare"], dtype=np.float64),
        },
        columns=list(OUTPUT_COLUMNS),
    )


def score_wire(bundle: Any, rows: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
    """Validate timepoint rows against the data contract, score them, return wire output.

    This is the whole of the served model's ``predict``. Only index rows (imaging with
    ``new_bone_lesions > 0``) get an output row; the other rows (baseline, follow-up
    scans without new lesions, lab visits) are history for the features, so a request
    without an index row returns no rows.

    Parameters
    ----------
    bundle : FlareModelBundle
        The model.
    rows : pandas.DataFrame
        Timepoint rows in the wire format (or any form validation accepts).
    with_reasons : bool, default True
        Compute the top reasons (the SHAP step); False leaves ``reasons`` empty.

    Returns
    -------
    pandas.DataFrame
        :data:`OUTPUT_COLUMNS`, one row per index row, in JSON-safe types.

    Raises
    ------
    ContractError
        When the rows break the data contract (the message names column, rule and rows).

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.training import fit_bundle
    >>> bundle = fit_bundle(simulate_cohort(300, seed=3).timepoints, n_candidates=1,
    ...                     outer_folds=None)
    >>> out = score_wire(bundle, to_wire_format(seed_case_timeline()), with_reasons=False)
    >>> out[["patient_id", "assessment_date"]].values.tolist()
    [['DeBondt2020-L1', '2019-04-07']]

    """
    from flare_ml.data import validate_timepoints

    table = validate_timepoints(rows, source="request")
    return _wire_frame(bundle.score_columns(bundle.features(table), bool(with_reasons)))
