"""The model card of a training run, organised by the TRIPOD+AI (2024) checklist items.

:func:`model_card` writes the Markdown card that every ``flare-ml train`` leaves as
``model_card.md`` (and logs to its MLflow run): the synthetic-data warning first, then
the checklist items by their TRIPOD+AI 2024 numbers, each filled from the run itself:
sample size and events per cohort (:func:`sample_size_table`), the participants' Table 1
by cohort (:func:`table_one`), predictors and missing data, the outcome and how the
simulator adjudicates it, how to read and act on each output column, the decision tables
of the error budget (where it held and where it was missed), performance with confidence
intervals against the rules and the oracle, subgroup results, model updating, and the
version, run and commit that identify the model. Items that a synthetic-data card cannot
fill are listed as such rather than claimed. The module sits at the report layer but
imports nothing from :mod:`flare_ml.report`, which calls it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flare_ml import __version__
from flare_ml.bundle import SYNTHETIC_CAVEAT
from flare_ml.data import contract as c
from flare_ml.evaluation.subgroups import SMALL_N_CLASS, SMALL_N_ROWS, is_small_n
from flare_ml.explain import SIGNALS
from flare_ml.site_calibration import SITE_CALIBRATED, TRANSPORTED

__all__ = [
    "CHECKLIST",
    "TRIPOD_AI_ITEMS",
    "model_card",
    "performance_table",
    "sample_size_table",
    "source_commit",
    "subgroup_table",
    "table_one",
]

MODEL = "xgboost"
ORACLE = "oracle"
#: how a small subgroup level is flagged (same rule as the report)
SMALL_N_NOTE = "small n"
#: text of the checklist's reference, as the card states it
CHECKLIST = (
    "TRIPOD+AI (Collins GS et al., BMJ 2024;385:e078378), 2024 checklist; item numbers "
    "and titles follow it"
)

#: the TRIPOD+AI 2024 checklist: item number -> its title (sub-items with a short gloss)
TRIPOD_AI_ITEMS: dict[str, str] = {
    "1": "Title",
    "2": "Abstract",
    "3a": "Background: healthcare context and rationale",
    "3b": "Background: target population and intended use in the care pathway",
    "3c": "Background: known health inequalities between groups",
    "4": "Objectives",
    "5a": "Data: sources, for development and evaluation",
    "5b": "Data: dates of the data",
    "6a": "Participants: setting",
    "6b": "Participants: eligibility criteria",
    "6c": "Participants: treatments received",
    "7": "Data preparation",
    "8a": "Outcome: definition, time horizon, how and when assessed",
    "8b": "Outcome: qualifications of the outcome assessors",
    "8c": "Outcome: blinding of outcome assessment",
    "9a": "Predictors: choice of initial predictors",
    "9b": "Predictors: definition, how and when measured",
    "9c": "Predictors: qualifications of the predictor assessors",
    "10": "Sample size",
    "11": "Missing data",
    "12a": "Analytical methods: how the data were used",
    "12b": "Analytical methods: handling of predictors",
    "12c": "Analytical methods: model type, building steps, tuning, internal validation",
    "12d": "Analytical methods: heterogeneity across clusters",
    "12e": "Analytical methods: performance measures",
    "12f": "Analytical methods: model updating",
    "12g": "Analytical methods: how predictions were calculated in evaluation",
    "13": "Class imbalance",
    "14": "Fairness",
    "15": "Model output",
    "16": "Training versus evaluation",
    "17": "Ethical approval",
    "18a": "Funding",
    "18b": "Conflicts of interest",
    "18c": "Protocol",
    "18d": "Registration",
    "18e": "Data sharing",
    "18f": "Code sharing",
    "19": "Patient and public involvement",
    "20a": "Participants: flow, with and without the outcome",
    "20b": "Participants: characteristics by data source",
    "20c": "Participants: evaluation data compared with development data",
    "21": "Model development: participants and events in each analysis",
    "22": "Model specification",
    "23a": "Model performance: with confidence intervals, including subgroups",
    "23b": "Model performance: heterogeneity across clusters",
    "24": "Model updating: results",
    "25": "Interpretation",
    "26": "Limitations",
    "27a": "Usability: handling poor-quality or unavailable input data",
    "27b": "Usability: user interaction and expertise required",
    "27c": "Usability: future research, applicability and generalisability",
}

NOT_APPLICABLE = "not applicable (synthetic data)"
NOT_REPORTED = "not reported in this card"
#: items the card does not fill, with why
_UNFILLED: dict[str, str] = {
    "3c": NOT_APPLICABLE + ": the simulated cohorts carry no sociodemographic variables",
    "8b": NOT_APPLICABLE + ": outcomes are generated, not read by assessors",
    "9c": NOT_APPLICABLE + ": predictors are generated, not read by assessors",
    "17": NOT_APPLICABLE + ": no patient data, no ethics review",
    "18a": NOT_REPORTED,
    "18b": NOT_REPORTED,
    "18c": NOT_REPORTED,
    "18d": NOT_REPORTED,
    "19": NOT_REPORTED,
}


def _item(number: str) -> str:
    """The bold label of a checklist item, e.g. ``**10. Sample size.**``."""
    return f"**{number}. {TRIPOD_AI_ITEMS[number]}.**"


def _section(title: str, items: Sequence[str]) -> str:
    """A card heading that names its checklist items."""
    return f"## {title} (TRIPOD+AI {', '.join(items)})"


def _md(frame: pd.DataFrame, index: bool = False) -> str:
    return frame.to_markdown(index=index) if len(frame) else "(none)"


def _without_role(label: str) -> str:
    """A cohort label without its role prefix ("external: ", "training: ", ...).

    Examples
    --------
    >>> _without_role("external: simulated site nordic (2000 patients, seed 3)")
    'simulated site nordic (2000 patients, seed 3)'

    """
    head, sep, tail = label.partition(": ")
    return tail if sep and " " not in head else label


def _n_pct(n: int, of: int) -> str:
    """``"12 (34.5%)"``; ``"0 (-)"`` when the denominator is 0.

    Examples
    --------
    >>> _n_pct(3, 12), _n_pct(0, 0)
    ('3 (25.0%)', '0 (-)')

    """
    return f"{n} ({100 * n / of:.1f}%)" if of else f"{n} (-)"


def _median_iqr(values: pd.Series) -> str:
    """``"median [Q1, Q3]"`` of the non-missing values (``"-"`` when there are none).

    Examples
    --------
    >>> _median_iqr(pd.Series([1.0, 2.0, 3.0, 4.0, np.nan]))
    '2 [2, 3]'

    """
    v = values.dropna().astype(float)
    if not len(v):
        return "-"
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return f"{med:.0f} [{q1:.0f}, {q3:.0f}]"


def _cohorts(result: Any) -> list[Any]:
    return [result.training, *result.externals]


def _index_rows(cohort: Any) -> pd.DataFrame:
    """The timepoint rows of a cohort's index assessments, in the features' order."""
    rows = cohort.timepoints.drop_duplicates([c.PATIENT_ID, c.ASSESSMENT_DATE]).set_index(
        [c.PATIENT_ID, c.ASSESSMENT_DATE]
    )
    return rows.reindex(cohort.features.index)


def _first_per_patient(cohort: Any) -> pd.DataFrame:
    """Features and context of each analysed patient's first index assessment."""
    frame = cohort.features.reset_index()
    frame[c.CANCER_TYPE] = cohort.context[c.CANCER_TYPE].to_numpy()
    frame[c.THERAPY_CLASS] = cohort.context[c.THERAPY_CLASS].to_numpy()
    frame = frame.sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE], kind="stable")
    return frame.drop_duplicates(c.PATIENT_ID)


def sample_size_table(result: Any) -> pd.DataFrame:
    """Patients, index assessments and events per cohort; events per candidate predictor.

    One row per cohort (training first): ``patients`` (in the table), ``patients
    analysed`` (with at least one index assessment, i.e. new bone lesions on a
    follow-up scan), ``index assessments``, ``flares`` and ``progressions`` (recorded
    outcomes of the index assessments), and, for the training cohort, ``events per
    candidate predictor``: the smaller outcome class divided by the number of candidate
    predictors (model features, one-hot levels counted separately).

    Examples
    --------
    >>> from serving_helpers import small_training  # doctest: +SKIP
    >>> sample_size_table(small_training())["index assessments"].tolist()  # doctest: +SKIP
    [209, 77]

    """
    n_predictors = len(result.model.feature_names_in_)
    rows = []
    for cohort in _cohorts(result):
        y = np.asarray(cohort.y, dtype=int)
        n_flare, n_prog = int((y == 1).sum()), int((y == 0).sum())
        is_training = cohort is result.training
        rows.append(
            {
                "cohort": cohort.label,
                "patients": int(cohort.timepoints[c.PATIENT_ID].nunique()),
                "patients analysed": len(set(cohort.patient_ids)),
                "index assessments": len(y),
                "flares": n_flare,
                "progressions": n_prog,
                "events per candidate predictor": (
                    f"{min(n_flare, n_prog) / n_predictors:.1f} "
                    f"({min(n_flare, n_prog)} / {n_predictors})"
                    if is_training
                    else "- (evaluation only)"
                ),
            }
        )
    return pd.DataFrame(rows)


def table_one(cohorts: Sequence[Any]) -> pd.DataFrame:
    """Table 1: characteristics of the analysed participants, one column per cohort.

    Patient rows count the patients with at least one index assessment (cancer type,
    therapy class, baseline ALP as the featurizer computes it at their first index
    assessment); index-assessment rows count index assessments (ALP at the index
    assessment, new-lesion morphology and extraosseous response at the index scan, and
    the recorded outcome). Counts are ``n (%)``; ALP is ``median [Q1, Q3]`` in U/L.

    Parameters
    ----------
    cohorts : sequence of PreparedCohort
        Labelled cohorts (:func:`flare_ml.training.prepare_cohort`).

    Returns
    -------
    DataFrame
        Index ``characteristic``; one text column per cohort label.

    Examples
    --------
    >>> from serving_helpers import small_training  # doctest: +SKIP
    >>> t1 = table_one([small_training().training])  # doctest: +SKIP
    >>> t1.loc["index assessments, n"].iloc[0]  # doctest: +SKIP
    '209'

    """
    columns: dict[str, dict[str, str]] = {}
    therapies = sorted(
        {t for cohort in cohorts for t in cohort.context[c.THERAPY_CLASS].astype(str)},
        key=lambda t: c.THERAPY_CLASSES.index(t) if t in c.THERAPY_CLASSES else 99,
    )
    for cohort in cohorts:
        first = _first_per_patient(cohort)
        n_pat = len(first)
        index = _index_rows(cohort)
        n_idx = len(index)
        col: dict[str, str] = {
            "patients in the table, n": str(int(cohort.timepoints[c.PATIENT_ID].nunique())),
            "patients analysed (at least one index assessment), n": str(n_pat),
            "index assessments, n": str(n_idx),
        }
        for cancer in c.CANCER_TYPES:
            n = int((first[c.CANCER_TYPE] == cancer).sum())
            col[f"cancer type: {cancer}, n (%) of patients"] = _n_pct(n, n_pat)
        for therapy in therapies:
            n = int((first[c.THERAPY_CLASS] == therapy).sum())
            col[f"therapy class: {therapy}, n (%) of patients"] = _n_pct(n, n_pat)
        col["age"] = "not in the data contract"
        col["baseline ALP, U/L, median [IQR]"] = _median_iqr(first["alp_baseline_u_l"])
        col["no ALP before treatment start, n (%) of patients"] = _n_pct(
            int((first["alp_baseline_missing"] == 1).sum()), n_pat
        )
        col["no ALP at or before the index assessment, n (%) of index assessments"] = _n_pct(
            int((cohort.features["alp_missing"] == 1).sum()), n_idx
        )
        morphology = index[c.NEW_LESION_MORPHOLOGY].astype("string").fillna("missing")
        for value in [*c.MORPHOLOGIES, "missing"]:
            n = int((morphology == value).sum())
            if value in ("none", "unknown", "missing") and n == 0:
                continue
            col[f"new-lesion morphology: {value}, n (%) of index assessments"] = _n_pct(n, n_idx)
        response = index[c.EXTRAOSSEOUS_RESPONSE].astype("string").fillna("missing")
        for value in [r for r in c.EXTRAOSSEOUS_RESPONSES if r != "baseline"] + ["missing"]:
            n = int((response == value).sum())
            if value == "missing" and n == 0:
                continue
            col[f"extraosseous response at index scan: {value}, n (%)"] = _n_pct(n, n_idx)
        y = np.asarray(cohort.y, dtype=int)
        col["outcome: flare, n (%) of index assessments"] = _n_pct(int((y == 1).sum()), n_idx)
        col["outcome: progression, n (%) of index assessments"] = _n_pct(int((y == 0).sum()), n_idx)
        columns[cohort.label] = col
    frame = pd.DataFrame(columns).fillna("0 (0.0%)")
    frame.index.name = "characteristic"
    return frame


def _ci_text(est: float, low: float, high: float, digits: int = 3) -> str:
    """``"0.812 [0.781, 0.840]"``, the estimate alone without an interval, "-" for NaN.

    Examples
    --------
    >>> _ci_text(0.8, 0.7, 0.9), _ci_text(0.8, float("nan"), float("nan"))
    ('0.800 [0.700, 0.900]', '0.800')

    """
    if not np.isfinite(est):
        return "-"
    if np.isfinite(low) and np.isfinite(high):
        return f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    return f"{est:.{digits}f}"


_PERFORMANCE_METRICS = (
    ("auroc", "AUROC", False),
    ("auprc", "AUPRC", False),
    ("calibration_slope", "calibration slope", True),
    ("calibration_intercept", "calibration intercept", True),
    ("brier", "Brier", True),
    ("ece", "ECE", True),
)


def performance_table(ev: Any, rules: Sequence[str]) -> pd.DataFrame:
    """Model, rules and oracle on one cohort, with 95% patient-level bootstrap intervals.

    Rules score rankings, not probabilities: they get the ranking metrics (AUROC,
    AUPRC) only and ``n/a`` for the probability metrics.
    """
    metrics = ev.metrics.set_index(["scorer", "metric"])
    rows = []
    for scorer in ev.scorers:
        kind = "model" if scorer == MODEL else "oracle" if scorer == ORACLE else "rule"
        row = {"scorer": scorer, "kind": kind}
        for metric, name, needs_probability in _PERFORMANCE_METRICS:
            ranking_only = scorer in rules or not ev.is_probability(scorer)
            if needs_probability and ranking_only:
                row[name] = "n/a (ranking score)"
            elif (scorer, metric) in metrics.index:
                est, low, high = metrics.loc[(scorer, metric), ["estimate", "ci_low", "ci_high"]]
                row[name] = _ci_text(float(est), float(low), float(high))
            else:
                row[name] = "-"
        rows.append(row)
    return pd.DataFrame(rows)


def subgroup_table(ev: Any) -> pd.DataFrame:
    """The model's metrics by cancer type and therapy class, with intervals and n flags.

    Intervals are shown where the evaluation computed them (``<metric>_ci_low`` and
    ``<metric>_ci_high`` columns, or ``ci_low``/``ci_high`` for AUROC); small levels
    (:func:`~flare_ml.evaluation.subgroups.is_small_n`, as in the report) are flagged.
    """
    sub = ev.subgroups
    if not len(sub):
        return pd.DataFrame()
    sub = sub[sub["scorer"] == MODEL] if "scorer" in sub.columns else sub
    rows = []
    for _, r in sub.iterrows():
        n_flare = int(r.get("n_flare", 0))
        n_prog = int(r.get("n_progression", int(r["n"]) - n_flare))
        row = {
            "variable": r["variable"],
            "level": r["level"],
            "n": int(r["n"]),
            "flares": n_flare,
            "progressions": n_prog,
        }
        for metric, name in (
            ("auroc", "AUROC"),
            ("calibration_slope", "calibration slope"),
            ("sensitivity", "sensitivity"),
            ("specificity", "specificity"),
        ):
            if metric not in sub.columns:
                continue
            low = r.get(f"{metric}_ci_low", r.get("ci_low") if metric == "auroc" else np.nan)
            high = r.get(f"{metric}_ci_high", r.get("ci_high") if metric == "auroc" else np.nan)
            row[name] = _ci_text(float(r[metric]), float(low), float(high))
        small = is_small_n(int(r["n"]), n_flare, n_prog)
        row["note"] = SMALL_N_NOTE if small else ""
        rows.append(row)
    return pd.DataFrame(rows)


def source_commit() -> str:
    """The git commit of the flare-ml source in use, or ``"unknown"``.

    Only a git checkout whose ``src/flare_ml`` is this very package counts (an installed
    wheel inside some other repository is ``"unknown"``); uncommitted changes to tracked
    files are noted. Never raises.

    Examples
    --------
    >>> commit = source_commit()
    >>> commit == "unknown" or len(commit.split()[0]) == 40
    True

    """
    here = Path(__file__).resolve()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=here.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if (top / "src" / "flare_ml" / here.name).resolve() != here:
            return "unknown"
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError, ValueError):
        return "unknown"
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        return "unknown"
    return commit + (" (with uncommitted changes)" if dirty else "")


def _site_label_noise(label: str) -> str | None:
    """The configured label noise of a simulated cohort's site profile, as text."""
    match = re.search(r"simulated site (\S+) \(", label)
    if not match:
        return None
    try:
        from flare_ml.simulate.config import load_site

        return f"{load_site(match.group(1)).label_noise.value:.0%}"
    except Exception:  # a site given as a file path that moved: the card still renders
        return None


def _version_lines(result: Any, run: Mapping[str, str] | None) -> list[str]:
    cfg = result.config
    run = run or {}
    run_id = run.get("run_id") or "not yet logged (the card is rewritten once the run is)"
    version = run.get("registered_version") or "not yet registered"
    return [
        f"| flare-ml version | {__version__} |",
        f"| model bundle digest | `{result.bundle.digest()}` |",
        f"| MLflow run id | `{run_id}` |" if run.get("run_id") else f"| MLflow run id | {run_id} |",
        f"| registered model | `{cfg.tracking.registered_model_name}` version {version} |",
        f"| model URI | `{run['model_uri']}` |" if run.get("model_uri") else "| model URI | - |",
        f"| source commit | `{source_commit()}` |",
        f"| training data fingerprint | `{result.training.fingerprint['sha256'][:16]}` |",
    ]


def _decision_lines(result: Any) -> list[str]:
    """Decision tables per cohort with rates and CIs, and where the budget was missed."""
    lines: list[str] = []
    missed, near = [], []
    for t in result.decision_tables:
        title = f"{t.cohort}: {t.thresholds}"
        rates = t.rates().reset_index(names="rate of")
        shown = pd.DataFrame(
            {
                "rate of": rates["rate of"],
                "count / of": [
                    f"{int(k)} / {int(n)}" for k, n in zip(rates["count"], rates["of"], strict=True)
                ],
                "rate [95% CI]": [
                    _ci_text(*values)
                    for values in rates[["rate", "ci_low", "ci_high"]].to_numpy(dtype=float)
                ],
                "budget": [f"{b:.0%}" if np.isfinite(b) else "-" for b in rates["budget"]],
                "status": rates["status"].replace("", "-"),
            }
        )
        lines += [
            f"#### {title}",
            "",
            t.sentence() + ".",
            "",
            t.to_frame().reset_index().to_markdown(index=False),
            "",
            shown.to_markdown(index=False),
            "",
        ]
        statuses = set(rates["status"])
        if "missed" in statuses:
            missed.append(title)
        elif "within sampling error" in statuses:
            near.append(title)
    if missed:
        lines.append(
            "**The budget was missed** on: "
            + "; ".join(missed)
            + ". Decisions there do not keep the promise above. The remedy is to recalibrate "
            "the decisions on the site's own labelled patients: `flare-ml calibrate --model "
            "<model> --data <site's labelled table> --out <folder>` (the rows "
            f"'{SITE_CALIBRATED}' show what that gives, cross-fitted)."
        )
    else:
        lines.append(
            "The budget held, or was within sampling error, on every cohort above. At a "
            "new site it is an expectation to check: `flare-ml evaluate` on the site's "
            "labelled patients shows its decision table, and `flare-ml calibrate` "
            "recalibrates the decisions there when it is missed."
        )
    if near:
        lines += [
            "",
            "Above the budget but within sampling error (the interval reaches the budget): "
            + "; ".join(near)
            + ".",
        ]
    return lines


def _interpretation(result: Any, rules: Sequence[str]) -> list[str]:
    lines = []
    for cohort in _cohorts(result):
        ev = result.evaluations[cohort.label]
        model = ev.estimate(MODEL, "auroc")
        best = max(rules, key=lambda r: ev.estimate(r, "auroc")) if rules else None
        text = f"- {cohort.label}: model AUROC {model:.3f}"
        if best is not None:
            text += f", best rule ({best}) {ev.estimate(best, 'auroc'):.3f}"
        if ORACLE in ev.scorers:
            text += f", oracle {ev.estimate(ORACLE, 'auroc'):.3f}"
        lines.append(text + " (simulated data).")
    return lines


def model_card(
    result: Any,
    targets: pd.DataFrame,
    coverage: pd.DataFrame,
    *,
    run: Mapping[str, str] | None = None,
) -> str:
    """The model card of a training run in Markdown, by TRIPOD+AI 2024 item number.

    Parameters
    ----------
    result : TrainingResult
        From :func:`flare_ml.training.train_and_validate`, with its evaluations and
        decision tables.
    targets : DataFrame
        The targets on external cohorts (:func:`flare_ml.report.target_checks`).
    coverage : DataFrame
        Conformal coverage per external cohort (:func:`flare_ml.report.coverage_table`).
    run : mapping, optional
        ``run_id``, ``registered_version`` and ``model_uri`` of the MLflow run
        (:func:`flare_ml.tracking.log_training_run`); before the run is logged the card
        says so, and ``flare-ml train`` rewrites it afterwards.

    Returns
    -------
    str
        The card, ending with a newline.

    Examples
    --------
    >>> from serving_helpers import small_training  # doctest: +SKIP
    >>> card = model_card(small_training(), pd.DataFrame(), pd.DataFrame())  # doctest: +SKIP
    >>> "**10. Sample size.**" in card  # doctest: +SKIP
    True

    """
    cfg = result.config
    tr = result.training
    m = result.model
    bundle = result.bundle
    budget = cfg.decision_policy.budget()
    rules = list(result.rules)
    n_features = len(m.feature_names_in_)
    size = sample_size_table(result)
    noise = {co.label: _site_label_noise(co.label) for co in _cohorts(result)}
    dates = {
        co.label: (
            pd.to_datetime(co.timepoints[c.ASSESSMENT_DATE]).min().date(),
            pd.to_datetime(co.timepoints[c.ASSESSMENT_DATE]).max().date(),
        )
        for co in _cohorts(result)
    }
    calibration_scores = {k: round(v, 4) for k, v in m.calibration_scores_.items()}
    if cfg.uncertainty.calibration == "out_of_fold":
        conformal_data = (
            "the patient-grouped out-of-fold predictions of the training cohort (every "
            "training patient, each predicted by a model that did not see them)"
        )
    else:
        conformal_data = (
            f"{cfg.uncertainty.calibration_fraction:.0%} of training patients held out "
            "from the final model (`uncertainty.calibration: held_out`)"
        )
    conformal = bundle.conformal
    thresholds_line = ""
    if conformal is not None:
        t = conformal.thresholds_
        thresholds_line = (
            f" With the shipped thresholds, flare is in the set when p_flare >= "
            f"{1 - t['flare']:.3f} and progression when p_flare <= {t['progression']:.3f}; "
            f"so `decision = flare` when p_flare >= {bundle.threshold:.3f} (progression "
            "outside the set and flare in it)."
        )
    signal_rows = pd.DataFrame(
        [
            {"clinical signal": name, "features": ", ".join(f"`{f}`" for f in members)}
            for name, members in SIGNALS.items()
        ]
    )
    grouped = {f for members in SIGNALS.values() for f in members}
    other = [f for f in m.feature_names_in_ if f not in grouped]
    if other:
        signal_rows.loc[len(signal_rows)] = ["other", ", ".join(f"`{f}`" for f in other)]
    missing = tr.features.isna().mean().sort_values(ascending=False)
    missing = missing[missing > 0].head(10).round(3).rename("fraction missing (training)")
    missing = missing.rename_axis("feature").reset_index()
    outputs = pd.DataFrame(
        [
            {
                "column": "`p_flare`",
                "what it is": "the model's probability that the new bone lesions are a flare "
                "(after the probability calibration chosen in training, possibly none)",
                "how to act on it": "read with the decision, not alone; not a threshold to "
                "pick at the bedside",
            },
            {
                "column": "`decision` = flare",
                "what it is": "flare in the prediction set, progression excluded",
                "how to act on it": "continue therapy; keeps the budget "
                f"'at most {budget.max_progression_called_flare:.0%} of true progressions "
                "decided flare' on patients like the calibration patients",
            },
            {
                "column": "`decision` = progression",
                "what it is": "progression in the set, flare excluded",
                "how to act on it": "change therapy per the treating team (at most "
                f"{budget.max_flare_called_progression:.0%} of true flares get it)",
            },
            {
                "column": "`decision` = uncertain",
                "what it is": "both classes in the set (or, rarely, neither)",
                "how to act on it": "confirm with follow-up imaging in at least 6 weeks "
                "(PCWG3/iRECIST) before changing therapy",
            },
            {
                "column": "`prediction_set`",
                "what it is": "`flare`, `progression`, `flare,progression` or empty",
                "how to act on it": "the classes not excluded at the budget's coverage; "
                "the decision follows from it",
            },
            {
                "column": "`reasons`",
                "what it is": f"the top {bundle.top_reasons} clinical signals behind "
                "p_flare (exact TreeSHAP, in words)",
                "how to act on it": "check them against the images and the ALP course; a "
                "reason that contradicts the chart is a reason to distrust the output",
            },
        ]
    )
    flagged = [
        row["cohort"] for _, row in size.iterrows() if min(row["flares"], row["progressions"]) < 100
    ]

    lines = [
        f"# Model card: {cfg.tracking.registered_model_name} (flare-ml {__version__})",
        "",
        "> **SYNTHETIC DATA ONLY. NOT FOR CLINICAL USE.** " + SYNTHETIC_CAVEAT + " Every "
        "number below was computed on simulated cohorts, named with it; none says anything "
        "about how the model would perform on patients.",
        "",
        f"Reporting guideline: {CHECKLIST}. Items are cited by number, e.g. "
        f"{_item('10')}; the index at the end lists every item with where it is "
        "addressed, or why it is not.",
        "",
        "| identifies this model | |",
        "|---|---|",
        *_version_lines(result, run),
        "",
        _section("Summary", ["1", "2"]),
        "",
        f"{_item('1')} flare-classifier: development and external validation, on "
        "simulated cohorts, of an XGBoost model that tells a bone flare from progression "
        "at a follow-up scan showing new bone lesions.",
        "",
        f"{_item('2')} Trained on {_without_role(tr.label)} "
        f"({int(size.iloc[0]['index assessments'])} index assessments), validated on "
        f"{len(result.externals)} external simulated "
        "cohort(s); outputs P(flare) and a three-way decision that keeps the error budget "
        f"({budget.describe()}). Results per cohort follow.",
        "",
        _section("Intended use", ["3a", "3b", "4", "27b"]),
        "",
        f"{_item('3a')} New bone lesions on a scan of a patient on systemic therapy are "
        "either progression (change therapy) or a flare: healing lesions becoming visible "
        "as the therapy works (continue therapy). Guidelines (PCWG3, iRECIST) ask for a "
        "confirmatory scan at least six weeks later; the model aims to say earlier when "
        "that wait is needed (docs/sources.md).",
        "",
        f"{_item('3b')} Intended for research and development only: for adults with bone "
        "metastases on systemic therapy whose follow-up scan shows new bone lesions, at the "
        "point where the treating team decides whether to continue therapy. Not a medical "
        "device; not validated on patient data; not for clinical decisions.",
        "",
        f"{_item('4')} Develop the model and evaluate it against published rules and the "
        "simulator's oracle, on the training cohort (out-of-fold) and external simulated "
        "sites.",
        "",
        f"{_item('27b')} Users supply a timepoint table in the data contract (imaging and "
        "lab rows per patient); reading the output needs the clinical expertise of the "
        "treating team. `flare-ml validate` checks a file before scoring.",
        "",
        _section("Data", ["5a", "5b", "6a", "6b", "6c", "7", "16", "18e"]),
        "",
        f"{_item('5a')} All cohorts are drawn by the flare-ml simulator "
        "(`flare-ml simulate`; docs/simulator.md), calibrated to published figures "
        "(docs/sources.md), with parameters without a source marked as assumptions. "
        f"Development: {tr.label}; evaluation: "
        + ("; ".join(e.label for e in result.externals) or "none")
        + ".",
        "",
        f"{_item('5b')} Simulated calendar dates: "
        + "; ".join(f"{label}: {a} to {b}" for label, (a, b) in dates.items())
        + ".",
        "",
        f"{_item('6a')} Each cohort is one simulated site (site profiles in "
        "src/flare_ml/configs/simulation/: scan schedule, ALP draws and units, missingness, "
        "case mix, label noise).",
        "",
        f"{_item('6b')} Every patient of a cohort is simulated from treatment start; the "
        "analysed unit is the **index assessment**: an imaging row with new bone lesions "
        "(`new_bone_lesions > 0`). Patients without one contribute no row.",
        "",
        f"{_item('6c')} Therapy class is recorded per patient (Table 1) and is a "
        "predictor; treatment is not changed by the model within the simulation.",
        "",
        f"{_item('7')} Every table passes the data contract's validation "
        "(`flare_ml.data.validate_timepoints`): types, vocabularies, plausible ranges "
        "(ALP 5-5000 U/L), one row per patient and date; the same checks at every site.",
        "",
        f"{_item('16')} The external sites differ from the training site by design: scan "
        "interval, ALP draw frequency, units and missingness, case mix and label noise "
        "(docs/simulator.md, site table); the outcome definition and predictors are the "
        "same. Table 1 shows the differences that result.",
        "",
        f"{_item('18e')} No data are shared or needed: each cohort is regenerated from its "
        "site, size and seed (in its label) with `flare-ml simulate`.",
        "",
        _section("Sample size and events", ["10", "20a", "21"]),
        "",
        f"{_item('10')} No formal sample-size calculation: sizes are set in the training "
        f"config (data.train.patients = {cfg.data.train.patients}); the simulator can draw "
        f"any number. {n_features} candidate predictors (model features).",
        "",
        f"{_item('20a')} {_item('21')} Patients, index assessments and outcome events per "
        "cohort. Flares and progressions are the recorded outcomes of index assessments; a "
        "patient can have more than one index assessment (folds and bootstrap group by "
        "patient). Hyperparameters were tuned within the training cohort only.",
        "",
        _md(size),
        "",
    ]
    if flagged:
        lines += [
            "Fewer than 100 of an outcome class (wide intervals; read estimates with "
            "caution): " + "; ".join(flagged) + ".",
            "",
        ]
    lines += [
        _section("Participant characteristics", ["20b", "20c"]),
        "",
        f"{_item('20b')} {_item('20c')} Table 1 by cohort (simulated). Patient rows: "
        "patients with at least one index assessment; baseline ALP as the featurizer "
        "computes it at the patient's first index assessment. Age is not part of the data "
        "contract.",
        "",
        _md(table_one(_cohorts(result)), index=True),
        "",
        _section("Outcome", ["8a", "8b", "8c"]),
        "",
        f"{_item('8a')} Per index assessment: `flare` (the new lesions heal; no progression "
        "on follow-up imaging at least 6 weeks later) versus `progression` (extraosseous "
        "progressive disease or progressive lysis follows). In the simulation the "
        "adjudicated outcome is the patient's simulated true course at that scan (a flare "
        "course's first index scan is a flare; progression otherwise), after which a "
        "site-specific share of labels is flipped at random to mimic imperfect "
        "adjudication by follow-up imaging (`label_noise` of the site profile"
        + (
            ": " + "; ".join(f"{label}: {v}" for label, v in noise.items() if v is not None)
            if any(noise.values())
            else ""
        )
        + "). The oracle's probability is for the recorded label, noise included.",
        "",
        f"{_item('8b')} {_UNFILLED['8b']}.",
        "",
        f"{_item('8c')} The outcome is drawn from the simulated course, not from the "
        "recorded predictors, and the label flips are independent of them.",
        "",
        _section("Predictors", ["9a", "9b", "9c", "12b"]),
        "",
        f"{_item('9a')} {_item('9b')} {n_features} point-in-time features of the timepoint "
        "table, chosen from the signals the literature uses to tell flare from progression "
        "(docs/sources.md); each uses only the patient's rows dated at or before the index "
        "assessment. By clinical signal (the groups the `reasons` column speaks in):",
        "",
        _md(signal_rows),
        "",
        f"{_item('9c')} {_UNFILLED['9c']}.",
        "",
        f"{_item('12b')} Trees need no rescaling: numbers enter as they are, categories "
        "(cancer type, therapy class, new-lesion morphology) one-hot over the contract's "
        "fixed vocabulary, RECIST response as an ordinal (PD -1, SD 0, PR 1, CR 2).",
        "",
        _section("Missing data", ["11", "27a"]),
        "",
        f"{_item('11')} No imputation and no rows dropped for missing optional values: a "
        "missing value stays missing (NaN) and XGBoost's native missing-value handling "
        "sends it down the default branch each split learned in training. When ALP is "
        "absent (a value, or the whole column), every ALP feature is missing, "
        "`alp_missing` and `alp_baseline_missing` are 1 and `alp_samples_in_slope_window` "
        "is 0, so the model sees that ALP is unknown and decides from the other signals. "
        "The rules treat unknown ALP as neither for nor against (seed criteria) or as "
        "progression (ALP-only rule). Most-missing features in training:",
        "",
        _md(missing),
        "",
        f"{_item('27a')} `flare-ml validate` lists missing required columns and values, "
        "unknown columns (with the closest contract name) and absent optional columns "
        "before scoring; a required value that is missing is an error, not a guess.",
        "",
        _section("Model", ["12a", "12c", "13", "22"]),
        "",
        f"{_item('12a')} The training cohort develops the model; its performance is "
        f"measured on patient-grouped out-of-fold predictions ({cfg.model.outer_folds} "
        "outer folds); external cohorts are used for evaluation only.",
        "",
        f"{_item('12c')} XGBoost (gradient-boosted trees: non-linear effects and "
        "interactions, native missing values), tuned over "
        f"{cfg.model.n_candidates} sampled parameter sets with {cfg.model.inner_folds} "
        "patient-grouped inner folds and early stopping; chosen parameters "
        f"`{json.dumps(m.best_params_)}`; probability calibration `{m.calibration_}` chosen "
        f"by cross-fitted log loss ({json.dumps(calibration_scores)}).",
        "",
        f"{_item('13')} No resampling or class weights: the class mix is learned as it is, "
        "and the probabilities are calibrated.",
        "",
        f"{_item('22')} The full model is the flare-ml bundle (featurizer parameters, "
        "booster as JSON, calibrator, conformal thresholds) logged to MLflow as "
        f"`{cfg.tracking.registered_model_name}` (version and run above); "
        "`flare-ml score --model models:/"
        f"{cfg.tracking.registered_model_name}/<version>` or the MLflow pyfunc model scores "
        "new patients. The code is the flare-ml package at the commit above.",
        "",
        _section("Model output and how to act on it", ["12g", "15"]),
        "",
        f"{_item('12g')} {_item('15')} One row per index assessment: `patient_id`, "
        "`assessment_date` and the columns below.",
        "",
        _md(outputs),
        "",
        f"**Decision policy.** {budget.describe()}. The conformal calibration, described "
        "once: class-conditional (Mondrian) split-conformal prediction sets calibrated on "
        f"{conformal_data}, with per-class coverage = 1 - budget share (flare "
        f"{budget.coverage['flare']:.0%}, progression {budget.coverage['progression']:.0%})."
        + thresholds_line
        + " The budget is guaranteed only for patients exchangeable with the calibration "
        "patients; another site's patients are not (scan schedule, case mix, missing data "
        "and adjudication differ), so it is measured there.",
        "",
        "### Decisions against outcomes, per cohort",
        "",
        "Index assessments by decision (rows) and recorded outcome (columns), with the "
        "realised rates "
        "(Wilson 95% intervals) and the budget's verdict: held, within sampling error (the "
        "interval reaches the budget), or missed.",
        "",
        *_decision_lines(result),
        "",
        f"Conformal coverage per external cohort, with the shipped thresholds "
        f"('{TRANSPORTED}') and recalibrated on the site ('{SITE_CALIBRATED}'):",
        "",
        _md(coverage),
        "",
        _section("Performance", ["12e", "23a", "12d", "23b"]),
        "",
        f"{_item('12e')} {_item('23a')} Per cohort, with 95% patient-level bootstrap "
        f"intervals ({cfg.evaluation.bootstrap_resamples} resamples; none shown when 0). "
        "Discrimination (AUROC, AUPRC) for every scorer; calibration (slope, intercept, "
        "Brier, ECE) for probabilities only: rules give rankings, not probabilities. The "
        "oracle is the simulator's Bayes-optimal P(flare), the ceiling on that cohort.",
        "",
    ]
    for cohort in _cohorts(result):
        ev = result.evaluations[cohort.label]
        lines += [
            f"### {cohort.label}",
            "",
            f"{ev.n} index assessments ({ev.n_flare} flares) in {ev.n_patients} patients.",
            "",
            _md(performance_table(ev, rules)),
            "",
        ]
    lines += [
        "### Targets on external cohorts",
        "",
        _md(targets),
        "",
        f"{_item('12d')} {_item('23b')} Each external cohort is another simulated site; "
        "the tables above are the heterogeneity across sites. No pooling across sites.",
        "",
        "## Calibration",
        "",
        "Calibration slope and intercept are in the performance tables (a slope below 1 "
        "means too extreme predictions); reliability plots are in report.html.",
        "",
        _section("Subgroups", ["14", "23a", "3c"]),
        "",
        f"{_item('14')} No fairness intervention. Performance is reported by cancer type "
        "and therapy class, the only grouping variables of the data contract, with 95% "
        "intervals where computed. Levels with fewer than "
        f"{SMALL_N_ROWS} index assessments or fewer than {SMALL_N_CLASS} of either class "
        "are flagged 'small n' (as in the report); levels "
        "below the evaluation's minimum size have counts only (metrics shown as -).",
        "",
        f"{_item('3c')} {_UNFILLED['3c']}.",
        "",
    ]
    for cohort in _cohorts(result):
        lines += [
            f"### Subgroups: {cohort.label}",
            "",
            _md(subgroup_table(result.evaluations[cohort.label])),
            "",
        ]
    lines += [
        _section("Model updating", ["12f", "24"]),
        "",
        f"{_item('12f')} {_item('24')} At a new site, recalibrate the decisions on its own "
        "labelled patients with `flare-ml calibrate --model <model> --data <site table> "
        "--out <folder>`: it keeps the trees and the probability calibration, refits the "
        "conformal thresholds for the same budget, and reports the coverage the shipped "
        "thresholds gave there and what the new ones can be expected to give "
        f"(cross-fitted; the '{SITE_CALIBRATED}' rows above are this on each external "
        "cohort). Retraining (`flare-ml train` with the site's data in the config) builds "
        "a new model and a new card. `flare-ml adapt --prior <model> --data <site table> "
        "--out <folder>` updates a model on a site's labelled patients only as far as "
        "patient-grouped cross-validation supports (none, intercept, intercept and slope, "
        "residual boosting, full refit; docs/adapt.md), with cross-conformal thresholds for "
        "the same budget. The package also ships a literature prior (`--model prior`, "
        "docs/prior.md), built from literature-encoded simulation, not from patients.",
        "",
        _section("Interpretation", ["25"]),
        "",
        f"{_item('25')} Discrimination per cohort (AUROC); whether the error budget held is "
        "in the decision tables above:",
        "",
        *_interpretation(result, rules),
        "",
        _section("Limitations", ["26", "27c"]),
        "",
        f"{_item('26')}",
        "",
        "- **Synthetic data only**: the simulator encodes published associations and many "
        "assumptions; real cohorts differ in case mix, reading practice, missingness and "
        "label definitions. Performance here says nothing about patients.",
        "- The oracle ceiling is exact only for the simulator's own generative story.",
        "- Rules are reimplementations of published criteria on simulated findings, not the "
        "original studies' procedures.",
        "- No imaging pixels, PSA or other biomarkers are used.",
        "- The error budget holds on patients like the calibration patients; at another "
        "site it must be checked (decision tables above) and recalibrated when missed.",
        "",
        f"{_item('27c')} Next: evaluation on real, independently adjudicated cohorts, of "
        "this model and of site adaptation (`flare-ml adapt`); prospective use only after "
        "both.",
        "",
        "## Checklist index",
        "",
        f"{CHECKLIST}. Where each item is addressed in this card, or why it is not:",
        "",
        _md(_checklist_index()),
    ]
    return "\n".join(lines) + "\n"


#: where each filled item is addressed (the card's section titles)
_WHERE: dict[str, str] = {
    **dict.fromkeys(["1", "2"], "Summary"),
    **dict.fromkeys(["3a", "3b", "4", "27b"], "Intended use"),
    **dict.fromkeys(["5a", "5b", "6a", "6b", "6c", "7", "16", "18e"], "Data"),
    **dict.fromkeys(["10", "20a", "21"], "Sample size and events"),
    **dict.fromkeys(["20b", "20c"], "Participant characteristics (Table 1)"),
    **dict.fromkeys(["8a", "8c"], "Outcome"),
    **dict.fromkeys(["9a", "9b", "12b"], "Predictors"),
    **dict.fromkeys(["11", "27a"], "Missing data"),
    **dict.fromkeys(["12a", "12c", "13", "22"], "Model"),
    **dict.fromkeys(["12g", "15"], "Model output and how to act on it"),
    **dict.fromkeys(["12e", "23a", "12d", "23b"], "Performance"),
    "14": "Subgroups",
    **dict.fromkeys(["12f", "24"], "Model updating"),
    "25": "Interpretation",
    **dict.fromkeys(["26", "27c"], "Limitations"),
    "18f": "table at the top (source commit); the flare-ml package",
}


def _checklist_index() -> pd.DataFrame:
    rows = []
    for number, title in TRIPOD_AI_ITEMS.items():
        where = _WHERE.get(number) or _UNFILLED.get(number, NOT_REPORTED)
        rows.append({"item": number, "title": title, "in this card": where})
    return pd.DataFrame(rows)
