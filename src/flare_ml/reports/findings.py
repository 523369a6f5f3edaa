"""What the report reader returns: one report's imaging findings, each with its evidence.

A radiology report states the imaging columns of the data contract in words; the reader
(:mod:`flare_ml.reports`) turns it into one :class:`ReportFindings` per report, and every
value it sets carries the :class:`Evidence` it came from (the span, its sentence, its
section and its ConText: negated, hedged, historical), so a person can audit each
extraction. This module holds only these shared structures and the report table's column
names; the reading itself, the conventions and the review page live beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Final

from flare_ml.data import contract as c

#: the report table's columns (``modality`` optional; any other column is kept)
TEXT: Final = "text"
MODALITY: Final = "modality"
REPORT_KEY: Final = (c.PATIENT_ID, c.ASSESSMENT_DATE)
#: the modalities a report table may name (``modality``; empty: not stated). A bone scan
#: sees tracer uptake, not bone density: it cannot tell blastic from lytic (``unknown``)
MODALITIES: Final = ("ct", "bone_scan", "pet_ct", "mri", "radiograph")
#: the output's extra columns
FINDINGS_UNCERTAIN: Final = "findings_uncertain"
EVIDENCE: Final = "evidence"
#: the contract's imaging columns a report states, in contract order
IMAGING_FINDINGS: Final = (
    c.EXTRAOSSEOUS_RESPONSE,
    c.NEW_EXTRAOSSEOUS_LESION,
    c.NEW_BONE_LESIONS,
    c.NEW_LESION_MORPHOLOGY,
    c.PROGRESSIVE_LYSIS,
    c.KNOWN_LESION_SCLEROSIS,
    c.BASELINE_MARROW_INVOLVEMENT,
)


@dataclass(frozen=True)
class Evidence:
    """The words one extracted value came from.

    Parameters
    ----------
    field : str
        The contract column the span supports (one of :data:`IMAGING_FINDINGS`).
    value : object
        The value the span supports for that column (a count, a morphology, a bool, a
        RECIST code).
    start, end : int
        Character offsets of the span in the report text (``text[start:end]``).
    text : str
        The span.
    sentence : str
        The sentence the span is in.
    section : str or None
        The report section (``findings``, ``impression``, ``comparison``, ...), if any.
    negated, uncertain, historical : bool
        The span's ConText: negated ("no new lesion"), hedged ("possible new focus"),
        historical or known ("previously described").

    Examples
    --------
    >>> e = Evidence("new_bone_lesions", 2, 0, 19, "new blastic lesions", "New blastic "
    ...              "lesions in T7 and T9.", "impression", False, False, False)
    >>> e.to_dict()["field"]
    'new_bone_lesions'

    """

    field: str
    value: Any
    start: int
    end: int
    text: str
    sentence: str
    section: str | None = None
    negated: bool = False
    uncertain: bool = False
    historical: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The evidence as a JSON-ready dict (its fields, in order)."""
        # a flat read of the fields: dataclasses.asdict deep-copies recursively, which
        # cost about 5% of the reader's time per report in read_reports (38 vs 14 us)
        return {name: getattr(self, name) for name in _EVIDENCE_FIELDS}


_EVIDENCE_FIELDS: Final = tuple(f.name for f in fields(Evidence))


@dataclass(frozen=True)
class ReportFindings:
    """The imaging findings of one report, in the data contract's vocabulary.

    Parameters
    ----------
    new_bone_lesions : int
        New bone lesions (0 when none are new; counting conventions in
        :mod:`flare_ml.reports`).
    new_lesion_morphology : str
        ``none``, ``blastic``, ``lytic``, ``mixed`` or ``unknown`` (the modality cannot
        tell).
    progressive_lysis, known_lesion_sclerosis, new_extraosseous_lesion : bool
        As the contract defines them; False when the report does not state them.
    extraosseous_response : str or None
        A RECIST code (``CR``, ``PR``, ``SD``, ``PD``, ``NE``) or ``baseline``, only when
        the report states it; None otherwise.
    baseline_marrow_involvement : bool
        Diffuse marrow uptake or infiltration stated.
    findings_uncertain : bool
        The new-lesion statement is hedged (possible, probable, equivocal, ...).
    evidence : tuple of Evidence
        Every span a value above came from.

    Examples
    --------
    >>> f = ReportFindings(2, "blastic", False, False, False, None, False, False)
    >>> f.to_row()["new_lesion_morphology"], f.to_row()["evidence"]
    ('blastic', '[]')

    """

    new_bone_lesions: int
    new_lesion_morphology: str
    progressive_lysis: bool
    known_lesion_sclerosis: bool
    new_extraosseous_lesion: bool
    extraosseous_response: str | None
    baseline_marrow_involvement: bool
    findings_uncertain: bool
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)

    def to_row(self) -> dict[str, Any]:
        """The findings as one output row.

        The imaging columns, ``findings_uncertain`` and ``evidence`` (a JSON list of
        :meth:`Evidence.to_dict`).
        """
        row: dict[str, Any] = {name: getattr(self, name) for name in IMAGING_FINDINGS}
        row[FINDINGS_UNCERTAIN] = self.findings_uncertain
        row[EVIDENCE] = json.dumps([e.to_dict() for e in self.evidence])
        return row


__all__ = [
    "EVIDENCE",
    "FINDINGS_UNCERTAIN",
    "IMAGING_FINDINGS",
    "MODALITIES",
    "MODALITY",
    "REPORT_KEY",
    "TEXT",
    "Evidence",
    "ReportFindings",
]
