"""A self-contained HTML page for auditing what the reader extracted from each report.

:func:`review_page` turns a findings frame (one row per report, with its ``text`` and its
``evidence`` JSON, as :func:`flare_ml.reports.read_reports` returns it) into one HTML page
a clinician can read through quickly: one card per report (patient, date, modality), the
report text with every evidence span highlighted in its field's colour, the span's
context visible (negated spans struck through and greyed, hedged spans marked ``?``,
historical or known spans marked ``known``), and the extracted values as a small table.
The page needs nothing from the network (inline CSS, no scripts); every piece of text is
escaped with :func:`html.escape`. :func:`review_frame` builds the frame from
:class:`~flare_ml.reports.findings.ReportFindings` objects.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

import pandas as pd

from flare_ml.data import contract as c
from flare_ml.reports.findings import (
    EVIDENCE,
    FINDINGS_UNCERTAIN,
    MODALITY,
    TEXT,
    Evidence,
    ReportFindings,
)

__all__ = ["FIELD_COLOURS", "FIELD_LABELS", "review_frame", "review_page"]

#: one background colour per imaging field (light, distinguishable, text stays readable)
FIELD_COLOURS: Final = {
    c.NEW_BONE_LESIONS: "#ffd166",
    c.NEW_LESION_MORPHOLOGY: "#f4a3a8",
    c.PROGRESSIVE_LYSIS: "#ff9f6e",
    c.KNOWN_LESION_SCLEROSIS: "#9fd8a4",
    c.NEW_EXTRAOSSEOUS_LESION: "#a8c8f5",
    c.EXTRAOSSEOUS_RESPONSE: "#c9b3ee",
    c.BASELINE_MARROW_INVOLVEMENT: "#8fdcdc",
}
#: the fields in clinical words, for the legend and the values table
FIELD_LABELS: Final = {
    c.NEW_BONE_LESIONS: "new bone lesions",
    c.NEW_LESION_MORPHOLOGY: "morphology",
    c.PROGRESSIVE_LYSIS: "progressive lysis",
    c.KNOWN_LESION_SCLEROSIS: "sclerosis of known lesions",
    c.NEW_EXTRAOSSEOUS_LESION: "new lesion outside bone",
    c.EXTRAOSSEOUS_RESPONSE: "response outside bone",
    c.BASELINE_MARROW_INVOLVEMENT: "marrow involvement",
}
_MODALITY_NAMES: Final = {
    "ct": "CT",
    "bone_scan": "Bone scan",
    "pet_ct": "PET-CT",
    "mri": "MRI",
    "radiograph": "Radiograph",
}

_CONTEXT_TAGS: Final = (
    ("negated", "neg", '<span class="tag n">no</span>'),
    ("uncertain", "hedge", '<span class="tag q">?</span>'),
    ("historical", "hist", '<span class="tag k">known</span>'),
)
#: the values table's order: the bone findings first, as a reader of bone flare looks
TABLE_ORDER: Final = (
    c.NEW_BONE_LESIONS,
    c.NEW_LESION_MORPHOLOGY,
    c.PROGRESSIVE_LYSIS,
    c.KNOWN_LESION_SCLEROSIS,
    c.BASELINE_MARROW_INVOLVEMENT,
    c.NEW_EXTRAOSSEOUS_LESION,
    c.EXTRAOSSEOUS_RESPONSE,
)

_CSS: Final = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  margin: 0; background: #f3f4f6; color: #1f2933; font-size: 15px; line-height: 1.5; }
header { background: #fff; border-bottom: 1px solid #d2d6dc; padding: 14px 28px;
  position: sticky; top: 0; z-index: 1; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
.sub { color: #52606d; font-size: 13px; margin: 0 0 8px 0; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13px;
  align-items: center; }
.legend .key { display: inline-flex; align-items: center; gap: 5px; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px;
  border: 1px solid rgba(0,0,0,.2); vertical-align: middle; }
main { padding: 18px 28px; max-width: 1240px; }
.card { background: #fff; border: 1px solid #d2d6dc; border-radius: 8px;
  margin: 0 0 16px 0; overflow: hidden; }
.card { scroll-margin-top: 150px; }
.card.flag { border-left: 5px solid #d97706; }
.sub a { color: #9a3412; }
.tag, .mod, .unc { font-family: system-ui, sans-serif; }
.card h2 { font-size: 15px; margin: 0; padding: 9px 16px; background: #f8fafc;
  border-bottom: 1px solid #e4e7eb; display: flex; gap: 14px; align-items: baseline;
  flex-wrap: wrap; }
.card h2 .mod { background: #334e68; color: #fff; border-radius: 10px; padding: 1px 9px;
  font-size: 12px; font-weight: 600; }
.card h2 .unc { background: #fde68a; color: #7c2d12; border-radius: 10px;
  padding: 1px 9px; font-size: 12px; font-weight: 600; }
.body { display: grid; grid-template-columns: minmax(0, 1fr) 330px; gap: 18px;
  padding: 12px 16px 14px 16px; }
.text { white-space: pre-wrap; font-size: 15px; line-height: 1.7; margin: 0; }
mark { border-radius: 3px; padding: 1px 2px; color: inherit; }
mark.neg { background: #e5e7eb; color: #6b7280; text-decoration: line-through;
  text-decoration-thickness: 1.5px; }
mark.hedge { outline: 2px dashed #b45309; outline-offset: 0; }
mark.hist { outline: 2px dotted #4b5563; outline-offset: 0; }
.tag { font-size: 10.5px; font-weight: 700; border-radius: 3px; padding: 0 3px;
  margin-left: 2px; vertical-align: super; line-height: 1; }
.tag.q { background: #b45309; color: #fff; }
.tag.n { background: #6b7280; color: #fff; }
.tag.k { background: #4b5563; color: #fff; }
table.values { border-collapse: collapse; width: 100%; font-size: 13.5px; align-self: start; }
table.values td { padding: 3px 6px; border-bottom: 1px solid #eef0f2; }
table.values td.v { font-weight: 600; text-align: right; white-space: nowrap; }
table.values tr.set td.v { color: #9a3412; }
table.values tr.unset td { color: #7b8794; }
.lost { grid-column: 1 / -1; font-size: 12.5px; color: #9a3412; }
footer { color: #52606d; font-size: 12px; padding: 0 28px 24px 28px; }
"""


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def _evidence_list(value: Any) -> list[dict[str, Any]]:
    """The evidence of one report as dicts (from JSON text, Evidence objects or dicts)."""
    if _missing(value) or value == "":
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return [e.to_dict() if isinstance(e, Evidence) else dict(e) for e in value]


def _shown_value(name: str, value: Any) -> tuple[str, bool]:
    """The value as the table shows it, and whether it is a positive finding."""
    if _missing(value):
        return "not stated", False
    if name in c.BOOL_COLUMNS:
        return ("yes", True) if bool(value) else ("no", False)
    if name == c.NEW_BONE_LESIONS:
        return str(int(value)), int(value) > 0
    return str(value), str(value) not in ("none",)


def _marks(text: str, evidence: Sequence[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The report text as HTML with the evidence spans marked; spans not found in it."""
    placed = []
    lost = []
    for e in evidence:
        start, end = e.get("start"), e.get("end")
        ok = isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)
        (placed if ok else lost).append(e)
    cuts = sorted({0, len(text), *(e["start"] for e in placed), *(e["end"] for e in placed)})
    parts = []
    for left, right in itertools.pairwise(cuts):
        piece = html.escape(text[left:right])
        covering = [e for e in placed if e["start"] <= left and right <= e["end"]]
        if not covering:
            parts.append(piece)
            continue
        # one mark per stretch of text: the colours of every field it supports (the
        # narrowest span's on top, the others as bands below), the context of its spans,
        # and each context tag once, where a span ends
        covering.sort(key=lambda e: e["end"] - e["start"])
        fields = list(dict.fromkeys(str(e.get("field", "")) for e in covering))
        colours = [FIELD_COLOURS.get(f, "#e5e7eb") for f in fields]
        classes = [f"f-{f}" for f in fields]
        flags = {flag for flag, _, _ in _CONTEXT_TAGS if any(e.get(flag) for e in covering)}
        ends = {flag for flag in flags if any(e.get(flag) and e["end"] == right for e in covering)}
        classes += [css for flag, css, _ in _CONTEXT_TAGS if flag in flags]
        tags = "".join(tag for flag, _, tag in _CONTEXT_TAGS if flag in ends)
        if "negated" in flags:  # grey and struck, the fields' colours kept as underlines
            style = "box-shadow: " + ", ".join(
                f"inset 0 -{3 * (i + 1)}px 0 {colour}" for i, colour in enumerate(colours)
            )
        elif len(colours) == 1:
            style = f"background:{colours[0]}"
        else:
            band = 100 - 22 * (len(colours) - 1)
            stops = [f"{colours[0]} 0 {band}%"]
            for i, colour in enumerate(colours[1:]):
                stops.append(f"{colour} {band + 22 * i}% {band + 22 * (i + 1)}%")
            style = f"background:linear-gradient(to bottom, {', '.join(stops)})"
        titles = []
        for e in covering:
            field = str(e.get("field", ""))
            title = f"{FIELD_LABELS.get(field, field)} = {e.get('value')}"
            context = [w for w in ("negated", "uncertain", "historical") if e.get(w)]
            if context:
                title += " (" + ", ".join(context) + ")"
            if e.get("section"):
                title += f"; section {e['section']}"
            titles.append(title)
        parts.append(
            f'<mark class="{html.escape(" ".join(classes))}" style="{style}" '
            f'title="{html.escape(" | ".join(dict.fromkeys(titles)))}">{piece}{tags}</mark>'
        )
    return "".join(parts), lost


def _card(row: dict[str, Any], number: int) -> str:
    text = "" if _missing(row.get(TEXT)) else str(row[TEXT])
    evidence = _evidence_list(row.get(EVIDENCE))
    body, lost = _marks(text, evidence)
    date = row.get(c.ASSESSMENT_DATE)
    date_text = "" if _missing(date) else str(pd.Timestamp(date).date())
    modality = row.get(MODALITY)
    head = [
        f"<span>Patient <b>{html.escape(str(row.get(c.PATIENT_ID, '')))}</b></span>",
        f"<span>{html.escape(date_text)}</span>",
    ]
    if not _missing(modality) and str(modality):
        name = _MODALITY_NAMES.get(str(modality), str(modality))
        head.append(f'<span class="mod">{html.escape(name)}</span>')
    uncertain = not _missing(row.get(FINDINGS_UNCERTAIN)) and bool(row.get(FINDINGS_UNCERTAIN))
    if uncertain:
        head.append('<span class="unc">new lesions hedged: findings_uncertain</span>')
    with_evidence = {str(e.get("field")) for e in evidence}
    rows = []
    for name in TABLE_ORDER:
        if name not in row:
            continue
        shown, positive = _shown_value(name, row[name])
        swatch = (
            f'<span class="swatch" style="background:{FIELD_COLOURS[name]}"></span>'
            if name in with_evidence
            else '<span class="swatch" style="background:#fff"></span>'
        )
        rows.append(
            f'<tr class="{"set" if positive else "unset"}"><td>{swatch} '
            f"{html.escape(FIELD_LABELS[name])}</td>"
            f'<td class="v">{html.escape(shown)}</td></tr>'
        )
    if FINDINGS_UNCERTAIN in row:
        hedged = "yes" if uncertain else "no"
        rows.append(
            f'<tr class="{"set" if uncertain else "unset"}"><td><span class="swatch" '
            f'style="background:#fff"></span> new lesions hedged</td>'
            f'<td class="v">{hedged}</td></tr>'
        )
    lost_html = ""
    if lost:
        spans = "; ".join(
            f"{FIELD_LABELS.get(str(e.get('field')), e.get('field'))}: "
            f"\u201c{e.get('text', '')}\u201d"
            for e in lost
        )
        lost_html = (
            f'<div class="lost">Evidence not located in the text: {html.escape(spans)}</div>'
        )
    return (
        f'<section class="card{" flag" if uncertain else ""}" id="r{number}">'
        f"<h2>{''.join(head)}</h2>"
        f'<div class="body"><p class="text">{body}</p>'
        f'<table class="values">{"".join(rows)}</table>{lost_html}</div></section>'
    )


def _label(row: dict[str, Any]) -> str:
    date = row.get(c.ASSESSMENT_DATE)
    day = "" if _missing(date) else str(pd.Timestamp(date).date())
    return f"{row.get(c.PATIENT_ID, '')} {day}".strip()


def review_page(findings: pd.DataFrame, *, title: str = "Report findings: review") -> str:
    """Render a findings frame as one self-contained HTML page.

    Parameters
    ----------
    findings : pandas.DataFrame
        One row per report: ``patient_id``, ``assessment_date``, optionally ``modality``,
        ``text``, the imaging columns, ``findings_uncertain`` and ``evidence`` (JSON text
        of :meth:`Evidence.to_dict` dicts, or a list of :class:`Evidence`).
    title : str
        The page's heading (the source file's name, for example).

    Returns
    -------
    str
        The HTML document (inline CSS; no scripts, no external assets).

    Examples
    --------
    >>> from flare_ml.reports.findings import Evidence, ReportFindings
    >>> text = "No new lytic lesion. Two new blastic lesions in T7 and T9."
    >>> found = ReportFindings(2, "blastic", False, False, False, None, False, False, (
    ...     Evidence("new_bone_lesions", 2, 21, 45, text[21:45], text[21:], None),
    ...     Evidence("new_lesion_morphology", "lytic", 3, 19, text[3:19], text[:20], None,
    ...              negated=True)))
    >>> page = review_page(review_frame([text], [found], ["P<1>"], ["2024-03-01"]))
    >>> "P&lt;1&gt;" in page, page.count('<mark class="f-'), "line-through" in page
    (True, 2, True)

    """
    records = findings.to_dict("records")
    cards = "\n".join(_card(row, i) for i, row in enumerate(records))
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{colour}"></span>'
        f"{html.escape(FIELD_LABELS[name])}</span>"
        for name, colour in FIELD_COLOURS.items()
    )
    legend += (
        '<span class="key"><mark class="neg">struck</mark><span class="tag n">no</span> negated'
        '</span><span class="key"><mark class="hedge" style="background:#fff">dashed</mark>'
        '<span class="tag q">?</span> hedged</span><span class="key"><mark class="hist" '
        'style="background:#fff">dotted</mark><span class="tag k">known</span> historical or '
        'known lesion</span><span class="key">a span of two fields: two colour bands</span>'
    )
    hedged = [
        i
        for i, r in enumerate(records)
        if not _missing(r.get(FINDINGS_UNCERTAIN)) and r.get(FINDINGS_UNCERTAIN)
    ]
    counts = html.escape(
        f"{len(records)} report(s); {len(hedged)} with hedged new lesions (orange edge). "
        "Hover a highlight for its field, value, context and section."
    )
    if hedged:
        links = ", ".join(
            f'<a href="#r{i}">{html.escape(_label(records[i]))}</a>' for i in hedged[:20]
        )
        more = f" and {len(hedged) - 20} more" if len(hedged) > 20 else ""
        counts += f"<br>Hedged: {links}{more}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{html.escape(title)}</h1><p class="sub">{counts}</p>'
        f'<div class="legend">{legend}</div></header><main>{cards}</main>'
        "<footer>Written by flare-ml findings. Check each highlighted span against the "
        "value beside it.</footer></body></html>\n"
    )


def review_frame(
    texts: Sequence[str],
    findings: Iterable[ReportFindings],
    patient_ids: Sequence[Any],
    dates: Sequence[Any],
    modalities: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """The frame :func:`review_page` reads, from reports and their :class:`ReportFindings`.

    Parameters
    ----------
    texts : sequence of str
        The report texts.
    findings : iterable of ReportFindings
        What the reader returned for each, in the same order.
    patient_ids, dates : sequence
        Each report's patient and date.
    modalities : sequence, optional
        Each report's modality.

    Returns
    -------
    pandas.DataFrame
        One row per report: the keys, ``modality`` (if given), ``text`` and
        :meth:`ReportFindings.to_row`.

    Examples
    --------
    >>> from flare_ml.reports.findings import ReportFindings
    >>> f = ReportFindings(0, "none", False, False, False, "SD", False, False)
    >>> review_frame(["Stable."], [f], ["P1"], ["2024-01-02"]).loc[0, "extraosseous_response"]
    'SD'

    """
    rows = []
    for i, found in enumerate(findings):
        row: dict[str, Any] = {c.PATIENT_ID: patient_ids[i], c.ASSESSMENT_DATE: dates[i]}
        if modalities is not None:
            row[MODALITY] = modalities[i]
        row[TEXT] = texts[i]
        row.update(found.to_row())
        rows.append(row)
    return pd.DataFrame(rows)
