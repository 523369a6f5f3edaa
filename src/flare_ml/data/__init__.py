"""The data layer: the timepoint-table contract, its validation, file IO and adapters.

Everything downstream (features, rules, models, scoring) takes a table that went through
:func:`validate_timepoints` (or :func:`load_timepoints`, which reads a CSV or Parquet file
first): canonical dtypes, contract column order, sorted by patient and date. Adapters
turn other sources into that table, such as :func:`attach_alp` for a long lab table.
:func:`summarize_cohort` gives the counts and missingness a report shows. Column names
and vocabularies live in :mod:`flare_ml.data.contract`.
"""

from flare_ml.data import contract
from flare_ml.data.io import SUPPORTED_SUFFIXES, read_table, table_format, write_table
from flare_ml.data.labs import (
    ALP_TEST_NAMES,
    ALP_UNIT_FACTORS,
    LAB_COLUMNS,
    attach_alp,
    extract_alp,
    read_lab_table,
)
from flare_ml.data.summary import CohortSummary, summarize_cohort
from flare_ml.data.validation import (
    CANONICAL_DTYPES,
    DATE_DTYPE,
    IMAGING_FINDING_COLUMNS,
    STRING_DTYPE,
    index_row_mask,
    is_canonical,
    load_timepoints,
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
    "Violation",
    "attach_alp",
    "contract",
    "extract_alp",
    "index_row_mask",
    "is_canonical",
    "load_timepoints",
    "read_lab_table",
    "read_table",
    "summarize_cohort",
    "table_format",
    "timepoint_schema",
    "validate_timepoints",
    "write_table",
]
