"""Column parsers shared by timepoint validation and the lab adapter (internal).

Each parser turns one raw column, in whatever dtype it arrived (text from a CSV, typed
values from Parquet or an in-memory frame), into its canonical array, and reports which
entries could not be read and a few of the offending values. Per-value Python work is
done on the distinct values only (via :func:`pandas.factorize`), so parsing stays fast on
large tables with few distinct values per column.
"""

from __future__ import annotations

import datetime
import functools
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

import flare_ml.data.contract as c

#: dates are kept at day precision (midnight) in the coarsest pandas unit
DATE_DTYPE: np.dtype[Any] = np.dtype("datetime64[s]")
#: pandas' text dtype (``str`` in pandas 3)
STRING_DTYPE = pd.StringDtype(na_value=np.nan)

MAX_EXAMPLES = 5
MISSING_LABEL = "<missing>"
#: text read as missing in typed columns (after strip and lower-case); ``none`` is a
#: morphology, so category columns do not treat it as missing
NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "<na>", "nat", "none"})
CATEGORY_NA_TOKENS = NA_TOKENS - {"none"}
_TRUE_TOKENS = frozenset({"true", "1", "1.0", "yes"})
_FALSE_TOKENS = frozenset({"false", "0", "0.0", "no"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
#: a date and nothing else, ASCII digits only (what the REST wire format sends)
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


# --- small helpers ----------------------------------------------------------------------
@functools.cache
def category_dtype(column: str) -> pd.CategoricalDtype:
    """The canonical dtype of a category column: its full contract vocabulary, unordered.

    Built once per column (a ``CategoricalDtype`` validates its categories on creation,
    which costs more than parsing a short column).
    """
    return pd.CategoricalDtype(list(c.VOCABULARIES[column]))


def _is_dtype(dtype: Any, canonical: pd.CategoricalDtype) -> bool:
    """Tell whether ``dtype`` is ``canonical``, categories in the same order.

    Unordered ``CategoricalDtype`` equality ignores the order of the categories, and
    the codes depend on it.
    """
    return (
        isinstance(dtype, pd.CategoricalDtype)
        and not dtype.ordered
        and dtype.categories.equals(canonical.categories)
    )


def floor_days(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Floor tz-naive ``datetime64`` values to midnight, as :data:`DATE_DTYPE` (NaT stays).

    NumPy casts datetimes to a coarser unit by flooring, so this equals pandas'
    ``normalize()`` / ``floor("D")`` without building an index.
    """
    return values.astype("datetime64[D]").astype(DATE_DTYPE)


def factorize(values: pd.Series) -> tuple[IntArray, list[Any]]:
    """Codes (-1 for missing) and the distinct values as a Python list."""
    codes, uniques = pd.factorize(values.array, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.intp), list(np.asarray(uniques, dtype=object))


def lookup(codes: IntArray, per_unique: npt.NDArray[Any], missing: Any) -> npt.NDArray[Any]:
    """Map codes through a per-unique table; code -1 maps to ``missing``."""
    table = np.append(per_unique, np.array([missing], dtype=per_unique.dtype))
    return table[codes]


def is_missing_scalar(value: Any) -> bool:
    """Tell whether a single value is a missing marker (None, NA, NaT or NaN)."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and np.isnan(value))
    )


def quote(values: list[Any], limit: int = 5) -> str:
    """Quote up to ``limit`` values for a message: ``'a', 'b', ...``."""
    shown = ", ".join(f"'{v}'" for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def plural(n: int, word: str) -> str:
    """Write ``n word`` or ``n words``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- column parsers: each returns (canonical array, mask of invalid values, bad values) ---
def parse_text_id(series: pd.Series) -> pd.Series:
    """Text identifiers, stripped; empty text becomes missing."""
    text = series.astype(STRING_DTYPE).str.strip()
    empty = (text == "").to_numpy(dtype=bool, na_value=False)
    return text.mask(empty) if empty.any() else text


def parse_text_id_codes(series: pd.Series) -> tuple[pd.Series, IntArray, list[Any]]:
    """:func:`parse_text_id`, with the codes (-1 for missing) and distinct values.

    Text that is already clean (the canonical dtype, no surrounding spaces, nothing
    empty) is only factorised: the strip runs on the distinct values, not on every row.
    """
    if series.dtype == STRING_DTYPE:
        codes, uniques = factorize(series)
        if all(isinstance(u, str) and u and u.strip() == u for u in uniques):
            return series, codes, uniques
    text = parse_text_id(series)
    codes, uniques = factorize(text)
    return text, codes, uniques


def parse_category(series: pd.Series, column: str) -> tuple[pd.Categorical, BoolArray, list[str]]:
    """Categorical over the column's full vocabulary, the unknown-value mask, unknown values.

    Values are stripped and lower-cased; ``extraosseous_response`` codes are upper-cased
    except ``baseline``. Empty text and NA markers are missing (``none`` is a value).
    """
    dtype = category_dtype(column)
    if _is_dtype(series.dtype, dtype):  # canonical already: every value is a vocabulary value
        codes = np.asarray(series.array.codes, dtype=np.intp)
        categorical = pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
        return categorical, np.zeros(len(series), dtype=bool), []
    position = {value: i for i, value in enumerate(c.VOCABULARIES[column])}
    codes, uniques = factorize(series)
    per_unique = np.empty(len(uniques), dtype=np.intp)
    unknown: list[str] = []
    for i, raw in enumerate(uniques):
        text = str(raw).strip()
        if text.lower() in CATEGORY_NA_TOKENS:
            per_unique[i] = -1
            continue
        if column == c.EXTRAOSSEOUS_RESPONSE:
            text = "baseline" if text.lower() == "baseline" else text.upper()
        else:
            text = text.lower()
        if text in position:
            per_unique[i] = position[text]
        else:
            per_unique[i] = -2
            unknown.append(str(raw))
    final = lookup(codes, per_unique, -1)
    bad = final == -2
    final[bad] = -1
    categorical = pd.Categorical.from_codes(final, dtype=dtype, validate=False)
    return categorical, bad, unknown


def parse_bool(series: pd.Series) -> tuple[pd.api.extensions.ExtensionArray, BoolArray, list[str]]:
    """Nullable booleans from true/false, yes/no, 1/0 (any case), the invalid mask, bad values."""
    if isinstance(series.dtype, pd.BooleanDtype):  # canonical already
        return series.array.copy(), np.zeros(len(series), dtype=bool), []
    if pd.api.types.is_bool_dtype(series.dtype):
        return pd.array(series, dtype="boolean"), np.zeros(len(series), dtype=bool), []
    codes, uniques = factorize(series)
    per_unique = np.empty(len(uniques), dtype=np.int8)  # 1 true, 0 false, -1 NA, -2 invalid
    bad_values: list[str] = []
    for i, raw in enumerate(uniques):
        if isinstance(raw, bool | np.bool_):
            per_unique[i] = int(raw)
            continue
        if isinstance(raw, int | float | np.integer | np.floating) and raw in (0, 1):
            per_unique[i] = int(raw)
            continue
        text = str(raw).strip().lower()
        if text in _TRUE_TOKENS:
            per_unique[i] = 1
        elif text in _FALSE_TOKENS:
            per_unique[i] = 0
        elif text in NA_TOKENS:
            per_unique[i] = -1
        else:
            per_unique[i] = -2
            bad_values.append(str(raw))
    final = lookup(codes, per_unique, -1)
    bad = final == -2
    array = pd.arrays.BooleanArray(final == 1, final < 0)
    return array, bad, bad_values


def parse_number(series: pd.Series) -> tuple[npt.NDArray[np.float64], BoolArray, list[str]]:
    """Float64 values (NaN for missing) and the mask of non-numeric entries."""
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if isinstance(dtype, np.dtype) and dtype.kind in "fiu":  # NaN already means missing
            values = series.to_numpy(dtype=np.float64, copy=True)
        elif isinstance(dtype, pd.Int64Dtype):  # the canonical count: no detour via Float64
            values = series.array.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        bad = ~np.isfinite(values) & ~np.isnan(values)
        values[bad] = np.nan
        return values, bad, []
    text = series.astype(STRING_DTYPE).str.strip()
    missing = text.isna().to_numpy() | text.str.lower().isin(NA_TOKENS).to_numpy()
    values = pd.to_numeric(text.mask(missing), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan, copy=True
    )
    bad = ~missing & ~np.isfinite(values)
    values[bad] = np.nan
    bad_values = list(dict.fromkeys(text[bad].head(50).tolist()))
    return values, bad, bad_values


def parse_date(series: pd.Series) -> tuple[npt.NDArray[Any], BoolArray, list[str]]:
    """Day-precision datetime64 values (NaT for missing), the unparseable mask, bad values.

    Text must start with an ISO 8601 date (``YYYY-MM-DD``; a time part is dropped, a time
    zone ignored); date and datetime objects are taken as they are. Anything else (day-first
    or month-first text, bare numbers) is unparseable rather than guessed.
    """
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(series.dtype):
        values = floor_days(series.to_numpy())
        return values, np.zeros(len(series), dtype=bool), []
    codes, uniques = factorize(series)
    parsed = np.full(len(uniques), np.datetime64("NaT"), dtype=DATE_DTYPE)
    status = np.zeros(len(uniques), dtype=np.int8)  # 0 ok, -1 missing, -2 unparseable
    text_index: list[int] = []
    text_values: list[str] = []
    for i, raw in enumerate(uniques):
        if isinstance(raw, str):
            stripped = raw.strip()
            if stripped.lower() in NA_TOKENS:
                status[i] = -1
            elif _ISO_DATE.match(stripped):
                text_index.append(i)
                text_values.append(stripped)
            else:
                status[i] = -2
        elif isinstance(raw, datetime.date | np.datetime64):
            stamp = pd.Timestamp(raw)
            if stamp is pd.NaT:
                status[i] = -1
            else:
                if stamp.tzinfo is not None:
                    stamp = stamp.tz_localize(None)
                parsed[i] = np.datetime64(stamp.date(), "s")
        else:
            status[i] = -2
    if text_values:
        days, ok = _parse_iso(text_values)
        where = np.asarray(text_index, dtype=np.intp)
        parsed[where] = days
        status[where[~ok]] = -2
    values = lookup(codes, parsed, np.datetime64("NaT"))
    bad = lookup(codes, status, 0) == -2
    bad_values = [str(uniques[i]) for i in np.flatnonzero(status == -2)]
    return values, bad, bad_values


def _parse_iso(texts: list[str]) -> tuple[npt.NDArray[Any], BoolArray]:
    """Parse ISO 8601 strings to days; also return which of them were valid dates.

    Plain ``YYYY-MM-DD`` texts, the common case, are parsed by NumPy, which reads them
    exactly as pandas does (same proleptic Gregorian calendar, same range) at a fraction
    of the fixed cost; NumPy refuses an impossible date such as ``2023-02-30`` outright,
    and then pandas parses the lot and marks it.
    """
    if all(_PLAIN_DATE.fullmatch(text) for text in texts):
        try:
            days = np.array(texts, dtype="datetime64[D]")
        except ValueError:
            pass
        else:
            return days.astype(DATE_DTYPE), np.ones(len(texts), dtype=bool)
    return _parse_iso_pandas(texts)


def _parse_iso_pandas(texts: list[str]) -> tuple[npt.NDArray[Any], BoolArray]:
    """:func:`_parse_iso` by ``pandas.to_datetime``: any ISO 8601 text, time zones too."""
    try:
        parsed = pd.to_datetime(pd.Index(texts), format="ISO8601", errors="coerce")
    except (ValueError, TypeError, OverflowError):  # mixed time zones: one at a time
        stamps = []
        for text in texts:
            try:
                stamps.append(pd.Timestamp(pd.to_datetime(text, format="ISO8601")))
            except (ValueError, TypeError, OverflowError):
                stamps.append(pd.NaT)
        stamps = [s.tz_localize(None) if s is not pd.NaT and s.tzinfo else s for s in stamps]
        parsed = pd.DatetimeIndex(stamps)
    if parsed.tz is not None:
        parsed = parsed.tz_localize(None)
    days = floor_days(parsed.to_numpy())
    return days, ~np.isnat(days)
