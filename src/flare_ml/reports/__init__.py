"""Radiology reports to the data contract's imaging findings.

``flare_ml.reports.findings`` holds what the reader returns (:class:`ReportFindings`, each
value with its :class:`Evidence`); ``flare_ml.reports.reader`` reads reports with medspaCy
(:class:`ReportReader`, :func:`read_reports`; conventions in its docstring and
``docs/reports.md``); ``flare_ml.reports.rules`` holds the reader's vocabulary.
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
from flare_ml.reports.reader import ReportReader, check_reports, read_reports

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
    "ReportReader",
    "check_reports",
    "read_reports",
]
