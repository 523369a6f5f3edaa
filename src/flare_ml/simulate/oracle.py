"""The Bayes-optimal P(flare) of each simulated index row: the ceiling for any model.

The simulator knows its own densities, so for each index row it can apply Bayes' rule to
everything a model could observe up to that date. Given the context (cancer type, therapy
class, site), the three courses that produce a first index row (flare, acquired
progression, primary progression) each have a prior weight, a probability that the event
falls in the interval between the previous scan and this one (the event-time distribution
integrated over the visit interval), densities for the findings of each earlier follow-up
scan and of the index scan, a marrow-involvement probability, and a Gaussian mixture
density for the observed log-ALP values (random intercept, slopes and early bounce are
linear in the random effects, so the sampled vector is multivariate normal given the
bounce indicator). Findings whose density does not depend on the course (sum of diameters
and new extraosseous lesions given the RECIST category; missingness; visit jitter; follow-up
length) cancel and are left out. Every index row after a patient's first (the late
progression after a flare, or a confirmation scan with further new lesions) is progression
in this story, so its P(flare) is 0. Label noise then mixes the two:
P(recorded flare) = e + (1 - 2e) P.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import norm, poisson

from flare_ml.data import contract as c
from flare_ml.simulate.config import COURSES, RESPONSES, Biology, PhaseBernoulli, SiteProfile
from flare_ml.simulate.generator import (
    ACQUIRED,
    DAYS_PER_MONTH,
    FLARE,
    INDEX1,
    PRE,
    PRIMARY,
    PatientState,
    alp_basis,
    flare_median_table,
    therapy_table,
)

ORACLE_COURSES = (FLARE, ACQUIRED, PRIMARY)
_NAMES = [COURSES[k] for k in ORACLE_COURSES]
_GROUP = {FLARE: "responder", ACQUIRED: "responder", PRIMARY: "non_responder"}


def _log(p: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


def _bernoulli_loglik(observed: pd.Series, p: float | np.ndarray) -> np.ndarray:
    """Log P(observed) for a Bernoulli finding; 0 where the value is missing (MCAR)."""
    obs = observed.to_numpy(dtype=object)
    is_true = np.array([v is True or v is np.True_ for v in obs])
    is_false = np.array([v is False or v is np.False_ for v in obs])
    return np.where(is_true, _log(p), np.where(is_false, _log(1.0 - p), 0.0))


def _index_rates(block: PhaseBernoulli, course: str, cancer_rows: np.ndarray) -> np.ndarray:
    """Per-row index rate of a Bernoulli finding, cancer-specific rates applied."""
    rates = np.array([block.index_rate(ca, course) for ca in c.CANCER_TYPES])
    return rates[cancer_rows]


def _log_cdf_interval(
    lo_day: np.ndarray, hi_day: np.ndarray, median_months: np.ndarray, sigma: float
) -> np.ndarray:
    mu = np.log(np.asarray(median_months) * DAYS_PER_MONTH)
    with np.errstate(divide="ignore"):
        f_hi = norm.cdf((np.log(hi_day) - mu) / sigma)
        f_lo = np.where(lo_day > 0, norm.cdf((np.log(np.maximum(lo_day, 1e-9)) - mu) / sigma), 0.0)
    return _log(np.maximum(f_hi - f_lo, 0.0))


def _alp_loglik(
    patients: np.ndarray, latent: dict, state: PatientState, idx1_day: np.ndarray, biology: Biology
) -> np.ndarray:
    """(n_patients_with_index, 3) log density of the ALP samples up to the index scan."""
    alp = biology.alp
    out = np.zeros((len(patients), len(ORACLE_COURSES)))
    pos = np.full(len(state.course), -1)
    pos[patients] = np.arange(len(patients))
    sp, sd, sv = latent["sample_patient"], latent["sample_day"], latent["sample_value_u_l"]
    keep = (pos[sp] >= 0) & (sd <= idx1_day[sp])
    sp, sd, x = sp[keep], sd[keep], np.log(sv[keep])
    order = np.lexsort((sd, sp))
    sp, sd, x = sp[order], sd[order], x[order]
    counts = np.bincount(pos[sp], minlength=len(patients))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    base = np.array([alp.median_baseline_u_l.values[ca] for ca in c.CANCER_TYPES])
    mu_a = np.log1p(alp.bounce_rise.value)
    var_a = alp.bounce_rise.sigma**2
    var_b = alp.baseline_sigma.value**2
    var_e = alp.noise_sigma.value**2
    for n in np.unique(counts[counts > 0]):
        rows = np.nonzero(counts == n)[0]
        take = starts[rows][:, None] + np.arange(n)[None, :]
        days, xs = sd[take], x[take]
        early, ramp, h = alp_basis(days, biology)
        mb = np.log(base[state.cancer[patients[rows]]])[:, None]
        eye = np.eye(n)[None]
        for j, k in enumerate(ORACLE_COURSES):
            cp = getattr(alp.course, COURSES[k])
            mean0 = mb + cp.s1_mean * early + cp.s2_mean * ramp
            cov0 = (
                var_b
                + cp.s1_sd**2 * early[:, :, None] * early[:, None, :]
                + cp.s2_sd**2 * ramp[:, :, None] * ramp[:, None, :]
                + var_e * eye
            )
            p_b = alp.bounce_probability.flare if k == FLARE else alp.bounce_probability.other
            comps = []
            for bounce, weight in ((False, 1.0 - p_b), (True, p_b)):
                mean = mean0 + (mu_a * h if bounce else 0.0)
                cov = cov0 + (var_a * h[:, :, None] * h[:, None, :] if bounce else 0.0)
                chol = np.linalg.cholesky(cov)
                z = np.linalg.solve(chol, (xs - mean)[:, :, None])[:, :, 0]
                logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
                ll = -0.5 * ((z**2).sum(axis=1) + logdet + n * np.log(2 * np.pi))
                comps.append(_log(weight) + ll)
            out[rows, j] = np.logaddexp(comps[0], comps[1])
    return out


def compute_oracle(
    imaging: pd.DataFrame, latent: dict, state: PatientState, biology: Biology, site: SiteProfile
) -> pd.DataFrame:
    """Bayes-optimal P(flare) for every index row of a freshly generated cohort.

    Parameters
    ----------
    imaging : DataFrame
        The imaging rows as generated (same order as ``latent["row_patient"]``), with the
        findings as observed (after missingness).
    latent : dict
        Row phases and ALP samples returned by :func:`flare_ml.simulate.generator.generate`.
    state : PatientState
        The per-patient draws.
    biology, site : Biology, SiteProfile
        The parameters the cohort was drawn from.

    Returns
    -------
    DataFrame
        One row per index row: ``patient_id``, ``assessment_date``, ``p_flare_oracle``
        (P(recorded outcome is flare) given everything observable), ``p_flare_true_oracle``
        (P(true flare) before label noise), ``true_outcome`` and ``course``.

    """
    f = biology.findings
    pi, ki, phase = latent["row_patient"], latent["row_scan"], latent["row_phase"]
    n_pat = len(state.course)
    has_index = state.index1 > 0
    patients = np.nonzero(has_index)[0]
    pos = np.full(n_pat, -1)
    pos[patients] = np.arange(len(patients))
    ll = np.zeros((len(patients), len(ORACLE_COURSES)))

    # prior weights of the three courses given context
    ca, th = state.cancer[patients], state.therapy[patients]
    p_r = therapy_table(biology, "response_probability")[ca, th]
    p_f = therapy_table(biology, "flare_probability_given_response")[ca, th]
    p_acq = biology.acquired_bone_progression_probability.value
    p_prim = biology.primary_bone_progression_probability.value
    ll += _log(np.stack([p_r * p_f, p_r * (1 - p_f) * p_acq, (1 - p_r) * p_prim], axis=1))

    # event time integrated over the interval (previous scan, index scan]
    rows_p = np.arange(n_pat)[patients]
    hi = state.scan_days[rows_p, state.index1[patients]].astype(float)
    lo = state.scan_days[rows_p, state.index1[patients] - 1].astype(float)
    tm = biology.timing_months
    ll[:, 0] += _log_cdf_interval(lo, hi, flare_median_table(biology)[ca, th], tm.flare.sigma)
    ll[:, 1] += _log_cdf_interval(
        lo, hi, np.full(len(lo), tm.acquired_progression.median), tm.acquired_progression.sigma
    )
    ll[:, 2] += _log_cdf_interval(
        lo, hi, np.full(len(lo), tm.primary_progression.median), tm.primary_progression.sigma
    )

    # findings of earlier follow-up scans and of the index scan
    in_scope = (pos[pi] >= 0) & (
        ((phase == PRE) & (ki > 0) & (ki < state.index1[pi])) | (phase == INDEX1)
    )
    rows = np.nonzero(in_scope)[0]
    owner = pos[pi[rows]]
    at_index = phase[rows] == INDEX1
    obs = imaging.iloc[rows]
    resp = obs[c.EXTRAOSSEOUS_RESPONSE].to_numpy(dtype=object)
    resp_code = np.searchsorted(np.array(RESPONSES), resp, sorter=np.argsort(RESPONSES))
    resp_code = np.argsort(RESPONSES)[resp_code]
    morph = obs[c.NEW_LESION_MORPHOLOGY].to_numpy(dtype=object)
    count = obs[c.NEW_BONE_LESIONS].to_numpy(dtype=float)
    cancer_rows = state.cancer[pi[rows]]
    means = f.new_bone_lesion_count_extra_poisson_mean

    bone = (
        (c.PROGRESSIVE_LYSIS, f.progressive_lysis),
        (c.KNOWN_LESION_SCLEROSIS, f.known_lesion_sclerosis),
    )
    # the bone findings of an index scan present equivocally (one shared distribution,
    # whatever the course) with probability q; response and deterioration never do
    eq = f.equivocal_presentation
    equivocal_ll = _log(np.array([eq.morphology.get(m, 0.0) for m in morph]))
    for col, _ in bone:
        equivocal_ll = equivocal_ll + _bernoulli_loglik(obs[col], getattr(eq, col))
    prog_morph = [f.morphology.progression[cancer] for cancer in c.CANCER_TYPES]
    for j, k in enumerate(ORACLE_COURSES):
        name, group = COURSES[k], _GROUP[k]
        resp_pre = np.array([f.extraosseous_response.pre[group][r] for r in RESPONSES])
        resp_idx = np.array([f.extraosseous_response.index[name][r] for r in RESPONSES])
        det = f.clinical_deterioration
        pre_ll = _log(resp_pre[resp_code]) + _bernoulli_loglik(
            obs[c.CLINICAL_DETERIORATION], det.pre[group]
        )
        index_ll = _log(resp_idx[resp_code]) + _bernoulli_loglik(
            obs[c.CLINICAL_DETERIORATION], _index_rates(det, name, cancer_rows)
        )
        if k == FLARE:
            typical_ll = _log(np.array([f.morphology.flare.get(m, 0.0) for m in morph]))
        else:
            typical_ll = _log(
                np.array(
                    [prog_morph[cc].get(m, 0.0) for cc, m in zip(cancer_rows, morph, strict=True)]
                )
            )
        for col, block in bone:
            pre_ll = pre_ll + _bernoulli_loglik(obs[col], block.pre[group])
            typical_ll = typical_ll + _bernoulli_loglik(
                obs[col], _index_rates(block, name, cancer_rows)
            )
        presentation_ll = np.logaddexp(
            _log(1.0 - eq.probability) + typical_ll, _log(eq.probability) + equivocal_ll
        )
        count_ll = poisson.logpmf(np.nan_to_num(count) - 1, getattr(means, name))
        contrib = np.where(at_index, index_ll + presentation_ll + count_ll, pre_ll)
        ll[:, j] += np.bincount(owner, weights=contrib, minlength=len(patients))

    # marrow involvement (patient level, MCAR missing)
    marrow = imaging.groupby(latent["row_patient"])[c.BASELINE_MARROW_INVOLVEMENT].first()
    marrow_obs = marrow.reindex(patients)
    m = f.baseline_marrow_involvement
    ll[:, 0] += _bernoulli_loglik(marrow_obs, m.flare)
    for j in (1, 2):
        ll[:, j] += _bernoulli_loglik(marrow_obs, m.other)

    idx1_day = np.where(
        has_index, state.scan_days[np.arange(n_pat), np.maximum(state.index1, 0)], -1
    )
    ll += _alp_loglik(patients, latent, state, idx1_day, biology)

    post = np.exp(ll - logsumexp(ll, axis=1, keepdims=True))
    p_true_first = post[:, 0]
    eps = site.label_noise.value

    # assemble one row per index row (first, second, and confirmation scans with new
    # lesions); every index row after the first is progression in this story: P = 0
    idx_rows = np.nonzero(latent["is_index"])[0]
    first = phase[idx_rows] == INDEX1
    p_true = np.where(first, p_true_first[pos[pi[idx_rows]]], 0.0)
    out = pd.DataFrame(
        {
            c.PATIENT_ID: imaging[c.PATIENT_ID].to_numpy()[idx_rows],
            c.ASSESSMENT_DATE: imaging[c.ASSESSMENT_DATE].to_numpy()[idx_rows],
            "p_flare_oracle": eps + (1.0 - 2.0 * eps) * p_true,
            "p_flare_true_oracle": p_true,
            "true_outcome": np.where(latent["true_flare"][idx_rows], "flare", "progression"),
            "course": np.array(COURSES)[state.course[pi[idx_rows]]],
        }
    )
    return out.sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE], ignore_index=True)
