"""One patient's course on one page: ALP, scans, new bone lesions and the model's reading.

:func:`plot_patient_timeline` draws a validated timepoint table's rows of one patient
(see :mod:`flare_ml.data.contract`) on a shared axis of weeks since treatment start: the
ALP course (lab rows and imaging rows that carry ALP, U/L, with the upper limit of normal
of the featurizer), every scan with its extraosseous (RECIST 1.1) response, the new bone
lesions of each scan by morphology, the index scans (imaging with new bone lesions, the
rows a model scores) and, when predictions are passed in, P(flare), the decision and
its top reasons, with the recorded outcome and, where the table has them, the
adjudicated label's rule, reason and confirmation scan (``label_rule``, ``label_reason``,
``label_confirm_date``, written by ``flare-ml label``: a dash-dotted line marks the scan
that confirmed index scan #k). Predictions come in as the
DataFrame :meth:`flare_ml.bundle.FlareModelBundle.predict` returns; this module loads
no model (that is :mod:`flare_ml.workflows`' job). :func:`timeline_html` wraps the
figure and a table of the index rows in a self-contained HTML page, and
:func:`worked_patient_timelines` draws the timelines the training report shows. How to
read the figure: ``docs/timeline.md``. The contract holds one treatment start per
patient, so one figure covers one line of therapy.
"""

from __future__ import annotations

import difflib
import html
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from flare_ml.data import contract as c
from flare_ml.data import index_row_mask, is_canonical, validate_timepoints
from flare_ml.errors import FlareMLError
from flare_ml.features import TimepointFeaturizer
from flare_ml.plots import figure_to_base64

__all__ = [
    "LABEL_CONFIRM_DATE",
    "LABEL_REASON",
    "LABEL_RULE",
    "UnknownPatientError",
    "index_table",
    "patient_timepoints",
    "plot_patient_timeline",
    "timeline_html",
    "worked_patient_timelines",
]

#: the provenance columns of an adjudicated outcome (``flare-ml label``), shown when a
#: table carries them
LABEL_RULE = c.LABEL_RULE
LABEL_REASON = c.LABEL_REASON
LABEL_CONFIRM_DATE = c.LABEL_CONFIRM_DATE

#: the featurizer's upper limit of normal for ALP, U/L (docs/sources.md, ALP)
DEFAULT_ALP_ULN: float = TimepointFeaturizer().alp_upper_limit_normal

RESPONSE_COLORS = {
    "baseline": "#404040",
    "CR": "#1a9850",
    "PR": "#66bd63",
    "SD": "#878787",
    "PD": "#d73027",
    "NE": "#bababa",
}
MORPHOLOGY_COLORS = {
    "blastic": "#4575b4",
    "lytic": "#f46d43",
    "mixed": "#9e6ebd",
    "unknown": "#a6a6a6",  # a bone scan's new uptake: the modality cannot tell
}
DECISION_COLORS = {"flare": "#2166ac", "progression": "#b2182b", "uncertain": "#e08214"}
_INDEX_BAND = "#fee8c8"
_SYNTHETIC = "SYNTHETIC data unless you supplied real data; not for clinical use"

#: gids of the artists tests and callers can look up (``fig.findobj``)
GID_SCANS = "timeline-scans"
GID_ALP = "timeline-alp"
GID_INDEX = "timeline-index"
GID_P_FLARE = "timeline-p-flare"


class UnknownPatientError(FlareMLError, KeyError):
    """The requested patient id is not in the table; the message names a few that are."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def patient_timepoints(
    timepoints: pd.DataFrame, patient_id: str, *, source: str = "the table"
) -> pd.DataFrame:
    """Return one patient's rows of a timepoint table, sorted by date.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        A timepoint table (validated or raw).
    patient_id : str
        The patient.
    source : str, default "the table"
        Where the table came from, named in the error.

    Returns
    -------
    pandas.DataFrame
        The patient's rows.

    Raises
    ------
    UnknownPatientError
        When ``patient_id`` has no row; the message lists close and first ids.

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> len(patient_timepoints(seed_case_timeline(), "DeBondt2020-L1"))
    6
    >>> patient_timepoints(seed_case_timeline(), "DeBondt2020")
    Traceback (most recent call last):
    ...
    flare_ml.timeline.UnknownPatientError: patient 'DeBondt2020' is not in the table \
(1 patient). Did you mean DeBondt2020-L1? Some ids: DeBondt2020-L1

    """
    ids = timepoints[c.PATIENT_ID].astype("str")
    rows = timepoints[ids == str(patient_id)]
    if len(rows) == 0:
        known = list(pd.unique(ids))
        close = difflib.get_close_matches(str(patient_id), known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        count = f"{len(known)} patient" + ("" if len(known) == 1 else "s")
        raise UnknownPatientError(
            f"patient {str(patient_id)!r} is not in {source} ({count}).{hint} "
            f"Some ids: {', '.join(known[:5])}"
        )
    return rows.sort_values(c.ASSESSMENT_DATE, kind="stable")


def _one_patient(timepoints: pd.DataFrame, patient_id: str | None) -> pd.DataFrame:
    table = timepoints if is_canonical(timepoints) else validate_timepoints(timepoints)
    ids = pd.unique(table[c.PATIENT_ID].astype("str"))
    if patient_id is None:
        if len(ids) != 1:
            raise FlareMLError(
                f"the table holds {len(ids)} patients; pass patient_id to choose one"
            )
        patient_id = str(ids[0])
    return patient_timepoints(table, patient_id).reset_index(drop=True)


def _weeks(dates: pd.Series, start: pd.Timestamp) -> np.ndarray:
    return ((pd.to_datetime(dates) - start).dt.total_seconds() / (7 * 86400)).to_numpy(float)


def _text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _flag(value: Any) -> bool:
    return bool(value) if value is not None and not pd.isna(value) else False


def _match_predictions(rows: pd.DataFrame, predictions: pd.DataFrame | None) -> pd.DataFrame:
    """Index rows of the patient with their week, findings, predictions and labels."""
    start = pd.Timestamp(rows[c.TREATMENT_START_DATE].iloc[0])
    index = rows[index_row_mask(rows).to_numpy()].copy()
    index["week"] = _weeks(index[c.ASSESSMENT_DATE], start)
    index["key"] = pd.to_datetime(index[c.ASSESSMENT_DATE]).dt.normalize()
    for col in ("p_flare", "decision", "reasons"):
        index[col] = np.nan if col == "p_flare" else ""
    if predictions is not None and len(predictions):
        pred = predictions
        if c.PATIENT_ID in pred:
            pid = str(rows[c.PATIENT_ID].iloc[0])
            pred = pred[pred[c.PATIENT_ID].astype("str") == pid]
        keyed = pred.assign(key=pd.to_datetime(pred[c.ASSESSMENT_DATE]).dt.normalize())
        keyed = keyed.drop_duplicates("key").set_index("key")
        for col in ("p_flare", "decision", "reasons"):
            if col in keyed:
                values = index["key"].map(keyed[col])
                index[col] = values if col == "p_flare" else values.map(_text)
    return index.reset_index(drop=True)


def index_table(
    timepoints: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    patient_id: str | None = None,
) -> pd.DataFrame:
    """The patient's index scans as a small table: date, week, findings, model, outcome.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        One patient's rows (or a table and ``patient_id``).
    predictions : pandas.DataFrame, optional
        :meth:`flare_ml.bundle.FlareModelBundle.predict` output (``assessment_date``,
        ``p_flare``, ``decision``, ``reasons``); without it those columns are empty.
    patient_id : str, optional
        The patient, when ``timepoints`` holds several.

    Returns
    -------
    pandas.DataFrame
        One row per index scan: ``#``, ``date``, ``week``, ``new bone lesions``,
        ``P(flare)``, ``decision``, ``reasons``, ``recorded outcome``, and
        ``label rule`` / ``label reason`` / ``label confirmed`` when the table carries
        them.

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> index_table(seed_case_timeline())[["date", "week", "recorded outcome"]]
             date  week recorded outcome
    0  2019-04-07  12.9            flare

    """
    rows = _one_patient(timepoints, patient_id)
    index = _match_predictions(rows, predictions)
    out = pd.DataFrame(
        {
            "#": np.arange(1, len(index) + 1),
            "date": pd.to_datetime(index[c.ASSESSMENT_DATE]).dt.strftime("%Y-%m-%d"),
            "week": index["week"].round(1),
            "new bone lesions": [
                f"{int(n)} {_text(m)}"
                for n, m in zip(
                    index[c.NEW_BONE_LESIONS], index[c.NEW_LESION_MORPHOLOGY], strict=True
                )
            ],
            "P(flare)": index["p_flare"].map(lambda p: "" if pd.isna(p) else f"{p:.2f}"),
            "decision": index["decision"],
            "reasons": index["reasons"],
            "recorded outcome": index[c.OUTCOME].map(_text) if c.OUTCOME in index else "",
        }
    )
    if LABEL_RULE in index:
        out["label rule"] = index[LABEL_RULE].map(_text)
    if LABEL_REASON in index:
        out["label reason"] = index[LABEL_REASON].map(_text)
    if LABEL_CONFIRM_DATE in index:
        dates = pd.to_datetime(index[LABEL_CONFIRM_DATE], errors="coerce")
        out["label confirmed"] = dates.dt.strftime("%Y-%m-%d").fillna("")
    return out


def _title(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    cancer = c.CANCER_NAMES.get(_text(first[c.CANCER_TYPE]), _text(first[c.CANCER_TYPE]))
    therapy = c.THERAPY_NAMES.get(_text(first[c.THERAPY_CLASS]), _text(first[c.THERAPY_CLASS]))
    start = pd.Timestamp(first[c.TREATMENT_START_DATE]).strftime("%Y-%m-%d")
    return f"Patient {first[c.PATIENT_ID]}: {cancer}, {therapy} (started {start})"


def _draw_alp(ax: Any, rows: pd.DataFrame, weeks: np.ndarray, uln: float | None) -> list[Any]:
    alp = rows[c.ALP_U_L].to_numpy(dtype=float, na_value=np.nan)
    is_lab = (rows[c.ROW_TYPE].astype("str") == "lab").to_numpy() if c.ROW_TYPE in rows else None
    if is_lab is None:
        is_lab = np.zeros(len(rows), dtype=bool)
    has = ~np.isnan(alp)
    (line,) = ax.plot(weeks[has], alp[has], color="#555555", linewidth=1.4, zorder=2)
    line.set_gid(GID_ALP)
    ax.scatter(
        weeks[has & is_lab], alp[has & is_lab], s=22, color="#555555", zorder=3, label="ALP, lab"
    )
    ax.scatter(
        weeks[has & ~is_lab],
        alp[has & ~is_lab],
        s=40,
        marker="s",
        facecolor="white",
        edgecolor="#222222",
        linewidth=1.2,
        zorder=3,
        label="ALP, at a scan",
    )
    if uln is not None:
        ax.axhline(uln, color="#b2182b", linestyle="--", linewidth=1.0, zorder=1)
        ax.annotate(
            f"ULN {uln:g} U/L",
            xy=(1.0, uln),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=8,
            color="#b2182b",
        )
    if has.any():
        top = np.nanmax(alp)
        top = max(top, uln or 0.0)
        ax.set_ylim(0, top * 1.3)
    else:
        ax.text(
            0.5,
            0.5,
            "no ALP value recorded",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#777777",
        )
        ax.set_ylim(0, (uln or 100.0) * 1.5)
    ax.set_ylabel("ALP (U/L)")
    handles = [
        Line2D([], [], color="#555555", marker="o", markersize=5, label="ALP, lab draw"),
        Line2D(
            [],
            [],
            color="#555555",
            marker="s",
            markerfacecolor="white",
            markeredgecolor="#222222",
            markersize=6,
            label="ALP, at a scan",
        ),
    ]
    if uln is not None:
        handles.append(Line2D([], [], color="#b2182b", linestyle="--", label="upper limit normal"))
    return handles


def _findings_lines(row: pd.Series) -> str:
    response = _text(row[c.EXTRAOSSEOUS_RESPONSE]) or "?"
    lines = [response]
    sld = row.get(c.SLD_MM)
    if sld is not None and not pd.isna(sld):
        lines.append(f"{sld:.0f} mm")
    flags = [
        (c.NEW_EXTRAOSSEOUS_LESION, "new soft-tissue"),
        (c.PROGRESSIVE_LYSIS, "lysis ↑"),
        (c.KNOWN_LESION_SCLEROSIS, "sclerosis"),
        (c.CLINICAL_DETERIORATION, "clin. worse"),
    ]
    lines += [text for col, text in flags if col in row and _flag(row[col])]
    return "\n".join(lines)


def _draw_scans(ax: Any, scans: pd.DataFrame, weeks: np.ndarray) -> None:
    responses = scans[c.EXTRAOSSEOUS_RESPONSE].map(_text)
    colors = [RESPONSE_COLORS.get(r, "#bababa") for r in responses]
    markers = ax.scatter(
        weeks, np.full(len(weeks), 0.82), s=90, marker="D", c=colors, edgecolor="black", zorder=3
    )
    markers.set_gid(GID_SCANS)
    for w, (_, row) in zip(weeks, scans.iterrows(), strict=True):
        ax.text(w, 0.62, _findings_lines(row), ha="center", va="top", fontsize=8, linespacing=1.1)
    ax.set_ylim(-0.35, 1.05)
    ax.set_yticks([])
    ax.set_ylabel("scans\n(RECIST)", rotation=0, ha="right", va="center")


def _draw_bone(ax: Any, scans: pd.DataFrame, weeks: np.ndarray, width: float) -> list[Any]:
    counts = scans[c.NEW_BONE_LESIONS].to_numpy(dtype=float, na_value=0.0)
    morph = scans[c.NEW_LESION_MORPHOLOGY].map(_text).to_numpy()
    top = max(float(counts.max()) if len(counts) else 0.0, 1.0)
    for kind, color in MORPHOLOGY_COLORS.items():
        pick = (morph == kind) & (counts > 0)
        if pick.any():
            ax.bar(weeks[pick], counts[pick], width=width, color=color, zorder=2, label=kind)
    for w, n in zip(weeks, counts, strict=True):
        ax.text(
            w,
            n + top * 0.04,
            f"{n:.0f}",
            ha="center",
            va="bottom",
            fontsize=8,
            color="black" if n > 0 else "#999999",
        )
    ax.set_ylim(0, top * 1.35)
    ax.set_ylabel("new bone\nlesions")
    ax.yaxis.get_major_locator().set_params(integer=True)
    # the legend names `unknown` only where a scan has it (most courses never do)
    shown = [k for k in MORPHOLOGY_COLORS if k != "unknown" or ((morph == k) & (counts > 0)).any()]
    label = {"unknown": "new bone lesions, morphology unknown (bone scan)"}
    return [
        Patch(color=MORPHOLOGY_COLORS[k], label=label.get(k, f"{k} new bone lesions"))
        for k in shown
    ]


def _draw_p_flare(ax: Any, index: pd.DataFrame, flip_after: float, span: float) -> list[Any]:
    scored = index[index["p_flare"].notna()]
    colors = [DECISION_COLORS.get(d, "#777777") for d in scored["decision"]]
    points = ax.scatter(
        scored["week"], scored["p_flare"], s=70, c=colors, edgecolor="black", zorder=3
    )
    points.set_gid(GID_P_FLARE)
    placed: list[tuple[float, float, float]] = []  # (week, P(flare), vertical offset)
    for _, row in scored.iterrows():
        p, week = float(row["p_flare"]), float(row["week"])
        # a label close to the previous one (a label is about a sixth of the axis wide)
        # moves up or down, toward the middle of the panel, so that the two do not overlap
        rise = 0.0
        if placed and abs(week - placed[-1][0]) < 0.35 * span and abs(p - placed[-1][1]) < 0.15:
            rise = 0.0 if placed[-1][2] else (13.0 if p < 0.5 else -13.0)
        placed.append((week, p, rise))
        ax.annotate(
            f"{p:.2f} {row['decision']}",
            xy=(week, p),
            xytext=(-9, rise) if week >= flip_after else (9, rise),
            textcoords="offset points",
            ha="right" if row["week"] >= flip_after else "left",
            va="center",
            fontsize=9,
            fontweight="bold",
            color=DECISION_COLORS.get(row["decision"], "#333333"),
        )
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel("P(flare)")
    ax.grid(axis="y", alpha=0.3)
    handles = [
        Line2D(
            [],
            [],
            color=col,
            marker="o",
            linestyle="",
            markeredgecolor="black",
            label=f"decision {d}",
        )
        for d, col in DECISION_COLORS.items()
    ]
    return handles


def _summary_blocks(index: pd.DataFrame, scored: bool) -> list[tuple[str, str, list[str]]]:
    """(headline, decision, reasons) of each index scan, for the text under the panels."""
    if len(index) == 0:
        return [
            ("No index scan (no scan with new bone lesions): nothing for a model to read.", "", [])
        ]
    blocks = []
    for i, row in index.iterrows():
        date = pd.Timestamp(row[c.ASSESSMENT_DATE]).strftime("%Y-%m-%d")
        count = int(row[c.NEW_BONE_LESIONS])
        morphology = _text(row[c.NEW_LESION_MORPHOLOGY])
        lesions = f"{count} new {'' if morphology == 'unknown' else morphology + ' '}bone lesion"
        lesions += "" if count == 1 else "s"
        if morphology == "unknown":
            lesions += " (morphology unknown)"
        head = f"#{i + 1}  week {row['week']:.0f} ({date}): {lesions}"
        decision = _text(row["decision"])
        if not pd.isna(row["p_flare"]):
            head += f"  |  P(flare) {row['p_flare']:.2f}, decision {decision.upper()}"
        elif scored:
            head += "  |  not scored"
        else:
            head += "  |  no model given: no P(flare)"
        outcome = _text(row.get(c.OUTCOME))
        rule = _text(row.get(LABEL_RULE))
        reason = _text(row.get(LABEL_REASON))
        confirm = row.get(LABEL_CONFIRM_DATE)
        when = pd.to_datetime(confirm, errors="coerce") if confirm is not None else pd.NaT
        details = [reason, "" if pd.isna(when) else f"confirmed {when:%Y-%m-%d}"]
        label_lines = []
        if rule:  # an adjudicated label (flare-ml label): its own line under the headline
            head += f"  |  label: {outcome or 'indeterminate'}"
            text = f"label {rule}: {', '.join(x for x in details if x) or 'no reason given'}"
            label_lines = textwrap.wrap(text, 150)
        else:
            if outcome:
                head += f"  |  recorded outcome: {outcome}"
            if any(details):
                head += f" ({', '.join(x for x in details if x)})"
        reasons = [r.strip() for r in _text(row["reasons"]).split(";") if r.strip()]
        wrapped = label_lines + [line for r in reasons for line in textwrap.wrap(r, 150)]
        blocks.append((head, decision, wrapped))
    return blocks


def _draw_summary(ax: Any, blocks: list[tuple[str, str, list[str]]], line_h: float) -> None:
    step = line_h * 72  # points
    offset = 0.0
    for head, decision, reasons in blocks:
        ax.annotate(
            head,
            xy=(0.0, 1.0),
            xycoords="axes fraction",
            xytext=(0, -offset),
            textcoords="offset points",
            va="top",
            fontsize=9.5,
            fontweight="bold",
            color=DECISION_COLORS.get(decision, "#222222"),
        )
        offset += step
        for reason in reasons:
            ax.annotate(
                f"•  {reason}",
                xy=(0.0, 1.0),
                xycoords="axes fraction",
                xytext=(24, -offset),
                textcoords="offset points",
                va="top",
                fontsize=9,
                color="#333333",
            )
            offset += step


def plot_patient_timeline(
    timepoints: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    patient_id: str | None = None,
    alp_upper_limit_normal: float | None = DEFAULT_ALP_ULN,
    note: str = _SYNTHETIC,
) -> Figure:
    """Draw one patient's course: ALP, scans, new bone lesions, index scans, P(flare).

    Parameters
    ----------
    timepoints : pandas.DataFrame
        A timepoint table (validated or raw; a raw one is validated). With several
        patients, ``patient_id`` chooses one. Optional ``label_reason`` and
        ``label_confirm_date`` columns are shown when present.
    predictions : pandas.DataFrame, optional
        :meth:`flare_ml.bundle.FlareModelBundle.predict` output for the patient (other
        patients' rows are ignored): ``assessment_date``, ``p_flare``, ``decision`` and
        optionally ``reasons``. Without it the figure shows the data only.
    patient_id : str, optional
        The patient to draw; needed when the table holds several.
    alp_upper_limit_normal : float or None, default 147.0
        Upper limit of normal for ALP, U/L (the featurizer's; pass the model's
        ``bundle.featurizer.alp_upper_limit_normal``); None draws no line.
    note : str
        Subtitle (default: the synthetic-data caveat).

    Returns
    -------
    matplotlib.figure.Figure
        Panels on a shared axis of weeks since treatment start (calendar dates on top):
        ALP, scans with their RECIST response, new bone lesions by morphology, P(flare)
        (with predictions), and a text block listing every index scan.

    Raises
    ------
    UnknownPatientError
        When ``patient_id`` is not in the table.

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> fig = plot_patient_timeline(seed_case_timeline())
    >>> len(fig.findobj(lambda a: a.get_gid() == GID_SCANS)[0].get_offsets())
    4

    """
    rows = _one_patient(timepoints, patient_id)
    start = pd.Timestamp(rows[c.TREATMENT_START_DATE].iloc[0])
    weeks = _weeks(rows[c.ASSESSMENT_DATE], start)
    is_scan = (
        (rows[c.ROW_TYPE].astype("str") != "lab").to_numpy()
        if c.ROW_TYPE in rows
        else np.ones(len(rows), dtype=bool)
    )
    scans = rows[is_scan]
    scan_weeks = weeks[is_scan]
    index = _match_predictions(rows, predictions)
    scored = predictions is not None

    extra, confirms = [], []  # confirmation weeks; (index number, week) pairs
    if LABEL_CONFIRM_DATE in rows:
        confirm = pd.to_datetime(rows[LABEL_CONFIRM_DATE], errors="coerce").dropna()
        extra = list(_weeks(confirm, start))
        when = pd.to_datetime(index[LABEL_CONFIRM_DATE], errors="coerce")
        confirms = [
            (i + 1, float(w))
            for i, (w, d) in enumerate(zip(_weeks(when.fillna(start), start), when, strict=True))
            if not pd.isna(d)
        ]
    span = np.concatenate([weeks, [0.0], extra])
    lo, hi = float(np.nanmin(span)), float(np.nanmax(span))
    pad = max((hi - lo) * 0.06, 2.0)
    bar_width = max((hi - lo) / 70, 0.6)

    blocks = _summary_blocks(index, scored)
    panels = [2.3, 1.05, 1.35] + ([1.15] if scored else [])
    # a third legend row (the decisions) when scored
    gap, top_margin, axis_label, line_h = 0.14, 1.4 + (0.22 if scored else 0.0), 0.5, 0.2
    text_h = 0.15 + line_h * sum(1 + len(reasons) for _, _, reasons in blocks)
    height = top_margin + sum(panels) + gap * (len(panels) - 1) + axis_label + text_h
    fig = Figure(figsize=(12, height))
    left, width = 0.09, 0.87
    axes = []
    y = height - top_margin
    for h in panels:
        y -= h
        rect = [left, y / height, width, h / height]
        axes.append(fig.add_axes(rect, sharex=axes[0] if axes else None))
        y -= gap
    text_ax = fig.add_axes([left - 0.05, 0.0, 0.99 - left, text_h / height])
    text_ax.axis("off")

    first = _draw_alp(axes[0], rows, weeks, alp_upper_limit_normal)
    _draw_scans(axes[1], scans, scan_weeks)
    bone = _draw_bone(axes[2], scans, scan_weeks, bar_width)
    decisions = (
        _draw_p_flare(axes[3], index, flip_after=hi - 0.15 * (hi - lo), span=hi - lo)
        if scored
        else []
    )
    first.append(Patch(color=_INDEX_BAND, label="index scan (the row a model reads)"))
    if confirms:
        first.append(
            Line2D([], [], color="#762a83", linestyle="-.", label="label confirmation scan")
        )
    groups = [first, bone, decisions] if decisions else [first, bone]  # a legend row each
    for row, group in enumerate(groups):
        fig.legend(
            handles=group,
            loc="upper left",
            bbox_to_anchor=(left - 0.005, 1 - (0.6 + 0.22 * row) / height),
            ncol=len(group),
            fontsize=8,
            frameon=False,
            columnspacing=1.6,
            handlelength=1.6,
            borderaxespad=0.0,
        )

    for ax in axes:
        ax.axvline(0.0, color="#444444", linewidth=0.8, linestyle=":", zorder=1)
        for w in index["week"]:
            ax.axvspan(w - bar_width, w + bar_width, color=_INDEX_BAND, zorder=0)
        for w in extra:
            ax.axvline(w, color="#762a83", linestyle="-.", linewidth=1.0, zorder=1)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(labelbottom=False)
    axes[-1].tick_params(labelbottom=True)
    axes[-1].set_xlabel("weeks since treatment start")
    axes[0].set_xlim(lo - pad, hi + 2 * pad)
    axes[0].annotate(
        "start",
        xy=(0.0, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3, -2),
        textcoords="offset points",
        fontsize=8,
        va="top",
        color="#444444",
    )

    for i, row in index.iterrows():
        label = f"#{i + 1} index scan"
        outcome = _text(row.get(c.OUTCOME))
        if not outcome and _text(row.get(LABEL_RULE)):
            outcome = "indeterminate"
        if outcome:
            label += f"\noutcome: {outcome}"
        mark = axes[0].annotate(
            label,
            xy=(row["week"], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -3),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8,
            fontweight="bold",
            color="#8c510a",
        )
        mark.set_gid(GID_INDEX)
    by_week: dict[float, list[int]] = {}
    for k, w in confirms:
        by_week.setdefault(w, []).append(k)
    for w, ks in by_week.items():
        # at the foot of the ALP panel, where no bar count or index label can sit
        axes[0].annotate(
            f"{', '.join(f'#{k}' for k in ks)} label confirmed",
            xy=(w, 0.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=7,
            va="bottom",
            color="#762a83",
        )

    origin = date2num(start)
    dates = axes[0].secondary_xaxis(
        "top", functions=(lambda w: origin + 7.0 * w, lambda d: (d - origin) / 7.0)
    )
    locator = AutoDateLocator(minticks=4, maxticks=10)
    dates.xaxis.set_major_locator(locator)
    dates.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    dates.tick_params(labelsize=8, colors="#555555")

    _draw_summary(text_ax, blocks, line_h)
    fig.text(
        left, 1 - 0.12 / height, _title(rows), ha="left", va="top", fontsize=13, fontweight="bold"
    )
    fig.text(left, 1 - 0.4 / height, note, ha="left", va="top", fontsize=8.5, color="#8a6d3b")
    return fig


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1240px;margin:1.5em auto;padding:0 1em;
color:#222} h1{font-size:1.3em;color:#1f3b57}
.warn{background:#fff3cd;border:1px solid #e0c36c;padding:.5em .8em}
img{max-width:100%} table{border-collapse:collapse;font-size:.9em;margin:1em 0}
td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
td.flare{color:#2166ac;font-weight:bold} td.progression{color:#b2182b;font-weight:bold}
td.uncertain{color:#e08214;font-weight:bold} .key{font-size:.85em;color:#555}
td.nowrap{white-space:nowrap}
"""


def timeline_html(fig: Figure, table: pd.DataFrame, title: str, *, note: str = _SYNTHETIC) -> str:
    """A self-contained HTML page: the figure (PNG inlined as base64) and the index table.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The timeline (:func:`plot_patient_timeline`).
    table : pandas.DataFrame
        The index rows (:func:`index_table`).
    title : str
        Page title.
    note : str
        The caveat shown under the title.

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> tl = seed_case_timeline()
    >>> page = timeline_html(plot_patient_timeline(tl), index_table(tl), "DeBondt2020-L1")
    >>> page.startswith("<!doctype html>"), "data:image/png;base64," in page
    (True, True)

    """
    head = "".join(f"<th>{html.escape(str(col))}</th>" for col in table.columns)
    body = []
    for _, row in table.iterrows():
        cells = []
        for col in table.columns:
            value = _text(row[col])
            cls = f' class="{value}"' if col == "decision" and value in DECISION_COLORS else ""
            if col in ("date", "label confirmed"):
                cls = ' class="nowrap"'
            text = html.escape(value)
            if col == "reasons":  # one reason a line
                text = "<br>".join(html.escape(r.strip()) for r in value.split(";") if r.strip())
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    rows = "".join(body) or f'<tr><td colspan="{len(table.columns)}">no index scan</td></tr>'
    image = figure_to_base64(fig, dpi=110)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='warn'>{html.escape(note)}</p>"
        f"<img alt='{html.escape(title)} timeline' src='data:image/png;base64,{image}'/>"
        f"<h2>Index scans</h2><table><tr>{head}</tr>{rows}</table>"
        "<p class='key'>Index scan: an imaging assessment with new bone lesions, the row the "
        "model reads. P(flare): calibrated probability that the new lesions are a flare "
        "(healing) rather than progression. Decision <b>uncertain</b>: confirm with "
        "follow-up imaging in at least six weeks. Recorded outcome: the adjudicated label "
        "in the input, when present.</p></body></html>"
    )


def worked_patient_timelines(
    bundle: Any,
    cohort: Any,
    *,
    decisions: Sequence[str] = ("flare", "progression"),
    per_decision: int = 1,
) -> dict[str, Figure]:
    """Timelines of a few worked patients of a cohort, per decision of the model.

    Scores every index row of the cohort (without reasons), picks the first
    ``per_decision`` patients given each decision, and draws each picked patient's whole
    course with the model's predictions (with reasons) on it.

    Parameters
    ----------
    bundle : flare_ml.bundle.FlareModelBundle
        The model.
    cohort : flare_ml.training.PreparedCohort
        A cohort with ``timepoints``, ``features`` and ``label``.
    decisions : sequence of str, default ("flare", "progression")
        The decisions to show a patient for (``"uncertain"`` too, if wanted).
    per_decision : int, default 1
        Patients per decision.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``"timeline_<decision>_<patient_id>.png"`` to figure, in the order of
        ``decisions``; a decision no index row got is left out.

    Examples
    --------
    >>> figs = worked_patient_timelines(bundle, cohort)  # doctest: +SKIP
    >>> list(figs)  # doctest: +SKIP
    ['timeline_flare_EXT2-014.png', 'timeline_progression_EXT2-003.png']

    """
    scores = bundle.predict_features(cohort.features, with_reasons=False)
    uln = getattr(bundle.featurizer, "alp_upper_limit_normal", DEFAULT_ALP_ULN)
    note = f"{cohort.label}. {_SYNTHETIC}"
    figures: dict[str, Figure] = {}
    for decision in decisions:
        ids = pd.unique(scores.loc[scores["decision"] == decision, c.PATIENT_ID].astype("str"))
        for pid in ids[:per_decision]:
            rows = patient_timepoints(cohort.timepoints, pid)
            figures[f"timeline_{decision}_{pid}.png"] = plot_patient_timeline(
                rows, bundle.predict(rows), alp_upper_limit_normal=uln, note=note
            )
    return figures
