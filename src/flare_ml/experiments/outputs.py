"""What an experiment produces: computed results, rendered tables, MLflow records.

Every experiment kind computes a :class:`KindResult` (the cohorts it used, one
:class:`ConditionRecord` per condition for MLflow, and its own numbers in a subclass);
the kind's renderer turns it into a :class:`KindOutput` (string :class:`Table` objects,
notes and computed findings), which the runner writes as Markdown and logs to MLflow.
These types sit below every kind, renderer and the runner, so that all of them can use
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Table:
    """One results table: a title, string cells and notes printed under it.

    Examples
    --------
    >>> Table("Summary", pd.DataFrame({"a": ["1"]})).notes
    []

    """

    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass
class ConditionRecord:
    """One condition as MLflow sees it: a nested run with params and metrics.

    Examples
    --------
    >>> ConditionRecord("reference", {"group": "reference"}, {"xgboost.auroc": 0.9}).name
    'reference'

    """

    name: str
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass
class KindResult:
    """What an experiment kind computed: numbers, not text.

    Each kind extends it with its own fields; its renderer reads them.

    Attributes
    ----------
    cohorts : list of (str, str)
        ``(role, label)`` of every cohort used, in the order they are listed.
    conditions : list of ConditionRecord
        One nested MLflow run per condition.

    Examples
    --------
    >>> KindResult([("training", "simulated site default (20 patients, seed 1)")], []).cohorts[0][0]
    'training'

    """

    cohorts: list[tuple[str, str]]
    conditions: list[ConditionRecord]


@dataclass
class KindOutput:
    """A kind's result rendered: tables and findings as text, ready to write and log.

    Examples
    --------
    >>> out = KindOutput([("training", "x")], [Table("T", pd.DataFrame({"a": ["1"]}))], [])
    >>> out.findings
    []

    """

    cohorts: list[tuple[str, str]]
    tables: list[Table]
    conditions: list[ConditionRecord]
    findings: list[str] = field(default_factory=list)


__all__ = ["ConditionRecord", "KindOutput", "KindResult", "Table"]
