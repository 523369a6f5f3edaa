"""Radiology reports to the data contract's imaging findings (issue 14; in progress).

``flare_ml.reports.findings`` holds what the reader returns (:class:`ReportFindings`, each
value with its :class:`Evidence`).
"""

from flare_ml.reports.findings import (
    EVIDENCE,
    FINDINGS_UNCERTAIN,
    IMAGING_FINDINGS,
    MODALITIES,
    MODALITY,
    REPORT_KEY,
    TEXT,
    Evidence,
    ReportFindings,
)

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
