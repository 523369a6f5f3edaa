"""Clinical events to a timepoint table: lines of therapy, scans, labs and the reader.

:func:`assemble_timepoints` is the one place where extracted records become the data
contract, whichever adapter extracted them. Its rules, each documented in
``docs/records.md`` with its limits:

- **cancer type**: the patient's coded diagnoses through ``cancer_types.csv`` (longest code
  prefix); secondary sites (C77-C79) are ignored, a specific type (``nsclc``, ``breast``,
  ``prostate``) wins over ``other``, and two different specific types drop the patient;
- **lines of therapy**: anticancer drugs through ``therapy_classes.csv``; the drugs started
  within :attr:`AssemblyConfig.regimen_window_days` of a line's first start form its
  regimen, whose class names the line (:func:`~flare_ml.records.mappings.therapy_class_of`);
  a later drug that is not in the regimen and whose class differs from the line's starts
  the next line (fulvestrant after palbociclib with letrozole does; a letrozole refill, or
  osimertinib after erlotinib, does not); background drugs
  (androgen deprivation, bone-targeted agents) never start or name a line. Line 1 keeps
  the patient's id, later lines get ``-L2``, ``-L3`` (the contract's ``P1-L2`` style);
- **imaging rows**: one per report date within the line; the latest report at most
  :attr:`AssemblyConfig.baseline_window_days` before the start (or on it) is the line's
  baseline, dated at the start as the contract requires and read as a baseline (response
  ``baseline``, nothing new); the findings come from the report reader and
  :func:`flare_ml.reports.merge_findings`;
- **response fallback**: where no report of the day states the response outside bone,
  a clinician's disease status of that day (FHIR mCODE) gives it, else ``NE``;
- **lab rows**: one per ALP sample date of the line more than
  :attr:`AssemblyConfig.scan_draw_days` from any of its scans (a sample that close is the
  scan's own blood draw, not a lab visit); ALP reaches every row
  through the lab adapter's as-of join; samples in units it does not know are dropped and
  reported.

Nothing is dropped silently: every record or patient left out is a
:class:`~flare_ml.records.events.Dropped` entry of the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
from pydantic import Field

from flare_ml.config_io import StrictModel
from flare_ml.data import contract as c
from flare_ml.data.labs import ALP_UNIT_FACTORS, alp_unit_factors, attach_alp, is_alp_test
from flare_ml.errors import ContractError
from flare_ml.records.events import ClinicalEvents, Dropped, dropped_for
from flare_ml.records.mappings import (
    BACKGROUND,
    SECONDARY,
    cancer_type_of,
    ingredient_role,
    therapy_class_of,
)
from flare_ml.reports import ReportReader, read_reports
from flare_ml.reports.findings import FINDINGS_UNCERTAIN, IMAGING_FINDINGS, MODALITY, TEXT
from flare_ml.reports.merge import merge_findings

__all__ = ["STATUS_RESPONSES", "AssemblyConfig", "IngestResult", "assemble_timepoints"]

#: mCODE disease status -> the response column, used only when no report states one. A
#: clinician's "improved" is not a measured RECIST partial response, so it gives ``SD`` (no
#: progression), not ``PR``; "worsened" gives ``PD``; "undetermined" gives ``NE``.
STATUS_RESPONSES: Final = {
    "improved": "SD",
    "stable": "SD",
    "worsened": "PD",
    "undetermined": "NE",
}
STAGE: Final = "assemble"


class AssemblyConfig(StrictModel):
    """The numbers of :func:`assemble_timepoints` (defaults in ``docs/records.md``).

    Examples
    --------
    >>> AssemblyConfig().baseline_window_days
    42

    """

    regimen_window_days: int = Field(28, ge=0)
    baseline_window_days: int = Field(42, ge=0)
    alp_window_days: int = Field(30, ge=0)
    status_window_days: int = Field(14, ge=0)
    scan_draw_days: int = Field(7, ge=0)


@dataclass
class IngestResult:
    """A timepoint table assembled from records, with what was kept and dropped.

    Attributes
    ----------
    timepoints : DataFrame
        The validated timepoint table (no ``outcome``: adjudicate it with
        :mod:`flare_ml.labels`).
    findings : DataFrame
        The reader's findings of every report used, with its evidence (for the review
        page).
    dropped : list of Dropped
        What the extraction and the assembly left out, and why.
    counts : dict
        Patients read and kept, lines, imaging and lab rows, reports read, responses
        filled from disease status or set to ``NE``, baselines moved to the line start.
    notices : list of str
        What merging the reports resolved (combined same-day reports, ...).

    """

    timepoints: pd.DataFrame
    findings: pd.DataFrame
    dropped: list[Dropped] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """What was kept and dropped, one line each, for the command line.

        Examples
        --------
        >>> import pandas as pd
        >>> IngestResult(pd.DataFrame(), pd.DataFrame(), counts={"patients read": 2}).summary()
        ['patients read: 2']

        """
        lines = [f"{name}: {value}" for name, value in self.counts.items()]
        lines += [f"dropped: {d}" for d in self.dropped]
        return lines + self.notices


def _cancer_types(events: ClinicalEvents) -> tuple[pd.Series, list[Dropped]]:
    cond = events.conditions
    types = [cancer_type_of(v, k) for v, k in zip(cond["vocabulary"], cond["code"], strict=True)]
    cond = cond.assign(cancer_type=types)
    mapped = cond[cond["cancer_type"].notna() & (cond["cancer_type"] != SECONDARY)]
    out: dict[str, str] = {}
    conflicting = []
    for pid, group in mapped.groupby(c.PATIENT_ID, sort=False):
        found = set(group["cancer_type"])
        specific = found - {"other"}
        if len(specific) > 1:
            conflicting.append(pid)
        else:
            out[str(pid)] = specific.pop() if specific else "other"
    persons = events.persons[c.PATIENT_ID]
    missing = [p for p in persons if p not in out and p not in conflicting]
    dropped = dropped_for(STAGE, "patients without a mapped cancer diagnosis", missing)
    dropped += dropped_for(
        STAGE, "patients with two different primary cancers (ambiguous)", conflicting
    )
    return pd.Series(out, dtype=object), dropped


def _lines(events: ClinicalEvents, config: AssemblyConfig) -> tuple[pd.DataFrame, list[Dropped]]:
    """One row per line: person, line id, start, end (next line's start), class."""
    drugs = events.drugs.dropna(subset=["start_date"])
    dropped = dropped_for(
        STAGE,
        "drug records without a start date",
        events.drugs.loc[events.drugs["start_date"].isna(), c.PATIENT_ID],
    )
    roles = [
        ingredient_role(i, k)
        for i, k in zip(drugs["ingredient"], drugs["rxnorm_code"], strict=True)
    ]
    drugs = drugs.assign(
        therapy_class=[r[0] if r else None for r in roles],
    )
    unmapped = drugs[drugs["therapy_class"].isna()]
    if len(unmapped):
        names = unmapped["ingredient"].where(unmapped["ingredient"] != "", unmapped["rxnorm_code"])
        dropped += [
            Dropped(
                STAGE,
                "drug records of ingredients outside therapy_classes.csv (not anticancer "
                "therapy, or a drug the table lacks)",
                len(unmapped),
                tuple(dict.fromkeys(names.astype(str)))[:5],
            )
        ]
    active = drugs[drugs["therapy_class"].notna() & (drugs["therapy_class"] != BACKGROUND)]
    active = active.sort_values([c.PATIENT_ID, "start_date"], kind="stable")
    window = pd.Timedelta(days=config.regimen_window_days)
    rows = []
    for pid, group in active.groupby(c.PATIENT_ID, sort=False):
        names = (
            group["ingredient"]
            .str.strip()
            .str.lower()
            .where(group["ingredient"].str.strip() != "", group["rxnorm_code"])
        )
        drugs_of = list(zip(group["start_date"], names, group["therapy_class"], strict=True))
        line_start, number = drugs_of[0][0], 1
        regimen, classes = {drugs_of[0][1]}, {drugs_of[0][2]}
        for start, name, cls in drugs_of[1:]:
            if start - line_start <= window:
                regimen.add(name)
                classes.add(cls)
            elif name not in regimen and cls != therapy_class_of(classes):
                rows.append((pid, number, line_start, start, therapy_class_of(classes)))
                number, line_start, regimen, classes = number + 1, start, {name}, {cls}
        rows.append((pid, number, line_start, pd.NaT, therapy_class_of(classes)))
    lines = pd.DataFrame(
        rows, columns=["person", "line", c.TREATMENT_START_DATE, "line_end", c.THERAPY_CLASS]
    )
    for col in (c.TREATMENT_START_DATE, "line_end"):
        lines[col] = pd.to_datetime(lines[col]).astype("datetime64[ns]")
    lines[c.PATIENT_ID] = np.where(
        lines["line"] == 1, lines["person"], lines["person"] + "-L" + lines["line"].astype(str)
    )
    without = [p for p in events.persons[c.PATIENT_ID] if p not in set(lines["person"])]
    dropped += dropped_for(STAGE, "patients without a mapped anticancer drug", without)
    return lines, dropped


def _assign_reports(
    reports: pd.DataFrame, lines: pd.DataFrame, config: AssemblyConfig
) -> tuple[pd.DataFrame, int]:
    """Report rows per line (a report may serve one line's follow-up and the next's baseline)."""
    joined = lines.merge(reports, left_on="person", right_on=c.PATIENT_ID, suffixes=("", "_r"))
    date = joined[c.ASSESSMENT_DATE]
    start = joined[c.TREATMENT_START_DATE]
    end = joined["line_end"].fillna(pd.Timestamp.max)
    early = start - pd.Timedelta(days=config.baseline_window_days)
    joined = joined[(date >= early) & (date < end)].copy()
    before = joined[joined[c.ASSESSMENT_DATE] <= joined[c.TREATMENT_START_DATE]]
    baseline_date = before.groupby(c.PATIENT_ID)[c.ASSESSMENT_DATE].max()
    # (pandas cannot map through an empty datetime Series: no report before any start)
    base = (
        joined[c.PATIENT_ID].map(baseline_date)
        if len(baseline_date)
        else pd.Series(pd.NaT, index=joined.index, dtype="datetime64[ns]")
    )
    keep = (joined[c.ASSESSMENT_DATE] >= joined[c.TREATMENT_START_DATE]) | (
        joined[c.ASSESSMENT_DATE] == base
    )
    joined = joined[keep].copy()
    joined["is_baseline"] = joined[c.ASSESSMENT_DATE] == base.loc[joined.index]
    moved = int(
        (joined["is_baseline"] & (joined[c.ASSESSMENT_DATE] < start.loc[joined.index])).sum()
    )
    # every report of the baseline day stays a baseline report, dated at the line start
    joined.loc[joined["is_baseline"], c.ASSESSMENT_DATE] = joined.loc[
        joined["is_baseline"], c.TREATMENT_START_DATE
    ]
    return joined.drop(columns=[f"{c.PATIENT_ID}_r"], errors="ignore"), moved


def _status_fallback(
    findings: pd.DataFrame, status: pd.DataFrame, config: AssemblyConfig
) -> tuple[pd.Series, int, int]:
    """The response per findings row, filled from disease status, then ``NE``."""
    response = findings[c.EXTRAOSSEOUS_RESPONSE].copy()
    empty = response.isna()
    from_status = 0
    if empty.any() and len(status):
        lookup = status.assign(response=status["status"].map(STATUS_RESPONSES)).dropna(
            subset=["response", "status_date"]
        )
        left = findings.loc[empty, ["person", "report_date"]].reset_index()
        left = left.sort_values("report_date")
        right = lookup.rename(columns={c.PATIENT_ID: "person"}).sort_values("status_date")
        nearest = pd.merge_asof(
            left,
            right[["person", "status_date", "response"]],
            left_on="report_date",
            right_on="status_date",
            by="person",
            direction="nearest",
            tolerance=pd.Timedelta(days=config.status_window_days),
        ).set_index("index")
        filled = nearest["response"].dropna()
        response.loc[filled.index] = filled
        from_status = len(filled)
    still = response.isna()
    response[still] = "NE"
    return response, from_status, int(still.sum())


def _lab_rows(
    events: ClinicalEvents, lines: pd.DataFrame, imaging: pd.DataFrame, config: AssemblyConfig
) -> tuple[pd.DataFrame, pd.DataFrame, list[Dropped]]:
    """Lab rows (ALP dates of a line without a scan) and the per-line lab table."""
    labs = events.labs.dropna(subset=["sample_date"])
    dropped = dropped_for(
        STAGE,
        "lab results without a date",
        events.labs.loc[events.labs["sample_date"].isna(), c.PATIENT_ID],
    )
    labs = labs[is_alp_test(labs["test"])]
    value = pd.to_numeric(labs["value"], errors="coerce")
    bad_unit = np.isnan(alp_unit_factors(labs["unit"]))
    dropped += dropped_for(
        STAGE,
        f"ALP results in units the lab adapter does not know (known: "
        f"{', '.join(sorted(ALP_UNIT_FACTORS))})",
        labs.loc[bad_unit, c.PATIENT_ID],
    )
    dropped += dropped_for(
        STAGE,
        "ALP results without a numeric value",
        labs.loc[~bad_unit & value.isna(), c.PATIENT_ID],
    )
    labs = labs[~bad_unit & value.notna()]
    joined = lines.merge(labs, left_on="person", right_on=c.PATIENT_ID, suffixes=("", "_r"))
    end = joined["line_end"].fillna(pd.Timestamp.max)
    early = joined[c.TREATMENT_START_DATE] - pd.Timedelta(days=config.alp_window_days)
    joined = joined[(joined["sample_date"] >= early) & (joined["sample_date"] < end)]
    line_labs = joined[[c.PATIENT_ID, "sample_date", "test", "value", "unit"]]
    on_line = joined[joined["sample_date"] >= joined[c.TREATMENT_START_DATE]]
    dates = on_line[[c.PATIENT_ID, "sample_date"]].drop_duplicates()
    dates = dates.rename(columns={"sample_date": c.ASSESSMENT_DATE})
    # a sample within a few days of a scan is the scan's own blood draw, not a lab visit
    scans = imaging[[c.PATIENT_ID, c.ASSESSMENT_DATE]].rename(columns={c.ASSESSMENT_DATE: "scan"})
    near = dates.merge(scans, on=c.PATIENT_ID)
    gap = (near[c.ASSESSMENT_DATE] - near["scan"]).abs()
    near = near[gap <= pd.Timedelta(days=config.scan_draw_days)]
    drawn = pd.MultiIndex.from_frame(near[[c.PATIENT_ID, c.ASSESSMENT_DATE]])
    dates = dates[~pd.MultiIndex.from_frame(dates).isin(drawn)]
    return dates.assign(**{c.ROW_TYPE: "lab"}), line_labs, dropped


def _some_left(lines: pd.DataFrame, dropped: list[Dropped], source: str) -> None:
    if lines.empty:
        reasons = "".join(f"\n  - {d}" for d in dropped) or " the records hold no patient"
        raise ContractError(
            f"no patient of {source} could be assembled into a timepoint table; nothing "
            f"was written. What was left out, and why:{reasons}"
        )


def assemble_timepoints(
    events: ClinicalEvents,
    *,
    reader: ReportReader | None = None,
    config: AssemblyConfig | None = None,
) -> IngestResult:
    """Turn extracted clinical events into a validated timepoint table.

    Parameters
    ----------
    events : ClinicalEvents
        What an adapter extracted (:func:`flare_ml.records.omop.read_omop`,
        :func:`flare_ml.records.fhir.read_fhir`).
    reader : ReportReader, optional
        A report reader to reuse (built once otherwise).
    config : AssemblyConfig, optional
        The windows (defaults: ``docs/records.md``).

    Returns
    -------
    IngestResult

    Raises
    ------
    ContractError
        When no patient is left (the message says why each was dropped), or the assembled
        table breaks the contract.

    Examples
    --------
    >>> import pandas as pd
    >>> events = ClinicalEvents.from_frames(
    ...     persons=pd.DataFrame({"patient_id": ["P1"]}),
    ...     conditions=pd.DataFrame({"patient_id": ["P1"], "condition_date": ["2023-12-01"],
    ...                              "vocabulary": ["ICD10CM"], "code": ["C34.90"]}),
    ...     drugs=pd.DataFrame({"patient_id": ["P1"], "start_date": ["2024-01-01"],
    ...                         "ingredient": ["Osimertinib"]}),
    ...     reports=pd.DataFrame({"patient_id": ["P1", "P1"],
    ...         "assessment_date": ["2023-12-20", "2024-03-01"], "modality": ["ct", "ct"],
    ...         "text": ["Staging CT. Sclerotic bone metastases.",
    ...                  "Two new sclerotic lesions in T7 and T9. Partial response of the "
    ...                  "lung primary."]}))
    >>> result = assemble_timepoints(events)
    >>> columns = ["assessment_date", "extraosseous_response", "new_bone_lesions"]
    >>> print(result.timepoints[columns].to_string(index=False))
    assessment_date extraosseous_response  new_bone_lesions
         2024-01-01              baseline                 0
         2024-03-01                    PR                 2
    >>> result.counts["baseline scans dated before the line start, moved to it"]
    1

    """
    config = config or AssemblyConfig()
    dropped = list(events.dropped)
    counts: dict[str, int] = {"patients read": len(events.persons)}
    cancer, why = _cancer_types(events)
    dropped += why
    lines, why = _lines(events, config)
    dropped += why
    lines = lines[lines["person"].isin(cancer.index)].copy()
    lines[c.CANCER_TYPE] = lines["person"].map(cancer)

    _some_left(lines, dropped, events.source)
    reports = events.reports
    no_date = reports[c.ASSESSMENT_DATE].isna()
    no_text = reports[TEXT].fillna("").astype(str).str.strip() == ""
    dropped += dropped_for(STAGE, "reports without a date", reports.loc[no_date, "report_id"])
    dropped += dropped_for(
        STAGE, "reports without text", reports.loc[~no_date & no_text, "report_id"]
    )
    reports = reports[~no_date & ~no_text]
    assigned, moved = _assign_reports(reports, lines, config)
    outside = set(reports["report_id"]) - set(assigned["report_id"])
    dropped += dropped_for(
        STAGE,
        "reports outside every line of therapy (before the first line's baseline window, "
        "or of a patient without a line)",
        sorted(outside),
    )
    with_scans = set(assigned[c.PATIENT_ID])
    dropped += dropped_for(
        STAGE,
        "lines of therapy without an imaging report (no scan to read)",
        lines.loc[~lines[c.PATIENT_ID].isin(with_scans), c.PATIENT_ID],
    )
    lines = lines[lines[c.PATIENT_ID].isin(with_scans)]
    _some_left(lines, dropped, events.source)

    # read each report once, then give every line its copy
    unique = reports.drop_duplicates("report_id")
    reading = unique[[c.PATIENT_ID, c.ASSESSMENT_DATE, TEXT, "report_id"]].copy()
    reading[MODALITY] = unique[MODALITY].replace("", None)
    found = read_reports(reading, reader, source=events.source)
    found = found.set_index("report_id")
    per_line = assigned[
        [c.PATIENT_ID, "person", c.ASSESSMENT_DATE, "report_id", "is_baseline", MODALITY]
    ].join(found.drop(columns=[c.PATIENT_ID, c.ASSESSMENT_DATE, MODALITY]), on="report_id")
    per_line["report_date"] = per_line["report_id"].map(
        unique.set_index("report_id")[c.ASSESSMENT_DATE]
    )
    base = per_line["is_baseline"]
    per_line.loc[base, c.EXTRAOSSEOUS_RESPONSE] = "baseline"
    per_line.loc[base, c.NEW_BONE_LESIONS] = 0
    per_line.loc[base, c.NEW_LESION_MORPHOLOGY] = "none"
    per_line.loc[base, [c.PROGRESSIVE_LYSIS, c.NEW_EXTRAOSSEOUS_LESION]] = False
    per_line.loc[base, c.KNOWN_LESION_SCLEROSIS] = False
    per_line.loc[base, FINDINGS_UNCERTAIN] = False
    response, from_status, set_ne = _status_fallback(per_line, events.disease_status, config)
    per_line[c.EXTRAOSSEOUS_RESPONSE] = response

    constants = lines.set_index(c.PATIENT_ID)[
        [c.TREATMENT_START_DATE, c.CANCER_TYPE, c.THERAPY_CLASS]
    ]
    imaging = per_line[[c.PATIENT_ID, c.ASSESSMENT_DATE]].drop_duplicates()
    imaging = imaging.assign(**{c.ROW_TYPE: "imaging"})
    lab_rows, line_labs, why = _lab_rows(events, lines, imaging, config)
    dropped += why
    skeleton = pd.concat([imaging, lab_rows], ignore_index=True).join(constants, on=c.PATIENT_ID)
    findings = per_line[[c.PATIENT_ID, c.ASSESSMENT_DATE, *IMAGING_FINDINGS, FINDINGS_UNCERTAIN]]
    merged = merge_findings(skeleton, findings, source=events.source)
    table = merged.table.drop(columns=[FINDINGS_UNCERTAIN], errors="ignore")
    if len(line_labs):
        table = attach_alp(table, line_labs, window_days=config.alp_window_days)
    else:
        table[c.ALP_U_L] = np.nan
    table = table.sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE], ignore_index=True)

    counts.update(
        {
            "patients kept": int(lines["person"].nunique()),
            "lines of therapy": len(lines),
            "reports read": len(unique),
            "imaging rows": int((table[c.ROW_TYPE] == "imaging").sum()),
            "lab rows": int((table[c.ROW_TYPE] == "lab").sum()),
            "baseline scans dated before the line start, moved to it": moved,
            "responses taken from disease status (no report stated one)": from_status,
            "responses set to NE (nothing stated one)": set_ne,
        }
    )
    return IngestResult(
        timepoints=table,
        findings=per_line.reset_index(drop=True),
        dropped=dropped,
        counts=counts,
        notices=list(merged.notices),
    )
