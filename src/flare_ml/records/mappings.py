"""The mapping tables from a site's codes to the contract's vocabularies.

Two reviewed data files ship with the package (``src/flare_ml/records/mappings/``), each row
with its source: ``therapy_classes.csv`` maps RxNorm ingredients (by name, and by RxNorm
code where one is listed) to ``therapy_class``, and ``cancer_types.csv`` maps condition codes
(ICD-10-CM, ICD-10, ICD-O-3 topography, SNOMED CT) to ``cancer_type`` by their longest
matching code prefix. This module loads them and answers the two questions the adapters ask:
which therapy class a regimen of ingredients is, and which cancer type a coded diagnosis
is. The simulator's record writers ask the reverse question (a representative drug and code
for a class or cancer type) so that written records round-trip through the same tables.
What the tables cover, and what they cannot tell (ICD-10 C34 does not separate small-cell
from non-small-cell lung cancer), is in ``docs/records.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources
from io import StringIO
from typing import Final

import pandas as pd

from flare_ml.data import contract as c

__all__ = [
    "BACKGROUND",
    "CANCER_VOCABULARIES",
    "SECONDARY",
    "cancer_type_of",
    "cancer_types_table",
    "ingredient_role",
    "representative_condition",
    "representative_drugs",
    "therapy_class_of",
    "therapy_classes_table",
]

#: the class of drugs that continue across lines (androgen deprivation, bone-targeted agents)
BACKGROUND: Final = "background"
#: the cancer type of codes that name a secondary (metastatic) site, not a primary cancer
SECONDARY: Final = "secondary"
#: the condition vocabularies the cancer-type table uses (OMOP ``vocabulary_id`` spelling)
CANCER_VOCABULARIES: Final = ("ICD10CM", "ICD10", "ICDO3", "SNOMED")
#: when a regimen holds several classes, the first listed here names the line: a targeted
#: or hormonal partner names a combination with chemotherapy (trastuzumab with docetaxel
#: is HER2-targeted therapy), and immunotherapy names chemo-immunotherapy
CLASS_PRECEDENCE: Final = (
    "radium223",
    "cdk46_endocrine",
    "her2_targeted",
    "egfr_tki",
    "alk_tki",
    "other_targeted",
    "immunotherapy",
    "ar_pathway",
    "endocrine",
    "chemotherapy",
    "other",
)


def _read(name: str) -> pd.DataFrame:
    text = resources.files("flare_ml.records").joinpath("mappings", name).read_text("utf-8")
    return pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)


@cache
def therapy_classes_table() -> pd.DataFrame:
    """The ingredient -> therapy class table, as shipped.

    Returns
    -------
    pandas.DataFrame
        ``ingredient`` (lower-case RxNorm ingredient name), ``rxnorm_code`` (may be
        empty), ``therapy_class`` (a contract class or ``background``), ``role``
        (``anchor``, ``partner`` or ``background``) and ``source``.

    Examples
    --------
    >>> table = therapy_classes_table()
    >>> table.loc[table["ingredient"] == "osimertinib", "therapy_class"].item()
    'egfr_tki'

    """
    table = _read("therapy_classes.csv")
    table["ingredient"] = table["ingredient"].str.strip().str.lower()
    known = set(c.THERAPY_CLASSES) | {BACKGROUND}
    bad = sorted(set(table["therapy_class"]) - known)
    if bad:  # a packaging error, caught by the tests
        raise ValueError(f"therapy_classes.csv names unknown classes {bad}")
    return table


@cache
def cancer_types_table() -> pd.DataFrame:
    """The condition code prefix -> cancer type table, as shipped.

    Examples
    --------
    >>> table = cancer_types_table()
    >>> sorted(set(table["cancer_type"]))
    ['breast', 'nsclc', 'other', 'prostate', 'secondary']

    """
    table = _read("cancer_types.csv")
    known = set(c.CANCER_TYPES) | {SECONDARY}
    bad = sorted(set(table["cancer_type"]) - known)
    if bad:
        raise ValueError(f"cancer_types.csv names unknown cancer types {bad}")
    return table


@cache
def _by_name() -> dict[str, tuple[str, str]]:
    table = therapy_classes_table()
    pairs = zip(table["therapy_class"], table["role"], strict=True)
    return dict(zip(table["ingredient"], pairs, strict=True))


@cache
def _by_code() -> dict[str, tuple[str, str]]:
    table = therapy_classes_table()
    rows = table[table["rxnorm_code"] != ""]
    pairs = zip(rows["therapy_class"], rows["role"], strict=True)
    return dict(zip(rows["rxnorm_code"], pairs, strict=True))


def ingredient_role(ingredient: str, rxnorm_code: str = "") -> tuple[str, str] | None:
    """The ``(therapy_class, role)`` of one ingredient, or None when the table lacks it.

    The ingredient name is matched case-insensitively; the RxNorm code is tried when the
    name is not listed (names are the primary key: see ``docs/records.md``).

    Examples
    --------
    >>> ingredient_role("Osimertinib")
    ('egfr_tki', 'anchor')
    >>> ingredient_role("", "72965")
    ('endocrine', 'anchor')
    >>> ingredient_role("Denosumab")
    ('background', 'background')
    >>> ingredient_role("paracetamol") is None
    True

    """
    name = (ingredient or "").strip().lower()
    hit = _by_name().get(name)
    if hit is None and rxnorm_code:
        hit = _by_code().get(str(rxnorm_code).strip())
    return hit


def therapy_class_of(classes: Iterable[str]) -> str | None:
    """The therapy class of a regimen, from the classes of its ingredients.

    Background drugs are ignored; of the rest, the class first in
    :data:`CLASS_PRECEDENCE` names the regimen (endocrine therapy with a CDK4/6 inhibitor is
    ``cdk46_endocrine``; trastuzumab with docetaxel is ``her2_targeted``).

    Examples
    --------
    >>> therapy_class_of({"endocrine", "cdk46_endocrine"})
    'cdk46_endocrine'
    >>> therapy_class_of(["chemotherapy", "immunotherapy", "background"])
    'immunotherapy'
    >>> therapy_class_of(["background"]) is None
    True

    """
    present = set(classes) - {BACKGROUND}
    for name in CLASS_PRECEDENCE:
        if name in present:
            return name
    return None


def cancer_type_of(vocabulary: str, code: str) -> str | None:
    """The cancer type of one coded diagnosis, by its longest matching code prefix.

    ICD codes are compared without their dot (``C34.1`` and ``C341`` are the same). Returns
    ``"secondary"`` for codes that name a metastatic site (ignored by the adapters) and None
    for codes the table does not cover (not a cancer).

    Examples
    --------
    >>> cancer_type_of("ICD10CM", "C34.11")
    'nsclc'
    >>> cancer_type_of("ICD10CM", "C79.51")
    'secondary'
    >>> cancer_type_of("ICD10CM", "C18.7")
    'other'
    >>> cancer_type_of("SNOMED", "254837009")
    'breast'
    >>> cancer_type_of("SNOMED", "44054006") is None
    True

    """
    prefixes = _cancer_prefixes().get((vocabulary or "").strip().upper(), ())
    text = str(code or "").replace(".", "").strip().upper()
    exact = vocabulary.strip().upper() == "SNOMED"  # SNOMED ids are not hierarchical text
    for prefix, cancer in prefixes:
        if text == prefix or (not exact and text.startswith(prefix)):
            return cancer
    return None


@cache
def _cancer_prefixes() -> dict[str, tuple[tuple[str, str], ...]]:
    """Per vocabulary, ``(code prefix, cancer type)`` pairs, longest prefix first."""
    table = cancer_types_table()
    out = {}
    for vocab, rows in table.groupby("vocabulary", sort=False):
        prefixes = rows["code_prefix"].str.replace(".", "", regex=False).str.upper()
        pairs = zip(prefixes, rows["cancer_type"], strict=True)
        out[str(vocab)] = tuple(sorted(pairs, key=lambda kv: -len(kv[0])))
    return out


def representative_drugs(therapy_class: str) -> list[tuple[str, str]]:
    """A regimen of the class for the simulator's record writers: ``(ingredient, code)``.

    Combination classes give their usual partner too (a CDK4/6 inhibitor with letrozole;
    trastuzumab with pertuzumab). ``other`` has no ingredient in the table and gives an
    empty list: records cannot carry it, and the writers say so.

    Examples
    --------
    >>> representative_drugs("cdk46_endocrine")
    [('palbociclib', '1601374'), ('letrozole', '72965')]
    >>> representative_drugs("egfr_tki")
    [('osimertinib', '1721560')]

    """
    table = therapy_classes_table()
    rows = table[(table["therapy_class"] == therapy_class) & (table["role"] == "anchor")]
    if rows.empty:
        return []
    first = rows.iloc[0]
    regimen = [(first["ingredient"], first["rxnorm_code"])]
    partner = {"cdk46_endocrine": "letrozole", "her2_targeted": "pertuzumab"}.get(therapy_class)
    if partner:
        row = table[table["ingredient"] == partner].iloc[0]
        regimen.append((row["ingredient"], row["rxnorm_code"]))
    return regimen


def representative_condition(cancer_type: str) -> dict[str, str]:
    """A code per vocabulary for the cancer type, for the simulator's record writers.

    Examples
    --------
    >>> representative_condition("breast")
    {'ICD10CM': 'C50.9', 'SNOMED': '254837009'}
    >>> representative_condition("other")
    {'ICD10CM': 'C18.9'}

    """
    codes = {
        "nsclc": {"ICD10CM": "C34.90", "SNOMED": "254637007"},
        "breast": {"ICD10CM": "C50.9", "SNOMED": "254837009"},
        "prostate": {"ICD10CM": "C61", "SNOMED": "399068003"},
        "other": {"ICD10CM": "C18.9"},
    }
    return dict(codes[cancer_type])
