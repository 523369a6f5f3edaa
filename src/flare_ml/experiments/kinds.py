"""The experiment kinds: what each trains, scores and puts in its tables.

Each runner takes a :class:`~flare_ml.experiments.core.Context` (validated config, training
config, cohort cache) and returns a :class:`~flare_ml.experiments.core.KindOutput`. The
model is always :class:`~flare_ml.models.FlareXGBClassifier` with the experiment's training
settings (tuning, early stopping and calibration inside the training data); the rules are
the three baselines of :mod:`flare_ml.rules` (nothing learned); the oracle is the
simulator's Bayes-optimal P(flare). AUROC is compared on the same patients with paired
patient-level bootstrap intervals. The ``coverage`` kind (conformal coverage across sites)
lives in :mod:`flare_ml.experiments.coverage`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.evaluation import evaluate
from flare_ml.experiments.config import (
    AblationParams,
    CohortSpec,
    HeadlineParams,
    LearningCurveParams,
    LiteratureCasesParams,
    RobustnessParams,
    cohort_label,
)
from flare_ml.experiments.core import (
    RULE_NAMES,
    SCORER_LABELS,
    ConditionRecord,
    Context,
    KindOutput,
    Table,
    best_rule,
    evaluation_metrics,
    fmt,
    fmt_ci,
    metric,
    versus,
)
from flare_ml.experiments.coverage import run_coverage
from flare_ml.training import MODEL_NAME, ORACLE_NAME

DAYS_PER_MONTH = 30.44


def _difference(ev: Any, scorer: str, name: str = "auroc") -> tuple[float, float, float]:
    """``scorer`` minus the reference, with its paired CI."""
    d, lo, hi = versus(ev, scorer, name)
    return (-d, -hi, -lo)


def _above_zero(values: tuple[float, float, float]) -> bool:
    """The CI's lower bound is above 0 as printed (three decimals)."""
    return bool(np.isfinite(values[1]) and round(values[1], 3) > 0)


def _below_zero(values: tuple[float, float, float]) -> bool:
    """The CI's upper bound is below 0 as printed (three decimals)."""
    return bool(np.isfinite(values[2]) and round(values[2], 3) < 0)


def _tuning(ctx: Context) -> str:
    m = ctx.train_config.model
    return (
        f"tuning: {m.n_candidates} candidate parameter sets x {m.inner_folds} patient-grouped "
        f"inner folds, up to {m.n_estimators_max} trees"
    )


# --- headline --------------------------------------------------------------------------


def run_headline(ctx: Context) -> KindOutput:
    """Model vs each rule vs oracle, out-of-fold and on external sites (``flare-ml train``)."""
    from flare_ml.train_config import DataConfig, SimulatedCohortSpec
    from flare_ml.training import train_and_validate

    params: HeadlineParams = ctx.config.params

    def simple(spec: CohortSpec) -> SimulatedCohortSpec:
        return SimulatedCohortSpec(site=spec.site, patients=spec.patients, seed=spec.seed)

    cfg = ctx.train_config.model_copy(
        update={
            "data": DataConfig(
                train=simple(params.train), external=[simple(s) for s in params.external]
            )
        }
    )
    result = train_and_validate(cfg, progress=ctx.progress)
    cohorts = [result.training, *result.externals]
    summary, tables, conditions, findings = [], [], [], []
    for cohort in cohorts:
        ev = result.evaluations[cohort.label]
        scores = result.scores[cohort.label]
        paired = evaluate(
            cohort.y,
            scores,
            patient_ids=cohort.patient_ids,
            thresholds=result.thresholds,
            n_resamples=ctx.n_resamples,
            seed=ctx.seed,
            metrics=("auroc",),
            reference=MODEL_NAME,
            probability_scorers=[n for n in scores if n not in result.rules],
        )
        external = cohort.label.startswith("external")
        where = cohort.label.replace("training: ", "out-of-fold, ").replace(
            "external: ", "external, "
        )
        rule = best_rule(ev)
        model_minus_rule = versus(paired, rule)
        oracle_gap = _difference(paired, ORACLE_NAME) if ORACLE_NAME in scores else None
        coverage = result.coverage.get(cohort.label)
        summary.append(
            {
                "cohort": where,
                "XGBoost AUROC": fmt_ci(metric(ev, MODEL_NAME, "auroc")),
                "best rule AUROC": f"{SCORER_LABELS[rule]} " + fmt_ci(metric(ev, rule, "auroc")),
                "XGBoost - best rule": fmt_ci(model_minus_rule, sign=True),
                "oracle AUROC": fmt_ci(metric(ev, ORACLE_NAME, "auroc")),
                "oracle - XGBoost": fmt_ci(oracle_gap, sign=True) if oracle_gap else "-",
                "calibration slope": fmt_ci(metric(ev, MODEL_NAME, "calibration_slope"), 2),
                "conformal coverage (uncertain)": (
                    f"{coverage['coverage']:.3f} ({coverage['uncertain_fraction']:.1%})"
                    if coverage
                    else "-"
                ),
            }
        )
        rows = []
        for scorer in scores:
            is_rule = scorer in RULE_NAMES
            rows.append(
                {
                    "scorer": SCORER_LABELS.get(scorer, scorer),
                    "threshold": fmt(result.thresholds[scorer], 3),
                    "AUROC": fmt_ci(metric(ev, scorer, "auroc")),
                    "AUPRC": fmt_ci(metric(ev, scorer, "auprc")),
                    "Brier": "-" if is_rule else fmt(metric(ev, scorer, "brier")[0]),
                    "calibration slope": "-"
                    if is_rule
                    else fmt_ci(metric(ev, scorer, "calibration_slope"), 2),
                    "sensitivity": fmt_ci(metric(ev, scorer, "sensitivity"), 2),
                    "specificity": fmt_ci(metric(ev, scorer, "specificity"), 2),
                    "XGBoost - scorer (AUROC)": "-"
                    if scorer == MODEL_NAME
                    else fmt_ci(versus(paired, scorer), sign=True),
                }
            )
        tables.append(
            Table(
                where,
                pd.DataFrame(rows),
                [
                    f"{ev.n} index rows ({ev.n_flare} flares) of {ev.n_patients} patients. "
                    "Rules are read at their own decision; XGBoost and the oracle at the "
                    "threshold chosen on out-of-fold training predictions (at most "
                    f"{cfg.evaluation.max_progression_called_flare:.0%} of progressions "
                    "called flare). Rule scores rank cases but are not probabilities, so "
                    "no Brier score or calibration slope is given for them."
                ],
            )
        )
        key = "out_of_fold" if not external else f"external_{cohort.label.split()[3]}"
        conditions.append(
            ConditionRecord(
                key,
                {"cohort": cohort.label},
                {
                    **evaluation_metrics(ev),
                    **evaluation_metrics(paired, "paired."),
                    **({f"conformal.{k}": v for k, v in coverage.items()} if coverage else {}),
                },
            )
        )
        verdict = (
            "better than"
            if _above_zero(model_minus_rule)
            else "not distinguishable from"
            if not _below_zero(model_minus_rule)
            else "worse than"
        )
        findings.append(
            f"{where}: XGBoost is {verdict} the best rule ({SCORER_LABELS[rule]}), AUROC "
            f"difference {fmt_ci(model_minus_rule, sign=True)}; the oracle ceiling is "
            f"{fmt(oracle_gap[0] if oracle_gap else np.nan, sign=True)} above XGBoost."
        )
    summary_table = Table(
        "Summary",
        pd.DataFrame(summary),
        [
            "Out-of-fold: each training index row is scored by a model that never saw its "
            f"patient ({cfg.model.outer_folds} patient-grouped folds, tuning and calibration "
            "inside each). External: the final model, fitted on all training patients, "
            "scores another simulated site unchanged. Best rule: the rule with the highest "
            "AUROC on that cohort. Conformal coverage: share of external index rows whose "
            "prediction set holds the true outcome (target 0.90), and the share of "
            "`uncertain` decisions."
        ],
    )
    return KindOutput(
        cohorts=[("training", cohort_label(params.train))]
        + [("external", cohort_label(s)) for s in params.external],
        tables=[summary_table, *tables],
        conditions=conditions,
        findings=findings,
    )


# --- ablations -------------------------------------------------------------------------


def run_ablations(ctx: Context) -> KindOutput:
    """Refit without each clinical signal group; change in external AUROC and calibration."""
    from flare_ml.explain import SIGNALS

    params: AblationParams = ctx.config.params
    train = ctx.cohort(params.train)
    external = ctx.cohort(params.external)
    signals = params.signals or list(SIGNALS)
    conditions_def = [("full model", ())] + [(f"without {s}", SIGNALS[s]) for s in signals]
    scores: dict[str, np.ndarray] = {}
    for i, (name, dropped) in enumerate(conditions_def):
        ctx.progress("ablation models", i, len(conditions_def))
        model = ctx.fit(train.prepared, drop=dropped)
        scores[name] = model.predict_proba(external.prepared.features)[:, 1]
    ctx.progress("ablation models", len(conditions_def), len(conditions_def))
    scores.update(ctx.scores(external.prepared))
    ev = ctx.evaluate(
        external.prepared,
        scores,
        reference="full model",
        metrics=("auroc", "brier", "calibration_slope", "calibration_intercept"),
    )
    full_slope = metric(ev, "full model", "calibration_slope")[0]
    rows, records = [], []
    for name, dropped in [*conditions_def, *[(s, None) for s in (*RULE_NAMES, ORACLE_NAME)]]:
        model_row = dropped is not None
        slope = metric(ev, name, "calibration_slope")
        rows.append(
            {
                "condition": name if model_row else f"{SCORER_LABELS[name]} (reference)",
                "features removed": str(len(dropped)) if model_row else "-",
                "external AUROC": fmt_ci(metric(ev, name, "auroc")),
                "change in AUROC vs full": "-"
                if name == "full model"
                else fmt_ci(_difference(ev, name), sign=True),
                "calibration slope": fmt_ci(slope, 2) if model_row else "-",
                "change in slope": fmt(slope[0] - full_slope, 2, sign=True)
                if model_row and name != "full model"
                else "-",
                "Brier": fmt(metric(ev, name, "brier")[0]) if model_row else "-",
                "change in Brier vs full": fmt_ci(_difference(ev, name, "brier"), sign=True)
                if model_row and name != "full model"
                else "-",
            }
        )
        if model_row:
            records.append(
                ConditionRecord(
                    name,
                    {"features_removed": ",".join(dropped) or "none"},
                    {
                        k.split(".", 1)[1]: v
                        for k, v in evaluation_metrics(ev).items()
                        if k.startswith(f"{name}.")
                    }
                    | {
                        "auroc_change_vs_full": _difference(ev, name)[0]
                        if name != "full model"
                        else 0.0
                    },
                )
            )
    findings = []
    for name, _ in conditions_def[1:]:
        change = _difference(ev, name)
        slope_change = metric(ev, name, "calibration_slope")[0] - full_slope
        significance = (
            "a clear loss"
            if _below_zero(change)
            else "a clear gain"
            if _above_zero(change)
            else "no clear change"
        )
        findings.append(
            f"{name}: external AUROC {fmt_ci(change, sign=True)} vs the full model "
            f"({significance}), calibration slope {fmt(slope_change, 2, sign=True)}."
        )
    notes = [
        f"Training: {train.label}, {len(train.prepared.y)} index rows; external: "
        f"{external.label}, {len(external.prepared.y)} index rows. Each condition is one "
        "model fitted on all training patients with the same tuning settings and seed "
        f"({_tuning(ctx)}, early stopping and calibration inside); no outer "
        "cross-validation. Changes are ablated minus full on the same "
        "external patients, with paired bootstrap CIs. The signal groups are "
        "`flare_ml.explain.SIGNALS`: `therapy` holds the cancer-type and therapy-class "
        "columns, `bone findings` the new-lesion count and morphology, lysis, sclerosis, "
        "earlier index events and baseline marrow involvement. Rules and the oracle do not "
        "depend on the model's features; they are listed for scale."
    ]
    return KindOutput(
        cohorts=[("training", train.label), ("external", external.label)],
        tables=[
            Table("External AUROC and calibration without each signal", pd.DataFrame(rows), notes)
        ],
        conditions=records,
        findings=findings,
    )


# --- learning curve --------------------------------------------------------------------


def run_learning_curve(ctx: Context) -> KindOutput:
    """External AUROC, calibration and gap to the oracle vs training cohort size."""
    params: LearningCurveParams = ctx.config.params
    external = ctx.cohort(params.external)
    fixed = ctx.scores(external.prepared)
    pool_size = max(params.sizes)
    rows, records = [], []
    per_size: dict[int, list[dict[str, Any]]] = {n: [] for n in params.sizes}
    total = len(params.sizes) * params.replicates
    done = 0
    pools = []
    for r in range(params.replicates):
        spec = CohortSpec(site=params.train_site, patients=pool_size, seed=params.train_seed + r)
        pool = ctx.cohort(spec)
        pools.append(pool)
        patients = pd.unique(pool.prepared.timepoints[c.PATIENT_ID].astype(str))
        for n in params.sizes:
            ctx.progress("learning-curve models", done, total)
            chosen = set(patients[:n].tolist())
            rows_idx = np.flatnonzero(np.isin(pool.prepared.patient_ids, list(chosen)))
            model = ctx.fit(pool.prepared, rows=rows_idx)
            scores = {MODEL_NAME: model.predict_proba(external.prepared.features)[:, 1], **fixed}
            ev = ctx.evaluate(external.prepared, scores)
            y = pool.prepared.y
            assert y is not None
            per_size[n].append(
                {
                    "ev": ev,
                    "index_rows": len(rows_idx),
                    "flares": int(y[rows_idx].sum()),
                    "label": f"first {n} patients of {pool.label}",
                }
            )
            records.append(
                ConditionRecord(
                    f"n={n} draw {r}",
                    {
                        "training": f"first {n} patients of {pool.label}",
                        "patients": n,
                        "index_rows": len(rows_idx),
                    },
                    evaluation_metrics(ev),
                )
            )
            done += 1
    ctx.progress("learning-curve models", total, total)
    reference_ev = per_size[params.sizes[0]][0]["ev"]
    rule = best_rule(reference_ev)
    findings = []
    not_better = []
    for n in params.sizes:
        first = per_size[n][0]
        ev = first["ev"]
        aurocs = [metric(d["ev"], MODEL_NAME, "auroc")[0] for d in per_size[n]]
        vs_rule = versus(ev, rule)
        gap = _difference(ev, ORACLE_NAME)
        rows.append(
            {
                "training patients": str(n),
                "index rows (flares)": f"{first['index_rows']} ({first['flares']})",
                "XGBoost external AUROC": fmt_ci(metric(ev, MODEL_NAME, "auroc")),
                "calibration slope": fmt_ci(metric(ev, MODEL_NAME, "calibration_slope"), 2),
                "oracle - XGBoost": fmt_ci(gap, sign=True),
                f"XGBoost - {SCORER_LABELS[rule]}": fmt_ci(vs_rule, sign=True),
                **(
                    {
                        f"AUROC over {params.replicates} draws (min-max)": (
                            f"{min(aurocs):.3f}-{max(aurocs):.3f}"
                        )
                    }
                    if params.replicates > 1
                    else {}
                ),
            }
        )
        if not _above_zero(vs_rule):
            not_better.append(
                f"{n} patients ({fmt_ci(vs_rule, sign=True)}"
                + (
                    f"; over {params.replicates} draws the model's AUROC spans "
                    f"{min(aurocs):.3f}-{max(aurocs):.3f}"
                    if params.replicates > 1
                    else ""
                )
                + ")"
            )
    fixed_rows = [
        {
            "scorer": SCORER_LABELS[s],
            "external AUROC": fmt_ci(metric(reference_ev, s, "auroc")),
        }
        for s in (*RULE_NAMES, ORACLE_NAME)
    ]
    if not_better:
        findings.append(
            f"XGBoost does not clearly beat the best rule ({SCORER_LABELS[rule]}, external "
            f"AUROC {fmt(metric(reference_ev, rule, 'auroc')[0])}) when trained on "
            + ", ".join(not_better)
            + ": the paired 95% CI of the difference reaches 0 or below."
        )
    clear = [n for n in params.sizes if _above_zero(versus(per_size[n][0]["ev"], rule))]
    if clear:
        findings.append(
            f"From {clear[0]} training patients on (first draw), XGBoost beats "
            f"{SCORER_LABELS[rule]} with a CI above 0."
        )
    last = per_size[params.sizes[-1]][0]["ev"]
    findings.append(
        f"At {params.sizes[-1]} training patients the gap to the oracle is "
        f"{fmt_ci(_difference(last, ORACLE_NAME), sign=True)} AUROC and the calibration slope "
        f"{fmt_ci(metric(last, MODEL_NAME, 'calibration_slope'), 2)}; at "
        f"{params.sizes[0]} patients they are "
        f"{fmt(_difference(reference_ev, ORACLE_NAME)[0], sign=True)} "
        f"and {fmt(metric(reference_ev, MODEL_NAME, 'calibration_slope')[0], 2)}."
    )
    notes = [
        f"Training cohorts are nested: the first n patients (in simulation order) of "
        f"{pools[0].label}"
        + (
            f" (draw 1; draws 2-{params.replicates} use seeds {params.train_seed + 1}-"
            f"{params.train_seed + params.replicates - 1}); CIs are from draw 1"
            if params.replicates > 1
            else ""
        )
        + f". External cohort: {external.label}. One model per size "
        f"({_tuning(ctx)}, early stopping and calibration inside the training "
        "patients), evaluated on the same external patients with paired "
        "bootstrap CIs. The rules learn nothing, so their AUROC does not depend on the size."
    ]
    return KindOutput(
        cohorts=[("training pool", p.label) for p in pools] + [("external", external.label)],
        tables=[
            Table("External AUROC vs training cohort size", pd.DataFrame(rows), notes),
            Table("Rules and oracle on the same external cohort", pd.DataFrame(fixed_rows)),
        ],
        conditions=records,
        findings=findings,
    )


# --- robustness ------------------------------------------------------------------------


def run_robustness(ctx: Context) -> KindOutput:
    """Model and rules under missing ALP, label noise, schedule and case-mix shifts."""
    params: RobustnessParams = ctx.config.params
    models: dict[str, Any] = {}
    rows, records, cohorts, results = [], [], [], []
    n = len(params.conditions)
    for i, cond in enumerate(params.conditions):
        ctx.progress("robustness conditions", i, n)
        train = ctx.cohort(params.train.with_overrides(cond.train))
        external = ctx.cohort(params.external.with_overrides(cond.external, cond.external_site))
        if train.label not in models:
            models[train.label] = ctx.fit(train.prepared)
        model = models[train.label]
        scores = {
            MODEL_NAME: model.predict_proba(external.prepared.features)[:, 1],
            **ctx.scores(external.prepared),
        }
        ev = ctx.evaluate(external.prepared, scores)
        true_ev = evaluate(
            external.true_y,
            scores,
            patient_ids=external.prepared.patient_ids,
            n_resamples=0,
            metrics=("auroc",),
            probability_scorers=[n for n in scores if n not in ctx.rules],
        )
        rule = best_rule(ev)
        vs_rule = versus(ev, rule)
        results.append((cond, ev, rule, vs_rule, true_ev))
        rows.append(
            {
                "group": cond.group or "-",
                "condition": cond.name,
                "XGBoost": fmt_ci(metric(ev, MODEL_NAME, "auroc")),
                **{SCORER_LABELS[r]: fmt(metric(ev, r, "auroc")[0]) for r in RULE_NAMES},
                "oracle": fmt(metric(ev, ORACLE_NAME, "auroc")[0]),
                "XGBoost - best rule": f"{fmt_ci(vs_rule, sign=True)} ({SCORER_LABELS[rule]})",
                "XGBoost calibration slope": fmt_ci(metric(ev, MODEL_NAME, "calibration_slope"), 2),
                "vs true outcome: XGBoost / best rule": (
                    f"{fmt(metric(true_ev, MODEL_NAME, 'auroc')[0])} / "
                    f"{fmt(metric(true_ev, rule, 'auroc')[0])}"
                ),
            }
        )
        cohorts.append((f"{cond.name}: training", train.label))
        cohorts.append((f"{cond.name}: external", external.label))
        records.append(
            ConditionRecord(
                cond.name,
                {"group": cond.group, "training": train.label, "external": external.label},
                evaluation_metrics(ev)
                | {f"true_outcome.{s}.auroc": metric(true_ev, s, "auroc")[0] for s in scores},
            )
        )
    ctx.progress("robustness conditions", n, n)
    base_cond, base_ev, *_ = results[0]
    findings = []
    for cond, _, rule, vs_rule, true_ev in results:
        if not _above_zero(vs_rule):
            findings.append(
                f"{cond.name}: XGBoost does not clearly beat the best rule "
                f"({SCORER_LABELS[rule]}) on the recorded labels: "
                f"{fmt_ci(vs_rule, sign=True)} AUROC; against the noise-free outcomes "
                f"XGBoost {fmt(metric(true_ev, MODEL_NAME, 'auroc')[0])} vs "
                f"{fmt(metric(true_ev, rule, 'auroc')[0])}."
            )
    for cond, ev, *_ in results[1:]:
        changes = ", ".join(
            f"{SCORER_LABELS[s]} "
            + fmt(metric(ev, s, "auroc")[0] - metric(base_ev, s, "auroc")[0], 3, sign=True)
            for s in (MODEL_NAME, *RULE_NAMES, ORACLE_NAME)
        )
        findings.append(f"{cond.name} vs {base_cond.name}: AUROC {changes}.")
    notes = [
        f"AUROC on the external cohort of each condition against its recorded labels; "
        f"XGBoost with its 95% CI, the rules and the oracle as estimates (their CIs are in "
        f"MLflow). XGBoost - best rule: paired bootstrap difference with the rule that does "
        f"best on that cohort. vs true outcome: AUROC of XGBoost and of that rule against "
        f"the simulator's noise-free outcomes instead of the recorded labels (they differ "
        f"only by label noise). Each training cohort gets one model ({_tuning(ctx)}), reused by "
        "the conditions that share it; the cohorts of each condition are listed above."
    ]
    return KindOutput(
        cohorts=cohorts,
        tables=[Table("External AUROC per scorer under each condition", pd.DataFrame(rows), notes)],
        conditions=records,
        findings=findings,
    )


# --- literature cases ------------------------------------------------------------------


def _findings_text(timeline: pd.DataFrame, row: pd.Series) -> str:
    alp = timeline[c.ALP_U_L].dropna()
    baseline_alp = float(alp.iloc[0]) if len(alp) else np.nan
    count = row[c.NEW_BONE_LESIONS]
    parts = [
        f"extraosseous {row[c.EXTRAOSSEOUS_RESPONSE]}",
        f"{count} new {row[c.NEW_LESION_MORPHOLOGY]} bone lesion{'s' if count != 1 else ''}",
    ]
    flags = {
        c.PROGRESSIVE_LYSIS: "progressive lysis",
        c.KNOWN_LESION_SCLEROSIS: "sclerosis of a known lesion",
        c.NEW_EXTRAOSSEOUS_LESION: "new extraosseous lesion",
        c.CLINICAL_DETERIORATION: "clinical deterioration",
    }
    parts += [text for col, text in flags.items() if pd.notna(row[col]) and bool(row[col])]
    if pd.notna(row[c.ALP_U_L]):
        delta = float(row[c.ALP_U_L]) - baseline_alp
        parts.append(f"ALP {row[c.ALP_U_L]:.0f} U/L ({delta:+.0f} from baseline)")
    else:
        parts.append("ALP not measured")
    return ", ".join(parts)


def run_literature_cases(ctx: Context) -> KindOutput:
    """The model's decision, prediction set and reasons at each index scan of each case."""
    from flare_ml.cases import CASES
    from flare_ml.training import fit_bundle

    params: LiteratureCasesParams = ctx.config.params
    train = ctx.cohort(params.train)
    ctx.progress("model", 0, 1)
    bundle = fit_bundle(
        train.prepared.timepoints,
        ctx.train_config,
        outer_folds=ctx.train_config.model.outer_folds,
    )
    ctx.progress("model", 1, 1)
    names = params.cases or list(CASES)
    rows, records, described = [], [], []
    agree = {"model": 0, **dict.fromkeys(RULE_NAMES, 0)}
    uncertain = 0
    total = 0
    for name in names:
        build = CASES[name]
        timeline = build()
        described.append(
            f"`{name}` (`flare_ml.cases.{build.__name__}`): "
            f"{(build.__doc__ or '').strip().splitlines()[0]}"
        )
        predictions = bundle.predict(timeline.drop(columns=[c.OUTCOME]))
        features = bundle.featurizer.transform(timeline)
        decisions = {
            r: np.where(rule.fit(features).predict(features) == 1, "flare", "progression")
            for r, rule in ctx.rules.items()
        }
        by_date = timeline.set_index(c.ASSESSMENT_DATE)
        metrics: dict[str, float] = {}
        for i, pred in enumerate(predictions.itertuples(index=False)):
            row = by_date.loc[pred.assessment_date]
            day = (pred.assessment_date - row[c.TREATMENT_START_DATE]).days
            reported = str(row[c.OUTCOME])
            total += 1
            agree["model"] += int(pred.decision == reported)
            uncertain += int(pred.decision == "uncertain")
            for r in RULE_NAMES:
                agree[r] += int(decisions[r][i] == reported)
            rows.append(
                {
                    "case": name,
                    "index scan": f"day {day} ({day / DAYS_PER_MONTH:.1f} months)",
                    "findings": _findings_text(timeline, row),
                    "reported": reported,
                    "P(flare)": f"{pred.p_flare:.3f}",
                    "decision": pred.decision,
                    "prediction set": pred.prediction_set.replace(",", ", ") or "(empty)",
                    **{SCORER_LABELS[r]: decisions[r][i] for r in RULE_NAMES},
                    "top reasons (SHAP, clinical signals)": pred.reasons,
                }
            )
            metrics[f"index_{i + 1}.p_flare"] = float(pred.p_flare)
            metrics[f"index_{i + 1}.decision_matches"] = float(pred.decision == reported)
        records.append(ConditionRecord(name, {"case": name, "function": build.__name__}, metrics))
    threshold = bundle.threshold
    coverage = ctx.train_config.uncertainty.coverage
    notes = [
        f"Model: XGBoost fitted on {train.label} ({len(train.prepared.y)} index rows) with "
        f"{ctx.train_config.model.outer_folds} outer patient-grouped folds for the "
        f"operating threshold ({threshold:.3f}) and the class-conditional conformal sets "
        f"(target coverage {coverage:.0%} per class); `uncertain` = both outcomes in the "
        "set: confirm with follow-up imaging in at least six weeks. Each index scan is "
        "scored from that patient's rows up to that date only; the outcome column is "
        "removed before scoring. Rules: their own decisions."
    ]
    findings = [
        f"XGBoost's decision matches the reported outcome at {agree['model']} of {total} "
        f"index scans ({uncertain} `uncertain`); seed criteria {agree['seed_criteria']}, "
        f"PCWG3 window {agree['pcwg3_window']}, ALP only {agree['alp_only']} of {total}."
    ]
    return KindOutput(
        cohorts=[("training", train.label)] + [("case", d) for d in described],
        tables=[Table("Decisions and reasons at each index scan", pd.DataFrame(rows), notes)],
        conditions=records,
        findings=findings,
    )


RUNNERS: dict[str, Callable[[Context], KindOutput]] = {
    "headline": run_headline,
    "ablations": run_ablations,
    "learning_curve": run_learning_curve,
    "robustness": run_robustness,
    "literature_cases": run_literature_cases,
    "coverage": run_coverage,
}
