"""The report reader's vocabulary: the section, target and ConText rules it gives medspaCy.

medspaCy does the mechanics (the Sectionizer finds the headers, the TargetMatcher the
findings, ConText the negation, hedges and history; the reader runs faster equivalents of
the first two, :mod:`flare_ml.reports.reader`); this module holds only what this
project knows about bone-metastasis reports, as data: the words for a new lesion, a
lesion's morphology, a bone or an organ, a count, a response category, and the ConText
modifiers. medspaCy's default rule sets are written for clinical notes, not radiology
reports; they are not used, partly because their negation rule for ``no`` takes an
optional ``new`` into the modifier ("no new" becomes the modifier, so the finding "new
lesions" overlaps it and is not negated: see ``tests/test_reports_reader.py``). The
conventions that turn the matches into the contract's values live in
:mod:`flare_ml.reports.reader` and ``docs/reports.md``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from medspacy.context import ConTextRule
from medspacy.section_detection import SectionRule
from medspacy.target_matcher import TargetRule

# --- target labels --------------------------------------------------------------------
NEW_LESION: Final = "NEW_LESION"
LESION_INCREASE: Final = "LESION_INCREASE"
LYSIS: Final = "PROGRESSIVE_LYSIS"
SCLEROSIS: Final = "KNOWN_SCLEROSIS"
MARROW: Final = "MARROW"
RESPONSE: Final = "RESPONSE"
BASELINE: Final = "BASELINE"

# --- sections ---------------------------------------------------------------------------
#: sections whose lesions are not this exam's findings (the old exam, the indication)
IGNORED_SECTIONS: Final = frozenset({"comparison", "history", "technique"})
SUMMARY_SECTIONS: Final = frozenset({"impression"})

_SECTION_WORDS: Final[dict[str, list[list[str]]]] = {
    "findings": [["findings"], ["finding"], ["bones"], ["osseous", "structures"]],
    "impression": [
        ["impression"],
        ["impressions"],
        ["conclusion"],
        ["conclusions"],
        ["opinion"],
        ["summary"],
        ["assessment"],
    ],
    "comparison": [
        ["comparison"],
        ["comparisons"],
        ["prior", "studies"],
        ["prior", "study"],
        ["prior"],
        ["compared", "with"],
    ],
    "history": [
        ["history"],
        ["clinical", "history"],
        ["indication"],
        ["indications"],
        ["clinical", "indication"],
        ["reason", "for", "exam"],
        ["reason", "for", "examination"],
        ["clinical", "information"],
        ["clinical", "details"],
        ["clinical", "question"],
    ],
    "technique": [["technique"], ["procedure"], ["protocol"], ["radiopharmaceutical"]],
}


def section_rules() -> list[SectionRule]:
    """The section headers: a header word (or words) followed by a colon.

    Examples
    --------
    >>> sorted({rule.category for rule in section_rules()})
    ['comparison', 'findings', 'history', 'impression', 'technique']

    """
    rules = []
    for category, headers in _SECTION_WORDS.items():
        for words in headers:
            pattern: list[dict[str, Any]] = [{"LOWER": w} for w in words]
            pattern.append({"ORTH": ":"})
            rules.append(SectionRule(" ".join(words) + ":", category, pattern=pattern))
    return rules


# --- lexicons ---------------------------------------------------------------------------
NUMBER_WORDS: Final = {
    "one": 1,
    "single": 1,
    "solitary": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "dozen": 12,
    "couple": 2,
    "pair": 2,
}
#: quantifiers without a number (the conventions: at least two, or "many" = 10)
SOME: Final = frozenset({"several", "multiple", "few", "some", "various", "scattered"})
MANY: Final = frozenset(
    {
        "numerous",
        "innumerable",
        "countless",
        "diffuse",
        "myriad",
        "many",
        "extensive",
        "widespread",
        "multifocal",
    }
)
QUANTIFIERS: Final = (
    frozenset(NUMBER_WORDS)
    | SOME
    | MANY
    | {"a", "an", "large", "number", "of", "handful", "additional"}
)
#: morphology words, with the misspellings met in reports
BLASTIC: Final = frozenset(
    {
        "blastic",
        "sclerotic",
        "osteoblastic",
        "osteosclerotic",
        "dense",
        "sclerosis",
        "sclerotic-appearing",
        "blastic-appearing",
        "scleortic",
        "sclerotc",
        "sclerortic",
        "slcerotic",
        "sclerostic",
        "blastc",
        "osteoblstic",
    }
)
LYTIC: Final = frozenset(
    {
        "lytic",
        "osteolytic",
        "destructive",
        "lucent",
        "lucency",
        "lucencies",
        "osteolysis",
        "lysis",
        "radiolucent",
        "lyitc",
        "lytc",
        "lyptic",
        "osteolyitc",
    }
)
MIXED: Final = frozenset({"mixed"})
#: nouns for a lesion (the head of "new ... lesions")
SINGULAR_HEADS: Final = frozenset(
    {
        "lesion",
        "metastasis",
        "met",
        "focus",
        "deposit",
        "area",
        "nodule",
        "mass",
        "node",
        "implant",
        "hotspot",
        "abnormality",
        "site",
        "spot",
        "tumor",
        "tumour",
        "lesoin",
        "leison",
        "lesio",
        "lession",
        "metastsis",
    }
)
PLURAL_HEADS: Final = frozenset(
    {
        "lesions",
        "metastases",
        "mets",
        "foci",
        "deposits",
        "areas",
        "nodules",
        "masses",
        "nodes",
        "implants",
        "hotspots",
        "abnormalities",
        "sites",
        "spots",
        "tumors",
        "tumours",
        "lesons",
        "leisons",
        "metastes",
        "metastatses",
        "metastasis's",
    }
)
MASS_HEADS: Final = frozenset(
    {
        "uptake",
        "activity",
        "disease",
        "involvement",
        "nodularity",
        "signal",
        "lucency",
        "lucencies",
        "hypodensity",
        "hypodensities",
        "hypoattenuation",
        "hyperdensity",
        "lymphadenopathy",
        "adenopathy",
        "carcinomatosis",
        "metastatic",
        "spread",
    }
)
HEADS: Final = (SINGULAR_HEADS | PLURAL_HEADS | MASS_HEADS) - {"metastatic", "spread"}
MODIFIERS: Final = (
    QUANTIFIERS
    | BLASTIC
    | LYTIC
    | MIXED
    | {
        "osseous",
        "bony",
        "bone",
        "skeletal",
        "metastatic",
        "focal",
        "small",
        "tiny",
        "subcentimeter",
        "large",
        "larger",
        "subtle",
        "faint",
        "intense",
        "mild",
        "avid",
        "fdg",
        "fdg-avid",
        "psma",
        "psma-avid",
        "tracer",
        "-",
        "hypermetabolic",
        "increased",
        "abnormal",
        "suspicious",
        "vertebral",
        "spinal",
        "rib",
        "pelvic",
        "sclerotic",
        "lytic-sclerotic",
        "blastic-lytic",
        "lytic/sclerotic",
        "sclerotic/lytic",
        "lytic/blastic",
        "and",
        "or",
        "/",
        ",",
        "enhancing",
        "hyperintense",
        "hypointense",
        "t1",
        "hypodense",
        "hypoattenuating",
        "marrow-replacing",
        "marrow",
        "lesion",
        "distinct",
        "discrete",
        "punctate",
        "possible",
        "probable",
        "equivocal",
        "indeterminate",
        "questionable",
        "?",
        "suspected",
        "likely",
        "definite",
        "nonspecific",
        "non-specific",
        "apparent",
        "hepatic",
        "liver",
        "pulmonary",
        "lung",
        "nodal",
        "lymph",
        "brain",
        "cerebral",
        "adrenal",
        "pleural",
        "peritoneal",
        "omental",
        "splenic",
        "renal",
        "soft",
        "tissue",
        "enlarged",
        "mediastinal",
        "hilar",
        "retroperitoneal",
        "axillary",
        "supraclavicular",
        "subcarinal",
        "paratracheal",
        "prevascular",
        "precarinal",
        "aortopulmonary",
        "paraaortic",
        "para-aortic",
        "iliac",
        "inguinal",
        "cervical",
        "intracranial",
        "parenchymal",
        "visceral",
        "subpleural",
        "pleural-based",
        "ring-enhancing",
        "sites",
        "areas",
        "foci",
        "focus",
        "of",
        "spots",
        "skull",
        "sternal",
        "costal",
        "sacral",
        "femoral",
        "humeral",
        "scapular",
        "osteoblastic/sclerotic",
        "blastic/sclerotic",
        "(",
        ")",
        "hot",
        "right",
        "left",
        "bilateral",
        "r",
        "l",
        "upper",
        "lower",
        "middle",
        "based",
        "mildly",
        "moderately",
        "intensely",
        "markedly",
        "faintly",
        "slightly",
        "replacing",
        "t2",
        "stir",
        "restricting",
        "diffusion",
        "heterogeneous",
        "well-defined",
        "ill-defined",
        "defined",
        "ill",
        "well",
        "expansile",
        "infiltrative",
        "segment",
        "mm",
        "cm",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
    }
    | {str(i) for i in range(1, 13)}
    | {f"{i}{suffix}" for i in range(1, 13) for suffix in ("st", "nd", "rd", "th")}
    | {
        f"{level}{i}"
        for level, top in (("c", 7), ("t", 12), ("l", 5), ("s", 5))
        for i in range(1, top + 1)
    }
)
_NEW_WORDS: Final = ["new", "additional", "newly", "further", "another", "more"]
_NEWLY_VERBS: Final = [
    "seen",
    "apparent",
    "visualized",
    "visualised",
    "visible",
    "developed",
    "developing",
    "identified",
    "demonstrated",
    "detected",
    "evident",
    "noted",
    "appearing",
    "appeared",
    "depicted",
    "present",
]
_APPEAR_WORDS: Final = ["development", "appearance", "emergence", "occurrence"]
_LEVEL = re.compile(r"^[ctls]\d{1,2}$", re.IGNORECASE)
LEVEL_RE: Final = _LEVEL
ORDINAL_RE: Final = re.compile(r"^\d{1,2}(st|nd|rd|th)$", re.IGNORECASE)

#: bone sites and words (a lesion at one of these is a bone lesion)
BONE_WORDS: Final = frozenset(
    {
        "bone",
        "bones",
        "osseous",
        "bony",
        "skeletal",
        "skeleton",
        "spine",
        "spinal",
        "vertebra",
        "vertebrae",
        "vertebral",
        "rib",
        "ribs",
        "costal",
        "sternum",
        "sternal",
        "sacrum",
        "sacral",
        "iliac",
        "ilium",
        "ischium",
        "ischial",
        "pubis",
        "pubic",
        "ramus",
        "acetabulum",
        "acetabular",
        "femur",
        "femoral",
        "femora",
        "humerus",
        "humeral",
        "scapula",
        "scapular",
        "clavicle",
        "clavicular",
        "skull",
        "calvarium",
        "calvarial",
        "mandible",
        "pelvis",
        "pelvic",
        "sacroiliac",
        "t-spine",
        "l-spine",
        "c-spine",
        "thoracolumbar",
        "lumbar",
        "thoracic",
        "cervical",
        "marrow",
        "pedicle",
        "manubrium",
        "tibia",
        "radius",
        "ulna",
        "blastic",
        "lytic",
        "sclerotic",
        "osteoblastic",
        "osteolytic",
        "osteosclerotic",
        "cortical",
        "medullary",
        "trochanter",
        "glenoid",
        "coracoid",
        "acromion",
        "body",
    }
)
#: the bone words that name a site (a listed item naming one counts as one lesion site):
#: BONE_WORDS without the density words and the words that name no site of their own
BONE_SITE_WORDS: Final = BONE_WORDS - {
    "blastic",
    "lytic",
    "sclerotic",
    "osteoblastic",
    "osteolytic",
    "osteosclerotic",
    "body",
    "marrow",
}
#: organ sites (a new lesion here is a new extra-osseous lesion)
ORGAN_WORDS: Final = frozenset(
    {
        "liver",
        "hepatic",
        "lung",
        "lungs",
        "pulmonary",
        "node",
        "nodes",
        "nodal",
        "lymph",
        "lymphadenopathy",
        "adenopathy",
        "brain",
        "cerebral",
        "cerebellar",
        "intracranial",
        "adrenal",
        "adrenals",
        "pleura",
        "pleural",
        "peritoneum",
        "peritoneal",
        "omentum",
        "omental",
        "spleen",
        "splenic",
        "kidney",
        "renal",
        "pancreas",
        "pancreatic",
        "mediastinal",
        "mediastinum",
        "hilar",
        "retroperitoneal",
        "axillary",
        "supraclavicular",
        "subcarinal",
        "paratracheal",
        "prevascular",
        "precarinal",
        "aortopulmonary",
        "inguinal",
        "para-aortic",
        "paraaortic",
        "carcinomatosis",
        "visceral",
        "parenchymal",
        "subpleural",
        "pleural-based",
        "lobe",
        "segment",
        "nodules",
        "nodule",
        "meningeal",
        "leptomeningeal",
        "dural",
        "subcutaneous",
        "soft-tissue",
        "cerebellum",
        "cerebrum",
        "frontal",
        "parietal",
        "temporal",
        "occipital",
        "nodularity",
    }
)
#: words that make "pelvic"/"cervical"/"iliac" an organ word (nodes) rather than a bone
NODE_WORDS: Final = frozenset({"node", "nodes", "nodal", "lymph", "lymphadenopathy", "adenopathy"})
#: a statement about response that names one of these is about bone, not extraosseous
BONE_RESPONSE_WORDS: Final = frozenset(
    {
        "bone",
        "bones",
        "osseous",
        "bony",
        "skeletal",
        "blastic",
        "lytic",
        "sclerotic",
        "osteoblastic",
        "spine",
        "skeleton",
    }
)
#: "outside" + these (within three words: "outside the skeleton", "outside of the bones",
#: "outside bone") qualify a response as the one of the disease outside bone
OUTSIDE_WORDS: Final = frozenset({"outside", "beyond"})
OUTSIDE_BONE: Final = frozenset({"bone", "bones", "skeleton", "skeletal", "osseous"})
#: connectors that re-describe the same lesions ("... , consistent with new metastases")
RESTATEMENT: Final = frozenset(
    {
        "consistent",
        "compatible",
        "keeping",
        "representing",
        "represent",
        "represents",
        "suggestive",
        "suspicious",
        "concerning",
        "likely",
        "probably",
        "favor",
        "favour",
        "reflecting",
        "reflect",
        "worrisome",
        "i.e.",
        "=",
    }
)
ANAPHORA: Final = frozenset({"this", "these", "the", "that", "those"})
#: words that make a count number a size ("1.2 cm"), not a count
SIZE_UNITS: Final = frozenset({"cm", "mm", "x", "cc", "ml", "%", "suv", "hu"})
HEDGE_WORDS: Final = frozenset(
    {
        "possible",
        "possibly",
        "probable",
        "probably",
        "equivocal",
        "indeterminate",
        "questionable",
        "?",
        "suspected",
        "likely",
        "questionably",
        "presumed",
        "presumably",
        "nonspecific",
        "non-specific",
        "uncertain",
        "vague",
        "subtle?",
    }
)
BASELINE_BLOCKERS: Final = frozenset(
    {
        "compared",
        "comparison",
        "since",
        "from",
        "vs",
        "versus",
        "relative",
        "than",
        "to",
        "with",
        "on",
        "prior",
        "previous",
        "-",
        "re",
        "over",
    }
)


def _new_lesion_patterns() -> list[list[dict[str, Any]]]:
    mods: dict[str, Any] = {"LOWER": {"IN": sorted(MODIFIERS)}, "OP": "{0,6}"}
    head: dict[str, Any] = {"LOWER": {"IN": sorted(HEADS)}}
    newly = {"LOWER": {"IN": _NEWLY_VERBS}}
    interval = {"LOWER": "interval", "OP": "?"}
    return [
        [{"LOWER": {"IN": ["new", "additional", "another"]}}, mods, head],
        # a size right after "new": "new 2.5 cm left adrenal mass"
        [{"LOWER": "new"}, {"LIKE_NUM": True}, {"LOWER": {"IN": ["cm", "mm"]}}, mods, head],
        [{"LOWER": "new"}, {"ORTH": "-"}, {"LOWER": "onset"}, mods, head],
        [{"LOWER": "newly"}, newly, mods, head],
        [interval, {"LOWER": {"IN": _APPEAR_WORDS}}, {"LOWER": "of"}, mods, head],
        [{"LOWER": "?"}, {"LOWER": "new"}, mods, head],
        [{"LOWER": "?new"}, mods, head],
        # "lytic lesion in the left iliac bone, not seen previously"
        [
            head,
            {"IS_PUNCT": False, "OP": "{0,6}"},
            {"ORTH": ",", "OP": "?"},
            {"LOWER": "not"},
            {
                "LOWER": {
                    "IN": [
                        "previously",
                        "seen",
                        "present",
                        "visible",
                        "identified",
                        "evident",
                        "apparent",
                    ]
                }
            },
            {
                "LOWER": {
                    "IN": ["previously", "seen", "present", "visible", "before", "identified", "on"]
                }
            },
        ],
        # "the T9 lesion is new", "lesions in T7 and T9 are new"
        # (the span starts at the noun; the reader reads the words before it)
        [
            head,
            {"IS_PUNCT": False, "OP": "{0,6}"},
            {"LOWER": {"IN": ["is", "are", "appears", "appear", "is/are"]}},
            {"LOWER": {"IN": ["new", "newly"]}},
        ],
    ]


#: up to four words between a growth word and a known lesion ("of the known", "in the size
#: of the previously described"): one token pattern shared by the lysis rules
KNOWN_LESION_WORDS: dict = {
    "LOWER": {
        "IN": [
            "the",
            "a",
            "size",
            "of",
            "known",
            "previously",
            "described",
            "existing",
            "pre-existing",
        ]
    },
    "OP": "{0,4}",
}


def target_rules() -> list[TargetRule]:
    """The findings the TargetMatcher marks (labels are this module's constants).

    Examples
    --------
    >>> sorted({rule.category for rule in target_rules()})[:3]
    ['BASELINE', 'KNOWN_SCLEROSIS', 'LESION_INCREASE']

    """
    rules: list[TargetRule] = []
    for i, pattern in enumerate(_new_lesion_patterns()):
        rules.append(TargetRule(f"new lesion {i}", NEW_LESION, pattern=pattern))
    lesion_words = sorted(
        HEADS | {"metastatic", "bone", "osseous", "sclerotic", "lytic", "blastic", "skeletal"}
    )
    increase = [
        [
            {"LOWER": {"IN": ["increase", "increased", "increasing", "interval"]}},
            {"LOWER": {"IN": ["increase", "in"]}, "OP": "*"},
            {"LOWER": {"IN": ["the", "size", "and", "extent"]}, "OP": "*"},
            {"LOWER": "number"},
            {"LOWER": "of"},
            {"LOWER": {"IN": lesion_words + sorted(MODIFIERS)}, "OP": "{0,4}"},
            {"LOWER": {"IN": lesion_words}},
        ],
        [{"LOWER": "more"}, {"LOWER": "numerous"}, {"LOWER": {"IN": lesion_words}, "OP": "{0,3}"}],
        [
            {"LOWER": {"IN": lesion_words}},
            {"LOWER": {"IN": ["have", "has"]}, "OP": "?"},
            {"LOWER": {"IN": ["increased", "increase"]}},
            {"LOWER": "in"},
            {"LOWER": "number"},
        ],
    ]
    for i, pattern in enumerate(increase):
        rules.append(TargetRule(f"lesion increase {i}", LESION_INCREASE, pattern=pattern))

    grow = [
        "increased",
        "increasing",
        "progressive",
        "progressing",
        "worsening",
        "worsened",
        "further",
        "enlarging",
        "expanding",
        "extending",
        "advancing",
        "greater",
        "more",
        "interval",
        "increase",
        "growing",
        "new",
    ]
    lytic_lesion = [
        {"LOWER": {"IN": ["lytic", "osteolytic", "destructive"]}},
        {"LOWER": {"IN": sorted((MODIFIERS | HEADS) - {",", "and", "or", "/"})}, "OP": "{0,3}"},
    ]
    lysis = [
        [
            {"LOWER": {"IN": grow}},
            {"LOWER": {"IN": ["in", "of", "the"]}, "OP": "*"},
            {
                "LOWER": {"IN": ["lytic", "osteolytic", "bone", "bony", "osseous", "cortical"]},
                "OP": "?",
            },
            {
                "LOWER": {
                    "IN": [
                        "lysis",
                        "osteolysis",
                        "destruction",
                        "erosion",
                        "breach",
                        "breakthrough",
                    ]
                }
            },
        ],
        [
            {"LOWER": {"IN": ["increased", "increasing", "interval"]}},
            {"LOWER": {"IN": ["increase", "in"]}, "OP": "*"},
            {"LOWER": "size"},
            {"LOWER": {"IN": ["in", "of"]}},
            KNOWN_LESION_WORDS,
            {"IS_PUNCT": False, "OP": "{0,2}"},
            *lytic_lesion,
        ],
        [
            {"LOWER": {"IN": ["progression", "enlargement", "growth", "increase"]}},
            {"LOWER": {"IN": ["in", "of"]}},
            KNOWN_LESION_WORDS,
            {"IS_PUNCT": False, "OP": "{0,2}"},
            *lytic_lesion,
        ],
        [
            {
                "LOWER": {
                    "IN": [
                        "enlarging",
                        "enlarged",
                        "growing",
                        "expanding",
                        "larger",
                        "progressing",
                        "progressive",
                        "worsening",
                        "increasing",
                    ]
                }
            },
            {"IS_PUNCT": False, "OP": "{0,2}"},
            *lytic_lesion,
        ],
        [
            *lytic_lesion,
            {"IS_PUNCT": False, "OP": "{0,6}"},
            {
                "LOWER": {
                    "IN": [
                        "enlarged",
                        "grown",
                        "progressed",
                        "larger",
                        "expanded",
                        "enlarging",
                        "growing",
                        "progressing",
                        "worse",
                        "worsened",
                        "bigger",
                    ]
                }
            },
        ],
        [
            *lytic_lesion,
            {"IS_PUNCT": False, "OP": "{0,6}"},
            {"LOWER": {"IN": ["increased", "increasing"]}},
            {"LOWER": "in"},
            {"LOWER": {"IN": ["size", "extent"]}},
        ],
        [
            {"LOWER": {"IN": ["lysis", "osteolysis", "destruction"]}},
            {"IS_PUNCT": False, "OP": "{0,5}"},
            {"LOWER": {"IN": ["increased", "progressed", "worsened", "advanced"]}},
        ],
    ]
    for i, pattern in enumerate(lysis):
        rules.append(TargetRule(f"progressive lysis {i}", LYSIS, pattern=pattern))

    scl_grow = [
        "increased",
        "increasing",
        "new",
        "interval",
        "progressive",
        "further",
        "developing",
        "development",
        "more",
        "greater",
        "evolving",
        "increase",
        "progressing",
        "marked",
        "partial",
        "early",
        "mild",
        "now",
    ]
    sclerosis = [
        [
            {"LOWER": {"IN": scl_grow}},
            {"LOWER": {"IN": ["in", "of"]}, "OP": "?"},
            {
                "LOWER": {
                    "IN": [
                        "sclerosis",
                        "sclerotic",
                        "mineralization",
                        "mineralisation",
                        "ossification",
                        "calcification",
                        "remineralization",
                        "osteosclerosis",
                    ]
                }
            },
            {
                "LOWER": {
                    "IN": [
                        "change",
                        "changes",
                        "rim",
                        "margin",
                        "margins",
                        "border",
                        "transformation",
                        "response",
                        "healing",
                    ]
                },
                "OP": "?",
            },
        ],
        [
            {"LOWER": "sclerotic"},
            {
                "LOWER": {
                    "IN": [
                        "rim",
                        "rims",
                        "margin",
                        "margins",
                        "border",
                        "borders",
                        "rind",
                        "halo",
                        "healing",
                        "transformation",
                        "response",
                        "conversion",
                    ]
                }
            },
        ],
        [
            {"LOWER": {"IN": ["rim", "rims", "margin", "margins", "border"]}},
            {"LOWER": "of"},
            {"LOWER": {"IN": ["sclerosis", "sclerotic"]}},
        ],
        [
            {
                "LOWER": {
                    "IN": [
                        "become",
                        "became",
                        "becoming",
                        "now",
                        "more",
                        "increasingly",
                        "predominantly",
                        "partially",
                        "partly",
                        "largely",
                    ]
                }
            },
            {"LOWER": {"IN": ["more", "increasingly", "partially", "densely"]}, "OP": "?"},
            {"LOWER": {"IN": ["sclerotic", "blastic", "mineralized", "mineralised", "ossified"]}},
        ],
        [
            {"LOWER": {"IN": ["healing", "healed", "sclerosing"]}},
            {
                "LOWER": {
                    "IN": [
                        "response",
                        "of",
                        "the",
                        "changes",
                        "change",
                        "pattern",
                        "lytic",
                        "lesion",
                        "lesions",
                        "metastases",
                        "mets",
                        "known",
                    ]
                },
                "OP": "+",
            },
        ],
        [
            {"LOWER": {"IN": ["signs", "evidence"]}},
            {"LOWER": "of"},
            {"LOWER": {"IN": ["healing", "sclerotic"]}},
        ],
        [
            {"LOWER": {"IN": ["increased", "increasing", "increase"]}},
            {"LOWER": "in"},
            {"LOWER": {"IN": ["density", "attenuation", "mineralization"]}},
        ],
        [
            {"LOWER": {"IN": ["increased", "increasing", "more"]}},
            {"LOWER": {"IN": ["density", "dense", "densely"]}},
        ],
        [{"LOWER": "denser"}],
        [
            {"LOWER": "sclerotic"},
            {"LOWER": {"IN": ["change", "changes"]}},
            {"LOWER": {"IN": ["around", "in", "of", "within", "surrounding", "at"]}},
        ],
    ]
    for i, pattern in enumerate(sclerosis):
        rules.append(TargetRule(f"known sclerosis {i}", SCLEROSIS, pattern=pattern))

    marrow_noun = [
        "uptake",
        "infiltration",
        "involvement",
        "replacement",
        "signal",
        "disease",
        "activity",
        "metastases",
        "infiltrate",
        "pattern",
    ]
    marrow = [
        [
            {"LOWER": {"IN": ["diffuse", "diffusely", "widespread", "extensive"]}},
            {
                "LOWER": {
                    "IN": [
                        "increased",
                        "heterogeneous",
                        "abnormal",
                        "intense",
                        "bone",
                        "homogeneous",
                        "homogeneously",
                        "low",
                        "t1",
                        "hypermetabolic",
                        "fdg",
                        "-",
                        "avid",
                        "tracer",
                    ]
                },
                "OP": "{0,3}",
            },
            {"LOWER": {"IN": ["marrow", "medullary"]}},
            {"LOWER": {"IN": marrow_noun}, "OP": "?"},
        ],
        [
            {"LOWER": {"IN": ["diffuse", "diffusely", "widespread", "extensive"]}},
            {
                "LOWER": {
                    "IN": [
                        "increased",
                        "heterogeneous",
                        "abnormal",
                        "intense",
                        "bone",
                        "homogeneous",
                        "homogeneously",
                        "skeletal",
                        "axial",
                        "hypermetabolic",
                        "marrow",
                        "tracer",
                        "fdg",
                    ]
                },
                "OP": "{0,3}",
            },
            {
                "LOWER": {
                    "IN": [
                        "uptake",
                        "infiltration",
                        "involvement",
                        "replacement",
                        "signal",
                        "activity",
                    ]
                }
            },
            {
                "LOWER": {
                    "IN": ["in", "of", "throughout", "within", "the", "axial", "bone", "entire"]
                },
                "OP": "{1,3}",
            },
            {"LOWER": {"IN": ["marrow", "skeleton", "medullary", "spine", "bones"]}},
        ],
        [{"LOWER": {"IN": ["superscan", "super-scan"]}}],
        [{"LOWER": "super"}, {"ORTH": "-", "OP": "?"}, {"LOWER": "scan"}],
        [
            {"LOWER": {"IN": ["marrow"]}},
            {"LOWER": {"IN": ["infiltration", "involvement", "replacement"]}},
            {"IS_PUNCT": False, "OP": "{0,3}"},
            {"LOWER": {"IN": ["diffuse", "diffusely", "throughout", "widespread"]}},
        ],
    ]
    for i, pattern in enumerate(marrow):
        rules.append(TargetRule(f"marrow {i}", MARROW, pattern=pattern))

    organ = sorted(
        (ORGAN_WORDS - {"nodules", "nodule", "lobe", "segment"})
        | {
            "target",
            "non-target",
            "nontarget",
            "extraosseous",
            "extra-osseous",
            "soft",
            "tissue",
            "visceral",
            "nonosseous",
            "non-osseous",
            "measurable",
        }
    )
    disease = [
        "metastases",
        "metastasis",
        "mets",
        "disease",
        "lesions",
        "lesion",
        "metastatic",
        "nodules",
        "tumor",
        "tumour",
        "burden",
        "deposits",
    ]
    response = [
        [{"ORTH": {"IN": ["CR", "PR", "SD", "PD"]}}],
        [{"LOWER": "complete"}, {"LOWER": {"IN": ["response", "remission", "metabolic"]}}],
        [{"LOWER": "partial"}, {"LOWER": {"IN": ["response", "remission", "metabolic"]}}],
        [{"LOWER": "stable"}, {"LOWER": "disease"}],
        [{"LOWER": {"IN": ["progressive", "progressing"]}}, {"LOWER": "disease"}],
        # "Progression of disease.", "progression of the disease", "Disease progression."
        # (a bare statement; one about bone only is dropped by the reader's bone check)
        [
            {"LOWER": "progression"},
            {"LOWER": "of"},
            {"LOWER": "the", "OP": "?"},
            {"LOWER": "disease"},
        ],
        [{"LOWER": "disease"}, {"LOWER": "progression"}],
        # "NE" alone is too short to trust; "response NE" and "(NE)" are the category
        [{"LOWER": "response"}, {"ORTH": "NE"}],
        [{"ORTH": "("}, {"ORTH": "NE"}, {"ORTH": ")"}],
        [
            {"LOWER": {"IN": ["not", "non", "non-"]}},
            {"ORTH": "-", "OP": "?"},
            {"LOWER": {"IN": ["evaluable", "evaluable."]}},
        ],
        [
            {"LOWER": {"IN": ["progression", "growth", "enlargement"]}},
            {"LOWER": "of"},
            {"LOWER": {"IN": ["the", "known", "existing", "all"]}, "OP": "*"},
            {"LOWER": {"IN": organ}},
            {"LOWER": {"IN": organ + disease}, "OP": "{0,2}"},
            {"LOWER": {"IN": disease}},
        ],
        [
            {
                "LOWER": {
                    "IN": [
                        "progressive",
                        "progressing",
                        "enlarging",
                        "growing",
                        "stable",
                        "unchanged",
                        "resolved",
                        "regressing",
                        "responding",
                        "decreasing",
                        "shrinking",
                    ]
                }
            },
            {"LOWER": {"IN": organ}},
            {"LOWER": {"IN": organ + disease}, "OP": "{0,2}"},
            {"LOWER": {"IN": disease}},
        ],
        [
            {"LOWER": {"IN": organ}},
            {"LOWER": {"IN": organ + disease}, "OP": "{0,2}"},
            {"LOWER": {"IN": disease}},
            {
                "LOWER": {
                    "IN": [
                        "is",
                        "are",
                        "remain",
                        "remains",
                        "have",
                        "has",
                        "appear",
                        "appears",
                        "largely",
                        "overall",
                        "again",
                    ]
                },
                "OP": "{0,2}",
            },
            {
                "LOWER": {
                    "IN": [
                        "stable",
                        "unchanged",
                        "progressed",
                        "progressing",
                        "resolved",
                        "enlarged",
                        "increased",
                        "progressive",
                        "regressed",
                        "decreased",
                        "responding",
                    ]
                }
            },
        ],
        [
            {"LOWER": {"IN": ["resolution", "disappearance"]}},
            {"LOWER": "of"},
            {"LOWER": {"IN": ["the", "all", "known"]}, "OP": "*"},
            {"LOWER": {"IN": organ}},
            {"LOWER": {"IN": organ + disease}, "OP": "{0,2}"},
            {"LOWER": {"IN": disease}},
        ],
        [
            {"LOWER": "recist"},
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": {"IN": ["1.1", "category", "response"]}, "OP": "*"},
            {"IS_PUNCT": True, "OP": "?"},
            {"LOWER": {"IN": ["cr", "pr", "sd", "pd", "ne"]}},
        ],
    ]
    for i, pattern in enumerate(response):
        rules.append(TargetRule(f"response {i}", RESPONSE, pattern=pattern))

    baseline = [
        [
            {
                "LOWER": {
                    "IN": ["baseline", "pretreatment", "pre-treatment", "pre-therapy", "pretherapy"]
                }
            }
        ],
        [{"LOWER": "staging"}],
        [{"LOWER": "initial"}, {"LOWER": "staging"}],
        [
            {"LOWER": "no"},
            {"LOWER": {"IN": ["prior", "previous", "comparison", "old"]}},
            {
                "LOWER": {
                    "IN": [
                        "studies",
                        "study",
                        "imaging",
                        "exams",
                        "exam",
                        "examinations",
                        "scans",
                        "scan",
                        "comparison",
                        "available",
                        "for",
                    ]
                }
            },
        ],
        [{"LOWER": "comparison"}, {"ORTH": ":"}, {"LOWER": {"IN": ["none", "nil", "n/a"]}}],
    ]
    for i, pattern in enumerate(baseline):
        rules.append(TargetRule(f"baseline {i}", BASELINE, pattern=pattern))
    return rules


# --- ConText ----------------------------------------------------------------------------
NEG: Final = "NEGATED_EXISTENCE"
HEDGE: Final = "POSSIBLE_EXISTENCE"
HIST: Final = "HISTORICAL"
FAMILY: Final = "FAMILY"


#: spaCy's free lexeme flags (``FLAG19`` .. ``FLAG63``; 1-18 are spaCy's own ``IS_*``)
FREE_FLAGS: Final = tuple(range(19, 64))


def word_set_flags(
    rules: list[TargetRule], flag_ids: tuple[int, ...] = FREE_FLAGS
) -> tuple[dict[int, tuple[str, frozenset[str]]], list[TargetRule]]:
    """Rewrite the rules' word sets as lexeme flags (for speed; the same matches).

    spaCy's matcher tests a word set (``{"LOWER": {"IN": [...]}}``) with a Python call per
    token and set, and tries every pattern's first token at every token of a report. A
    lexeme flag (``{"FLAG20": True}``) is a bit on the word's vocabulary entry, tested in
    C. Each distinct word set (``LOWER`` or ``ORTH``, any position, any ``OP``) gets a
    flag, first-token sets first, then by how many tokens use it, while flags last; the
    reader registers each flag's test on its vocabulary (``Vocab.add_flag``) and runs the
    rules with a non-validating ``Matcher`` (spaCy's pattern schema does not list flags).
    One rule stays one pattern, in the same order (spaCy's match order, which decides
    ties between equal spans, is unchanged).

    Parameters
    ----------
    rules : list of TargetRule
        Rules with token patterns (others are returned unchanged).
    flag_ids : tuple of int
        The flag ids to use.

    Returns
    -------
    dict of int to (str, frozenset of str)
        Flag id -> the attribute (``LOWER`` or ``ORTH``) and the words it tests.
    list of TargetRule
        The rewritten rules (same literals, categories and order).

    Examples
    --------
    >>> flags, rules = word_set_flags(target_rules())
    >>> attr, words = flags[19]
    >>> attr, "new" in words or "lesion" in words, len(rules) == len(target_rules())
    ('LOWER', True, True)
    >>> any("IN" in str(t) for rule in rules for t in rule.pattern[:1])
    False

    """

    def word_set(token: dict[str, Any]) -> tuple[str, frozenset[str]] | None:
        attrs = set(token) - {"OP"}
        if len(attrs) != 1:
            return None
        (attr,) = attrs
        value = token[attr]
        if attr in ("LOWER", "ORTH") and isinstance(value, dict) and set(value) == {"IN"}:
            return attr, frozenset(value["IN"])
        return None

    weight: dict[tuple[str, frozenset[str]], int] = {}
    for rule in rules:
        if not isinstance(rule.pattern, list):
            continue
        for position, token in enumerate(rule.pattern):
            key = word_set(token)
            if key is not None:
                first = position == 0 and token.get("OP") is None
                weight[key] = weight.get(key, 0) + (1000 if first else 1)
    ranked = sorted(weight, key=lambda k: (-weight[k], k[0], sorted(k[1])))
    flags = dict(zip(flag_ids, ranked, strict=False))
    flag_of = {key: flag for flag, key in flags.items()}
    out: list[TargetRule] = []
    for rule in rules:
        if not isinstance(rule.pattern, list):
            out.append(rule)
            continue
        pattern = []
        for token in rule.pattern:
            key = word_set(token)
            if key is not None and key in flag_of:
                token = {
                    f"FLAG{flag_of[key]}": True,
                    **{k: token[k] for k in ("OP",) if k in token},
                }
            pattern.append(token)
        out.append(TargetRule(rule.literal, rule.category, pattern=pattern))
    return flags, out


def _rule(literal: str, category: str, direction: str, pattern: Any = None) -> ConTextRule:
    return ConTextRule(literal, category, pattern=pattern, direction=direction)


def context_rules() -> list[ConTextRule]:
    """ConText modifiers for negation, hedges, history (known lesions) and family.

    The negation ``no`` is the single word: "no new lesions" negates the target "new
    lesions" (medspaCy's default rule swallows ``new`` into the modifier).

    Examples
    --------
    >>> rules = context_rules()
    >>> [r.literal for r in rules if r.category == "NEGATED_EXISTENCE"][:3]
    ['no', 'not', 'without']

    """
    neg_fwd = [
        "no",
        "not",
        "without",
        "negative for",
        "free of",
        "absence of",
        "no evidence of",
        "no definite",
        "no convincing",
        "no suspicious",
        "nor",
        "never",
        "no sign of",
        "no signs of",
        "rather than",
        "neither",
        "no scintigraphic evidence of",
        "no scintigraphic",
        "absent",
        "w/o",
        "no obvious",
        "no other",
        "no further",
        "there is no",
        "there are no",
        "none",
        "denies",
        "resolution of",
    ]
    neg_bwd = [
        "not seen",
        "not identified",
        "not present",
        "not demonstrated",
        "not visualized",
        "not visualised",
        "not evident",
        "not appreciated",
        "not detected",
        "absent",
        "ruled out",
        "is excluded",
        "are excluded",
        "have resolved",
        "has resolved",
        "resolved",
        "no longer seen",
        "no longer visible",
        "no longer present",
        "not apparent",
        "none",
        "not noted",
        "not found",
        "not observed",
        "not definitely seen",
        "cannot be assessed",
        "can not be assessed",
        "cannot be evaluated",
        "could not be assessed",
        "not assessable",
    ]
    hedge_fwd = [
        "possible",
        "possibly",
        "probable",
        "probably",
        "likely",
        "may represent",
        "might represent",
        "could represent",
        "may be",
        "might be",
        "could be",
        "questionable",
        "questionably",
        "suspicious for",
        "suspected",
        "suggestive of",
        "concerning for",
        "worrisome for",
        "equivocal",
        "indeterminate",
        "cannot exclude",
        "can not exclude",
        "cannot rule out",
        "can not rule out",
        "can't exclude",
        "can't rule out",
        "difficult to exclude",
        "?",
        "doubtful",
        "uncertain",
        "presumed",
        "presumably",
        "query",
        "differential includes",
        "versus",
        "vs",
        "vs.",
        "suggest",
        "suggests",
        "may reflect",
        "could reflect",
        "might reflect",
        "question of",
        "not excluded",
        "not entirely excluded",
        "cannot be excluded",
        "could not be excluded",
        "cannot be ruled out that",
        "can not be ruled out that",
        "cannot be excluded that",
        "it is possible that",
        "not excluded that",
    ]
    hedge_bwd = [
        "cannot be excluded",
        "can not be excluded",
        "not excluded",
        "not ruled out",
        "cannot be ruled out",
        "can not be ruled out",
        "is possible",
        "are possible",
        "of uncertain significance",
        "of indeterminate significance",
        "indeterminate",
        "equivocal",
        "is questioned",
        "is suspected",
        "are suspected",
        "could not be excluded",
        "not entirely excluded",
        "is not excluded",
        "questionable",
        "uncertain",
        "of uncertain etiology",
    ]
    hist_fwd = [
        "known",
        "previously described",
        "previously seen",
        "previously noted",
        "previously identified",
        "previously demonstrated",
        "previously reported",
        "pre-existing",
        "preexisting",
        "existing",
        "old",
        "treated",
        "again seen",
        "again noted",
        "again demonstrated",
        "redemonstrated",
        "re-demonstrated",
        "unchanged",
        "stable",
        "persistent",
        "persisting",
        "residual",
        "chronic",
        "established",
        "remaining",
        "history of",
        "hx of",
        "h/o",
        "prior",
    ]
    hist_bwd = [
        "previously described",
        "previously seen",
        "previously noted",
        "as before",
        "again seen",
        "again noted",
        "again demonstrated",
        "unchanged",
        "stable",
        "persistent",
        "persists",
        "persist",
        "is stable",
        "are stable",
        "remain stable",
        "remains stable",
        "not new",
        "redemonstrated",
        "re-demonstrated",
        "as previously",
        "seen previously",
        "noted previously",
        "described previously",
        "were present previously",
        "is known",
        "are known",
        "also present previously",
        "present on prior",
        "seen on prior",
        "seen on the prior",
        "since prior",
    ]
    pseudo = [
        "not previously seen",
        "not previously present",
        "not previously visible",
        "not previously identified",
        "not previously noted",
        "not present previously",
        "not seen previously",
        "not seen on prior",
        "not seen on the prior",
        "not present on prior",
        "not present on the prior",
        "not visible on prior",
        "not visible previously",
        "not previously described",
        "no change",
        "no significant change",
        "no interval change",
        "not only",
        "no longer",
        "without change",
        "not been excluded",
        "no prior",
        "no previous",
        "no comparison",
        "prior to",
        "newly",
        "stable disease",
        "progressive disease",
        "not evaluable",
        "non evaluable",
        "since the prior",
        "than prior",
        "compared with prior",
        "compared to prior",
        "on prior",
        "new since prior",
        "unchanged from",
        "prior studies",
        "prior study",
        "prior exam",
        "prior scan",
        "prior ct",
        "prior imaging",
        "the prior",
        "previously described sites",
        "with prior",
        "to prior",
        "from prior",
        "of prior",
        "history:",
        "no evidence of disease progression elsewhere",
    ]
    terminate = [
        "but",
        "however",
        "whereas",
        "while",
        "although",
        "though",
        "except",
        "and",
        "apart from",
        "aside from",
        "otherwise",
        "which",
        "yet",
        "also",
        "in addition",
        "additionally",
        "as well as",
        "plus",
        "elsewhere",
        "with",
        "in keeping with",
        "consistent with",
        "compatible with",
        ":",
    ]
    family = ["family history", "mother", "father", "brother", "sister", "fhx"]
    directions: dict[tuple[str, str], str] = {}
    for category, forward, backward in (
        (NEG, neg_fwd, neg_bwd),
        (HEDGE, hedge_fwd, hedge_bwd),
        (HIST, hist_fwd, hist_bwd),
        (FAMILY, family, []),
    ):
        for w in forward:
            directions[(w, category)] = "FORWARD"
        for w in backward:
            both = directions.get((w, category)) == "FORWARD"
            directions[(w, category)] = "BIDIRECTIONAL" if both else "BACKWARD"
    taken = {w for w, _ in directions}
    rules = [_rule(w, cat, d) for (w, cat), d in directions.items() if w != "no"]
    # "no" as one token: medspaCy's default pattern takes an optional "new" with it
    rules.insert(0, _rule("no", NEG, "FORWARD", pattern=[{"LOWER": "no"}]))
    rules += [_rule(w, "PSEUDO", "PSEUDO") for w in pseudo if w not in taken]
    rules += [_rule(w, "TERMINATE", "TERMINATE") for w in terminate if w not in taken]
    return rules


__all__ = [
    "BASELINE",
    "LESION_INCREASE",
    "LYSIS",
    "MARROW",
    "NEW_LESION",
    "RESPONSE",
    "SCLEROSIS",
    "context_rules",
    "section_rules",
    "target_rules",
    "word_set_flags",
]
