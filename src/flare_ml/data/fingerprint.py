"""The data fingerprint: what a model was trained or calibrated on, without copying a row.

A fingerprint is a SHA-256 of a timepoint table's content plus its counts (rows, patients,
index rows, flares, progressions). Models, MLflow runs and site calibrations record it so
that a reader can tell which cohort a number came from and whether two runs saw the same
data, while no patient row ever reaches an artifact or a log.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from flare_ml.data import contract as c


def data_fingerprint(timepoints: pd.DataFrame) -> dict[str, Any]:
    """SHA-256 of the table's content plus counts; no row is copied.

    Parameters
    ----------
    timepoints : DataFrame
        A timepoint table (validated or not); ``outcome`` may be empty.

    Returns
    -------
    dict
        ``sha256``, ``n_rows``, ``n_patients``, ``n_index_rows`` (rows with an outcome),
        ``n_flare`` and ``n_progression``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"patient_id": ["P1", "P1", "P2"],
    ...                       "outcome": [None, "flare", "progression"]})
    >>> fp = data_fingerprint(table)
    >>> fp["n_patients"], fp["n_flare"], fp["n_progression"], len(fp["sha256"])
    (2, 1, 1, 64)

    """
    hashed = pd.util.hash_pandas_object(timepoints, index=False).to_numpy()
    outcome = timepoints[c.OUTCOME].astype("string")
    return {
        "sha256": hashlib.sha256(hashed.tobytes()).hexdigest(),
        "n_rows": len(timepoints),
        "n_patients": int(timepoints[c.PATIENT_ID].nunique()),
        "n_index_rows": int(outcome.notna().sum()),
        "n_flare": int((outcome == "flare").sum()),
        "n_progression": int((outcome == "progression").sum()),
    }
