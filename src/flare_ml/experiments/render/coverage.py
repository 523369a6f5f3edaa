"""Render the coverage kind: per-class coverage, label noise, domain shift, labelled n.

Turns a :class:`~flare_ml.experiments.kinds.coverage.CoverageResult` into four tables
(coverage against the recorded and the true outcome, domain separability, how many
labelled site patients) with their notes, and the findings computed from their numbers.
"""

from __future__ import annotations

import pandas as pd

from flare_ml.experiments.kinds.coverage import (
    CLASSES,
    CLIP,
    CoverageResult,
    site_label,
    within_share,
)
from flare_ml.experiments.outputs import KindOutput, Table
from flare_ml.experiments.readout import mean_sd
from flare_ml.experiments.render.text import fmt_mean_sd, pct, pct_sd, span
from flare_ml.uncertainty import FLARE, PROGRESSION, min_calibration_cases


def render(result: CoverageResult) -> KindOutput:
    """The four coverage tables and their findings.

    Examples
    --------
    >>> [t.title for t in render(result).tables][-1]  # doctest: +SKIP
    'How many labelled site patients: calibrating on n patients'

    """
    tables = [*_site_tables(result), _labelled_table(result)]
    findings = _site_findings(result) + _labelled_findings(result)
    return KindOutput(result.cohorts, tables, result.conditions, findings)


def _miss(means: dict[str, float], target: float) -> tuple[float, str]:
    """The larger per-class miss of the target, in points, and its class."""
    cls = max(CLASSES, key=lambda k: abs(means[k] - target))
    return (100 * abs(means[cls] - target), cls)


def _synthetic_note(result: CoverageResult) -> str:
    target, train_label, n_train = result.target, result.train_label, result.n_train
    return (
        "All cohorts are SIMULATED (flare-ml's simulator), none is a patient record. Model: "
        f"XGBoost trained once on {train_label}, {n_train} index rows, with the shipped "
        f"training config; its conformal thresholds (target {target:.0%} per class) come "
        "from the out-of-fold predictions of those patients "
        f"({result.outer_folds} patient-grouped folds)."
    )


def _site_tables(result: CoverageResult) -> list[Table]:
    """Coverage (recorded, true outcome), label noise and domain tables."""
    params, target, n_train = result.params, result.target, result.n_train
    recorded_rows, true_rows, domain_rows = [], [], []
    for site, res in result.sites.items():
        label = site_label(site, res.specs)
        v = res.values
        recorded_rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "index rows (flares)": (
                    f"{fmt_mean_sd(v('index_rows'), 0)} ({fmt_mean_sd(v('flares'), 0)})"
                ),
                "transported: flare": fmt_mean_sd(v("transported.recorded.coverage_flare")),
                "transported: progression": fmt_mean_sd(
                    v("transported.recorded.coverage_progression")
                ),
                "transported: uncertain": pct_sd(v("transported.uncertain_fraction")),
                "site-calibrated: flare": fmt_mean_sd(v("site.recorded.coverage_flare")),
                "site-calibrated: progression": fmt_mean_sd(
                    v("site.recorded.coverage_progression")
                ),
                "site-calibrated: uncertain": pct_sd(v("site.uncertain_fraction")),
            }
        )
        true_rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "label noise (site profile)": f"{100 * v('label_noise_profile')[0]:.0f}%",
                "recorded label differs from truth": pct_sd(v("label_flip_share")),
                "transported: flare": fmt_mean_sd(v("transported.true.coverage_flare")),
                "transported: progression": fmt_mean_sd(v("transported.true.coverage_progression")),
                "site-calibrated: flare": fmt_mean_sd(v("site.true.coverage_flare")),
                "site-calibrated: progression": fmt_mean_sd(v("site.true.coverage_progression")),
            }
        )
        domain_rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "domain AUROC": fmt_mean_sd(v("domain.auroc")),
                f"ESS of training weights (of {n_train} rows)": fmt_mean_sd(v("domain.ess"), 0),
                "training rows at the weight floor": pct_sd(v("domain.floor_share")),
                "site rows whose weighted set holds both classes": pct_sd(
                    v("domain.trivial_share")
                ),
            }
        )
    synthetic = _synthetic_note(result)
    k = params.replicates
    tables = [
        Table(
            "Per-class coverage against the recorded outcome: transported vs site-calibrated",
            pd.DataFrame(recorded_rows),
            [
                synthetic,
                f"Mean ± SD over {k} replicate cohorts per site; coverage is the share of index "
                "rows of one outcome whose prediction set holds that outcome. Transported: the "
                "model's own thresholds, unchanged. Site-calibrated: thresholds calibrated on "
                f"the site's other labelled patients ({params.folds} patient-grouped, "
                "outcome-stratified folds; no patient calibrates their own set), the coverage "
                "a site can expect after `flare_ml.site_calibration.calibrate_to_site`. "
                "Uncertain: share of index rows whose set holds both outcomes (or neither): "
                "confirm with follow-up imaging.",
            ],
        ),
        Table(
            "Per-class coverage against the true (noise-free) outcome, and label noise",
            pd.DataFrame(true_rows),
            [
                synthetic,
                "The same prediction sets as above, scored against the simulator's noise-free "
                "outcome instead of the recorded one. Site calibration uses the recorded "
                "outcomes (the only ones a site has). Label noise: the site profile's "
                "probability that a recorded outcome is flipped, and the realized share of "
                "index rows whose recorded outcome differs from the truth (mean ± SD over "
                f"{k} replicate cohorts).",
            ],
        ),
        Table(
            "Domain separability: why covariate-shift weighting is not used",
            pd.DataFrame(domain_rows),
            [
                synthetic,
                "A gradient-boosted classifier (scikit-learn HistGradientBoostingClassifier, "
                f"{params.domain_folds} patient-grouped folds) tells the site's index rows "
                "(the model's features) from the training cohort's; every row gets an "
                "out-of-fold P(site). Importance weights P(site|x) / P(training|x), "
                f"probabilities clipped to [{CLIP:g}, {1 - CLIP:g}]. ESS: Kish's effective "
                "sample size (sum w)^2 / sum w^2 of the training rows' weights; when almost "
                "every training row sits at the clip floor the weights are equal and the ESS "
                "is large for the wrong reason (no overlap, not good overlap). Weighted set "
                "holds both classes: site rows whose own weight exceeds "
                f"{1 - target:.0%} of the total weight (training rows plus the row itself), "
                "for which covariate-shift-weighted split conformal (Tibshirani et al. 2019) "
                "has no finite threshold. Where the training site is among the sites, its "
                "own replicates show what the classifier's noise alone does to these numbers "
                f"(no shift). Mean ± SD over {k} replicate cohorts.",
            ],
        ),
    ]
    return tables


def _labelled_table(result: CoverageResult) -> Table:
    """The labelled-patients table: transported, then calibrated on each n."""
    params, target = result.params, result.target
    labelled = params.labelled
    tol = labelled.tolerance
    band = f"within ±{100 * tol:g} pts: flare / progression / both"
    rows = []
    for site, res in result.pools.items():
        label = site_label(site, res.specs)
        flare, prog = res.values("coverage_flare"), res.values("coverage_progression")
        rows.append(
            {
                "site (SIMULATED cohorts)": label,
                "labelled patients used": "none: training thresholds (transported)",
                "calibration index rows (flares)": "-",
                "flare coverage": fmt_mean_sd(flare),
                "progression coverage": fmt_mean_sd(prog),
                band: (
                    f"{pct(within_share(target, tol, flare))} / "
                    f"{pct(within_share(target, tol, prog))} / "
                    f"{pct(within_share(target, tol, flare, prog))}"
                ),
                "uncertain": pct_sd(res.values("uncertain_fraction")),
                "draws with a class always in the set": "-",
            }
        )
        for n, stats in zip(labelled.sizes, result.curve[site], strict=True):
            at_n = [d for d in result.draws[site] if d["n"] == n]
            flare = [d["coverage_flare"] for d in at_n]
            prog = [d["coverage_progression"] for d in at_n]
            uncertain = [d["uncertain_fraction"] for d in at_n]
            short = int(stats["draws_with_class_always_in_set"])
            rows.append(
                {
                    "site (SIMULATED cohorts)": label,
                    "labelled patients used": str(n),
                    "calibration index rows (flares)": (
                        f"{stats['calibration_rows.mean']:.0f} "
                        f"({stats['calibration_flares.mean']:.0f})"
                    ),
                    "flare coverage": fmt_mean_sd(flare),
                    "progression coverage": fmt_mean_sd(prog),
                    band: (
                        f"{pct(stats['within.flare'])} / {pct(stats['within.progression'])} "
                        f"/ {pct(stats['within.both'])}"
                    ),
                    "uncertain": pct_sd(uncertain),
                    "draws with a class always in the set": f"{short} of {len(at_n)}",
                }
            )
    k = params.replicates
    n_labelled = mean_sd(
        [x for res in result.pools.values() for x in res.values("labelled_patients")]
    )[0]
    notes = [
        _synthetic_note(result),
        f"Per site, {k} replicate cohorts of {labelled.pool_patients} patients (on average "
        f"{n_labelled:.0f} of them labelled: at least one index assessment with a recorded "
        f"outcome); in each, {labelled.draws} random orders of the labelled patients. "
        "Thresholds are calibrated on the index rows of the first n patients of an order "
        "(nested sizes) and evaluated on the index rows of all the other labelled patients "
        f"(recorded outcome): mean ± SD and the share within ±{100 * tol:g} points of the "
        f"{target:.0%} target over {k * labelled.draws} draws. A class with fewer than "
        f"{min_calibration_cases(target)} calibration cases gets no finite threshold: it is "
        "in every set and its coverage is 1 (counted under 'draws with a class always in the "
        "set'). The evaluation patients are finite too, so part of the spread is evaluation "
        "noise. Transported row: the training thresholds on each whole cohort (mean ± SD and "
        f"share within the band over the {k} cohorts).",
    ]
    return Table(
        "How many labelled site patients: calibrating on n patients",
        pd.DataFrame(rows),
        notes,
    )


def _site_findings(result: CoverageResult) -> list[str]:
    """Conclusions of the site tables, computed from their numbers."""
    params, target, sites, n_train = result.params, result.target, result.sites, result.n_train
    tol = params.labelled.tolerance
    findings = []
    ok: dict[str, list[str]] = {"transported": [], "site": []}
    for site, res in sites.items():
        parts = []
        for prefix, name in (("transported", "transported"), ("site", "site-calibrated")):
            m = res.class_means(f"{prefix}.recorded")
            miss, cls = _miss(m, target)
            if miss <= 100 * tol + 1e-9:
                ok[prefix].append(site)
            parts.append(
                f"{name} flare {m[FLARE]:.3f}, progression {m[PROGRESSION]:.3f} "
                f"(largest miss {miss:.1f} points, {cls}; uncertain "
                f"{100 * res.mean(f'{prefix}.uncertain_fraction'):.1f}%)"
            )
        findings.append(
            f"Simulated site {site}, recorded outcome (target {target:.2f}): "
            + "; ".join(parts)
            + "."
        )
    n = len(sites)

    def listed(names: list[str]) -> str:
        return f" ({', '.join(names)})" if names else ""

    findings.append(
        f"Both classes' mean coverage is within ±{100 * tol:g} points of the target at "
        f"{len(ok['transported'])} of {n} simulated sites with the transported thresholds"
        f"{listed(ok['transported'])} and at {len(ok['site'])} of {n} with site-calibrated "
        f"thresholds{listed(ok['site'])}."
    )
    gaps = [
        res.mean(f"site.true.coverage_{k}") - res.mean(f"site.recorded.coverage_{k}")
        for res in sites.values()
        for k in CLASSES
    ]
    flips = [res.mean("label_flip_share") for res in sites.values()]
    if min(gaps) > 0:
        direction = "higher than against the recorded ones at every site and class"
    elif max(gaps) < 0:
        direction = "lower than against the recorded ones at every site and class"
    elif min(gaps) == max(gaps) == 0:
        direction = "the same as against the recorded ones at every site and class"
    else:
        direction = "sometimes higher, sometimes lower than against the recorded ones"
    text = (
        "Against the simulator's noise-free outcomes, site-calibrated coverage is "
        f"{direction} (difference {span(gaps, 1, 100, sign=True)} points; "
        f"{span(flips, 1, 100)}% of recorded labels differ from the truth)."
    )
    if min(gaps) > 0:
        text += (
            " Calibrating on noisy labels widens the thresholds, so the sets over-cover the "
            "true outcome: coverage of the recorded outcome is the conservative reading."
        )
    findings.append(text)
    shifted = [s for s in sites if s != params.train.site]
    if shifted:
        auroc = {s: sites[s].mean("domain.auroc") for s in sites}
        trivial = [sites[s].mean("domain.trivial_share") for s in shifted]
        floor = {s: sites[s].mean("domain.floor_share") for s in shifted}
        ess = [
            f"{sites[s].mean('domain.ess'):.0f} ({s}"
            + (", every training row at the floor" if floor[s] >= 0.995 else "")
            + ")"
            for s in shifted
        ]
        text = (
            "A domain classifier separates each other site's index rows from the training "
            "rows with cross-validated AUROC "
            + ", ".join(f"{auroc[s]:.3f} ({s})" for s in shifted)
            + (
                f" (the training site's own replicates: {auroc[params.train.site]:.3f})"
                if params.train.site in auroc
                else ""
            )
            + f". The importance weights leave {span(list(floor.values()), 0, 100)}% of the "
            f"{n_train} training rows at the clip floor, have an effective sample size of "
            + ", ".join(ess)
            + f", and give {span(trivial, 0, 100)}% of the site rows a weighted conformal "
            "set holding both classes."
        )
        if min(trivial) >= 0.5:
            text += (
                " Covariate-shift-weighted conformal prediction would call at least half of "
                "these sites' cases `uncertain`; recalibrating on the site's own labelled "
                "patients is the remedy measured here."
            )
        findings.append(text)
    return findings


def _labelled_findings(result: CoverageResult) -> list[str]:
    """Conclusions of the labelled-patients table, computed from its numbers."""
    target, tol = result.target, result.params.labelled.tolerance
    findings = []
    for site, stats in result.curve.items():
        first, last = stats[0], stats[-1]
        text = (
            f"Simulated site {site}: calibrated on {first['n']:.0f} labelled patients (about "
            f"{first['calibration_flares.mean']:.0f} flares), coverage varies between draws "
            f"with SD {first['coverage_flare.sd']:.3f} (flare) and "
            f"{first['coverage_progression.sd']:.3f} (progression), "
            f"{pct(first['within.both'])} of draws have both classes within "
            f"±{100 * tol:g} points and {100 * first['uncertain_fraction.mean']:.1f}% of "
            f"decisions are uncertain; with {last['n']:.0f} patients (about "
            f"{last['calibration_flares.mean']:.0f} flares): SD {last['coverage_flare.sd']:.3f} "
            f"and {last['coverage_progression.sd']:.3f}, {pct(last['within.both'])} within, "
            f"{100 * last['uncertain_fraction.mean']:.1f}% uncertain."
        )
        close = [
            f"{s['n']:.0f}"
            for s in stats
            if abs(s["coverage_flare.mean"] - target) <= 0.01
            and abs(s["coverage_progression.mean"] - target) <= 0.01
        ]
        text += (
            f" The mean coverage of both classes is within 1 point of target at n = "
            f"{', '.join(close)}."
            if close
            else " The mean coverage of both classes is within 1 point of target at no n tried."
        )
        short = [f"{s['n']:.0f}" for s in stats if s["draws_with_class_always_in_set"] > 0]
        if short:
            text += (
                f" At n = {', '.join(short)} some draws had too few calibration cases of a "
                "class for a finite threshold (that class is then in every set)."
            )
        findings.append(text)
    return findings


__all__ = ["render"]
