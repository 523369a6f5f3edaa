"""Batch scoring of a cohort file in chunks of whole patients, with bounded memory.

:func:`score_file` streams a timepoint table (Parquet by record batches, CSV by pandas
chunks), cuts it into chunks of about ``chunk_rows`` rows that never split a patient (the
last, possibly incomplete patient of a chunk is carried over to the next one), validates
each chunk against the data contract, scores it with the same
:class:`~flare_ml.bundle.FlareModelBundle` that the served model and Spark use, and
appends the predictions to a temporary file that replaces the output only when every
chunk succeeded, so an error never leaves a half-written output. Memory is bounded by the
chunk size (plus the largest patient and one Parquet row group's compressed bytes), not
by the file size. The rows of a patient must be contiguous in the file (sorted by
``patient_id``, ``assessment_date`` is the usual way; the order within a patient does not
matter): a patient that reappears after another patient's rows is refused with a
:class:`~flare_ml.errors.ContractError` naming the patient, because scoring it in two
pieces would silently lose history. Seen patients are remembered as 64-bit hashes (8
bytes each). Output rows come chunk by chunk, each chunk sorted by patient and date, so a
sorted input gives exactly the whole-file result of ``bundle.predict``. The row-order rule
and its error (:func:`flare_ml.data.rules.not_grouped_error`) are the data layer's, which
``flare-ml validate`` applies to the same files. Files are read with the same
:class:`~flare_ml.data.ReadOptions` as :func:`~flare_ml.data.read_table` (delimiter,
dates, decimal mark, column mapping), and their header goes through the same column
rules before any row is read: a misspelt contract column is refused, other unknown
columns are reported in :attr:`ScoreSummary.ignored_columns`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from rich.table import Table

from flare_ml import __version__
from flare_ml.bundle import OUTPUT_COLUMNS, FlareModelBundle
from flare_ml.data import (
    ReadOptions,
    apply_read_options,
    attach_alp,
    table_format,
    validate_timepoints,
)
from flare_ml.data import contract as c
from flare_ml.data._parse import parse_text_id, plural
from flare_ml.data.columns import ColumnReport, column_report, contract_name
from flare_ml.data.io import csv_delimiter
from flare_ml.data.labs import extract_alp
from flare_ml.data.rules import first_reappearance, not_grouped_error, table_violations
from flare_ml.decision_policy import ErrorBudget
from flare_ml.errors import ContractError, FlareMLError, Violation
from flare_ml.evaluation import DecisionTable, decision_table_from_counts
from flare_ml.features import index_outcomes
from flare_ml.serving.flavor import resolve_bundle

__all__ = [
    "CSV_FLOAT_FORMAT",
    "DEFAULT_CHUNK_ROWS",
    "ScoreSummary",
    "iter_patient_chunks",
    "score_file",
]

#: rows per chunk unless told otherwise (about 100-200 MB of working memory)
DEFAULT_CHUNK_ROWS = 200_000

#: ``p_flare`` in a CSV output: 6 significant digits (Parquet keeps the full float64)
CSV_FLOAT_FORMAT = "%.6g"

#: absent optional columns that are not model inputs (no notice when scoring)
_NOT_MODEL_INPUTS = frozenset({c.OUTCOME, c.ROW_TYPE})
_ALP_ABSENT = (
    " (no ALP course: the ALP signals carry no information, so expect more 'uncertain' "
    "decisions; join a lab table first with flare_ml.data.attach_alp or "
    "`flare-ml validate --labs`)"
)

#: decisions always listed in the summary, in this order (others follow, sorted)
_DECISIONS = ("flare", "progression", "uncertain")

#: ``progress(step, done, total)``; ``total`` is None when unknown (gzipped CSV)
ScoreProgress = Callable[[str, int, "int | None"], None]


@dataclass
class ScoreSummary:
    """What :func:`score_file` read and wrote.

    Attributes
    ----------
    output : Path
        The predictions file.
    rows : int
        Timepoint rows read.
    patients : int
        Patients scored.
    index_rows : int
        Index rows scored (rows of the output).
    chunks : int
        Chunks of whole patients scored.
    decisions : dict of str to int
        Count of each decision (``flare``, ``progression``, ``uncertain``).
    columns : ColumnReport
        How the input's columns were read (:func:`flare_ml.data.column_report`); its
        ignored columns and notices are :attr:`ignored_columns` and :attr:`notices`.
    budget : ErrorBudget or None
        The error budget the decisions keep (the model's, or the tightened one).
    outcome_counts : dict
        ``{(decision, outcome): count}`` over index rows whose ``outcome`` the input
        records; empty when it records none (see :meth:`decision_table`).
    metadata : Path or None
        The JSON file written next to the output: model, version and decision policy.

    """

    output: Path
    rows: int = 0
    patients: int = 0
    index_rows: int = 0
    chunks: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    columns: ColumnReport = field(default_factory=ColumnReport)
    budget: ErrorBudget | None = None
    outcome_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    metadata: Path | None = None

    def decision_table(self) -> DecisionTable | None:
        """Decisions against the outcomes the input records (None when it records none).

        Examples
        --------
        >>> summary = ScoreSummary(Path("s.csv"), outcome_counts={("flare", "flare"): 3})
        >>> int(summary.decision_table().counts.loc["flare", "flare"])
        3

        """
        if not self.outcome_counts:
            return None
        return decision_table_from_counts(self.outcome_counts, self.budget)

    @property
    def ignored_columns(self) -> list[str]:
        """Columns of the input outside the contract (not read)."""
        return list(self.columns.ignored)

    @property
    def notices(self) -> list[str]:
        """One line per ignored column (closest contract name) and per absent model input.

        Examples
        --------
        >>> from flare_ml.data.columns import column_report
        >>> summary = ScoreSummary(Path("s.csv"), columns=column_report(["patient_id"]))
        >>> [n for n in summary.notices if "alp_u_l" in n][0].split(":")[0]
        "optional column 'alp_u_l' is absent"

        """
        absent = [
            f"optional column '{name}' is absent: every row scores as if it were missing"
            + (_ALP_ABSENT if name == c.ALP_U_L else "")
            for name in self.columns.absent
            if name not in _NOT_MODEL_INPUTS
        ]
        return [*self.columns.notices(), *absent]

    def to_rich_table(self, title: str = "Scored") -> Table:
        """Render the counts as a :class:`rich.table.Table` (no raw dicts).

        Parameters
        ----------
        title : str, default "Scored"
            The table title.

        Returns
        -------
        rich.table.Table
            Columns ``item``, ``count`` and ``share``: rows read, patients, index rows,
            then one row per decision (``flare``, ``progression``, ``uncertain`` always,
            any other after them) with its share of the index rows.

        Examples
        --------
        >>> from rich.console import Console
        >>> summary = ScoreSummary(Path("scores.csv"), rows=9, patients=2, index_rows=4,
        ...                        chunks=1, decisions={"flare": 1, "progression": 3})
        >>> console = Console(width=60, record=True)
        >>> console.print(summary.to_rich_table())  # doctest: +ELLIPSIS
        Scored...
        >>> "decision progression" in console.export_text()
        True

        """
        table = Table(title=title, title_justify="left", header_style="bold")
        table.add_column("item")
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        table.add_row("rows read", f"{self.rows:,}", "")
        table.add_row("patients", f"{self.patients:,}", "")
        table.add_row("index rows scored", f"{self.index_rows:,}", "")
        names = [*_DECISIONS, *sorted(set(self.decisions) - set(_DECISIONS))]
        for name in names:
            count = int(self.decisions.get(name, 0))
            share = f"{count / self.index_rows:.1%}" if self.index_rows else "-"
            table.add_row(f"decision {name}", f"{count:,}", share)
        return table


# --- reading --------------------------------------------------------------------------------
def _contract_name(name: Any) -> str | None:
    """Return the contract column a (renamed) file column stands for (matched like validation)."""
    text = contract_name(name)
    return text if text in c.CONTRACT_COLUMNS else None


def _read_error(path: Path, fmt: str, exc: BaseException) -> ContractError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ContractError(
        f"cannot read table '{path}' as {fmt}: {reason}. "
        "Check that the file is complete and that its extension matches its content."
    )


def _check_header(path: Path, names: list[Any]) -> None:
    """Run the data layer's column rules on the header (mapped names) before any row."""
    violations = [
        v
        for v in table_violations(pd.DataFrame(columns=[str(n) for n in names]))
        if v.rule != "empty_table"
    ]
    if violations:
        raise ContractError(
            f"the timepoint table '{path}' breaks the data contract "
            f"({plural(len(violations), 'problem')}):",
            violations,
        )


def _iter_parquet(
    path: Path, chunk_rows: int, options: ReadOptions
) -> tuple[Iterator[pd.DataFrame], int | None, list[Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise _read_error(path, "parquet", exc) from exc
    names = list(parquet.schema_arrow.names)
    columns = [name for name in names if _contract_name(options.rename(name))]

    def frames() -> Iterator[pd.DataFrame]:
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
                yield apply_read_options(batch.to_pandas(), options)
        except (OSError, ValueError) as exc:
            raise _read_error(path, "parquet", exc) from exc

    return frames(), parquet.metadata.num_rows, [options.rename(n) for n in names]


def _iter_csv(
    path: Path, fmt: str, chunk_rows: int, options: ReadOptions
) -> tuple[Iterator[pd.DataFrame], int | None, list[Any]]:
    compression = "gzip" if fmt == "csv.gz" else None
    try:
        sep = csv_delimiter(path, compression, options)
        header = pd.read_csv(path, nrows=0, compression=compression, sep=sep).columns
    except pd.errors.EmptyDataError as exc:
        raise ContractError(f"cannot read table '{path}': the file is empty.") from exc
    except (OSError, ValueError, UnicodeDecodeError, EOFError, pd.errors.ParserError) as exc:
        raise _read_error(path, fmt, exc) from exc
    # contract columns as text with only the empty field missing, as read_table does
    columns = [name for name in header if _contract_name(options.rename(name))]

    def frames() -> Iterator[pd.DataFrame]:
        try:
            reader = pd.read_csv(
                path,
                compression=compression,
                sep=sep,
                usecols=columns,
                dtype=dict.fromkeys(columns, str),
                keep_default_na=False,
                na_values={name: [""] for name in columns},
                chunksize=chunk_rows,
            )
            with reader:
                for frame in reader:
                    yield apply_read_options(frame, options)
        except (OSError, ValueError, UnicodeDecodeError, EOFError, pd.errors.ParserError) as exc:
            raise _read_error(path, fmt, exc) from exc

    total = None if compression else _count_lines(path)
    return frames(), total, [options.rename(n) for n in header]


def _count_lines(path: Path) -> int:
    """Count the data rows of a plain CSV for the progress bar (approximate if quoted)."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def _read_frames(
    path: Path, chunk_rows: int, options: ReadOptions | None = None
) -> tuple[Iterator[pd.DataFrame], int | None, list[Any]]:
    """Stream a file's contract columns; also return its (mapped) header names."""
    options = options or ReadOptions()
    fmt = table_format(path)
    if not path.exists():
        raise ContractError(f"cannot read table '{path}': the file does not exist.")
    if fmt == "parquet":
        frames, total, names = _iter_parquet(path, chunk_rows, options)
    elif path.is_dir():
        raise ContractError(f"cannot read table '{path}': it is a folder, not a file.")
    else:
        frames, total, names = _iter_csv(path, fmt, chunk_rows, options)
    _check_header(path, names)
    return frames, total, names


# --- whole patients -------------------------------------------------------------------------
class _SeenPatients:
    """Set of finished patients as sorted blocks of 64-bit hashes (8 bytes a patient)."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(hashes.size, dtype=bool)
        for block in self.blocks:
            pos = np.searchsorted(block, hashes).clip(max=block.size - 1)
            found |= block[pos] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        if hashes.size:
            self.blocks.append(np.sort(hashes))
        if len(self.blocks) > 16:  # merge now and then: lookups stay cheap
            self.blocks = [np.sort(np.concatenate(self.blocks))]


def _patient_keys(frame: pd.DataFrame) -> np.ndarray:
    """Patient ids as validation reads them (text, stripped; empty is missing)."""
    column = next(name for name in frame.columns if _contract_name(name) == c.PATIENT_ID)
    ids = parse_text_id(frame[column].reset_index(drop=True))
    return ids.to_numpy(dtype=object, na_value="\x00<missing>")


def _date_label(frame: pd.DataFrame, i: int) -> str:
    column = next(
        (name for name in frame.columns if _contract_name(name) == c.ASSESSMENT_DATE), None
    )
    if column is None:
        return "<missing>"
    value = frame[column].iloc[i]
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    return "<missing>" if pd.isna(value) else str(value).strip()[:10]


def iter_patient_chunks(
    frames: Iterator[pd.DataFrame], source: str = "input"
) -> Iterator[pd.DataFrame]:
    """Regroup a stream of row chunks into chunks that hold whole patients.

    The last patient of each incoming chunk may continue in the next one, so its rows
    are held back and prepended to the next chunk; the final patient comes out at the
    end. A patient whose rows are not contiguous (it reappears after another patient's
    rows, in the same or a later chunk) raises a :class:`ContractError`.

    Parameters
    ----------
    frames : iterator of pandas.DataFrame
        Consecutive pieces of one timepoint table, in file order.
    source : str, default "input"
        Where the rows come from, for error messages.

    Yields
    ------
    pandas.DataFrame
        Rows of whole patients, in input order (empty chunks are skipped).

    Raises
    ------
    ContractError
        When a patient's rows are not contiguous.

    Examples
    --------
    >>> import pandas as pd
    >>> pieces = [pd.DataFrame({"patient_id": ["A", "A", "B"]}),
    ...           pd.DataFrame({"patient_id": ["B", "C"]})]
    >>> [chunk["patient_id"].tolist() for chunk in iter_patient_chunks(iter(pieces))]
    [['A', 'A'], ['B', 'B', 'C']]
    >>> bad = [pd.DataFrame({"patient_id": ["A", "B"]}), pd.DataFrame({"patient_id": ["A"]})]
    >>> try:
    ...     list(iter_patient_chunks(iter(bad)))
    ... except ContractError as error:
    ...     print(error.violations[0].rule)
    not_grouped_by_patient

    """
    seen = _SeenPatients()
    carry: pd.DataFrame | None = None
    carry_key: Any = None
    offset = 0  # data rows before the current frame
    pending = (frame for frame in frames if len(frame))
    upcoming = next(pending, None)
    while upcoming is not None:
        frame, upcoming = upcoming, next(pending, None)
        is_last = upcoming is None
        keys = _patient_keys(frame)
        codes, uniques = pd.factorize(keys)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        run_codes = codes[starts]
        # a patient in two runs of this chunk
        again = first_reappearance(codes)
        if again is not None:
            raise not_grouped_error(
                source, str(keys[again]), offset + again + 1, _date_label(frame, again)
            )
        # a patient finished in an earlier chunk
        continues = carry is not None and keys[0] == carry_key
        run_keys = np.asarray(uniques, dtype=object)[run_codes]
        check = run_keys[1:] if continues else run_keys
        check_starts = starts[1:] if continues else starts
        if check.size:
            hashes = pd.util.hash_array(check.astype(object))
            again = seen.contains(hashes)
            if carry is not None and not continues:
                again |= check == carry_key
            if again.any():
                k = int(np.flatnonzero(again)[0])
                start = int(check_starts[k])
                raise not_grouped_error(
                    source, str(check[k]), offset + start + 1, _date_label(frame, start)
                )
        # patients finished now: the carried one (unless it continues) and all runs but the last
        finished = list(run_keys[:-1])
        if carry is not None and not continues:
            finished.append(carry_key)
        if finished:
            seen.add(pd.util.hash_array(np.asarray(finished, dtype=object)))
        # the last patient may go on in the next frame: hold it back (unless none follows)
        last_start = len(frame) if is_last else int(starts[-1])
        head = frame.iloc[:last_start]
        tail = frame.iloc[last_start:]
        if carry is not None:
            if continues:
                if last_start == 0:  # the whole frame continues the carried patient
                    carry = pd.concat([carry, frame], ignore_index=True)
                    offset += len(frame)
                    continue
                head = pd.concat([carry, head], ignore_index=True)
            else:
                yield carry
        if len(head):
            yield head
        carry = tail if len(tail) else None
        carry_key = keys[last_start] if len(tail) else None
        offset += len(frame)
    if carry is not None:
        yield carry


# --- writing --------------------------------------------------------------------------------
class _Writer:
    """Append predictions to a temporary file; :meth:`commit` moves it over the target."""

    def __init__(self, target: Path, metadata: dict[str, Any] | None = None) -> None:
        self.target = target
        self.metadata = metadata or {}
        self.metadata_path = target.with_name(target.name + ".json")
        self.fmt = table_format(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        os.chmod(name, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        self.tmp = Path(name)
        self.handle: IO[str] | None = None
        self.parquet: Any = None
        self.header = True

    def write(self, predictions: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(
                predictions, schema=_arrow_schema(), preserve_index=False, safe=True
            ).replace_schema_metadata({"flare_ml": json.dumps(self.metadata, default=str)})
            if self.parquet is None:
                schema = _arrow_schema().with_metadata(
                    {"flare_ml": json.dumps(self.metadata, default=str)}
                )
                self.parquet = pq.ParquetWriter(self.tmp, schema)
            self.parquet.write_table(table)
            return
        if self.handle is None:
            if self.fmt == "csv.gz":
                self.handle = gzip.open(self.tmp, "wt", encoding="utf-8", newline="")
            else:
                self.handle = open(self.tmp, "w", encoding="utf-8", newline="")
        predictions.to_csv(
            self.handle,
            index=False,
            header=self.header,
            date_format="%Y-%m-%d",
            float_format=CSV_FLOAT_FORMAT,
        )
        self.header = False

    def commit(self) -> Path:
        """Move the output into place, then its metadata file; return the metadata path."""
        if self.parquet is None and self.handle is None:  # no index rows at all
            self.write(
                pd.DataFrame({col: pd.Series(dtype=_EMPTY_DTYPES[col]) for col in OUTPUT_COLUMNS})
            )
        self.close()
        meta_tmp = self.tmp.with_name(self.tmp.name + ".json")
        meta_tmp.write_text(json.dumps(self.metadata, indent=2, default=str) + "\n")
        os.replace(self.tmp, self.target)
        os.replace(meta_tmp, self.metadata_path)
        return self.metadata_path

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
            self.parquet = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
        for path in (self.tmp, self.tmp.with_name(self.tmp.name + ".json")):
            with contextlib.suppress(OSError):
                path.unlink()


_EMPTY_DTYPES: dict[str, Any] = {
    c.PATIENT_ID: "str",
    c.ASSESSMENT_DATE: "datetime64[s]",
    "p_flare": "float64",
    "decision": "str",
    "prediction_set": "str",
    "reasons": "str",
}


def _arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(c.PATIENT_ID, pa.string()),
            pa.field(c.ASSESSMENT_DATE, pa.timestamp("ms")),
            pa.field("p_flare", pa.float64()),
            pa.field("decision", pa.string()),
            pa.field("prediction_set", pa.string()),
            pa.field("reasons", pa.string()),
        ]
    )


# --- scoring --------------------------------------------------------------------------------
def score_file(
    model_uri_or_bundle: FlareModelBundle | str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    with_reasons: bool = True,
    progress: ScoreProgress | None = None,
    read_options: ReadOptions | None = None,
    max_progression_called_flare: float | None = None,
    metadata: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    labs: pd.DataFrame | None = None,
    window_days: int = 30,
    labs_source: str | None = None,
) -> ScoreSummary:
    """Score every index row of a cohort file, streaming in chunks of whole patients.

    Parameters
    ----------
    model_uri_or_bundle : FlareModelBundle, str or path
        The model: a bundle, a model URI (``models:/flare-classifier/latest``,
        ``runs:/<id>/model``), an MLflow model folder or a bundle folder.
    input_path : str or path
        Timepoint table (``.parquet``/``.pq``, ``.csv`` or ``.csv.gz``) whose patients'
        rows are contiguous (sorted by ``patient_id``, ``assessment_date`` will do).
    output_path : str or path
        Predictions to write (``.parquet``, ``.csv`` or ``.csv.gz``): ``patient_id``,
        ``assessment_date``, ``p_flare``, ``decision``, ``prediction_set``, ``reasons``;
        one row per index row. CSV writes ``p_flare`` with 6 significant digits
        (:data:`CSV_FLOAT_FORMAT`); Parquet keeps the full float64 value. Written to a
        temporary file first and moved into place at the end, so it is either complete
        or untouched.
    chunk_rows : int, default 200_000
        Rows read at a time; a chunk grows by the rest of its last patient. Memory is
        bounded by this, not by the file size.
    with_reasons : bool, default True
        Compute the top reasons (SHAP); False leaves ``reasons`` empty and is faster.
    progress : callable, optional
        Called as ``progress("scoring", rows_done, total_rows)`` after each chunk
        (``total_rows`` is None for gzipped CSV).
    read_options : ReadOptions, optional
        How the file is written (delimiter, date format, decimal mark, column mapping);
        by default the delimiter is detected and everything else is as the contract says.
    max_progression_called_flare : float, optional
        Decide with this share of true progressions called flare instead of the model's
        (:meth:`~flare_ml.bundle.FlareModelBundle.with_budget`; the model's share of flares
        called progression is kept), e.g. 0.02 to tighten the default 5%.
    labs : DataFrame, optional
        A long lab table (:func:`flare_ml.data.read_lab_table`): each chunk's
        ``alp_u_l`` is replaced by the latest ALP sample at or before each assessment
        within ``window_days`` (:func:`flare_ml.data.attach_alp`), as ``flare-ml validate
        --labs`` does. Its ALP rows are checked before anything is scored.
    window_days : int, default 30
        How old an ALP sample may be, in days before the assessment.
    labs_source : str, optional
        Where the lab table came from, named in messages and the metadata file.
    metadata : dict or callable, optional
        Extra JSON-ready facts for the metadata file (the model URI and its registered
        version, for example), or a function returning them, called once the model is
        loaded. The file, ``<output>.json``, always records the flare-ml
        version, the model's digest and training cohort, and the decision policy; a
        Parquet output also carries it as the schema metadata key ``flare_ml``.

    Returns
    -------
    ScoreSummary
        Counts of rows, patients, index rows, chunks and decisions (and decisions
        against outcomes where the input records them), the output path and the
        metadata file.

    Raises
    ------
    ContractError
        When the file cannot be read, its header names a misspelt contract column, a
        chunk breaks the data contract, or a patient's rows are not contiguous; no
        output is written then.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from flare_ml.data import write_table
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.training import fit_bundle
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> table = simulate_cohort(300, seed=3).timepoints
    >>> bundle = fit_bundle(table, n_candidates=1, outer_folds=None)
    >>> _ = write_table(table, folder / "cohort.parquet")
    >>> summary = score_file(bundle, folder / "cohort.parquet", folder / "scores.csv",
    ...                      chunk_rows=1000, with_reasons=False)
    >>> summary.index_rows == len(bundle.predict(table))
    True

    """
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive number of rows, got {chunk_rows!r}")
    source, target = Path(input_path), Path(output_path)
    table_format(target)  # an unknown output extension fails before any work
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise ContractError(f"the output '{target}' would overwrite the input; pick another path")
    frames, total, names = _read_frames(source, int(chunk_rows), read_options)
    lab_ids = None
    if labs is not None:
        extract_alp(labs, source=labs_source)  # an unusable lab table is refused before scoring
        lab_ids = labs[c.PATIENT_ID].astype(str).str.strip()
    bundle = resolve_bundle(model_uri_or_bundle)
    digest = bundle.digest()
    if max_progression_called_flare is not None:
        bundle = _with_progression_budget(bundle, max_progression_called_flare)
    columns = column_report(names)
    if labs is not None:  # ALP comes from the lab table, so it is not absent
        columns = dataclasses.replace(
            columns, absent=tuple(x for x in columns.absent if x != c.ALP_U_L)
        )
    summary = ScoreSummary(output=target, columns=columns, budget=bundle.budget)
    extra = metadata() if callable(metadata) else dict(metadata or {})
    info = score_metadata(
        bundle,
        summary,
        extra,
        digest=digest,
        tightened=max_progression_called_flare is not None,
    )
    decisions: dict[str, int] = {}
    writer = _Writer(target, info)
    try:
        for chunk in iter_patient_chunks(frames, str(source)):
            table = validate_timepoints(chunk, source=str(source))
            if labs is not None and lab_ids is not None:
                mine = labs[lab_ids.isin(table[c.PATIENT_ID].astype(str)).to_numpy()]
                table = attach_alp(table, mine, window_days=window_days, source=labs_source)
            predictions = bundle.predict(table, with_reasons=with_reasons)
            _count_outcomes(summary.outcome_counts, table, predictions)
            writer.write(predictions)
            summary.rows += len(chunk)
            summary.patients += int(table[c.PATIENT_ID].nunique())
            summary.index_rows += len(predictions)
            summary.chunks += 1
            for name, count in predictions["decision"].value_counts().items():
                decisions[str(name)] = decisions.get(str(name), 0) + int(count)
            if progress is not None:
                progress("scoring", summary.rows, total)
        if summary.rows == 0:
            raise ContractError(
                f"the timepoint table '{source}' has no rows",
                [
                    Violation(
                        c.PATIENT_ID,
                        "empty_table",
                        message="the table has no rows",
                        hint="provide at least one assessment row",
                    )
                ],
            )
        summary.metadata = writer.commit()
    except BaseException:
        writer.discard()
        raise
    summary.decisions = decisions
    return summary


def _with_progression_budget(bundle: FlareModelBundle, share: float) -> FlareModelBundle:
    """The bundle deciding with ``share`` of progressions called flare (a clear error if not)."""
    if bundle.budget is None:
        raise FlareMLError(
            "--max-progression-called-flare needs a model with conformal thresholds; this "
            "one decides at a fixed threshold"
        )
    try:
        return bundle.with_budget(ErrorBudget(share, bundle.budget.max_flare_called_progression))
    except ValueError as exc:
        raise FlareMLError(f"--max-progression-called-flare {share}: {exc}") from None


def _count_outcomes(
    counts: dict[tuple[str, str], int], table: pd.DataFrame, predictions: pd.DataFrame
) -> None:
    """Add this chunk's (decision, recorded outcome) pairs to ``counts``."""
    if c.OUTCOME not in table.columns or not table[c.OUTCOME].notna().any() or not len(predictions):
        return
    # index_outcomes follows the featurizer's rows, as bundle.predict does: same order
    recorded = index_outcomes(table, allow_missing=True).to_numpy(dtype=float, na_value=np.nan)
    known = ~np.isnan(recorded)
    pairs = pd.DataFrame(
        {
            "decision": predictions["decision"].to_numpy()[known],
            "outcome": np.where(recorded[known] == 1, "flare", "progression"),
        }
    )
    for (dec, out), n in pairs.value_counts().items():
        counts[(str(dec), str(out))] = counts.get((str(dec), str(out)), 0) + int(n)


def score_metadata(
    bundle: FlareModelBundle,
    summary: ScoreSummary,
    extra: dict[str, Any] | None = None,
    *,
    digest: str | None = None,
    tightened: bool = False,
) -> dict[str, Any]:
    """What a scores file records about how it was made (no patient data).

    ``digest`` identifies the model as loaded (before a budget was tightened at scoring
    time, which ``tightened`` records).

    Examples
    --------
    >>> info = score_metadata(bundle, ScoreSummary(Path("s.csv")))  # doctest: +SKIP
    >>> sorted(info)  # doctest: +SKIP
    ['decision_policy', 'flare_ml_version', 'model', 'output', 'scored_at']

    """
    policy: dict[str, Any] = {
        "kind": "threshold",
        "flare_when_p_flare_at_least": bundle.threshold,
        "progression_otherwise": True,
    }
    if bundle.conformal is not None:
        budget = bundle.conformal.budget
        policy = {
            "kind": "class-conditional conformal prediction sets",
            **budget.to_dict(),
            "budget_source": "tightened at scoring time" if tightened else "the model's",
            "statement": budget.describe() + " (on patients like the calibration patients)",
            "flare_when_p_flare_at_least": bundle.threshold,
            "progression_when_p_flare_at_most": bundle.conformal.progression_threshold(),
            "uncertain_otherwise": True,
            "calibrated_on": bundle.metadata.get("conformal_calibration", "training"),
        }
    model: dict[str, Any] = {
        "digest": digest or bundle.digest(),
        "training": bundle.metadata.get("training_label"),
        **(extra or {}),
    }
    site = bundle.metadata.get("site_calibration")
    if isinstance(site, dict):
        model["recalibrated_on_site"] = site.get("label")
        model["recalibrated_from"] = site.get("base_model")
    return {
        "flare_ml_version": __version__,
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "output": summary.output.name,
        "model": model,
        "decision_policy": policy,
    }
