"""Reading and writing tables (CSV, gzipped CSV, Parquet) for the data contract.

This module is the only place that touches table files. :func:`read_table` loads a file
by its extension, reading the contract columns of a CSV as text so that nothing is
guessed (patient ids such as ``007`` keep their zeros, a morphology of ``None`` is not
taken for a missing value); typing is the job of
:func:`flare_ml.data.validation.validate_timepoints`. :func:`write_table` writes
atomically (a temporary file in the target folder, then :func:`os.replace`), so a
failed write never leaves a half-written table behind. Both raise
:class:`~flare_ml.errors.ContractError` for a problem the user can fix. Files from other
systems are read as they are written rather than rewritten by hand: :class:`ReadOptions`
holds the delimiter (detected among comma, semicolon and tab from the header line, or
given), the date format of non-ISO dates (or day-first), the decimal mark and a column
mapping from the export's names to contract names, and :func:`apply_read_options` turns
what was read into contract text (renamed columns, ISO dates, decimal points) before
validation; batch scoring reads its chunks with the same options.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import tempfile
import zipfile
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

import flare_ml.data.contract as contract
from flare_ml.data.columns import suggest_column
from flare_ml.errors import ContractError

__all__ = [
    "DETECTED_DELIMITERS",
    "SUPPORTED_SUFFIXES",
    "ReadOptions",
    "apply_read_options",
    "csv_delimiter",
    "detect_delimiter",
    "load_column_map",
    "read_table",
    "table_format",
    "write_table",
]

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


#: the delimiters :func:`detect_delimiter` chooses from
DETECTED_DELIMITERS = (",", ";", "\t")

_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_ISO_PREFIX = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def load_column_map(columns: Mapping[str, str] | str | os.PathLike[str]) -> dict[str, str]:
    """Read a column mapping (export name to contract name) from a dict or a YAML file.

    Parameters
    ----------
    columns : mapping or str or path-like
        ``{"ALP (U/L)": "alp_u_l", ...}``, or a YAML file holding such a mapping.

    Returns
    -------
    dict of str to str
        The mapping.

    Raises
    ------
    ContractError
        When the file cannot be read, is not a mapping of names to names, or maps to a
        name outside the contract (the closest contract name is suggested).

    Examples
    --------
    >>> load_column_map({"Patient": "patient_id"})
    {'Patient': 'patient_id'}
    >>> try:
    ...     load_column_map({"ALP": "alp_ul"})
    ... except ContractError as error:
    ...     print(str(error).split(": ", 1)[1])
    'ALP' is mapped to 'alp_ul', which is not a contract column (did you mean 'alp_u_l'?)

    """
    where = "the column mapping"
    if not isinstance(columns, Mapping):
        where = f"the column mapping '{columns}'"
        try:
            loaded = yaml.safe_load(Path(columns).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ContractError(f"cannot read {where}: {exc}") from exc
        if not isinstance(loaded, Mapping):
            raise ContractError(
                f"{where} must be a YAML mapping of the file's column names to contract "
                "names, e.g. `ALP (U/L): alp_u_l`"
            )
        columns = loaded
    mapping: dict[str, str] = {}
    for source, target in columns.items():
        if not isinstance(target, str):
            raise ContractError(f"{where}: '{source}' is mapped to {target!r}, not a column name")
        name = target.strip().lower()
        if name not in contract.CONTRACT_COLUMNS:
            suggestion, _ = suggest_column(name)
            hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
            raise ContractError(
                f"{where}: '{source}' is mapped to '{target}', which is not a contract column{hint}"
            )
        mapping[str(source)] = name
    return mapping


@dataclass(frozen=True)
class ReadOptions:
    r"""How to read a table exported by another system.

    Parameters
    ----------
    sep : str, optional
        The CSV delimiter; None detects it from the header line among comma, semicolon
        and tab (:func:`detect_delimiter`). ``"tab"``, ``"\t"``, ``"comma"``,
        ``"semicolon"`` and ``"pipe"`` are understood too.
    date_format : str, optional
        A :func:`~datetime.datetime.strptime` format of the dates, e.g. ``"%d/%m/%Y"``.
    dayfirst : bool, default False
        Read dates such as ``03/10/2021`` day first (3 October) when no format is given.
    decimal : str, default "."
        The decimal mark of numbers; ``","`` reads ``123,5`` as 123.5.
    columns : mapping or str or path-like, optional
        The file's column names to contract names (a dict, or a YAML file of one),
        applied before validation.

    Either way, ISO dates (``YYYY-MM-DD``) are still read as ISO, and a date that does
    not fit the format is left as written, so validation reports it.

    Examples
    --------
    >>> ReadOptions(sep="tab").delimiter
    '\t'
    >>> ReadOptions(columns={"ALP": "alp_u_l"}).column_map
    {'ALP': 'alp_u_l'}

    """

    sep: str | None = None
    date_format: str | None = None
    dayfirst: bool = False
    decimal: str = "."
    columns: Mapping[str, str] | str | os.PathLike[str] | None = None
    column_map: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sep is not None and len(_DELIMITER_NAMES.get(self.sep, self.sep)) != 1:
            raise ContractError(
                f"the delimiter must be one character (or tab, comma, semicolon, pipe), "
                f"got {self.sep!r}"
            )
        if len(self.decimal) != 1:
            raise ContractError(f"the decimal mark must be one character, got {self.decimal!r}")
        mapping = {} if self.columns is None else load_column_map(self.columns)
        object.__setattr__(self, "column_map", mapping)

    @property
    def delimiter(self) -> str | None:
        """The delimiter given, as one character (None: detect it)."""
        return None if self.sep is None else _DELIMITER_NAMES.get(self.sep, self.sep)

    def rename(self, name: Hashable) -> Hashable:
        """The name a file column gets after the mapping (matched as written, then trimmed)."""
        text = str(name)
        return self.column_map.get(text, self.column_map.get(text.strip(), name))


def detect_delimiter(header: str) -> str:
    r"""Pick the delimiter of a CSV header line among comma, semicolon and tab.

    The most frequent of the three (outside double quotes) wins; comma when none occurs
    or on a tie with comma.

    Examples
    --------
    >>> detect_delimiter("patient_id;assessment_date;alp_u_l")
    ';'
    >>> detect_delimiter("patient_id\tassessment_date"), detect_delimiter("patient_id")
    ('\t', ',')

    """
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {sep: unquoted.count(sep) for sep in DETECTED_DELIMITERS}
    best = max(DETECTED_DELIMITERS, key=lambda sep: counts[sep])  # first wins a tie
    return best if counts[best] > 0 else ","


def _header_line(path: Path, compression: str | None) -> str:
    opener: Any = gzip.open if compression == "gzip" else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
        return handle.readline()


def csv_delimiter(path: Path, compression: str | None, options: ReadOptions) -> str:
    """The delimiter to read a CSV with: the one given, else the one detected."""
    return options.delimiter or detect_delimiter(_header_line(path, compression))


def _iso_dates(values: pd.Series, options: ReadOptions) -> pd.Series:
    """Rewrite dates written in the given format (or day first) as ISO text."""
    text = values.astype("string")
    stripped = text.str.strip()
    todo = stripped.notna() & (stripped != "") & ~stripped.str.match(_ISO_PREFIX).fillna(False)
    if not todo.any():
        return values
    if options.date_format:
        parsed = pd.to_datetime(stripped[todo], format=options.date_format, errors="coerce")
    else:
        parsed = pd.to_datetime(stripped[todo], format="mixed", dayfirst=True, errors="coerce")
    out = values.astype(object).copy()
    ok = parsed.notna()
    out.loc[ok[ok].index] = parsed[ok].dt.strftime("%Y-%m-%d")
    return out


def apply_read_options(frame: pd.DataFrame, options: ReadOptions | None) -> pd.DataFrame:
    """Turn a table as read into contract text: mapped names, ISO dates, decimal points.

    Columns are renamed by ``options.columns`` first; then the contract date columns,
    when given as text, are rewritten from ``date_format`` (or day first) to ISO, and
    the contract number columns from ``decimal`` to a decimal point. Typed columns (from
    Parquet) are left as they are. Validation does the rest.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as read (not modified).
    options : ReadOptions or None
        How the file is written; None leaves the table as it is.

    Returns
    -------
    pandas.DataFrame
        The table ready for validation.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"Date": ["03/10/2021"], "alp_u_l": ["123,5"]})
    >>> options = ReadOptions(dayfirst=True, decimal=",", columns={"Date": "assessment_date"})
    >>> apply_read_options(raw, options).values.tolist()
    [['2021-10-03', '123.5']]

    """
    if options is None:
        return frame
    out = frame.rename(columns=options.rename) if options.column_map else frame.copy(deep=False)
    dates = options.date_format is not None or options.dayfirst
    for position, col in enumerate(out.columns):
        name = str(col).strip().lower()
        series = out.iloc[:, position]
        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            continue
        if dates and name in contract.DATE_COLUMNS:
            out.isetitem(position, _iso_dates(series, options))
        elif options.decimal != "." and name in (*contract.FLOAT_COLUMNS, *contract.INT_COLUMNS):
            fixed = series.astype("string").str.replace(options.decimal, ".", regex=False)
            out.isetitem(position, fixed.astype(object).where(series.notna(), None))
    return out


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


def read_table(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    date_format: str | None = None,
    dayfirst: bool = False,
    decimal: str = ".",
    columns: Mapping[str, str] | str | os.PathLike[str] | None = None,
    options: ReadOptions | None = None,
) -> pd.DataFrame:
    r"""Read a CSV (optionally gzipped) or Parquet table.

    CSV contract columns (and the lab-table columns ``sample_date``, ``test``, ``unit``)
    are read as text with only the empty field as missing, so that validation sees the
    values as written; other columns get pandas' usual type inference. Parquet columns
    keep their stored types. The CSV delimiter is detected from the header line (comma,
    semicolon or tab) unless ``sep`` gives it. The keyword options (or ``options``, a
    :class:`ReadOptions` holding them) are applied by :func:`apply_read_options`: the
    column mapping, non-ISO dates, decimal commas. The result is not validated: use
    :func:`flare_ml.data.load_timepoints` for a timepoint table.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file.
    sep, date_format, dayfirst, decimal, columns
        See :class:`ReadOptions`.
    options : ReadOptions, optional
        All of them at once (the keywords are then ignored).

    Returns
    -------
    pandas.DataFrame
        The table as stored, with the options applied.

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
    >>> _ = (folder / "s.csv").write_text("patient_id;alp_u_l\n007;123,5\n")
    >>> read_table(folder / "s.csv", decimal=",")["alp_u_l"].tolist()
    ['123.5']

    """
    if options is None:
        options = ReadOptions(sep, date_format, dayfirst, decimal, columns)
    fmt = table_format(path)
    file = Path(path)
    if not file.exists():
        raise ContractError(f"cannot read table '{path}': the file does not exist.")
    if file.is_dir() and fmt != "parquet":
        raise ContractError(f"cannot read table '{path}': it is a folder, not a file.")
    try:
        if fmt == "parquet":
            return apply_read_options(pd.read_parquet(file), options)
        compression = "gzip" if fmt == "csv.gz" else None
        delimiter = csv_delimiter(file, compression, options)
        header = pd.read_csv(file, nrows=0, compression=compression, sep=delimiter).columns
        text = [c for c in header if str(options.rename(c)).strip().lower() in _TEXT_COLUMNS]
        na_values = {c: ([""] if c in text else list(_EXTRA_COLUMN_NA)) for c in header}
        raw = pd.read_csv(
            file,
            compression=compression,
            sep=delimiter,
            decimal=options.decimal,
            dtype=dict.fromkeys(text, str),
            keep_default_na=False,
            na_values=na_values,
        )
        return apply_read_options(raw, options)
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
