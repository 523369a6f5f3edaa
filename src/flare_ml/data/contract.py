"""The data contract: column names, types and vocabularies of the timepoint table.

This module is the single source of truth for the public input format described in the
README section "The data contract" (its origin: ``docs/sources.md``, Data contract). Every
other part of flare-ml (validation, the simulator, the featurizer, the rules, the served
model) imports its column names and category vocabularies from here, so a change to the
contract is a change to one file (and needs a migration note in the README).
"""

from __future__ import annotations

from typing import Final

# --- identifiers and dates -------------------------------------------------------------
PATIENT_ID: Final = "patient_id"
TREATMENT_START_DATE: Final = "treatment_start_date"
ASSESSMENT_DATE: Final = "assessment_date"
ROW_TYPE: Final = "row_type"

# --- context ----------------------------------------------------------------------------
CANCER_TYPE: Final = "cancer_type"
THERAPY_CLASS: Final = "therapy_class"
BASELINE_MARROW_INVOLVEMENT: Final = "baseline_marrow_involvement"

# --- findings ---------------------------------------------------------------------------
EXTRAOSSEOUS_RESPONSE: Final = "extraosseous_response"
NEW_EXTRAOSSEOUS_LESION: Final = "new_extraosseous_lesion"
SLD_MM: Final = "sld_mm"
NEW_BONE_LESIONS: Final = "new_bone_lesions"
NEW_LESION_MORPHOLOGY: Final = "new_lesion_morphology"
PROGRESSIVE_LYSIS: Final = "progressive_lysis"
KNOWN_LESION_SCLEROSIS: Final = "known_lesion_sclerosis"
ALP_U_L: Final = "alp_u_l"
CLINICAL_DETERIORATION: Final = "clinical_deterioration"

# --- label ------------------------------------------------------------------------------
OUTCOME: Final = "outcome"
#: provenance of an adjudicated outcome (written by ``flare-ml label``, flare_ml.labels):
#: known, carried along unchanged, never validated or read as features
LABEL_RULE: Final = "label_rule"
LABEL_REASON: Final = "label_reason"
LABEL_CONFIRM_DATE: Final = "label_confirm_date"
PROVENANCE_COLUMNS: Final = (LABEL_RULE, LABEL_REASON, LABEL_CONFIRM_DATE)

# --- vocabularies -----------------------------------------------------------------------
ROW_TYPES: Final = ("imaging", "lab")
CANCER_TYPES: Final = ("nsclc", "breast", "prostate", "other")
THERAPY_CLASSES: Final = (
    "egfr_tki",
    "alk_tki",
    "other_targeted",
    "endocrine",
    "cdk46_endocrine",
    "her2_targeted",
    "ar_pathway",
    "chemotherapy",
    "immunotherapy",
    "radium223",
    "other",
)
#: RECIST 1.1 codes keep their upper case; ``baseline`` marks the baseline row.
#: clinical names of the vocabularies, as reasons, reports and timelines write them
CANCER_NAMES: Final = {
    "nsclc": "NSCLC",
    "breast": "breast cancer",
    "prostate": "prostate cancer",
    "other": "other cancer",
}
THERAPY_NAMES: Final = {
    "egfr_tki": "EGFR TKI",
    "alk_tki": "ALK TKI",
    "other_targeted": "targeted therapy",
    "endocrine": "endocrine therapy",
    "cdk46_endocrine": "CDK4/6 inhibitor with endocrine therapy",
    "her2_targeted": "HER2-targeted therapy",
    "ar_pathway": "AR-pathway inhibitor",
    "chemotherapy": "chemotherapy",
    "immunotherapy": "immunotherapy",
    "radium223": "radium-223",
    "other": "other therapy",
}
EXTRAOSSEOUS_RESPONSES: Final = ("baseline", "CR", "PR", "SD", "PD", "NE")
#: ``unknown``: new bone lesions whose morphology the modality cannot tell (a bone scan's
#: new focus of uptake without a CT correlate); appended last, so the codes of the other
#: values are unchanged. The featurizer reads it as missing morphology (no new feature).
MORPHOLOGIES: Final = ("none", "blastic", "lytic", "mixed", "unknown")
OUTCOMES: Final = ("flare", "progression")

#: category columns and their allowed values
VOCABULARIES: Final[dict[str, tuple[str, ...]]] = {
    ROW_TYPE: ROW_TYPES,
    CANCER_TYPE: CANCER_TYPES,
    THERAPY_CLASS: THERAPY_CLASSES,
    EXTRAOSSEOUS_RESPONSE: EXTRAOSSEOUS_RESPONSES,
    NEW_LESION_MORPHOLOGY: MORPHOLOGIES,
    OUTCOME: OUTCOMES,
}

DATE_COLUMNS: Final = (TREATMENT_START_DATE, ASSESSMENT_DATE)
BOOL_COLUMNS: Final = (
    NEW_EXTRAOSSEOUS_LESION,
    PROGRESSIVE_LYSIS,
    KNOWN_LESION_SCLEROSIS,
    BASELINE_MARROW_INVOLVEMENT,
    CLINICAL_DETERIORATION,
)
FLOAT_COLUMNS: Final = (SLD_MM, ALP_U_L)
INT_COLUMNS: Final = (NEW_BONE_LESIONS,)

#: always required
REQUIRED_COLUMNS: Final = (
    PATIENT_ID,
    TREATMENT_START_DATE,
    ASSESSMENT_DATE,
    CANCER_TYPE,
    THERAPY_CLASS,
    EXTRAOSSEOUS_RESPONSE,
    NEW_BONE_LESIONS,
    NEW_LESION_MORPHOLOGY,
)
#: required to be non-missing on imaging rows only (empty on lab rows)
IMAGING_REQUIRED_COLUMNS: Final = (
    EXTRAOSSEOUS_RESPONSE,
    NEW_BONE_LESIONS,
    NEW_LESION_MORPHOLOGY,
)
#: constant within a patient
PATIENT_CONSTANT_COLUMNS: Final = (
    TREATMENT_START_DATE,
    CANCER_TYPE,
    THERAPY_CLASS,
    BASELINE_MARROW_INVOLVEMENT,
)
OPTIONAL_COLUMNS: Final = (
    ROW_TYPE,
    NEW_EXTRAOSSEOUS_LESION,
    SLD_MM,
    PROGRESSIVE_LYSIS,
    KNOWN_LESION_SCLEROSIS,
    ALP_U_L,
    BASELINE_MARROW_INVOLVEMENT,
    CLINICAL_DETERIORATION,
    OUTCOME,
)
#: every contract column, in canonical order
CONTRACT_COLUMNS: Final = (
    PATIENT_ID,
    TREATMENT_START_DATE,
    ASSESSMENT_DATE,
    ROW_TYPE,
    CANCER_TYPE,
    THERAPY_CLASS,
    EXTRAOSSEOUS_RESPONSE,
    NEW_EXTRAOSSEOUS_LESION,
    SLD_MM,
    NEW_BONE_LESIONS,
    NEW_LESION_MORPHOLOGY,
    PROGRESSIVE_LYSIS,
    KNOWN_LESION_SCLEROSIS,
    ALP_U_L,
    BASELINE_MARROW_INVOLVEMENT,
    CLINICAL_DETERIORATION,
    OUTCOME,
)

#: plausible serum ALP range in U/L; values outside are refused as data errors
ALP_PLAUSIBLE_RANGE: Final = (5.0, 5000.0)

#: the identifiers kept alongside (never as features) in every per-index-row output
KEY_COLUMNS: Final = (PATIENT_ID, ASSESSMENT_DATE)
