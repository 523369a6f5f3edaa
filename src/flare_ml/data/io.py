"""Reading and writing tables (CSV, gzipped CSV, Parquet) for the data contract.

This module is the only place that touches table files. :func:`read_table` loads a file
by its extension, reading the contract columns of a CSV as text so that nothing is
guessed (patient ids such as ``007`` keep their zeros, a morphology of ``None`` is not
taken for a missing value); typing is the job of
:func:`flare_ml.data.validation.validate_timepoints`. :func:`write_table` writes
atomically (a temporary file in the target folder, then :func:`os.replace`), so a
failed write never leaves a half-written table behind. Both raise
:class:`~flare_ml.errors.ContractError` for a problem the user can fix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

import pandas as pd

import flare_ml.data.contract as contract
from flare_ml.errors import ContractError

__all__ = ["SUPPORTED_SUFFIXES", "read_table", "table_format", "write_table"]

TableFormat = Literal["csv", "csv.gz", "parquet"]

#: file name endings understood by :func:`read_table` and :func:`write_table`
SUPPORTED_SUFFIXES: dict[str, TableFormat] = {
    ".csv": "csv",
    ".csv.gz": "csv.gz",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: text read as missing in columns outside the contract (pandas' usual markers); contract
#: columns only treat an empty field as missing at read time and leave the rest to
#: validation, which knows each column's vocabulary
_EXTRA_COLUMN_NA = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)

#: extra columns that are also read as text (identifiers of lab tables)
_TEXT_COLUMNS = (*contract.CONTRACT_COLUMNS, "sample_date", "test", "unit")


def table_format(path: str | os.PathLike[str]) -> TableFormat:
    """Return the table format implied by a file name.

    Parameters
    ----------
    path : str or path-like
        The file name; only its ending matters (case-insensitive).

    Returns
    -------
    {"csv", "csv.gz", "parquet"}
        The format.

    Raises
    ------
    ContractError
        If the ending is not one of :data:`SUPPORTED_SUFFIXES`.

    Examples
    --------
    >>> table_format("cohort.csv.gz")
    'csv.gz'
    >>> table_format("cohort.PARQUET")
    'parquet'

    """
    name = Path(path).name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUPPORTED_SUFFIXES[suffix]
    allowed = ", ".join(SUPPORTED_SUFFIXES)
    raise ContractError(
        f"cannot tell the table format of '{path}': unknown file extension. Use one of {allowed}."
    )


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    r"""Read a CSV (optionally gzipped) or Parquet table.

    CSV contract columns (and the lab-table columns ``sample_date``, ``test``, ``unit``)
    are read as text with only the empty field as missing, so that validation sees the
    values as written; other columns get pandas' usual type inference. Parquet columns
    keep their stored types. The result is not validated: use
    :func:`flare_ml.data.load_timepoints` for a timepoint table.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file.

    Returns
    -------
    pandas.DataFrame
        The table as stored.

    Raises
    ------
    ContractError
        If the extension is unknown, or the file is missing, empty or unreadable.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "t.csv").write_text("patient_id,new_bone_lesions\n007,2\n")
    >>> read_table(folder / "t.csv")["patient_id"].tolist()
    ['007']

    """
    fmt = table_format(path)
    file = Path(path)
    if not file.exists():
        raise ContractError(f"cannot read table '{path}': the file does not exist.")
    if file.is_dir() and fmt != "parquet":
        raise ContractError(f"cannot read table '{path}': it is a folder, not a file.")
    try:
        if fmt == "parquet":
            return pd.read_parquet(file)
        compression = "gzip" if fmt == "csv.gz" else None
        header = pd.read_csv(file, nrows=0, compression=compression).columns
        text = [c for c in header if str(c).strip().lower() in _TEXT_COLUMNS]
        na_values = {c: ([""] if c in text else list(_EXTRA_COLUMN_NA)) for c in header}
        return pd.read_csv(
            file,
            compression=compression,
            dtype=dict.fromkeys(text, str),
            keep_default_na=False,
            na_values=na_values,
        )
    except pd.errors.EmptyDataError as exc:
        raise ContractError(f"cannot read table '{path}': the file is empty.") from exc
    except (
        OSError,
        ValueError,
        UnicodeDecodeError,
        EOFError,
        zipfile.BadZipFile,
        pd.errors.ParserError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ContractError(
            f"cannot read table '{path}' as {fmt}: {reason}. "
            "Check that the file is complete and that its extension matches its content."
        ) from exc


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table as CSV (optionally gzipped) or Parquet, atomically.

    The table is written to a temporary file in the target folder and then moved over
    the target with :func:`os.replace`, so readers see either the old file or the
    complete new one, never a half-written table. The index is not written. Missing
    parent folders are created.

    Parameters
    ----------
    df : pandas.DataFrame
        The table to write.
    path : str or path-like
        Target file; its extension picks the format (see :func:`table_format`).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ContractError
        If the extension is unknown or the file cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> out = write_table(pd.DataFrame({"a": [1, 2]}), folder / "t.parquet")
    >>> read_table(out)["a"].tolist()
    [1, 2]

    """
    fmt = table_format(path)
    target = Path(path)
    tmp_name: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        # mkstemp creates the file private (0600); give it the mode a plain open() would
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        os.chmod(tmp_name, mode)
        if fmt == "parquet":
            df.to_parquet(tmp_name, index=False)
        else:
            df.to_csv(tmp_name, index=False, compression="gzip" if fmt == "csv.gz" else None)
        os.replace(tmp_name, target)
        tmp_name = None
    except (OSError, ValueError, TypeError) as exc:
        raise ContractError(f"cannot write table '{path}': {exc}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target
