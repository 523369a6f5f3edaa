"""The data layer: the timepoint-table contract, its validation, file IO and adapters.

Everything downstream (features, rules, models, scoring) takes a table that went through
:func:`validate_timepoints` (or :func:`load_timepoints`, which reads a CSV or Parquet file
first): canonical dtypes, contract column order, sorted by patient and date.
:func:`check_timepoints` runs the same parser and rules (:mod:`flare_ml.data.parsing`,
:mod:`flare_ml.data.rules`) and returns the parsed columns, for code that computes from
arrays, such as the featurizer. Adapters
turn other sources into that table, such as :func:`attach_alp` for a long lab table.
:func:`summarize_cohort` gives the counts and missingness a report shows. Column names
and vocabularies live in :mod:`flare_ml.data.contract`.
"""

import flare_ml.data.contract as contract
from flare_ml.data.io import SUPPORTED_SUFFIXES, read_table, table_format, write_table
from flare_ml.data.labs import (
    ALP_TEST_NAMES,
    ALP_UNIT_FACTORS,
    LAB_COLUMNS,
    attach_alp,
    extract_alp,
    read_lab_table,
)
from flare_ml.data.parsing import TimepointColumns
from flare_ml.data.summary import CohortSummary, summarize_cohort
from flare_ml.data.validation import (
    CANONICAL_DTYPES,
    DATE_DTYPE,
    IMAGING_FINDING_COLUMNS,
    STRING_DTYPE,
    check_timepoints,
    index_row_mask,
    is_canonical,
    load_timepoints,
    require_columns,
    timepoint_schema,
    validate_timepoints,
)
from flare_ml.errors import ContractError, Violation

__all__ = [
    "ALP_TEST_NAMES",
    "ALP_UNIT_FACTORS",
    "CANONICAL_DTYPES",
    "DATE_DTYPE",
    "IMAGING_FINDING_COLUMNS",
    "LAB_COLUMNS",
    "STRING_DTYPE",
    "SUPPORTED_SUFFIXES",
    "CohortSummary",
    "ContractError",
    "TimepointColumns",
    "Violation",
    "attach_alp",
    "check_timepoints",
    "contract",
    "extract_alp",
    "index_row_mask",
    "is_canonical",
    "load_timepoints",
    "read_lab_table",
    "read_table",
    "require_columns",
    "summarize_cohort",
    "table_format",
    "timepoint_schema",
    "validate_timepoints",
    "write_table",
]
