"""Self-contained HTML report and TRIPOD+AI model card of a training run.

The report puts the model, every rule baseline and the simulator's oracle side by side on
the out-of-fold training predictions and on each external cohort: discrimination,
calibration, decision curves, subgroups, conformal coverage, global SHAP plots and a few
worked patients with their reasons. Plots are embedded as base64 PNG so the HTML file
stands alone. The model card follows TRIPOD+AI headings and states plainly that the
model was trained on synthetic cohorts and is not for clinical use. Every number carries
the label of the cohort it was computed on.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.bundle import SYNTHETIC_CAVEAT
from flare_ml.model_card import model_card
from flare_ml.plots import (
    figure_to_png_bytes,
    plot_calibration,
    plot_decision_curves,
    plot_precision_recall_curves,
    plot_roc_curves,
    plot_subgroup_forest,
)
from flare_ml.site_calibration import SITE_CALIBRATED, TRANSPORTED

MODEL = "xgboost"
ORACLE = "oracle"


@dataclass
class WrittenReport:
    """Paths and in-memory pieces of a written report."""

    headline: pd.DataFrame
    report: Path
    model_card: Path
    artifacts: dict[str, Path] = field(default_factory=dict)
    #: PNG file name -> PNG bytes, rendered once (embedded in the page, logged to MLflow)
    figures: dict[str, bytes] = field(default_factory=dict)


def _slug(label: str) -> str:
    from flare_ml.tracking import cohort_key

    return cohort_key(label)


def headline_table(result: Any) -> pd.DataFrame:
    """One row per cohort x scorer: AUROC [CI], calibration slope [CI], Brier, ...

    Examples
    --------
    The table of ``make demo``'s run is printed by the CLI and written as
    ``headline.csv``.

    """
    frames = []
    for label, ev in result.evaluations.items():
        table = ev.summary_table()
        table["threshold"] = table["threshold"].astype(float).round(3)
        table.insert(0, "cohort", label)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def compact_headline(headline: pd.DataFrame) -> pd.DataFrame:
    """The headline narrowed for a terminal: short cohort names, key metrics only."""
    from flare_ml.tracking import cohort_key

    cols = ["scorer", "AUROC", "calibration slope", "Brier", "sensitivity", "specificity"]
    out = headline[[c for c in cols if c in headline.columns]].copy()
    out.insert(0, "cohort", headline["cohort"].map(cohort_key))
    return out


def target_checks(result: Any) -> pd.DataFrame:
    """The issue's targets on each external cohort: gap to oracle, margin over rules, slope."""
    rows = []
    rule_names = list(result.rules)
    for label, ev in result.evaluations.items():
        if label.startswith("training"):
            continue
        model_auc = ev.estimate(MODEL, "auroc")
        best_rule = max(rule_names, key=lambda r: ev.estimate(r, "auroc"))
        row = {
            "cohort": label,
            "model AUROC": round(model_auc, 3),
            "best rule": best_rule,
            "best rule AUROC": round(ev.estimate(best_rule, "auroc"), 3),
            "margin over best rule (target >= 0.05)": round(
                model_auc - ev.estimate(best_rule, "auroc"), 3
            ),
            "calibration slope (target 0.8-1.2)": round(ev.estimate(MODEL, "calibration_slope"), 3),
        }
        if ORACLE in ev.scorers:
            row["oracle AUROC"] = round(ev.estimate(ORACLE, "auroc"), 3)
            row["gap to oracle (target <= 0.03)"] = round(
                ev.estimate(ORACLE, "auroc") - model_auc, 3
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _coverage_row(label: str, source: str, cov: dict[str, float], target: dict[str, float]) -> dict:
    """One coverage-table row: cohort, threshold source, per-class targets and the report."""
    return {
        "cohort": label,
        "thresholds": source,
        "target_flare": target["flare"],
        "target_progression": target["progression"],
        **{k: round(v, 3) for k, v in cov.items()},
    }


def coverage_table(result: Any) -> pd.DataFrame:
    """Conformal coverage per external cohort, with training and with site thresholds.

    One row per cohort and threshold source: the thresholds calibrated on training
    patients as shipped (:data:`TRANSPORTED`), and thresholds calibrated on the
    cohort's own labelled patients, measured cross-fitted so that no patient calibrates
    their own set (:data:`SITE_CALIBRATED`, what
    :func:`flare_ml.site_calibration.calibrate_to_site` gives a site). The last column
    says whether both classes are within two points of the target.
    """
    target = result.config.decision_policy.budget().coverage
    site = getattr(result, "site_coverage", {})
    rows = []
    for label, shipped in result.coverage.items():
        for source, cov in ((TRANSPORTED, shipped), (SITE_CALIBRATED, site.get(label))):
            if cov is None:
                continue
            within = all(
                abs(cov[f"coverage_{k}"] - target[k]) <= 0.02 for k in ("flare", "progression")
            )
            row = _coverage_row(label, source, cov, target)
            rows.append({**row, "both classes within 0.02": "yes" if within else "no"})
    columns = [
        "cohort",
        "thresholds",
        "target_flare",
        "target_progression",
        "coverage",
        "coverage_flare",
        "coverage_progression",
        "uncertain_fraction",
        "both classes within 0.02",
    ]
    return pd.DataFrame(rows, columns=columns)


def cohort_figures(label: str, y: np.ndarray, scores: dict[str, np.ndarray], ev: Any) -> dict:
    """ROC, PR, calibration, decision-curve and subgroup figures of one cohort."""
    slug = _slug(label)
    figures = {
        f"{slug}_roc.png": plot_roc_curves(y, scores, label, evaluation=ev),
        f"{slug}_pr.png": plot_precision_recall_curves(y, scores, label, evaluation=ev),
        f"{slug}_calibration.png": plot_calibration(y, scores, label, evaluation=ev),
        f"{slug}_decision_curve.png": plot_decision_curves(y, scores, label, evaluation=ev),
    }
    if len(ev.subgroups):
        figures[f"{slug}_subgroups.png"] = plot_subgroup_forest(ev, label)
    return figures


def worked_patients(bundle: Any, cohort: Any, per_decision: int = 2) -> pd.DataFrame:
    """A few index assessments of a cohort with their decision and reasons."""
    predictions = bundle.predict_features(cohort.features)
    predictions["outcome (adjudicated)"] = np.where(cohort.y == 1, "flare", "progression")
    picks = [
        predictions[predictions["decision"] == d].head(per_decision)
        for d in ("flare", "progression", "uncertain")
    ]
    out = pd.concat(picks, ignore_index=True)
    out["p_flare"] = out["p_flare"].round(3)
    out["assessment_date"] = pd.to_datetime(out["assessment_date"]).dt.strftime("%Y-%m-%d")
    return out


def seed_case_prediction(bundle: Any) -> pd.DataFrame:
    """The model's reading of the NSCLC seed case (De Bondt 2020), with every reason.

    All clinical signals are listed (not only the bundle's top few), strongest first, so
    that a reader sees how each finding of the case report moved the prediction.
    """
    import dataclasses

    from flare_ml.cases import seed_case_timeline
    from flare_ml.explain import SIGNALS

    out = dataclasses.replace(bundle, top_reasons=len(SIGNALS)).predict(seed_case_timeline())
    out["p_flare"] = out["p_flare"].round(3)
    out["assessment_date"] = pd.to_datetime(out["assessment_date"]).dt.strftime("%Y-%m-%d")
    return out


def _without_role(label: str) -> str:
    """A cohort label without its role prefix ("external: ", "training: ", ...).

    Examples
    --------
    >>> _without_role("external: simulated site nordic (2000 patients, seed 3)")
    'simulated site nordic (2000 patients, seed 3)'

    """
    return label.split(": ", 1)[1] if ": " in label else label


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="t", escape=True, na_rep="")


def _render(figures: dict[str, Any]) -> dict[str, bytes]:
    """Render each figure once as PNG: the page embeds these bytes and MLflow logs them."""
    return {name: figure_to_png_bytes(fig) for name, fig in figures.items()}


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1,h2,h3{color:#1f3b57} .warn{background:#fff3cd;border:1px solid #e0c36c;padding:.8em}
table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0 1.5em}
table.t td,table.t th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}
img{max-width:49%;margin:.2em} .full img{max-width:95%}
"""


def _html_page(title: str, sections: list[str]) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='warn'><b>Synthetic data.</b> {html.escape(SYNTHETIC_CAVEAT)}</p>"
        + "".join(sections)
        + "</body></html>"
    )


def _cohort_section(label: str, ev: Any, figs: dict[str, bytes]) -> str:
    parts = [
        f"<h2>{html.escape(label)}</h2>",
        f"<p>{ev.n} index assessments ({ev.n_flare} flares) in {ev.n_patients} patients; "
        f"95% patient-level bootstrap intervals ({ev.n_resamples} resamples). Sensitivity "
        "and specificity: the model and the oracle at the operating threshold chosen on "
        "out-of-fold training predictions (at most the configured share of true "
        "progressions called flare); each rule at its own decision.</p>",
        _table_html(ev.summary_table()),
    ]
    parts += [_img(png, name) for name, png in figs.items()]
    if len(ev.subgroups):
        cols = [
            c
            for c in (
                "scorer",
                "variable",
                "level",
                "n",
                "n_flare",
                "auroc",
                "calibration_slope",
                "sensitivity",
                "specificity",
            )
            if c in ev.subgroups.columns
        ]
        sub = ev.subgroups[ev.subgroups["scorer"] == MODEL][cols].round(3)
        parts += ["<h3>Subgroups (model)</h3>", _table_html(sub)]
    return "".join(parts)


def write_training_report(result: Any, out_dir: str | Path) -> WrittenReport:
    """Write report.html, model_card.md and the tables of a training run to ``out_dir``."""
    from flare_ml.explain import shap_contributions, summary_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cohorts = [result.training, *result.externals]
    figures: dict[str, bytes] = {}
    sections = []
    headline = headline_table(result)
    targets = target_checks(result)
    coverage = coverage_table(result)
    sections.append("<h2>Headline</h2>" + _table_html(headline))
    if len(targets):
        sections.append("<h3>Targets on external cohorts</h3>" + _table_html(targets))
    decisions_html, _ = decision_section(result.decision_tables)  # the card has its own
    sections.append(decisions_html)
    sections.append(
        "<h3>Conformal coverage and uncertain decisions</h3><p>Per-class coverage of the "
        "prediction sets on each external cohort: with the thresholds calibrated on "
        "training patients (as shipped), and with thresholds recalibrated on the cohort's "
        "own labelled patients (<code>flare-ml calibrate</code>; cross-fitted, no patient "
        "calibrates their own set). Coverage is guaranteed only for patients exchangeable "
        "with the calibration patients.</p>" + _table_html(coverage)
    )
    for cohort in cohorts:
        ev = result.evaluations[cohort.label]
        figs = _render(cohort_figures(cohort.label, cohort.y, result.scores[cohort.label], ev))
        figures.update(figs)
        sections.append(_cohort_section(cohort.label, ev, figs))

    explain_on = result.externals[0] if result.externals else result.training
    contrib, bias = shap_contributions(result.bundle.booster, explain_on.features)
    shap_figs = _render(summary_plots(contrib, bias, explain_on.features, explain_on.label))
    figures.update(shap_figs)
    sections.append(
        f"<h2>Explanations (SHAP, {html.escape(explain_on.label)})</h2>"
        "<p>Exact TreeSHAP contributions in log-odds of flare; positive values push toward "
        "flare.</p>" + "".join(_img(png, n) for n, png in shap_figs.items())
    )
    worked = worked_patients(result.bundle, explain_on)
    seed = seed_case_prediction(result.bundle)
    sections.append(
        f"<h2>Worked patients ({html.escape(explain_on.label)})</h2>"
        + _table_html(worked)
        + "<h3>Literature seed case (De Bondt 2020, NSCLC on erlotinib; values partly "
        "assumed)</h3><p>Every clinical signal, strongest first (the model's output gives "
        "its top three).</p>" + _table_html(seed)
    )
    card = model_card(result, targets, coverage)  # holds the decision tables
    paths = {
        "report.html": out / "report.html",
        "model_card.md": out / "model_card.md",
        "headline.csv": out / "headline.csv",
        "targets.csv": out / "targets.csv",
        "coverage.csv": out / "coverage.csv",
        "decisions.csv": out / "decisions.csv",
        "metrics.csv": out / "metrics.csv",
        "subgroups.csv": out / "subgroups.csv",
        "decision_curves.csv": out / "decision_curves.csv",
        "worked_patients.csv": out / "worked_patients.csv",
    }
    paths["report.html"].write_text(_html_page("flare-ml training report", sections))
    paths["model_card.md"].write_text(card)
    headline.to_csv(paths["headline.csv"], index=False)
    targets.to_csv(paths["targets.csv"], index=False)
    coverage.to_csv(paths["coverage.csv"], index=False)
    decision_rates(result.decision_tables).to_csv(paths["decisions.csv"], index=False)
    worked.to_csv(paths["worked_patients.csv"], index=False)
    for name, attr in (
        ("metrics.csv", "metrics"),
        ("subgroups.csv", "subgroups"),
        ("decision_curves.csv", "decision_curves"),
    ):
        pd.concat(
            [getattr(ev, attr).assign(cohort=label) for label, ev in result.evaluations.items()],
            ignore_index=True,
        ).to_csv(paths[name], index=False)
    return WrittenReport(
        headline=headline,
        report=paths["report.html"],
        model_card=paths["model_card.md"],
        artifacts=paths,
        figures=figures,
    )


def decision_rates(tables: list[Any]) -> pd.DataFrame:
    """The realised rates of several decision tables, one row per cohort, source and rate."""
    return pd.DataFrame([r for t in tables for r in t.to_records()])


def decision_section(tables: list[Any]) -> tuple[str, str]:
    """HTML and Markdown of decision tables: decisions x outcomes, rates and the verdict."""
    parts = ["<h2>Decisions against outcomes</h2>"]
    md = ["## Decisions against outcomes", ""]
    for t in tables:
        title = f"{_without_role(t.cohort)}: {t.thresholds}"
        verdict = t.sentence()
        frame = t.to_frame().reset_index()
        parts.append(f"<h3>{html.escape(title)}</h3><p>{html.escape(verdict)}</p>")
        parts.append(_table_html(frame))
        md += [f"### {title}", "", verdict, "", frame.to_markdown(index=False), ""]
    return "".join(parts), "\n".join(md) + "\n"


def evaluation_coverage_table(
    label: str,
    coverage: dict[str, float] | None,
    site_coverage: dict[str, float] | None,
    target: dict[str, float],
) -> pd.DataFrame:
    """Coverage rows of ``flare-ml evaluate``: the model's thresholds and site-recalibrated."""
    reports = {"model's thresholds": coverage, SITE_CALIBRATED: site_coverage}
    return pd.DataFrame(
        [_coverage_row(label, name, r, target) for name, r in reports.items() if r is not None]
    )


def write_evaluation_report(
    cohort: Any,
    scores: dict[str, np.ndarray],
    ev: Any,
    out_dir: str | Path,
    coverage: pd.DataFrame | None = None,
    *,
    decision_tables: list[Any] | None = None,
) -> WrittenReport:
    """Report of ``flare-ml evaluate``: one cohort, model and rules (and oracle if known).

    ``coverage`` (from :func:`evaluation_coverage_table`) adds the conformal coverage
    table to the page and writes it as ``coverage.csv``; ``decision_tables``
    (:class:`~flare_ml.evaluation.DecisionTable`) add the decision column against the
    outcomes, written as ``decisions.csv``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = _render(cohort_figures(cohort.label, cohort.y, scores, ev))
    headline = ev.summary_table()
    headline.insert(0, "cohort", cohort.label)
    sections = []
    markdown = ""
    if decision_tables:
        html, md = decision_section(decision_tables)
        sections.append(html)
        markdown += md
        decision_rates(decision_tables).to_csv(out / "decisions.csv", index=False)
    sections.append(_cohort_section(cohort.label, ev, figs))
    markdown += headline.to_markdown(index=False) + "\n"
    if coverage is not None and len(coverage):
        sections.append(
            "<h3>Conformal coverage and uncertain decisions</h3>" + _table_html(coverage)
        )
        coverage.to_csv(out / "coverage.csv", index=False)
        markdown += "\n## Conformal coverage\n\n" + coverage.to_markdown(index=False) + "\n"
    page = _html_page("flare-ml evaluation report", sections)
    report = out / "report.html"
    report.write_text(page)
    headline.to_csv(out / "headline.csv", index=False)
    ev.metrics.assign(cohort=cohort.label).to_csv(out / "metrics.csv", index=False)
    card = out / "evaluation.md"
    card.write_text(
        f"# Evaluation on {_without_role(cohort.label)}\n\n> {SYNTHETIC_CAVEAT}\n\n" + markdown
    )
    return WrittenReport(
        headline=headline,
        report=report,
        model_card=card,
        artifacts={"report.html": report},
        figures=figs,
    )
