"""Outcome adjudication from follow-up imaging: PCWG3 "2+2" and iRECIST confirmation.

Real cohorts carry no ``outcome`` column: whether new bone lesions were a flare or true
progression is decided later, from the follow-up scans. This module does that
reproducibly for every index row (an imaging row with ``new_bone_lesions > 0``) of a
timepoint table and writes ``outcome`` (``flare``, ``progression`` or empty when
indeterminate) with its provenance: ``label_rule`` (name/version), ``label_reason`` (a
machine-readable code, a colon, then words) and ``label_confirm_date`` (the scan that
decided it). Two rules ship, every number configurable (:class:`LabelConfig`): ``pcwg3``
(the default; Scher 2016) and ``irecist`` (Seymour 2017); their definitions, sources and
limits are in ``docs/labels.md`` and ``docs/sources.md`` (Response criteria). Only
imaging findings are read: clinical deterioration and ALP are model inputs, and a label
built from them would leak them into the target. Lab rows are ignored. Each index row is
adjudicated on its own follow-up, so a patient with two index rows gets two labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from flare_ml.config_io import StrictModel, load_config
from flare_ml.data import contract as c
from flare_ml.data.validation import validate_timepoints
from flare_ml.errors import ContractError, Violation

LABEL_RULE: Final = c.LABEL_RULE
LABEL_REASON: Final = c.LABEL_REASON
LABEL_CONFIRM_DATE: Final = c.LABEL_CONFIRM_DATE
#: the provenance columns written beside ``outcome``; known to validation (no notice),
#: never read as features
LABEL_COLUMNS: Final = c.PROVENANCE_COLUMNS

RULES: Final = ("pcwg3", "irecist")
#: version of each rule's logic; bumped whenever a branch changes meaning
RULE_VERSIONS: Final = {"pcwg3": 2, "irecist": 1}
#: pcwg3/2 (from /1): ``first_scan_in_window`` on by default (docs/labels.md, "Versions")

# reason codes (the part of ``label_reason`` before the colon)
INDEX_EXTRAOSSEOUS_PD: Final = "index_extraosseous_pd"
INDEX_NEW_EXTRAOSSEOUS_LESION: Final = "index_new_extraosseous_lesion"
INDEX_PROGRESSIVE_LYSIS: Final = "index_progressive_lysis"
NO_CONFIRMATION_SCAN: Final = "no_confirmation_scan"
CONFIRMED_2PLUS2: Final = "confirmed_2plus2"
CONFIRMED_NEW_LESIONS: Final = "confirmed_new_lesions"
CONFIRMED_EXTRAOSSEOUS_PD: Final = "confirmed_extraosseous_pd"
CONFIRMED_NEW_EXTRAOSSEOUS_LESION: Final = "confirmed_new_extraosseous_lesion"
CONFIRMED_PROGRESSIVE_LYSIS: Final = "confirmed_progressive_lysis"
FLARE_WINDOW_NO_PROGRESSION: Final = "flare_window_no_progression"
LATE_NEW_LESIONS_CONFIRMED: Final = "late_new_lesions_confirmed"
LATE_INDETERMINATE: Final = "late_indeterminate"
NOT_CONFIRMED: Final = "not_confirmed"

#: the outcome each reason code gives (None: indeterminate)
REASON_OUTCOMES: Final[dict[str, str | None]] = {
    INDEX_EXTRAOSSEOUS_PD: "progression",
    INDEX_NEW_EXTRAOSSEOUS_LESION: "progression",
    INDEX_PROGRESSIVE_LYSIS: "progression",
    NO_CONFIRMATION_SCAN: None,
    CONFIRMED_2PLUS2: "progression",
    CONFIRMED_NEW_LESIONS: "progression",
    CONFIRMED_EXTRAOSSEOUS_PD: "progression",
    CONFIRMED_NEW_EXTRAOSSEOUS_LESION: "progression",
    CONFIRMED_PROGRESSIVE_LYSIS: "progression",
    FLARE_WINDOW_NO_PROGRESSION: "flare",
    LATE_NEW_LESIONS_CONFIRMED: "progression",
    LATE_INDETERMINATE: None,
    NOT_CONFIRMED: "flare",
}

Days = Annotated[int, Field(ge=0, le=3650)]


class RuleConfig(StrictModel):
    """The numbers of one adjudication rule (days since the index scan unless named).

    Attributes
    ----------
    progression_at_index : bool
        Progression at the index scan itself when it shows extraosseous PD, a new
        extraosseous lesion or progressive lysis (no confirmation needed).
    confirm_min_days, confirm_max_days : int
        The confirmation scan is the first imaging row this many days after the index
        (both ends included).
    further_new_lesions : int
        Further new bone lesions (summed over the imaging rows after the index up to and
        including the confirmation scan) that confirm progression.
    flare_window_days : int or None
        The flare window in days since treatment start (index date minus
        ``treatment_start_date``, end included). None: no window, an unconfirmed index is
        a flare whenever it was scanned again (iRECIST).
    late_index_min_lesions : int
        After the window, an index scan with at least this many new lesions and a
        confirmation scan is progression; other late index scans are indeterminate.
    first_scan_in_window : bool
        Also count the first post-baseline imaging row as inside the flare window,
        whatever its date: the window is the first ``flare_window_days`` or the first
        post-baseline scan, whichever ends later (PCWG3's window is "primarily the
        initial post-baseline assessment", and it assesses flare on the first scan after
        treatment start). On in :data:`PCWG3_DEFAULTS` since ``pcwg3/2``; False (the
        field's own default, and ``pcwg3/1``'s rule) counts days only.

    Examples
    --------
    >>> PCWG3_DEFAULTS.model_copy(update={"flare_window_days": 91}).flare_window_days
    91
    >>> RuleConfig(progression_at_index=False, confirm_min_days=60, confirm_max_days=30,
    ...            further_new_lesions=1, flare_window_days=None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for RuleConfig
    ...

    """

    progression_at_index: bool
    confirm_min_days: Days
    confirm_max_days: Days
    further_new_lesions: Annotated[int, Field(ge=1)]
    flare_window_days: Days | None
    late_index_min_lesions: Annotated[int, Field(ge=1)] = 2
    first_scan_in_window: bool = False

    @model_validator(mode="after")
    def _window(self) -> RuleConfig:
        if self.confirm_min_days > self.confirm_max_days:
            raise ValueError("confirm_min_days must not exceed confirm_max_days")
        return self


#: PCWG3 (Scher 2016; docs/sources.md, Response criteria): confirmation >= 6 weeks later,
#: >= 2 further new lesions ("2+2"); flare window 12 weeks (upper end of "8-12 weeks") or
#: the first post-baseline scan, whichever is later (PCWG3 judges flare on the first
#: post-treatment scan; default since pcwg3/2); 16 weeks as the latest confirmation is
#: issue 15's default (two 8-week intervals)
PCWG3_DEFAULTS: Final = RuleConfig(
    progression_at_index=True,
    confirm_min_days=42,
    confirm_max_days=112,
    further_new_lesions=2,
    flare_window_days=84,
    late_index_min_lesions=2,
    first_scan_in_window=True,
)
#: iRECIST (Seymour 2017): iUPD confirmed (iCPD) on the next assessment 4-8 weeks later by
#: additional new lesions or further growth; no flare window
IRECIST_DEFAULTS: Final = RuleConfig(
    progression_at_index=False,
    confirm_min_days=28,
    confirm_max_days=56,
    further_new_lesions=1,
    flare_window_days=None,
    late_index_min_lesions=1,
)


class LabelConfig(StrictModel):
    """Both rules' numbers; a YAML file sets any of them (``flare-ml label --config``).

    A rule block names only the keys it changes; the others keep the rule's defaults.

    Examples
    --------
    >>> LabelConfig().pcwg3.confirm_min_days
    42
    >>> LabelConfig.model_validate({"irecist": {"confirm_max_days": 63}}).irecist.confirm_max_days
    63

    """

    pcwg3: RuleConfig = PCWG3_DEFAULTS
    irecist: RuleConfig = IRECIST_DEFAULTS

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for rule, default in (("pcwg3", PCWG3_DEFAULTS), ("irecist", IRECIST_DEFAULTS)):
            block = out.get(rule)
            if isinstance(block, dict):
                out[rule] = {**default.model_dump(), **block}
        return out


def load_label_config(path: str | Path | None = None) -> LabelConfig:
    """Read a label config YAML (keys ``pcwg3`` and/or ``irecist``); None: the defaults.

    An unknown or misspelt key is a :class:`~flare_ml.errors.ConfigError` naming it.

    Examples
    --------
    >>> load_label_config().irecist.confirm_min_days
    28

    """
    return LabelConfig() if path is None else load_config(LabelConfig, path)


def _reason_words(rule: str, cfg: RuleConfig) -> dict[str, str]:
    """Code -> words of each reason, with the rule's numbers."""
    lo, hi = cfg.confirm_min_days, cfg.confirm_max_days
    window = cfg.flare_window_days
    # short enough that the timeline's label line (rule, reason, date) fits on one line
    flare = f"index within {window} days of treatment start, no progression by the "
    flare += "confirmation scan"
    after = f"the {window}-day flare window"
    if cfg.first_scan_in_window:
        flare = f"index by day {window} or on the first post-baseline scan, no progression "
        flare += "by confirmation"
        after = f"day {window} and the first post-baseline scan"
    return {
        INDEX_EXTRAOSSEOUS_PD: "extraosseous PD at the index scan",
        INDEX_NEW_EXTRAOSSEOUS_LESION: "new extraosseous lesion at the index scan",
        INDEX_PROGRESSIVE_LYSIS: "progressive lysis at the index scan",
        NO_CONFIRMATION_SCAN: f"no imaging {lo}-{hi} days after the index scan",
        CONFIRMED_2PLUS2: f">= {cfg.further_new_lesions} further new bone lesions by the "
        "confirmation scan (2+2)",
        CONFIRMED_NEW_LESIONS: f">= {cfg.further_new_lesions} further new bone lesion(s) by "
        "the confirmation scan",
        CONFIRMED_EXTRAOSSEOUS_PD: "extraosseous PD by the confirmation scan",
        CONFIRMED_NEW_EXTRAOSSEOUS_LESION: "new extraosseous lesion by the confirmation scan",
        CONFIRMED_PROGRESSIVE_LYSIS: "progressive lysis by the confirmation scan",
        FLARE_WINDOW_NO_PROGRESSION: flare,
        LATE_NEW_LESIONS_CONFIRMED: f">= {cfg.late_index_min_lesions} new bone lesions after "
        f"{after}, confirmation scan present",
        LATE_INDETERMINATE: f"fewer than {cfg.late_index_min_lesions} new bone lesions after "
        f"{after}, no progression by the confirmation scan",
        NOT_CONFIRMED: "progression not confirmed on the next scan (iUPD, not iCPD)",
    }


def rule_name(rule: str, cfg: RuleConfig) -> str:
    """``label_rule`` text: ``pcwg3/2``, with ``+custom`` when a setting differs from default.

    Examples
    --------
    >>> rule_name("pcwg3", PCWG3_DEFAULTS)
    'pcwg3/2'
    >>> rule_name("pcwg3", PCWG3_DEFAULTS.model_copy(update={"flare_window_days": 90}))
    'pcwg3/2+custom(flare_window_days=90)'
    >>> rule_name("pcwg3", PCWG3_DEFAULTS.model_copy(update={"first_scan_in_window": False}))
    'pcwg3/2+custom(first_scan_in_window=False)'

    """
    default = PCWG3_DEFAULTS if rule == "pcwg3" else IRECIST_DEFAULTS
    changed = [f"{k}={v}" for k, v in cfg.model_dump().items() if v != getattr(default, k)]
    name = f"{rule}/{RULE_VERSIONS[rule]}"
    return f"{name}+custom({','.join(changed)})" if changed else name


@dataclass
class LabelResult:
    """The labelled table and what the adjudication found.

    Attributes
    ----------
    table : DataFrame
        The validated input with ``outcome``, ``label_rule``, ``label_reason`` and
        ``label_confirm_date`` set on index rows (empty elsewhere).
    rule : str
        The ``label_rule`` written (name/version).
    counts : DataFrame
        One row per (``outcome``, ``reason``) with ``n``: ``outcome`` is ``flare``,
        ``progression`` or ``indeterminate``.
    index_rows : int
        Number of index rows adjudicated.
    notices : list of str
        What the user should know (outcomes replaced).

    Examples
    --------
    >>> from flare_ml.cases import seed_case_timeline
    >>> result = adjudicate(seed_case_timeline(), overwrite=True)
    >>> result.rule, result.index_rows, result.indeterminate_share
    ('pcwg3/2', 1, 0.0)
    >>> result.counts.values.tolist()
    [['flare', 'flare_window_no_progression', 1]]

    """

    table: pd.DataFrame
    rule: str
    counts: pd.DataFrame
    index_rows: int
    notices: list[str] = field(default_factory=list)

    @property
    def indeterminate(self) -> int:
        """Index rows left without an outcome."""
        return int(self.counts.loc[self.counts["outcome"] == "indeterminate", "n"].sum())

    @property
    def indeterminate_share(self) -> float:
        """Share of index rows left without an outcome (nan without index rows)."""
        return self.indeterminate / self.index_rows if self.index_rows else float("nan")


def _flag(series: pd.Series) -> np.ndarray:
    """True where a boolean column is True; missing is not evidence."""
    return series.astype("boolean").fillna(False).to_numpy(dtype=bool)


def adjudicate(
    timepoints: pd.DataFrame,
    rule: Literal["pcwg3", "irecist"] = "pcwg3",
    config: LabelConfig | RuleConfig | None = None,
    *,
    overwrite: bool = False,
    source: str | None = None,
) -> LabelResult:
    """Adjudicate the outcome of every index row from the patient's follow-up imaging.

    For each index row (imaging, ``new_bone_lesions > 0``), in this order:

    1. (``progression_at_index``, pcwg3) extraosseous PD, a new extraosseous lesion or
       progressive lysis at the index scan: progression (``index_*``; confirmed on the
       index date).
    2. The confirmation scan is the patient's first imaging row ``confirm_min_days`` to
       ``confirm_max_days`` after the index; none: indeterminate
       (``no_confirmation_scan``).
    3. Progression when the imaging rows after the index up to and including the
       confirmation scan show at least ``further_new_lesions`` new bone lesions in sum
       (``confirmed_2plus2`` / ``confirmed_new_lesions``), or extraosseous PD, a new
       extraosseous lesion or progressive lysis (``confirmed_*``).
    4. Otherwise, without a flare window (irecist): flare (``not_confirmed``). With one
       (pcwg3): flare when the index lies within ``flare_window_days`` of treatment start
       (``flare_window_no_progression``; with ``first_scan_in_window``, the pcwg3
       default, also when the index is the first post-baseline imaging row, whatever its
       date); after it, progression when the index showed at
       least ``late_index_min_lesions`` (``late_new_lesions_confirmed``), else
       indeterminate (``late_indeterminate``).

    Lab rows are ignored; a missing finding is not evidence (a missing
    ``new_extraosseous_lesion`` is not a new lesion). Clinical deterioration and ALP are
    never read: they are model inputs.

    Parameters
    ----------
    timepoints : DataFrame
        A timepoint table (validated here: a contract violation raises
        :class:`~flare_ml.errors.ContractError`).
    rule : {"pcwg3", "irecist"}
        Which rule.
    config : LabelConfig or RuleConfig, optional
        The numbers; default :data:`PCWG3_DEFAULTS` / :data:`IRECIST_DEFAULTS`.
    overwrite : bool, default False
        An ``outcome`` already filled on any row is refused unless True (then it is
        replaced, and a notice says how many changed).
    source : str, optional
        Where the table came from, for messages.

    Returns
    -------
    LabelResult

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({
    ...     "patient_id": ["A"] * 3,
    ...     "treatment_start_date": ["2024-01-01"] * 3,
    ...     "assessment_date": ["2024-01-01", "2024-02-26", "2024-04-22"],
    ...     "cancer_type": "nsclc", "therapy_class": "egfr_tki",
    ...     "extraosseous_response": ["baseline", "PR", "PR"],
    ...     "new_bone_lesions": [0, 3, 0],
    ...     "new_lesion_morphology": ["none", "blastic", "none"]})
    >>> result = adjudicate(rows)
    >>> labelled = result.table.dropna(subset=["label_rule"])
    >>> labelled[["outcome", "label_rule"]].values.tolist()
    [['flare', 'pcwg3/2']]
    >>> labelled["label_reason"].iloc[0].split(":")[0]
    'flare_window_no_progression'

    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    if isinstance(config, RuleConfig):
        cfg = config
    else:
        cfg = getattr(config or LabelConfig(), rule)
    label = rule_name(rule, cfg)
    words = _reason_words(rule, cfg)
    where = f" in {source}" if source else ""

    raw = timepoints.drop(columns=[x for x in LABEL_COLUMNS if x in timepoints.columns])
    table = validate_timepoints(raw, source=source)
    notices: list[str] = []
    old = table[c.OUTCOME].astype("string")
    if old.notna().any():
        n_old = int(old.notna().sum())
        if not overwrite:
            mask = old.notna().to_numpy()
            sample = table.loc[mask, [c.PATIENT_ID, c.ASSESSMENT_DATE]].head(5)
            raise ContractError(
                f"the table{where} already has outcomes; adjudicating would replace them",
                [
                    Violation(
                        column=c.OUTCOME,
                        rule="outcome_present",
                        rows=tuple(
                            (str(p), pd.Timestamp(d).strftime("%Y-%m-%d"))
                            for p, d in sample.itertuples(index=False)
                        ),
                        count=n_old,
                        message="the outcome is already set",
                        hint="drop the outcome column, or pass --overwrite to replace it",
                    )
                ],
            )

    n = len(table)
    row_type = table[c.ROW_TYPE].astype("string").fillna("imaging").to_numpy()
    imaging = row_type == "imaging"
    img = table.loc[imaging]
    pid_codes = pd.factorize(img[c.PATIENT_ID])[0].astype(np.int64)
    day = (
        img[c.ASSESSMENT_DATE].to_numpy(dtype="datetime64[D]").astype(np.int64)
    )  # validated: sorted by patient then date
    start = img[c.TREATMENT_START_DATE].to_numpy(dtype="datetime64[D]").astype(np.int64)
    count = img[c.NEW_BONE_LESIONS].fillna(0).to_numpy(dtype=np.int64)
    xpd = (img[c.EXTRAOSSEOUS_RESPONSE].astype("string") == "PD").fillna(False).to_numpy(bool)
    newx = _flag(img[c.NEW_EXTRAOSSEOUS_LESION])
    lysis = _flag(img[c.PROGRESSIVE_LYSIS])

    span = 1 << 24  # > any day number of a real date
    key = pid_codes * span + (day - day.min() if len(day) else day)
    order_ok = len(key) < 2 or bool(np.all(np.diff(key) > 0))
    if not order_ok:  # validation sorts and refuses duplicates; guard the invariant
        raise AssertionError("imaging rows are not sorted by patient and date")

    idx = np.nonzero(count > 0)[0]
    m = len(idx)
    reason = np.full(m, "", dtype=object)
    confirm_pos = np.full(m, -1)
    # 2. the confirmation scan
    if m:
        lo = np.searchsorted(key, key[idx] + cfg.confirm_min_days, side="left")
        lo_c = np.minimum(lo, len(key) - 1)
        has_conf = (
            (lo < len(key))
            & (pid_codes[lo_c] == pid_codes[idx])
            & (day[lo_c] - day[idx] <= cfg.confirm_max_days)
        )
        confirm_pos = np.where(has_conf, lo_c, -1)
        # 3. evidence after the index up to and including the confirmation scan
        cum = {
            "count": np.cumsum(count),
            "xpd": np.cumsum(xpd),
            "newx": np.cumsum(newx),
            "lysis": np.cumsum(lysis),
        }
        ev = {k: np.where(has_conf, v[lo_c] - v[idx], 0) for k, v in cum.items()}
        decided = np.zeros(m, dtype=bool)

        def assign(mask: np.ndarray, code: str) -> None:
            take = mask & ~decided
            reason[take] = code
            decided[take] = True

        if cfg.progression_at_index:
            assign(xpd[idx], INDEX_EXTRAOSSEOUS_PD)
            assign(newx[idx], INDEX_NEW_EXTRAOSSEOUS_LESION)
            assign(lysis[idx], INDEX_PROGRESSIVE_LYSIS)
        assign(~has_conf, NO_CONFIRMATION_SCAN)
        lesion_code = CONFIRMED_2PLUS2 if rule == "pcwg3" else CONFIRMED_NEW_LESIONS
        assign(ev["count"] >= cfg.further_new_lesions, lesion_code)
        assign(ev["xpd"] > 0, CONFIRMED_EXTRAOSSEOUS_PD)
        assign(ev["newx"] > 0, CONFIRMED_NEW_EXTRAOSSEOUS_LESION)
        assign(ev["lysis"] > 0, CONFIRMED_PROGRESSIVE_LYSIS)
        if cfg.flare_window_days is None:
            assign(np.ones(m, dtype=bool), NOT_CONFIRMED)
        else:
            in_window = (day[idx] - start[idx]) <= cfg.flare_window_days
            if cfg.first_scan_in_window:  # the first imaging row after the start date
                post = day > start
                n_post = pd.Series(post).groupby(pid_codes).cumsum().to_numpy()
                in_window |= (post & (n_post == 1))[idx]
            assign(in_window, FLARE_WINDOW_NO_PROGRESSION)
            assign(count[idx] >= cfg.late_index_min_lesions, LATE_NEW_LESIONS_CONFIRMED)
            assign(np.ones(m, dtype=bool), LATE_INDETERMINATE)

    # write back onto the full table
    img_rows = np.nonzero(imaging)[0]
    rows = img_rows[idx]
    outcome = np.full(n, None, dtype=object)
    label_rule = np.full(n, None, dtype=object)
    label_reason = np.full(n, None, dtype=object)
    confirm = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    outcome[rows] = [REASON_OUTCOMES[r] for r in reason]
    label_rule[rows] = label
    label_reason[rows] = [f"{r}: {words[r]}" for r in reason]
    img_dates = img[c.ASSESSMENT_DATE].to_numpy(dtype="datetime64[ns]")
    at_index = np.array([r.startswith("index_") for r in reason], dtype=bool)
    conf_dates = np.where(
        confirm_pos >= 0, img_dates[np.maximum(confirm_pos, 0)], np.datetime64("NaT")
    )
    conf_dates = np.where(at_index, img_dates[idx], conf_dates)
    confirm[rows] = conf_dates

    if overwrite and old.notna().any():
        new = pd.Series(outcome, dtype="string")
        changed = int((old.fillna("") != new.fillna("")).sum())
        notices.append(
            f"replaced {int(old.notna().sum())} existing outcome(s); {changed} row(s) changed"
        )
    out = table.copy()
    out[c.OUTCOME] = pd.Categorical(outcome, categories=list(c.OUTCOMES))
    out[LABEL_RULE] = pd.array(label_rule, dtype="string")
    out[LABEL_REASON] = pd.array(label_reason, dtype="string")
    out[LABEL_CONFIRM_DATE] = confirm

    codes = pd.Series(reason, dtype="object")
    counts = (
        pd.DataFrame(
            {
                "outcome": [REASON_OUTCOMES[r] or "indeterminate" for r in reason],
                "reason": codes,
            }
        )
        .value_counts()
        .rename("n")
        .reset_index()
        .sort_values(["outcome", "n"], ascending=[True, False], ignore_index=True)
    )
    if not m:
        counts = pd.DataFrame({"outcome": [], "reason": [], "n": []})
    return LabelResult(table=out, rule=label, counts=counts, index_rows=m, notices=notices)


def reason_codes(table: pd.DataFrame) -> pd.Series:
    """The reason code of every row (``<NA>`` where there is no label).

    Examples
    --------
    >>> import pandas as pd
    >>> reason_codes(pd.DataFrame({"label_reason": ["late_indeterminate: x", None]})).tolist()
    ['late_indeterminate', <NA>]

    """
    return table[LABEL_REASON].astype("string").str.split(":", n=1).str[0]


__all__ = [
    "IRECIST_DEFAULTS",
    "LABEL_COLUMNS",
    "LABEL_CONFIRM_DATE",
    "LABEL_REASON",
    "LABEL_RULE",
    "PCWG3_DEFAULTS",
    "REASON_OUTCOMES",
    "RULES",
    "LabelConfig",
    "LabelResult",
    "RuleConfig",
    "adjudicate",
    "load_label_config",
    "reason_codes",
    "rule_name",
]
