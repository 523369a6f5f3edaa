"""Vectorised generation of a synthetic cohort from the simulator's causal story.

One patient on one line of therapy follows the story cancer type -> therapy class ->
response state -> course (flare, acquired progression, primary progression, or no bone
event) -> event time -> findings at each scheduled scan, ALP course and missingness.
Every draw is made for all patients at once with NumPy (no Python loop per patient), from
one seeded generator, so a seed and a config give an identical cohort. The result is a
timepoint table in the data contract, the raw long lab table in the site's units (ALP
reaches the timepoint table through the same lab adapter users run), and the per-patient
latent state that :mod:`flare_ml.simulate.oracle` needs to compute the Bayes-optimal
P(flare) of each index row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.simulate.config import (
    COURSES,
    LESION_MORPHOLOGIES,
    RESPONSES,
    Biology,
    ConfirmationScans,
    PhaseBernoulli,
    SiteProfile,
)

DAYS_PER_MONTH = 30.44
#: a lab visit this close to a scan is skipped: the scan's own blood draw stands for it
LAB_SCAN_EXCLUSION_DAYS = 7
FIRST_START_DATE = np.datetime64("2018-01-01")
START_DATE_SPAN_DAYS = 7 * 365
UNIT_FACTORS = {"u/l": 1.0, "iu/l": 1.0, "ukat/l": 60.0}

FLARE, ACQUIRED, PRIMARY, RESP_NONE, NONRESP_NONE = range(len(COURSES))

# phase of an imaging row (CONFIRM: the confirmation scan after a progression index,
# only with confirmation scans)
BASELINE, PRE, INDEX1, POST, INDEX2, TERMINAL_PD, CONFIRM = range(7)


@dataclass
class PatientState:
    """Latent, per-patient draws kept for the oracle (arrays of length n_patients)."""

    patient_id: np.ndarray
    cancer: np.ndarray  # index into contract.CANCER_TYPES
    therapy: np.ndarray  # index into contract.THERAPY_CLASSES
    course: np.ndarray  # index into config.COURSES
    start_date: np.ndarray  # datetime64[D]
    scan_days: np.ndarray  # (n, K) day of each scan since start, baseline at column 0
    n_scans: np.ndarray  # number of scans the patient has (baseline included)
    index1: np.ndarray  # scan number of the first index row, -1 if none
    index2: np.ndarray  # scan number of the second index row, -1 if none


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(probs))[:, None]
    return (u > cum).sum(axis=1)


def _lognormal_days(
    rng: np.random.Generator, median_months: np.ndarray | float, sigma: float, n: int
) -> np.ndarray:
    return np.exp(
        np.log(np.asarray(median_months) * DAYS_PER_MONTH) + sigma * rng.standard_normal(n)
    )


def _first_scan_at_or_after(scan_days: np.ndarray, t: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Scan number of the first scan later than ``after`` on or after day ``t`` (-1: none)."""
    k = np.arange(scan_days.shape[1])[None, :]
    ok = (scan_days >= t[:, None]) & (k > after[:, None])
    return np.where(ok.any(axis=1), ok.argmax(axis=1), -1)


def therapy_table(biology: Biology, name: str) -> np.ndarray:
    """(n_cancer, n_therapy) table of a by-therapy probability, overrides applied."""
    block = getattr(biology, name)
    return np.array([[block.lookup(ca, th) for th in c.THERAPY_CLASSES] for ca in c.CANCER_TYPES])


def flare_median_table(biology: Biology) -> np.ndarray:
    """(n_cancer, n_therapy) median latent flare onset in months."""
    ft = biology.timing_months.flare
    return np.array([[ft.median(ca, th) for th in c.THERAPY_CLASSES] for ca in c.CANCER_TYPES])


def draw_patients(
    rng: np.random.Generator, n: int, site: SiteProfile, biology: Biology, id_prefix: str
) -> tuple[PatientState, dict[str, np.ndarray]]:
    """Draw context, course, event times and the visit schedule of ``n`` patients."""
    mix = np.array([site.case_mix.values.get(ca, 0.0) for ca in c.CANCER_TYPES])
    cancer = _categorical(rng, np.broadcast_to(mix, (n, len(mix))))
    tmix = np.array(
        [
            [site.therapy_mix.values.get(ca, {}).get(th, 0.0) for th in c.THERAPY_CLASSES]
            for ca in c.CANCER_TYPES
        ]
    )
    therapy = _categorical(rng, tmix[cancer])

    p_resp = therapy_table(biology, "response_probability")[cancer, therapy]
    p_flare = therapy_table(biology, "flare_probability_given_response")[cancer, therapy]
    responder = rng.random(n) < p_resp
    flare = responder & (rng.random(n) < p_flare)
    acquired = (
        responder & ~flare & (rng.random(n) < biology.acquired_bone_progression_probability.value)
    )
    primary = ~responder & (rng.random(n) < biology.primary_bone_progression_probability.value)
    course = np.select(
        [flare, acquired, primary, responder],
        [FLARE, ACQUIRED, PRIMARY, RESP_NONE],
        default=NONRESP_NONE,
    )
    late_progression = flare & (rng.random(n) < biology.progression_after_flare_probability.value)

    tm = biology.timing_months
    t_flare = _lognormal_days(rng, flare_median_table(biology)[cancer, therapy], tm.flare.sigma, n)
    t_acq = _lognormal_days(rng, tm.acquired_progression.median, tm.acquired_progression.sigma, n)
    t_prim = _lognormal_days(rng, tm.primary_progression.median, tm.primary_progression.sigma, n)
    t_xpd = _lognormal_days(
        rng, tm.extraosseous_only_progression.median, tm.extraosseous_only_progression.sigma, n
    )
    gap = tm.progression_after_flare_gap
    t_gap = np.maximum(_lognormal_days(rng, gap.median, gap.sigma, n), gap.minimum * DAYS_PER_MONTH)

    sched = site.schedule
    lo, hi = sched.followup_months
    followup_days = rng.uniform(lo, hi, n) * DAYS_PER_MONTH
    n_k = int(np.ceil(hi * DAYS_PER_MONTH / sched.scan_interval_days)) + 2
    jitter = rng.integers(-sched.scan_jitter_days, sched.scan_jitter_days + 1, (n, n_k))
    scan_days = np.arange(n_k)[None, :] * sched.scan_interval_days + jitter
    scan_days[:, 0] = 0
    last_allowed = (scan_days <= followup_days[:, None]).sum(axis=1) - 1

    event_time = np.select(
        [course == FLARE, course == ACQUIRED, course == PRIMARY],
        [t_flare, t_acq, t_prim],
        default=np.inf,
    )
    index1 = _first_scan_at_or_after(scan_days, event_time, np.zeros(n, dtype=int))
    index1 = np.where((index1 > 0) & (index1 <= last_allowed), index1, -1)
    t_second = np.where(late_progression & (index1 > 0), t_flare + t_gap, np.inf)
    index2 = _first_scan_at_or_after(scan_days, t_second, np.maximum(index1, 0))
    index2 = np.where((index2 > 0) & (index2 <= last_allowed), index2, -1)
    xpd = _first_scan_at_or_after(
        scan_days, np.where(course == NONRESP_NONE, t_xpd, np.inf), np.zeros(n, dtype=int)
    )
    xpd = np.where((xpd > 0) & (xpd <= last_allowed), xpd, -1)

    last = last_allowed.copy()
    ends_line = np.isin(course, (ACQUIRED, PRIMARY)) & (index1 > 0)
    last = np.where(ends_line, index1, last)
    last = np.where(index2 > 0, index2, last)
    last = np.where(xpd > 0, xpd, last)

    ids = np.char.add(id_prefix, np.char.zfill(np.arange(1, n + 1).astype(str), len(str(n))))
    start = FIRST_START_DATE + rng.integers(0, START_DATE_SPAN_DAYS, n).astype("timedelta64[D]")
    state = PatientState(
        patient_id=ids,
        cancer=cancer,
        therapy=therapy,
        course=course,
        start_date=start,
        scan_days=scan_days,
        n_scans=last + 1,
        index1=index1,
        index2=index2,
    )
    extra = {
        "xpd": xpd,
        "t_second": t_second,
        "responder": responder,
        "followup_days": followup_days,
    }
    return state, extra


def _row_phases(state: PatientState, xpd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten scans to imaging rows: (patient index, scan number, phase)."""
    n, n_k = state.scan_days.shape
    k = np.arange(n_k)[None, :]
    present = k < state.n_scans[:, None]
    i1 = state.index1[:, None]
    i2 = state.index2[:, None]
    phase = np.full((n, n_k), PRE)
    phase = np.where((i1 > 0) & (k > i1), POST, phase)
    phase = np.where(k == i1, INDEX1, phase)
    phase = np.where((i2 > 0) & (k == i2), INDEX2, phase)
    phase = np.where((xpd[:, None] > 0) & (k == xpd[:, None]), TERMINAL_PD, phase)
    phase[:, 0] = BASELINE
    pi, ki = np.nonzero(present)
    return pi, ki, phase[pi, ki]


def _imaging_findings(
    rng: np.random.Generator,
    state: PatientState,
    pi: np.ndarray,
    phase: np.ndarray,
    biology: Biology,
) -> dict[str, np.ndarray]:
    """Draw the findings of every imaging row from its phase and the patient's course."""
    f = biology.findings
    course = state.course[pi]
    responder_group = np.isin(course, (FLARE, ACQUIRED, RESP_NONE))
    group = np.where(responder_group, "responder", "non_responder")
    # the "course" whose index distribution applies on index rows
    idx_course = np.where(phase == INDEX2, ACQUIRED, course)
    idx_name = np.array(COURSES)[idx_course]
    is_index = np.isin(phase, (INDEX1, INDEX2))
    n = len(pi)
    eq = f.equivocal_presentation
    equivocal = is_index & (rng.random(n) < eq.probability)

    def phase_probs(block, cats: tuple[str, ...]) -> np.ndarray:
        pre = {g: np.array([block.pre[g][x] for x in cats]) for g in block.pre}
        idx = {k: np.array([block.index[k][x] for x in cats]) for k in block.index}
        out = np.where(responder_group[:, None], pre["responder"], pre["non_responder"])
        for name, vec in idx.items():
            out = np.where((is_index & (idx_name == name))[:, None], vec, out)
        return out

    def phase_bernoulli(block, equivocal_p: float | None = None) -> np.ndarray:
        p = np.where(group == "responder", block.pre["responder"], block.pre["non_responder"])
        for name, val in block.index.items():
            p = np.where(is_index & (idx_name == name), val, p)
        for cancer, table in block.index_by_cancer.items():  # cancer-specific rates
            row_cancer = state.cancer[pi] == c.CANCER_TYPES.index(cancer)
            for name, val in table.items():
                p = np.where(is_index & (idx_name == name) & row_cancer, val, p)
        if equivocal_p is not None:  # bone findings of an equivocal index scan
            p = np.where(equivocal, equivocal_p, p)
        return rng.random(n) < p

    response = np.array(RESPONSES)[
        _categorical(rng, phase_probs(f.extraosseous_response, RESPONSES))
    ].astype(object)
    response[phase == TERMINAL_PD] = "PD"
    response[phase == BASELINE] = "baseline"
    lysis = phase_bernoulli(f.progressive_lysis, eq.progressive_lysis)
    sclerosis = phase_bernoulli(f.known_lesion_sclerosis, eq.known_lesion_sclerosis)
    deterioration = phase_bernoulli(f.clinical_deterioration)

    means = f.new_bone_lesion_count_extra_poisson_mean
    lam = np.select(
        [idx_name == "flare", idx_name == "acquired_progression"],
        [means.flare, means.acquired_progression],
        default=means.primary_progression,
    )
    count = np.where(is_index, 1 + rng.poisson(lam), 0)

    flare_morph = np.array([f.morphology.flare[m] for m in LESION_MORPHOLOGIES])
    prog_morph = np.array(
        [[f.morphology.progression[ca][m] for m in LESION_MORPHOLOGIES] for ca in c.CANCER_TYPES]
    )
    morph_probs = np.where(
        (idx_name == "flare")[:, None], flare_morph, prog_morph[state.cancer[pi]]
    )
    eq_morph = np.array([eq.morphology[m] for m in LESION_MORPHOLOGIES])
    morph_probs = np.where(equivocal[:, None], eq_morph, morph_probs)
    morphology = np.array(LESION_MORPHOLOGIES)[_categorical(rng, morph_probs)].astype(object)
    morphology[~is_index] = "none"

    is_pd = response == "PD"
    new_extra = is_pd & (rng.random(n) < f.new_extraosseous_lesion_given_pd.value)

    ratio_lo = np.zeros(n)
    ratio_hi = np.zeros(n)
    for resp, (lo, hi) in f.sld.ratio_by_response.items():
        ratio_lo[response == resp] = lo
        ratio_hi[response == resp] = hi
    sld0 = np.round(
        np.exp(
            np.log(f.sld.baseline_median_mm)
            + f.sld.baseline_sigma * rng.standard_normal(len(state.course))
        )
    )
    ratio = rng.uniform(ratio_lo, ratio_hi)
    ratio[phase == BASELINE] = 1.0
    sld = np.round(sld0[pi] * ratio, 1)
    sld[response == "NE"] = np.nan

    at_baseline = phase == BASELINE
    for arr in (lysis, sclerosis, deterioration, new_extra):
        arr[at_baseline] = False
    return {
        "_sld0": sld0,  # per patient, for confirmation scans
        c.EXTRAOSSEOUS_RESPONSE: response,
        c.NEW_EXTRAOSSEOUS_LESION: new_extra,
        c.SLD_MM: sld,
        c.NEW_BONE_LESIONS: count,
        c.NEW_LESION_MORPHOLOGY: morphology,
        c.PROGRESSIVE_LYSIS: lysis,
        c.KNOWN_LESION_SCLEROSIS: sclerosis,
        c.CLINICAL_DETERIORATION: deterioration,
    }


def alp_course_parameters(
    rng: np.random.Generator, state: PatientState, biology: Biology
) -> dict[str, np.ndarray]:
    """Per-patient random effects of the log-ALP course."""
    alp = biology.alp
    n = len(state.course)
    base_median = np.array([alp.median_baseline_u_l.values[ca] for ca in c.CANCER_TYPES])
    courses = [getattr(alp.course, name) for name in COURSES]
    s1_mean = np.array([x.s1_mean for x in courses])[state.course]
    s1_sd = np.array([x.s1_sd for x in courses])[state.course]
    s2_mean = np.array([x.s2_mean for x in courses])[state.course]
    s2_sd = np.array([x.s2_sd for x in courses])[state.course]
    p_bounce = np.where(
        state.course == FLARE, alp.bounce_probability.flare, alp.bounce_probability.other
    )
    bounce = rng.random(n) < p_bounce
    return {
        "b": np.log(base_median[state.cancer]) + alp.baseline_sigma.value * rng.standard_normal(n),
        "s1": s1_mean + s1_sd * rng.standard_normal(n),
        "s2": s2_mean + s2_sd * rng.standard_normal(n),
        "a": np.where(
            bounce,
            np.log1p(alp.bounce_rise.value) + alp.bounce_rise.sigma * rng.standard_normal(n),
            0.0,
        ),
        "r": alp.resistance_rise_per_month.mean
        + alp.resistance_rise_per_month.sd * rng.standard_normal(n),
    }


def bounce_shape(days: np.ndarray, biology: Biology) -> np.ndarray:
    """The transient early ALP rise h(t): 1 at the peak day, near 0 by week 8."""
    br = biology.alp.bounce_rise
    return np.exp(-((days - br.peak_day) ** 2) / (2.0 * br.width_days**2))


def alp_basis(days: np.ndarray, biology: Biology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time functions of the log-ALP course: early change g, late ramp, bounce h."""
    alp = biology.alp
    t = days / DAYS_PER_MONTH
    tau = alp.early_change_time_constant_months.value
    early = tau * (1.0 - np.exp(-t / tau))
    ramp = np.maximum(0.0, t - alp.late_rise_onset_months.value)
    return early, ramp, bounce_shape(days, biology)


def log_alp(
    days: np.ndarray,
    pi: np.ndarray,
    params: dict[str, np.ndarray],
    kink_day: np.ndarray,
    biology: Biology,
) -> np.ndarray:
    """Noise-free log ALP of patient ``pi`` on ``days`` since treatment start."""
    early, ramp, h = alp_basis(days, biology)
    rise = np.maximum(0.0, days - kink_day[pi]) / DAYS_PER_MONTH
    return (
        params["b"][pi]
        + params["s1"][pi] * early
        + params["s2"][pi] * ramp
        + params["a"][pi] * h
        + params["r"][pi] * rise
    )


def generate(
    rng: np.random.Generator,
    n_patients: int,
    site: SiteProfile,
    biology: Biology,
    id_prefix: str = "P",
    *,
    confirm_rng: np.random.Generator | None = None,
    confirmation: ConfirmationScans | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, PatientState, dict]:
    """Generate imaging and lab rows (without ALP joined) and the long lab table.

    Returns the timepoint rows (ALP column empty), the lab table in the site's units, the
    latent patient state and a dict with the exact ALP sample days/values for the oracle.
    With ``confirm_rng`` and ``confirmation``, lines that end at a progression index get a
    confirmation scan (:func:`_confirmation_rows`), drawn from ``confirm_rng`` only: every
    other row is the same as without them.
    """
    state, extra = draw_patients(rng, n_patients, site, biology, id_prefix)
    pi, ki, phase = _row_phases(state, extra["xpd"])
    findings = _imaging_findings(rng, state, pi, phase, biology)
    scan_day = state.scan_days[pi, ki]
    last_scan_day = state.scan_days[np.arange(n_patients), state.n_scans - 1]

    # lab-only visits between scans
    sched = site.schedule
    n_j = int(np.ceil(last_scan_day.max() / sched.lab_interval_days)) + 1
    lab_days = np.arange(1, n_j + 1)[None, :] * sched.lab_interval_days + rng.integers(
        -sched.lab_jitter_days, sched.lab_jitter_days + 1, (n_patients, n_j)
    )
    near_scan = np.zeros(lab_days.shape, dtype=bool)
    for k in range(state.scan_days.shape[1]):
        near_scan |= np.abs(lab_days - state.scan_days[:, [k]]) <= LAB_SCAN_EXCLUSION_DAYS
    lab_ok = (lab_days < last_scan_day[:, None]) & ~near_scan
    lpi, lj = np.nonzero(lab_ok)
    lab_day = lab_days[lpi, lj]

    # ALP samples: one per imaging row (up to a few days before it) and one per lab row
    params = alp_course_parameters(rng, state, biology)
    idx1_day = np.where(
        state.index1 > 0, state.scan_days[np.arange(n_patients), np.maximum(state.index1, 0)], 0
    )
    lead = biology.alp.resistance_rise_per_month.lead_months * DAYS_PER_MONTH
    kink = np.where(
        np.isfinite(extra["t_second"]), np.maximum(extra["t_second"] - lead, idx1_day + 1), np.inf
    )
    draw_offset = rng.integers(0, sched.lab_before_scan_max_days + 1, len(pi))
    sample_day = np.concatenate([scan_day - draw_offset, lab_day])
    sample_pi = np.concatenate([pi, lpi])
    noise = biology.alp.noise_sigma.value * rng.standard_normal(len(sample_pi))
    value_u_l = np.exp(log_alp(sample_day.astype(float), sample_pi, params, kink, biology) + noise)
    # keep every value in the contract's plausible range (clips far fewer than 0.01%)
    value_u_l = np.clip(value_u_l, 1.2 * c.ALP_PLAUSIBLE_RANGE[0], 0.95 * c.ALP_PLAUSIBLE_RANGE[1])
    observed = rng.random(len(sample_pi)) >= site.labs.missing_fraction

    unit_key = site.labs.unit.strip().lower().replace("µ", "u")
    factor = UNIT_FACTORS[unit_key]
    decimals = 0 if factor == 1.0 else 2
    reported = np.round(value_u_l / factor, decimals)
    start = state.start_date
    labs = pd.DataFrame(
        {
            c.PATIENT_ID: state.patient_id[sample_pi[observed]],
            "sample_date": (start[sample_pi] + sample_day.astype("timedelta64[D]"))[observed],
            "test": site.labs.test_name,
            "value": reported[observed],
            "unit": site.labs.unit,
        }
    ).sort_values([c.PATIENT_ID, "sample_date"], kind="stable", ignore_index=True)

    # the timepoint table: imaging rows then lab rows
    n_img, n_lab = len(pi), len(lpi)
    all_pi = np.concatenate([pi, lpi])
    days = np.concatenate([scan_day, lab_day])
    miss = site.missingness

    def with_missing(values: np.ndarray, frac: float) -> pd.Series:
        arr = pd.array(values, dtype="boolean") if values.dtype == bool else values
        out = pd.Series(arr).astype(object)
        out[rng.random(n_img) < frac] = None
        return out

    cols: dict[str, object] = {
        c.PATIENT_ID: state.patient_id[all_pi],
        c.TREATMENT_START_DATE: start[all_pi],
        c.ASSESSMENT_DATE: start[all_pi] + days.astype("timedelta64[D]"),
        c.ROW_TYPE: np.array(["imaging"] * n_img + ["lab"] * n_lab, dtype=object),
        c.CANCER_TYPE: np.array(c.CANCER_TYPES, dtype=object)[state.cancer[all_pi]],
        c.THERAPY_CLASS: np.array(c.THERAPY_CLASSES, dtype=object)[state.therapy[all_pi]],
    }
    lab_blank = pd.Series([None] * n_lab, dtype=object)

    def stack(img: object) -> pd.Series:
        return pd.concat([pd.Series(img, dtype=object), lab_blank], ignore_index=True)

    cols[c.EXTRAOSSEOUS_RESPONSE] = stack(findings[c.EXTRAOSSEOUS_RESPONSE])
    cols[c.NEW_EXTRAOSSEOUS_LESION] = stack(
        with_missing(findings[c.NEW_EXTRAOSSEOUS_LESION], miss.new_extraosseous_lesion)
    )
    sld = findings[c.SLD_MM].copy()
    sld[rng.random(n_img) < miss.sld_mm] = np.nan
    cols[c.SLD_MM] = np.concatenate([sld, np.full(n_lab, np.nan)])
    cols[c.NEW_BONE_LESIONS] = stack(findings[c.NEW_BONE_LESIONS])
    cols[c.NEW_LESION_MORPHOLOGY] = stack(findings[c.NEW_LESION_MORPHOLOGY])
    cols[c.PROGRESSIVE_LYSIS] = stack(
        with_missing(findings[c.PROGRESSIVE_LYSIS], miss.progressive_lysis)
    )
    cols[c.KNOWN_LESION_SCLEROSIS] = stack(
        with_missing(findings[c.KNOWN_LESION_SCLEROSIS], miss.known_lesion_sclerosis)
    )
    cols[c.ALP_U_L] = np.full(n_img + n_lab, np.nan)

    marrow_p = np.where(
        state.course == FLARE,
        biology.findings.baseline_marrow_involvement.flare,
        biology.findings.baseline_marrow_involvement.other,
    )
    marrow = pd.Series(rng.random(n_patients) < marrow_p, dtype=object)
    marrow[rng.random(n_patients) < miss.baseline_marrow_involvement] = None
    cols[c.BASELINE_MARROW_INVOLVEMENT] = marrow.to_numpy()[all_pi]
    cols[c.CLINICAL_DETERIORATION] = stack(
        with_missing(findings[c.CLINICAL_DETERIORATION], miss.clinical_deterioration)
    )

    # outcome on index rows: true course, then label noise
    true_flare = phase == INDEX1
    true_flare &= state.course[pi] == FLARE
    is_index = np.isin(phase, (INDEX1, INDEX2))
    flip = rng.random(n_img) < site.label_noise.value
    recorded_flare = true_flare ^ flip
    outcome = np.where(is_index, np.where(recorded_flare, "flare", "progression"), None)
    cols[c.OUTCOME] = stack(outcome)

    table = pd.DataFrame(cols)
    table[c.NEW_BONE_LESIONS] = pd.array(table[c.NEW_BONE_LESIONS], dtype="Int64")
    table[c.SLD_MM] = table[c.SLD_MM].astype(float)
    latent = {
        "row_patient": pi,
        "row_scan": ki,
        "row_phase": phase,
        "true_flare": true_flare,
        "is_index": is_index,
        "sample_patient": sample_pi[observed],
        "sample_day": sample_day[observed].astype(float),
        "sample_value_u_l": reported[observed] * factor,
        "params": params,
    }
    if confirm_rng is not None and confirmation is not None:
        table, labs, latent = _confirmation_rows(
            confirm_rng,
            confirmation,
            state,
            extra,
            site,
            biology,
            table=table,
            labs=labs,
            latent=latent,
            findings=findings,
            kink=kink,
            factor=factor,
            decimals=decimals,
        )
    return table, labs, state, latent


def _confirmation_rows(
    rng: np.random.Generator,
    conf: ConfirmationScans,
    state: PatientState,
    extra: dict[str, np.ndarray],
    site: SiteProfile,
    biology: Biology,
    *,
    table: pd.DataFrame,
    labs: pd.DataFrame,
    latent: dict,
    findings: dict[str, np.ndarray],
    kink: np.ndarray,
    factor: float,
    decimals: int,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Append a confirmation scan (and the lab visits before it) to progression lines.

    A line that ends at a progression index (acquired or primary progression, or the late
    progression after a flare) gets, with ``scan_probability``, one more imaging row at
    the site's next scheduled scan (interval plus jitter, clipped to ``delay_days``) unless
    that falls after the patient's follow-up end. Its findings show continued progression
    (``biology/confirmation.yaml``; the rest from the course's index rates). A
    confirmation scan with new bone lesions is an index row (the contract's definition):
    its outcome is progression, with the site's label noise. Lab visits on the patient's
    lab grid between the index and the confirmation scan are added, and ALP is sampled at
    them and before the scan from the patient's own ALP course. Every draw comes from
    ``rng``; the rows passed in are returned unchanged, in the same order.
    """
    f = biology.findings
    sched = site.schedule
    miss = site.missingness
    pi, ki = latent["row_patient"], latent["row_scan"]
    n_img = len(pi)
    n_pat = len(state.course)
    idx_course = np.where(state.index2 > 0, ACQUIRED, state.course)
    eligible = np.nonzero(
        (state.index2 > 0) | (np.isin(state.course, (ACQUIRED, PRIMARY)) & (state.index1 > 0))
    )[0]
    last_row = np.full(n_pat, -1)
    is_last = ki == state.n_scans[pi] - 1
    last_row[pi[is_last]] = np.nonzero(is_last)[0]
    idx_scan = state.n_scans[eligible] - 1
    idx_day = state.scan_days[eligible, idx_scan]
    jitter = rng.integers(-sched.scan_jitter_days, sched.scan_jitter_days + 1, len(eligible))
    gap = np.clip(
        sched.scan_interval_days + jitter, conf.delay_days.minimum, conf.delay_days.maximum
    )
    conf_day = idx_day + gap
    done = rng.random(len(eligible)) < conf.scan_probability.value
    keep = done & (conf_day <= extra["followup_days"][eligible])
    p = eligible[keep]
    day = conf_day[keep]
    prev_day = idx_day[keep]
    m = len(p)
    course_name = np.array(COURSES)[idx_course[p]]
    cancer = state.cancer[p]

    # findings of the confirmation scans
    index_resp = np.asarray(findings[c.EXTRAOSSEOUS_RESPONSE], dtype=object)[last_row[p]]
    resp_table = {
        k: np.array([f.extraosseous_response.index[k][r] for r in RESPONSES])
        for k in f.extraosseous_response.index
    }
    probs = np.array([resp_table[k] for k in course_name]).reshape(m, len(RESPONSES))
    response = (
        np.array(RESPONSES, dtype=object)[_categorical(rng, probs)]
        if m
        else np.array([], dtype=object)
    )
    if conf.extraosseous_response.pd_persists:
        response = np.where(index_resp == "PD", "PD", response).astype(object)
    is_pd = response == "PD"
    new_extra = is_pd & (rng.random(m) < f.new_extraosseous_lesion_given_pd.value)
    count = rng.poisson(conf.further_new_bone_lesions.poisson_mean, m)
    prog_morph = np.array(
        [[f.morphology.progression[ca][x] for x in LESION_MORPHOLOGIES] for ca in c.CANCER_TYPES]
    )
    morph = np.array(LESION_MORPHOLOGIES, dtype=object)[_categorical(rng, prog_morph[cancer])]
    morph = np.where(count > 0, morph, "none").astype(object)

    def index_bernoulli(block: PhaseBernoulli) -> np.ndarray:
        rate = np.array(
            [
                block.index_rate(c.CANCER_TYPES[ca], k)
                for ca, k in zip(cancer, course_name, strict=True)
            ]
        )
        return rng.random(m) < rate

    lysis = index_bernoulli(f.progressive_lysis)
    sclerosis = index_bernoulli(f.known_lesion_sclerosis)
    deterioration = index_bernoulli(f.clinical_deterioration)
    ratio_lo = np.zeros(m)
    ratio_hi = np.zeros(m)
    for resp, (lo, hi) in f.sld.ratio_by_response.items():
        ratio_lo[response == resp] = lo
        ratio_hi[response == resp] = hi
    sld = np.round(findings["_sld0"][p] * rng.uniform(ratio_lo, ratio_hi), 1)
    sld[(response == "NE") | (rng.random(m) < miss.sld_mm)] = np.nan

    def with_missing(values: np.ndarray, frac: float) -> pd.Series:
        out = pd.Series(pd.array(values, dtype="boolean")).astype(object)
        out[rng.random(m) < frac] = None
        return out

    flip = rng.random(m) < site.label_noise.value
    outcome = np.where(count > 0, np.where(flip, "flare", "progression"), None)

    # lab visits on the patient's lab grid between the index and the confirmation scan
    step = sched.lab_interval_days
    n_j = int(np.ceil(conf.delay_days.maximum / step)) + 2
    first_j = prev_day // step + 1
    grid = (first_j[:, None] + np.arange(n_j)[None, :]) * step + rng.integers(
        -sched.lab_jitter_days, sched.lab_jitter_days + 1, (m, n_j)
    )
    ok = (grid - prev_day[:, None] > LAB_SCAN_EXCLUSION_DAYS) & (
        day[:, None] - grid > LAB_SCAN_EXCLUSION_DAYS
    )
    lrow, lcol = np.nonzero(ok)
    lp = p[lrow]
    lab_day = grid[lrow, lcol]

    # ALP: one sample before the scan, one per lab visit, from the patient's course
    offset = rng.integers(0, sched.lab_before_scan_max_days + 1, m)
    s_day = np.concatenate([day - offset, lab_day]).astype(float)
    s_pi = np.concatenate([p, lp])
    noise = biology.alp.noise_sigma.value * rng.standard_normal(len(s_pi))
    value_u_l = np.exp(log_alp(s_day, s_pi, latent["params"], kink, biology) + noise)
    value_u_l = np.clip(value_u_l, 1.2 * c.ALP_PLAUSIBLE_RANGE[0], 0.95 * c.ALP_PLAUSIBLE_RANGE[1])
    observed = rng.random(len(s_pi)) >= site.labs.missing_fraction
    reported = np.round(value_u_l / factor, decimals)
    start = state.start_date
    new_labs = pd.DataFrame(
        {
            c.PATIENT_ID: state.patient_id[s_pi[observed]],
            "sample_date": (start[s_pi] + s_day.astype(int).astype("timedelta64[D]"))[observed],
            "test": site.labs.test_name,
            "value": reported[observed],
            "unit": site.labs.unit,
        }
    )
    labs = pd.concat([labs, new_labs], ignore_index=True).sort_values(
        [c.PATIENT_ID, "sample_date"], kind="stable", ignore_index=True
    )

    marrow = table.iloc[:n_img].groupby(pi)[c.BASELINE_MARROW_INVOLVEMENT].first()

    def rows(who: np.ndarray, days: np.ndarray, kind: str) -> dict[str, object]:
        return {
            c.PATIENT_ID: state.patient_id[who],
            c.TREATMENT_START_DATE: start[who],
            c.ASSESSMENT_DATE: start[who] + days.astype("timedelta64[D]"),
            c.ROW_TYPE: np.array([kind] * len(who), dtype=object),
            c.CANCER_TYPE: np.array(c.CANCER_TYPES, dtype=object)[state.cancer[who]],
            c.THERAPY_CLASS: np.array(c.THERAPY_CLASSES, dtype=object)[state.therapy[who]],
            c.BASELINE_MARROW_INVOLVEMENT: marrow.reindex(who).to_numpy(dtype=object),
        }

    img = pd.DataFrame(
        {
            **rows(p, day, "imaging"),
            c.EXTRAOSSEOUS_RESPONSE: response,
            c.NEW_EXTRAOSSEOUS_LESION: with_missing(new_extra, miss.new_extraosseous_lesion),
            c.SLD_MM: sld,
            c.NEW_BONE_LESIONS: count.astype(object),
            c.NEW_LESION_MORPHOLOGY: morph,
            c.PROGRESSIVE_LYSIS: with_missing(lysis, miss.progressive_lysis),
            c.KNOWN_LESION_SCLEROSIS: with_missing(sclerosis, miss.known_lesion_sclerosis),
            c.CLINICAL_DETERIORATION: with_missing(deterioration, miss.clinical_deterioration),
            c.OUTCOME: outcome,
        }
    )
    lab = pd.DataFrame(rows(lp, lab_day, "lab"))
    parts = [table.iloc[:n_img], img.reindex(columns=table.columns)]
    parts += [table.iloc[n_img:], lab.reindex(columns=table.columns)]
    out = pd.concat([x.astype(object) for x in parts], ignore_index=True)
    for col in table.columns:
        out[col] = (
            out[col].astype(table[col].dtype)
            if col not in (c.NEW_BONE_LESIONS,)
            else pd.array(out[col], dtype="Int64")
        )
    out[c.SLD_MM] = out[c.SLD_MM].astype(float)
    out[c.ALP_U_L] = np.nan

    latent = dict(latent)
    latent["row_patient"] = np.concatenate([pi, p])
    latent["row_scan"] = np.concatenate([ki, state.n_scans[p]])
    latent["row_phase"] = np.concatenate([latent["row_phase"], np.full(m, CONFIRM)])
    latent["true_flare"] = np.concatenate([latent["true_flare"], np.zeros(m, dtype=bool)])
    latent["is_index"] = np.concatenate([latent["is_index"], count > 0])
    latent["sample_patient"] = np.concatenate([latent["sample_patient"], s_pi[observed]])
    latent["sample_day"] = np.concatenate([latent["sample_day"], s_day[observed]])
    latent["sample_value_u_l"] = np.concatenate(
        [latent["sample_value_u_l"], reported[observed] * factor]
    )
    return out, labs, latent
