"""The data layer: the timepoint-table contract, its validation, file IO and adapters.

Everything downstream (features, rules, models, scoring) takes a table that went through
:func:`validate_timepoints` (or :func:`load_timepoints`, which reads a CSV or Parquet file
first): canonical dtypes, contract column order, sorted by patient and date.
:func:`check_timepoints` runs the same parser and rules (:mod:`flare_ml.data.parsing`,
:mod:`flare_ml.data.rules`) and returns the parsed columns, for code that computes from
arrays, such as the featurizer. Adapters
turn other sources into that table, such as :func:`attach_alp` for a long lab table.
:func:`summarize_cohort` gives the counts and missingness a report shows. Column names
and vocabularies live in :mod:`flare_ml.data.contract`. Files exported by other systems
are read with :class:`ReadOptions` (delimiter, date format, decimal mark, column
mapping); :func:`read_timepoints` also reports the columns it ignored
(:func:`column_report`: unknown columns with the closest contract name; a close
misspelling of a contract column is refused) and the optional columns absent.
"""

import flare_ml.data.contract as contract
from flare_ml.data.columns import ColumnReport, UnknownColumn, column_report
from flare_ml.data.io import (
    SUPPORTED_SUFFIXES,
    ReadOptions,
    apply_read_options,
    detect_delimiter,
    load_column_map,
    read_table,
    table_format,
    write_table,
)
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
    LoadedTimepoints,
    check_grouped,
    check_timepoints,
    index_row_mask,
    is_canonical,
    load_timepoints,
    read_timepoints,
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
    "ColumnReport",
    "ContractError",
    "LoadedTimepoints",
    "ReadOptions",
    "TimepointColumns",
    "UnknownColumn",
    "Violation",
    "apply_read_options",
    "attach_alp",
    "check_grouped",
    "check_timepoints",
    "column_report",
    "contract",
    "detect_delimiter",
    "extract_alp",
    "index_row_mask",
    "is_canonical",
    "load_column_map",
    "load_timepoints",
    "read_lab_table",
    "read_table",
    "read_timepoints",
    "require_columns",
    "summarize_cohort",
    "table_format",
    "timepoint_schema",
    "validate_timepoints",
    "write_table",
]
