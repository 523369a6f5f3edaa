"""Patient-grouped model selection: the one place where flare-ml splits patients.

A patient contributes several index assessments, and rows of one patient are far more
alike than rows of two patients, so every split that tunes, calibrates or evaluates a
model must keep each patient whole on one side. :func:`grouped_folds` gives the
patient-grouped, outcome-stratified folds used by the model's inner tuning and
calibration (:class:`~flare_ml.models.FlareXGBClassifier`), the out-of-fold training
predictions and conformal calibration (:mod:`flare_ml.training`), the cross-fitted
prediction sets (:mod:`flare_ml.uncertainty`) and the experiments;
:func:`patient_groups` reads the patient identifiers an estimator was given and warns
with :class:`MissingGroupsWarning` when there are none, since rows then stand for
patients and folds can leak a patient's other rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

__all__ = ["MissingGroupsWarning", "grouped_folds", "patient_groups"]


class MissingGroupsWarning(UserWarning):
    """An estimator that splits by patient was fitted without patient identifiers.

    Every row is then taken as its own patient, so a patient with several index
    assessments can sit on both sides of an internal split (a leak that makes tuning
    and calibration optimistic). Filter it with ``warnings.filterwarnings("ignore",
    category=MissingGroupsWarning)`` when rows really are patients.

    Examples
    --------
    >>> issubclass(MissingGroupsWarning, UserWarning)
    True

    """


def patient_groups(groups: Any, n_rows: int, owner: str) -> np.ndarray:
    """Patient identifier of each row, or one patient per row with a warning.

    Parameters
    ----------
    groups : array-like of shape (n_rows,) or None
        Patient identifiers, as given to ``fit``.
    n_rows : int
        Number of rows of ``X``.
    owner : str
        Name of the estimator, for the messages.

    Returns
    -------
    ndarray of shape (n_rows,)
        ``groups`` as an array; ``arange(n_rows)`` when ``groups`` is None.

    Raises
    ------
    ValueError
        When ``groups`` does not give one identifier per row, or has a missing value.

    Warns
    -----
    MissingGroupsWarning
        When ``groups`` is None.

    Examples
    --------
    >>> patient_groups(["a", "a", "b"], 3, "clf").tolist()
    ['a', 'a', 'b']
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     patient_groups(None, 3, "clf").tolist()
    [0, 1, 2]
    >>> caught[0].category.__name__
    'MissingGroupsWarning'

    """
    if groups is None:
        warnings.warn(
            f"{owner}.fit got no groups, so every row is taken as its own patient: the "
            f"inner folds can put rows of one patient on both sides and leak, making "
            f"tuning and calibration optimistic. Pass groups=<patient id of each row> "
            f"(in scikit-learn's cross_validate or GridSearchCV, route them with "
            f"sklearn.set_config(enable_metadata_routing=True) and "
            f"params={{'groups': ...}})",
            MissingGroupsWarning,
            stacklevel=3,
        )
        return np.arange(n_rows)
    values = np.asarray(groups)
    if values.shape != (n_rows,):
        raise ValueError(
            f"{owner}: groups must give one patient id per row of X ({n_rows}), "
            f"got shape {values.shape}"
        )
    if bool(pd.isna(values).any()):
        raise ValueError(f"{owner}: groups (patient ids) must not be missing")
    return values


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped, outcome-stratified folds: no patient appears in two folds.

    Parameters
    ----------
    y : array of shape (n,)
        Outcome (1 = flare).
    groups : array of shape (n,)
        Patient identifiers.
    n_splits : int
        Number of folds (reduced to the number of patients when fewer).
    random_state : int
        Seed of the shuffle.

    Returns
    -------
    list of (train_index, test_index)

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1] * 10)
    >>> groups = np.repeat(np.arange(10), 2)
    >>> folds = grouped_folds(y, groups, 5, 0)
    >>> all(set(groups[tr]).isdisjoint(groups[te]) for tr, te in folds)
    True

    """
    n_groups = len(np.unique(groups))
    splitter = StratifiedGroupKFold(
        n_splits=min(n_splits, n_groups), shuffle=True, random_state=random_state
    )
    return list(splitter.split(np.zeros(len(y)), y, groups))
