"""Simulated radiology reports: each imaging row's findings in a radiologist's words.

Real timepoint tables start from report text (issue 14), so the simulator writes the
report each simulated scan would have had: for every imaging row of a timepoint table, one
report (``patient_id``, ``assessment_date``, ``modality``, ``text``; the columns of
:mod:`flare_ml.reports.findings`) that states the row's new bone lesions (count and
morphology), progressive lysis, sclerosis of known lesions, new extraosseous lesions, the
extraosseous response and, on baseline rows, marrow involvement, in varied clinical
phrasing: negations, hedges, count words, site lists, FINDINGS / IMPRESSION sections,
telegraphic impressions, and bone scans, which see uptake, not density, and so cannot state
the morphology. The writer follows the reading conventions of issue 14 (README, "Reports"):
it records, beside each text, what the text states under them (:attr:`SimulatedReports.stated`),
which differs from the table only where a convention loses information ("several" = 2,
"numerous" = 10, a bone scan's morphology ``unknown``, a finding the table leaves empty and
the report does not mention, marrow involvement stated at baseline only).
:func:`round_trip_agreement` compares what a reader extracted with the table, field by
field, and counts the differences those losses explain. Its randomness is its own
(``numpy.random.default_rng`` seeded from the simulate seed and :data:`REPORT_STREAM`), so
writing reports never changes a cohort. Everything here is synthetic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.reports.findings import FINDINGS_UNCERTAIN, IMAGING_FINDINGS, MODALITY, TEXT

__all__ = [
    "DEFAULT_BONE_SCAN_SHARE",
    "REPORT_COLUMNS",
    "REPORT_STREAM",
    "SimulatedReports",
    "reports_path",
    "round_trip_agreement",
    "simulate_reports",
    "write_reports",
]

#: the report table's columns, in order
REPORT_COLUMNS: Final = (c.PATIENT_ID, c.ASSESSMENT_DATE, MODALITY, TEXT)
#: share of follow-up scans reported as bone scans (morphology ``unknown`` when new)
DEFAULT_BONE_SCAN_SHARE: Final = 0.3
#: second word of the reports' seed sequence: a stream apart from the cohort's generator
REPORT_STREAM: Final = 14
#: share of counts 3-9 written "several" / "multiple" / "a few" (read as 2)
VAGUE_COUNT_SHARE: Final = 0.15
#: share of counts of 10 or more written "numerous" and the like (read as 10)
NUMEROUS_SHARE: Final = 0.6
#: share of new-lesion statements hedged on the lesions ("possible new ...")
HEDGE_SHARE: Final = 0.1

_ARTICLE = re.compile(r"\ba (?=[aeiou])")
_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_VAGUE = ("several", "multiple", "a few")
_NUMEROUS = ("numerous", "innumerable", "countless", "a large number of")
_HEDGES = ("possible", "probable", "equivocal", "indeterminate")
_CAUSE = (
    ", likely flare",
    ", favoured to represent flare phenomenon",
    ", likely treatment-related",
)
_SITES = (
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "C5",
    "C6",
    "S1",
    "the sternum",
    "the manubrium",
    "the left iliac bone",
    "the right iliac bone",
    "the left 6th rib",
    "the right 4th rib",
    "the right 9th rib",
    "the left femoral neck",
    "the right acetabulum",
    "the left scapula",
    "the right humeral head",
    "the sacrum",
)
#: regions for many lesions, and the sites each lists (the count a vague word or a bare
#: plural states is at least that: "several new foci in the spine, ribs and sternum" = 3)
_REGION_SITES = {
    " in the spine, ribs and sternum": 3,
    " throughout the axial skeleton": 1,
    " in the thoracolumbar spine and pelvis": 2,
    " in the spine and both iliac bones": 2,
    "": 1,
}
_REGIONS = tuple(_REGION_SITES)
_MORPHOLOGY_WORDS = {
    "blastic": ("blastic", "sclerotic", "osteoblastic", "osteosclerotic", "dense sclerotic"),
    "lytic": ("lytic", "osteolytic", "destructive lytic"),
    "mixed": ("mixed lytic-sclerotic", "mixed lytic and sclerotic", "mixed"),
}
_NOUNS = (
    ("lesion", "lesions"),
    ("bone lesion", "bone lesions"),
    ("osseous lesion", "osseous lesions"),
    ("metastasis", "metastases"),
    ("focus", "foci"),
    ("bone metastasis", "mets"),
)
_SCAN_NOUNS = (
    ("focus of increased tracer uptake", "foci of increased tracer uptake"),
    ("area of abnormal radiotracer accumulation", "areas of abnormal radiotracer accumulation"),
    ("hot spot", "hot spots"),
)
_NO_NEW_BONE = (
    "No new osseous lesions.",
    "No new lytic or blastic lesions.",
    "No new bone metastases.",
    "No evidence of new osseous metastatic disease.",
    "There are no new bone lesions.",
    "No new sclerotic or lytic foci.",
)
_NO_NEW_SCAN = (
    "No new foci of abnormal tracer uptake.",
    "No new scintigraphic evidence of osseous metastases.",
    "No new areas of increased radiotracer accumulation.",
)
_ORGANS = ("hepatic", "pulmonary", "nodal", "soft tissue")
_RESPONSE = {
    "CR": (
        "Complete response of the extraosseous disease.",
        "The {organ} target lesions have resolved: complete response (RECIST 1.1).",
    ),
    "PR": (
        "Partial response of the {organ} metastases.",
        "Extraosseous disease: partial response (RECIST 1.1).",
        "Decrease in size of the {organ} target lesions, consistent with partial response.",
    ),
    "SD": (
        "Stable disease outside the skeleton (RECIST SD).",
        "The {organ} target lesions are stable: stable disease.",
        "Extraosseous disease: stable disease.",
    ),
    "PD": (
        "Progression of the {organ} metastases (PD).",
        "Extraosseous disease: progressive disease (RECIST 1.1).",
    ),
    "NE": (
        "Extraosseous response not evaluable (NE).",
        "Response of the extraosseous disease cannot be assessed (NE).",
    ),
}
_RESPONSE_SHORT = {
    "CR": "CR soft tissue disease.",
    "PR": "PR {organ}.",
    "SD": "SD extraosseous.",
    "PD": "PD {organ}.",
    "NE": "Extraosseous response NE.",
}
_BASELINE = (
    "Baseline examination for response assessment.",
    "Baseline staging study.",
    "Baseline for RECIST 1.1 response assessment.",
)
_NEW_EXTRAOSSEOUS = (  # (findings sentence, impression item)
    (
        "New {size} mm hypodense lesion in hepatic segment {seg}, consistent with metastasis.",
        "New liver metastasis.",
    ),
    (
        "New {size} mm nodule in the right lower lobe, suspicious for metastasis.",
        "New pulmonary nodule, suspicious for metastasis.",
    ),
    (
        "New enlarged subcarinal lymph node ({size} mm short axis), likely metastatic.",
        "New nodal metastasis.",
    ),
    ("New {size} mm left adrenal nodule, consistent with metastasis.", "New adrenal metastasis."),
    (
        "New nodular pleural thickening on the left, consistent with pleural metastases.",
        "New pleural metastases.",
    ),
)
_NO_NEW_EXTRAOSSEOUS = (
    "No new extraosseous lesions.",
    "No new hepatic, pulmonary or nodal lesions.",
    "No new soft tissue metastases.",
)
_LYSIS = (
    "Progressive lytic destruction of the known {site} lesion.",
    "The known lytic {site} lesion has enlarged, with increasing cortical destruction.",
    "Increasing osteolysis of the known {site} metastasis.",
)
_NO_LYSIS = (
    "No progressive destruction of the known bone lesions.",
    "Known osseous lesions without progressive lysis.",
)
_SCLEROSIS = (
    "Increased sclerosis of the known lytic {site} lesion, likely treatment response.",
    "New sclerotic rim around the known lytic {site} lesion.",
    "Sclerotic healing of the known lytic {site} and {site2} metastases.",
    "The known lytic lesions show increasing sclerosis.",
)
_NO_SCLEROSIS = ("The known lytic lesions show no new sclerosis.",)
_UNCHANGED = ("The known bone metastases are unchanged.", "Known osseous lesions are stable.")
_SCAN_KNOWN_UPTAKE = "Increased tracer uptake in the known {site} lesion."
_MARROW = (
    "Diffuse heterogeneous marrow infiltration throughout the axial skeleton.",
    "Diffusely increased marrow uptake in the axial skeleton.",
    "Diffuse bone marrow involvement.",
)
_NO_MARROW = ("No diffuse marrow involvement.",)
_KNOWN_BONE = "Osseous metastases in {site} and {site2}."
_EXAMS = {
    "ct": ("CT chest, abdomen and pelvis with contrast", "CT CAP", "CT thorax/abdomen"),
    "pet_ct": ("FDG PET-CT, skull base to mid-thigh", "PET/CT"),
    "bone_scan": ("Whole-body bone scintigraphy (Tc-99m MDP)", "Bone scan"),
}


@dataclass(frozen=True)
class SimulatedReports:
    """The simulated report table and what each report states.

    Attributes
    ----------
    reports : DataFrame
        :data:`REPORT_COLUMNS`, one row per imaging row of the timepoint table, in its order.
    stated : DataFrame
        ``patient_id``, ``assessment_date``, ``modality``, the contract's imaging columns
        (:data:`~flare_ml.reports.findings.IMAGING_FINDINGS`) and ``findings_uncertain``:
        what a reader following the conventions of issue 14 extracts from each text.
        Equal to the timepoint table except where a convention loses information.

    """

    reports: pd.DataFrame
    stated: pd.DataFrame


def _choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _join_sites(sites: Sequence[str]) -> str:
    """``"T7"``, ``"T7 and T9"``, ``"T7, T9 and the left iliac bone"``."""
    if len(sites) == 1:
        return sites[0]
    return f"{', '.join(sites[:-1])} and {sites[-1]}"


def _sites(rng: np.random.Generator, n: int) -> list[str]:
    return [str(s) for s in rng.choice(_SITES, size=n, replace=False)]


def _number(rng: np.random.Generator, n: int) -> str:
    """``n`` as digits or as a word (words up to nine)."""
    return _WORDS[n] if n < len(_WORDS) and rng.random() < 0.5 else str(n)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class _Row:
    """One imaging row's values, as the writer needs them."""

    patient_id: str
    date: pd.Timestamp
    previous: pd.Timestamp | None
    baseline: bool
    cancer: str
    therapy: str
    response: str | None
    new_extraosseous: bool | None
    sld: float | None
    lesions: int
    morphology: str
    lysis: bool | None
    sclerosis: bool | None
    marrow: bool | None


def _flag(value: Any) -> bool | None:
    return None if value is None or pd.isna(value) else bool(value)


def _text_value(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


class _Writer:
    """Writes one report per row from its own generator; records what the text states."""

    def __init__(self, rng: np.random.Generator, bone_scan_share: float) -> None:
        self.rng = rng
        self.bone_scan_share = bone_scan_share

    def modality(self, row: _Row) -> str:
        rng = self.rng
        if row.baseline:
            return "pet_ct" if rng.random() < (0.6 if row.cancer == "nsclc" else 0.3) else "ct"
        if rng.random() < self.bone_scan_share:
            return "bone_scan"
        return "pet_ct" if rng.random() < 0.2 else "ct"

    # --- new bone lesions ----------------------------------------------------------------
    def bone(self, row: _Row, modality: str) -> tuple[str, str, dict[str, Any]]:
        """The bone sentence (findings), its impression item and the stated values."""
        rng = self.rng
        n, scan = row.lesions, modality == "bone_scan"
        if n == 0:
            sentence = _choice(rng, _NO_NEW_SCAN if scan else _NO_NEW_BONE)
            short = "No new bone mets." if rng.random() < 0.3 else sentence
            stated = {c.NEW_BONE_LESIONS: 0, c.NEW_LESION_MORPHOLOGY: "none"}
            return sentence, short, {**stated, FINDINGS_UNCERTAIN: False}
        if row.morphology == "mixed" and not scan and 2 <= n <= 9 and rng.random() < 0.25:
            k = int(rng.integers(1, n))  # new lesions of both kinds: the counts add up
            noun = _choice(rng, _NOUNS[:3])
            first = f"{_number(rng, k)} new sclerotic {noun[k > 1]}"
            second = f"{_number(rng, n - k)} new lytic {noun[n - k > 1]}"
            sentence = _cap(f"{first} and {second}{_choice(rng, _REGIONS)}.")
            stated = {c.NEW_BONE_LESIONS: n, c.NEW_LESION_MORPHOLOGY: "mixed"}
            return sentence, sentence, {**stated, FINDINGS_UNCERTAIN: False}
        count, said, sites = self._count(n)
        hedged = rng.random() < HEDGE_SHARE
        new = f"{_choice(rng, _HEDGES)} new" if hedged else "new"
        if scan:
            noun = _choice(rng, _SCAN_NOUNS)
            adjective = ""
        elif row.morphology == "unknown":
            noun, adjective = _choice(rng, _NOUNS[1:3]), ""
        else:
            noun = _choice(rng, _NOUNS)
            adjective = _choice(rng, _MORPHOLOGY_WORDS[row.morphology]) + " "
        plural = said > 1 or sites is not None
        words = f"{new} {adjective}{noun[1] if plural else noun[0]}"
        if sites is not None:
            phrase = f"{words} in {_join_sites(sites)}"
        elif said == 1:
            site = f" in {_sites(rng, 1)[0]}" if rng.random() < 0.7 else ""
            phrase = f"{count} {words}{site}"
        else:
            if said <= 4 and count not in (*_VAGUE, *_NUMEROUS):
                where = f" in {_join_sites(_sites(rng, said))}" if rng.random() < 0.5 else ""
            else:  # many lesions: a region, not a list
                where = _choice(rng, _REGIONS)
                if count in (*_VAGUE, ""):  # "more when more sites are listed"
                    said = max(said, _REGION_SITES[where])
            phrase = f"{count} {words}{where}".lstrip()
        cause = _choice(rng, _CAUSE) if rng.random() < 0.2 and not hedged else ""
        phrase = _ARTICLE.sub("an ", phrase)
        sentence = _cap(f"{phrase}{cause}.")
        if scan and rng.random() < 0.5:
            sentence += " No CT correlate available."
        morphology = "unknown" if scan else row.morphology
        stated = {c.NEW_BONE_LESIONS: said, c.NEW_LESION_MORPHOLOGY: morphology}
        return sentence, _cap(f"{phrase}{cause}."), {**stated, FINDINGS_UNCERTAIN: hedged}

    def _count(self, n: int) -> tuple[str, int, list[str] | None]:
        """How the count is written: (count words, the count they state, site list)."""
        rng = self.rng
        if n == 1:
            return _choice(rng, ("a", "one", "a single", "1")), 1, None
        if n >= 10:
            if rng.random() < NUMEROUS_SHARE:
                return _choice(rng, _NUMEROUS), 10, None
            return str(n), n, None
        if n >= 3 and rng.random() < VAGUE_COUNT_SHARE:
            return _choice(rng, _VAGUE), 2, None
        if n <= 4 and rng.random() < 0.3:  # a site list counts each site
            return "", n, _sites(rng, n)
        if n == 2 and rng.random() < 0.25:  # "several" = "a few" = a bare plural = 2
            return _choice(rng, ("several", "a few", "")), 2, None
        return _number(rng, n), n, None

    # --- the other findings ----------------------------------------------------------------
    def response(self, row: _Row, modality: str) -> tuple[list[str], list[str], str | None]:
        rng = self.rng
        if modality == "bone_scan":
            return [], [], None
        if row.baseline:
            sentence = _choice(rng, _BASELINE)
            return [sentence], [sentence], "baseline"
        if row.response is None:
            return [], [], None
        organ = _choice(rng, _ORGANS)
        sentence = _choice(rng, _RESPONSE[row.response]).format(organ=organ)
        short = _RESPONSE_SHORT[row.response].format(organ=organ)
        if row.lesions > 0 and row.response != "PD" and rng.random() < 0.15:
            # an overall response driven by the new bone lesions, and the extraosseous one
            overall = "Overall: progressive disease because of the skeletal findings."
            return [sentence], [overall, sentence], row.response
        return [sentence], [short if rng.random() < 0.4 else sentence], row.response

    def extraosseous(self, row: _Row, modality: str) -> tuple[list[str], list[str], bool]:
        rng = self.rng
        if modality == "bone_scan" or row.new_extraosseous is None:
            return [], [], False
        if row.new_extraosseous:
            sentence, short = _choice(rng, _NEW_EXTRAOSSEOUS)
            sentence = sentence.format(
                size=int(rng.integers(6, 25)), seg=_choice(rng, ("IV", "VI", "VII", "VIII"))
            )
            return [sentence], [short], True
        if row.baseline or rng.random() < 0.4:
            return [], [], False
        return [_choice(rng, _NO_NEW_EXTRAOSSEOUS)], [], False

    def known(self, row: _Row, modality: str) -> tuple[list[str], list[str], bool, bool]:
        """Progressive lysis and sclerosis of known lesions: sentences, stated values."""
        rng = self.rng
        site = _sites(rng, 1)[0].removeprefix("the ")  # "the known sternum lesion"
        if modality == "bone_scan":
            if row.sclerosis and rng.random() < 0.5:  # uptake is not sclerosis
                return [_SCAN_KNOWN_UPTAKE.format(site=site)], [], False, False
            return [], [], False, False
        out, short = [], []
        if row.lysis:
            sentence = _choice(rng, _LYSIS).format(site=site)
            out.append(sentence)
            short.append(sentence)
        if row.sclerosis:
            two = [x.removeprefix("the ") for x in _sites(rng, 2)]
            sentence = _choice(rng, _SCLEROSIS).format(site=two[0], site2=two[1])
            out.append(sentence)
            short.append(sentence)
        if row.lysis is False and row.sclerosis is False and rng.random() < 0.4:
            out.append(_choice(rng, _UNCHANGED))
        elif row.lysis is False and not row.sclerosis and rng.random() < 0.3:
            out.append(_choice(rng, _NO_LYSIS))
        elif row.sclerosis is False and row.lysis and rng.random() < 0.3:
            out.extend(_NO_SCLEROSIS)
        return out, short, bool(row.lysis), bool(row.sclerosis)

    def marrow(self, row: _Row) -> tuple[list[str], bool]:
        rng = self.rng
        if not row.baseline or row.marrow is None:
            return [], False
        if row.marrow:
            return [_choice(rng, _MARROW)], True
        return ([_choice(rng, _NO_MARROW)] if rng.random() < 0.3 else []), False

    # --- the report ----------------------------------------------------------------------
    def report(self, row: _Row) -> tuple[str, str, dict[str, Any]]:
        """The modality, the text and the stated values of one row."""
        rng = self.rng
        modality = self.modality(row)
        response, response_short, stated_response = self.response(row, modality)
        extra, extra_short, stated_extra = self.extraosseous(row, modality)
        if row.baseline:
            two = _sites(rng, 2)
            bone = _KNOWN_BONE.format(site=two[0], site2=two[1])
            bone_short = "Osseous metastatic disease as described."
            bone_stated = {
                c.NEW_BONE_LESIONS: 0,
                c.NEW_LESION_MORPHOLOGY: "none",
                FINDINGS_UNCERTAIN: False,
            }
        else:
            bone, bone_short, bone_stated = self.bone(row, modality)
        known, known_short, lysis, sclerosis = self.known(row, modality)
        marrow, stated_marrow = self.marrow(row)
        sld = []
        if modality != "bone_scan" and row.sld is not None and not row.baseline:
            if rng.random() < 0.5:
                sld = [f"Sum of target lesion diameters {row.sld:.0f} mm."]
        findings = [*extra, *sld, *response, bone, *known, *marrow]
        impression = [bone_short, *response_short, *extra_short, *known_short]
        if row.baseline:
            impression = [*response_short, bone_short, *marrow]
        text = self._layout(row, modality, findings, impression)
        stated = {
            c.EXTRAOSSEOUS_RESPONSE: stated_response,
            c.NEW_EXTRAOSSEOUS_LESION: stated_extra,
            **bone_stated,
            c.PROGRESSIVE_LYSIS: lysis,
            c.KNOWN_LESION_SCLEROSIS: sclerosis,
            c.BASELINE_MARROW_INVOLVEMENT: stated_marrow,
        }
        return modality, text, stated

    def _layout(self, row: _Row, modality: str, findings: list[str], impression: list[str]) -> str:
        rng = self.rng
        exam = _choice(rng, _EXAMS[modality])
        cancer = c.CANCER_NAMES.get(row.cancer, "cancer")
        therapy = c.THERAPY_NAMES.get(row.therapy, "therapy")
        if row.baseline or row.previous is None:
            indication = f"Staging of metastatic {cancer} before {therapy}."
            comparison = "None."
        else:
            indication = f"Restaging, metastatic {cancer} on {therapy}."
            comparison = f"{row.previous:%Y-%m-%d}."
        layout = rng.random()
        if layout < 0.5:  # structured, numbered impression
            items = "\n".join(f"{i}. {item}" for i, item in enumerate(impression, 1))
            return (
                f"EXAM: {exam}.\nINDICATION: {indication}\nCOMPARISON: {comparison}\n"
                f"FINDINGS:\n{' '.join(findings)}\nIMPRESSION:\n{items}"
            )
        if layout < 0.7:  # telegraphic impression only
            items = " ".join(f"{i}. {item}" for i, item in enumerate(impression, 1))
            return f"{exam}. Comparison: {comparison}\nIMPRESSION: {items}"
        if layout < 0.85:  # findings and a one-line impression
            return f"FINDINGS: {' '.join(findings)}\nIMPRESSION: {' '.join(impression)}"
        if row.baseline or row.previous is None:  # prose
            return f"{exam}. {' '.join(findings)}"
        return f"{exam}, compared with {comparison} {' '.join(findings)}"


def _rows(timepoints: pd.DataFrame) -> list[_Row]:
    """The imaging rows of a timepoint table, with each patient's previous scan date."""
    table = timepoints
    if c.ROW_TYPE in table.columns:
        table = table[table[c.ROW_TYPE].astype("string").str.strip().str.lower() != "lab"]
    dates = pd.to_datetime(table[c.ASSESSMENT_DATE])
    starts = pd.to_datetime(table[c.TREATMENT_START_DATE])
    order = np.lexsort((dates.to_numpy(), table[c.PATIENT_ID].astype(str).to_numpy()))
    previous: dict[int, pd.Timestamp | None] = {}
    last: dict[str, pd.Timestamp] = {}
    for pos in order:
        pid = str(table[c.PATIENT_ID].iloc[pos])
        previous[pos] = last.get(pid)
        last[pid] = dates.iloc[pos]

    def col(name: str) -> list[Any]:
        return table[name].tolist() if name in table.columns else [None] * len(table)

    rows = []
    for pos, values in enumerate(
        zip(
            col(c.PATIENT_ID),
            col(c.CANCER_TYPE),
            col(c.THERAPY_CLASS),
            col(c.EXTRAOSSEOUS_RESPONSE),
            col(c.NEW_EXTRAOSSEOUS_LESION),
            col(c.SLD_MM),
            col(c.NEW_BONE_LESIONS),
            col(c.NEW_LESION_MORPHOLOGY),
            col(c.PROGRESSIVE_LYSIS),
            col(c.KNOWN_LESION_SCLEROSIS),
            col(c.BASELINE_MARROW_INVOLVEMENT),
            strict=True,
        )
    ):
        pid, cancer, therapy, response, extra, sld, lesions, morph, lysis, scl, marrow = values
        response = _text_value(response)
        lesions = 0 if lesions is None or pd.isna(lesions) else int(lesions)
        morph = _text_value(morph) or "none"
        if lesions > 0 and morph not in ("blastic", "lytic", "mixed"):
            morph = "unknown"  # not from the simulator: no morphology word is written
        rows.append(
            _Row(
                patient_id=str(pid),
                date=dates.iloc[pos],
                previous=previous[pos],
                baseline=response == "baseline" or dates.iloc[pos] <= starts.iloc[pos],
                cancer=str(cancer),
                therapy=str(therapy),
                response=response,
                new_extraosseous=_flag(extra),
                sld=None if sld is None or pd.isna(sld) else float(sld),
                lesions=lesions,
                morphology=morph,
                lysis=_flag(lysis),
                sclerosis=_flag(scl),
                marrow=_flag(marrow),
            )
        )
    return rows


def simulate_reports(
    timepoints: pd.DataFrame,
    seed: int = 0,
    bone_scan_share: float = DEFAULT_BONE_SCAN_SHARE,
) -> SimulatedReports:
    """Write a radiology report for every imaging row of a timepoint table.

    Parameters
    ----------
    timepoints : DataFrame
        A timepoint table in the data contract (a simulated cohort's
        :attr:`~flare_ml.simulate.SimulatedCohort.timepoints`); ``lab`` rows get no report.
    seed : int, default 0
        The simulate seed: the writer's generator is
        ``numpy.random.default_rng([seed, REPORT_STREAM])``, never the cohort's, so the
        cohort is the same with or without reports, and a seed gives the same reports.
    bone_scan_share : float, default 0.3
        Share of follow-up scans reported as bone scans (``modality`` ``bone_scan``):
        they state new foci of uptake but no morphology (read as ``unknown``), and no
        extraosseous findings. Baseline scans are CT or PET-CT.

    Returns
    -------
    SimulatedReports
        The report table (:data:`REPORT_COLUMNS`) and what each report states.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> cohort = simulate_cohort(5, seed=1)
    >>> out = simulate_reports(cohort.timepoints, seed=1)
    >>> list(out.reports.columns)
    ['patient_id', 'assessment_date', 'modality', 'text']
    >>> len(out.reports) == int((cohort.timepoints["row_type"] == "imaging").sum())
    True
    >>> bool(out.reports["text"].str.len().gt(20).all())
    True

    """
    if not 0.0 <= bone_scan_share <= 1.0:
        raise ValueError(f"bone_scan_share must be between 0 and 1, got {bone_scan_share!r}")
    writer = _Writer(np.random.default_rng([int(seed), REPORT_STREAM]), bone_scan_share)
    reports, stated = [], []
    for row in _rows(timepoints):
        modality, text, values = writer.report(row)
        key = {c.PATIENT_ID: row.patient_id, c.ASSESSMENT_DATE: row.date}
        reports.append({**key, MODALITY: modality, TEXT: text})
        stated.append({**key, MODALITY: modality, **values})
    columns = [c.PATIENT_ID, c.ASSESSMENT_DATE, MODALITY, *IMAGING_FINDINGS, FINDINGS_UNCERTAIN]
    report_frame = pd.DataFrame(reports, columns=list(REPORT_COLUMNS))
    report_frame[c.ASSESSMENT_DATE] = pd.to_datetime(report_frame[c.ASSESSMENT_DATE])
    stated_frame = pd.DataFrame(stated, columns=columns)
    stated_frame[c.ASSESSMENT_DATE] = pd.to_datetime(stated_frame[c.ASSESSMENT_DATE])
    return SimulatedReports(reports=report_frame, stated=stated_frame)


def reports_path(out: str | Path) -> Path:
    """Path of the report table written beside a simulated table.

    Examples
    --------
    >>> reports_path("cohort.parquet").name, reports_path("runs/c.csv").name
    ('cohort.reports.parquet', 'c.reports.csv')

    """
    out = Path(out)
    suffix = "".join(out.suffixes) or ".csv"
    stem = out.name[: -len(suffix)] if out.suffixes else out.name
    return out.with_name(f"{stem}.reports{suffix}")


def write_reports(
    timepoints: pd.DataFrame,
    out: str | Path,
    seed: int = 0,
    bone_scan_share: float = DEFAULT_BONE_SCAN_SHARE,
) -> Path:
    """Write the report table of a simulated timepoint table beside its file.

    The path is :func:`reports_path` of ``out`` (``<name>.reports.<ext>``, CSV or
    Parquet as ``out``); the arguments are those of :func:`simulate_reports`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from flare_ml.simulate import simulate_cohort
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_reports(simulate_cohort(5, seed=2).timepoints, d / "c.csv", seed=2).name
    'c.reports.csv'

    """
    from flare_ml.data import write_table

    path = reports_path(out)
    write_table(simulate_reports(timepoints, seed, bone_scan_share).reports, path)
    return path


# --- the round trip ------------------------------------------------------------------------
def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality with missing == missing."""
    a_na, b_na = a.isna().to_numpy(), b.isna().to_numpy()
    left = a.astype(object).where(~a_na, None).to_numpy()
    right = b.astype(object).where(~b_na, None).to_numpy()
    equal = np.array([x == y for x, y in zip(left, right, strict=True)], dtype=bool)
    return (a_na & b_na) | (~a_na & ~b_na & equal)


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out[c.PATIENT_ID] = out[c.PATIENT_ID].astype(str)
    out[c.ASSESSMENT_DATE] = pd.to_datetime(out[c.ASSESSMENT_DATE]).dt.normalize()
    for col in (c.NEW_BONE_LESIONS,):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("Float64")
    for col in (c.NEW_LESION_MORPHOLOGY, c.EXTRAOSSEOUS_RESPONSE):
        if col in out.columns:
            out[col] = out[col].astype("string")
    for col in c.BOOL_COLUMNS:
        if col in out.columns:
            out[col] = out[col].astype("boolean")
    return out


def _inferred_stated(truth: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    """What the text states, inferred from the documented losses (no writer record)."""
    stated = truth.copy()
    scan = (
        found[MODALITY].astype("string").eq("bone_scan").fillna(False).to_numpy()
        if MODALITY in found.columns
        else np.zeros(len(found), dtype=bool)
    )
    n_true = truth[c.NEW_BONE_LESIONS].to_numpy(dtype=float, na_value=np.nan)
    n_found = found[c.NEW_BONE_LESIONS].to_numpy(dtype=float, na_value=np.nan)
    vague = ((n_true >= 3) & (n_found == 2)) | ((n_true > 10) & (n_found == 10))
    stated.loc[vague, c.NEW_BONE_LESIONS] = n_found[vague]
    positive = n_true > 0
    stated.loc[scan & positive, c.NEW_LESION_MORPHOLOGY] = "unknown"
    stated.loc[scan, c.EXTRAOSSEOUS_RESPONSE] = pd.NA
    for col in (c.PROGRESSIVE_LYSIS, c.KNOWN_LESION_SCLEROSIS, c.NEW_EXTRAOSSEOUS_LESION):
        stated.loc[scan, col] = False
    for col in (*c.BOOL_COLUMNS,):
        if col in stated.columns:
            stated[col] = stated[col].fillna(False)
    if c.BASELINE_MARROW_INVOLVEMENT in stated.columns:
        baseline = truth[c.EXTRAOSSEOUS_RESPONSE].astype("string").eq("baseline").fillna(False)
        stated.loc[~baseline.to_numpy(), c.BASELINE_MARROW_INVOLVEMENT] = False
    return stated


def round_trip_agreement(
    timepoints: pd.DataFrame,
    findings: pd.DataFrame,
    stated: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Agreement, field by field, between a timepoint table and findings read from reports.

    Rows are matched on ``(patient_id, assessment_date)``; only imaging rows with a
    finding row count. A difference is *explained* when the findings give exactly what
    the report states under the reading conventions (``stated``) and that differs from
    the table: a documented convention loss. Without ``stated`` (the writer's record) the
    losses are inferred from the conventions: a count of 3 or more read as 2, or above
    10 read as 10; on a bone scan (``modality`` in ``findings``) morphology ``unknown``,
    no response, and lysis, sclerosis and new extraosseous lesion False; an empty flag
    read False; marrow involvement False on a row that is not a baseline.

    Parameters
    ----------
    timepoints : DataFrame
        The timepoint table the reports were written from.
    findings : DataFrame
        What a reader extracted: ``patient_id``, ``assessment_date`` and the imaging
        columns (``modality`` optional).
    stated : DataFrame, optional
        :attr:`SimulatedReports.stated`.

    Returns
    -------
    DataFrame
        Indexed by field (the imaging columns): ``rows`` compared, ``agreement`` (share
        of rows equal), ``differences``, ``explained`` (differences a documented
        convention loss explains), ``unexplained``, ``rows_without_loss`` (rows whose
        report states the table's value) and ``agreement_without_loss`` (the share of
        those the findings reproduce).

    Examples
    --------
    >>> import pandas as pd
    >>> key = {"patient_id": ["P1", "P1"], "assessment_date": ["2024-01-01", "2024-03-01"]}
    >>> truth = pd.DataFrame({**key, "extraosseous_response": ["baseline", "PR"],
    ...     "new_bone_lesions": [0, 12], "new_lesion_morphology": ["none", "blastic"]})
    >>> found = pd.DataFrame({**key, "extraosseous_response": ["baseline", "PR"],
    ...     "new_bone_lesions": [0, 10], "new_lesion_morphology": ["none", "blastic"]})
    >>> table = round_trip_agreement(truth, found)
    >>> row = table.loc["new_bone_lesions"]  # "numerous" = 10: a documented loss
    >>> int(row["rows"]), float(row["agreement"]), int(row["explained"]), int(row["unexplained"])
    (2, 0.5, 1, 0)

    """
    fields = [f for f in IMAGING_FINDINGS if f in timepoints.columns and f in findings.columns]
    truth = timepoints
    if c.ROW_TYPE in truth.columns:
        truth = truth[truth[c.ROW_TYPE].astype("string").str.strip().str.lower() != "lab"]
    key = list(c.KEY_COLUMNS)
    truth = _normalised(truth[[*key, *fields]])
    found_cols = [*key, *fields, *([MODALITY] if MODALITY in findings.columns else [])]
    found = _normalised(findings[found_cols])
    merged = truth.merge(found, on=key, how="inner", suffixes=("", "_found"))
    t = merged[[*key, *fields]]
    f = merged[[*key, *(f"{x}_found" for x in fields)]].rename(
        columns={f"{x}_found": x for x in fields}
    )
    if MODALITY in merged.columns:
        f = f.assign(**{MODALITY: merged[MODALITY].to_numpy()})
    if stated is None:
        s = _inferred_stated(t, f)
    else:
        s = _normalised(stated)
        s = t[key].merge(s, on=key, how="left")
    out = {}
    for field in fields:
        agree = _same(t[field], f[field])
        honest = _same(s[field], t[field])
        explained = ~agree & ~honest & _same(f[field], s[field])
        n, n_honest = len(t), int(honest.sum())
        out[field] = {
            "rows": n,
            "agreement": float(agree.mean()) if n else np.nan,
            "differences": int((~agree).sum()),
            "explained": int(explained.sum()),
            "unexplained": int((~agree & ~explained).sum()),
            "rows_without_loss": n_honest,
            "agreement_without_loss": float(agree[honest].mean()) if n_honest else np.nan,
        }
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "field"
    return table
