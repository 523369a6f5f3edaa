"""A site's records (OMOP CDM, FHIR R4) to a timepoint table in the data contract.

The adapters (:mod:`flare_ml.records.omop`, :mod:`flare_ml.records.fhir`) extract
:class:`~flare_ml.records.events.ClinicalEvents`; :func:`assemble_timepoints` turns them into
a validated timepoint table through the shipped mapping tables
(:mod:`flare_ml.records.mappings`), the report reader (:mod:`flare_ml.reports`) and the lab
adapter, and reports what it dropped and why. See ``docs/records.md``.
"""

from flare_ml.records.events import ClinicalEvents, Dropped

__all__ = ["ClinicalEvents", "Dropped"]
