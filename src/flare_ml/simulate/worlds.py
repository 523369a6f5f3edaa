"""Randomised simulated worlds: random site profiles and random literature biology.

The literature prior (``flare-ml prior build``) is trained on many simulated sites that
differ on purpose, so that it has seen the variation a real site brings. A *world* is a
site profile (visit and lab schedules, case and therapy mix, ALP units and missingness,
label noise) and a disease biology drawn at random from the ranges in
``configs/prior/default.yaml`` (block ``worlds``). Each biology parameter is perturbed on a
scale that keeps it valid (log-odds for probabilities, log for positive quantities, a
Dirichlet around each distribution) with a spread that reflects the uncertainty of its
source; every range states its reason. The drawn profiles and biologies are validated by
the simulator's own schemas (:class:`~flare_ml.simulate.config.SiteProfile`,
:class:`~flare_ml.simulate.config.Biology`), and the same generator state gives the same
world. Everything drawn here is synthetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from flare_ml.config_io import CONFIG_ROOT, StrictModel, read_yaml, validate_config
from flare_ml.data import contract as c
from flare_ml.simulate.config import Biology, SiteProfile, load_biology, load_site

#: the prior's shipped configuration (the ``worlds`` block holds the ranges)
PRIOR_CONFIG_PATH = CONFIG_ROOT / "prior" / "default.yaml"

Reason = Annotated[str, Field(min_length=3)]


class UniformRange(StrictModel):
    """A value drawn uniformly from ``[low, high]``, with the reason for the range."""

    low: float
    high: float
    reason: Reason

    @model_validator(mode="after")
    def _ordered(self) -> UniformRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self

    def draw(self, rng: np.random.Generator) -> float:
        """One draw."""
        return float(rng.uniform(self.low, self.high))

    def draw_int(self, rng: np.random.Generator) -> int:
        """One integer draw from ``low..high`` (both included)."""
        return int(rng.integers(math.ceil(self.low), math.floor(self.high) + 1))


class Choices(StrictModel):
    """A value drawn uniformly from a list, with the reason for the list."""

    choices: Annotated[list[Any], Field(min_length=1)]
    reason: Reason

    def draw(self, rng: np.random.Generator) -> Any:
        """One draw."""
        return self.choices[int(rng.integers(len(self.choices)))]


class DirichletMix(StrictModel):
    """A distribution drawn from a Dirichlet with parameters ``alpha`` (by category)."""

    alpha: dict[str, Annotated[float, Field(gt=0)]]
    reason: Reason


class TherapyMixRange(StrictModel):
    """Per cancer type, a Dirichlet centred on the base site's therapy mix."""

    concentration: Annotated[float, Field(gt=0)]
    reason: Reason


class SiteRanges(StrictModel):
    """Ranges of every randomised property of a site profile."""

    base: str = "default"
    case_mix: DirichletMix
    therapy_mix: TherapyMixRange
    scan_interval_days: UniformRange
    scan_jitter_fraction: UniformRange
    lab_interval_days: Choices
    lab_jitter_fraction: UniformRange
    lab_before_scan_max_days: UniformRange
    followup_months_shortest: UniformRange
    followup_months_longest: UniformRange
    lab_test_name: Choices
    lab_unit: Choices
    lab_missing_fraction: UniformRange
    missingness: dict[str, UniformRange]
    label_noise: UniformRange

    @model_validator(mode="after")
    def _valid(self) -> SiteRanges:
        unknown = set(self.case_mix.alpha) - set(c.CANCER_TYPES)
        if unknown:
            raise ValueError(f"case_mix.alpha: unknown cancer types {sorted(unknown)}")
        if self.scan_jitter_fraction.high >= 0.5 or self.lab_jitter_fraction.high >= 0.5:
            raise ValueError("jitter fractions must stay below 0.5 of the interval")
        if self.label_noise.high >= 0.5 or self.label_noise.low < 0:
            raise ValueError("label_noise must stay within [0, 0.5)")
        for name, r in {
            "lab_missing_fraction": self.lab_missing_fraction,
            **self.missingness,
        }.items():
            if r.low < 0 or r.high > 1:
                raise ValueError(f"{name} must stay within [0, 1]")
        return self


class Perturbation(StrictModel):
    """How one group of biology parameters (a dotted path, ``*`` any key) is varied.

    ``logit``: ``expit(logit(p) + N(0, sd))`` (probabilities; 0 and 1 stay put);
    ``log``: ``x * exp(N(0, sd))`` (positive quantities); ``linear``: ``x + N(0, sd)``;
    ``dirichlet``: a distribution redrawn from ``Dirichlet(concentration * p)`` over its
    non-zero entries.
    """

    path: str
    scale: Literal["logit", "log", "linear", "dirichlet"]
    sd: Annotated[float, Field(ge=0)] | None = None
    concentration: Annotated[float, Field(gt=0)] | None = None
    reason: Reason

    @model_validator(mode="after")
    def _spread(self) -> Perturbation:
        if self.scale == "dirichlet" and self.concentration is None:
            raise ValueError(f"{self.path}: a dirichlet perturbation needs a concentration")
        if self.scale != "dirichlet" and self.sd is None:
            raise ValueError(f"{self.path}: a {self.scale} perturbation needs an sd")
        return self


class FixedParameter(StrictModel):
    """A biology parameter deliberately not varied, with the reason."""

    path: str
    reason: Reason


class BiologyRanges(StrictModel):
    """The perturbations of the literature biology (first matching rule wins)."""

    perturb: list[Perturbation]
    fixed: list[FixedParameter] = []


class WorldRanges(StrictModel):
    """Ranges of the randomised worlds (block ``worlds`` of the prior config).

    Examples
    --------
    >>> ranges = load_world_ranges()
    >>> ranges.site.label_noise.high < 0.5
    True

    """

    site: SiteRanges
    biology: BiologyRanges


def load_world_ranges(path: str | Path = PRIOR_CONFIG_PATH) -> WorldRanges:
    """Read the ``worlds`` block of a prior config (the shipped one by default).

    Examples
    --------
    >>> len(load_world_ranges().biology.perturb) > 10
    True

    """
    data = read_yaml(path)
    return validate_config(WorldRanges, data.get("worlds", {}), f"{path} (block worlds)")


def _normalised(values: dict[str, float]) -> dict[str, float]:
    """Shares that sum to 1 (no positive share below 1e-6; zeros stay zero)."""
    raw = {k: (max(float(v), 1e-6) if v > 0 else 0.0) for k, v in values.items()}
    total = sum(raw.values())
    out = {k: v / total for k, v in raw.items()}
    top = max(out, key=out.__getitem__)  # the largest share absorbs the rounding
    out[top] = 1.0 - sum(v for k, v in out.items() if k != top)
    return out


def _dirichlet(rng: np.random.Generator, centre: dict[str, float], k: float) -> dict[str, float]:
    """Redraw a distribution around ``centre``; zero entries stay zero, the sum is 1."""
    keys = [name for name, p in centre.items() if p > 0]
    drawn = rng.dirichlet([k * centre[name] for name in keys])
    out = dict.fromkeys(centre, 0.0)
    out.update({name: float(v) for name, v in zip(keys, drawn, strict=True)})
    return _normalised(out)


def random_site(
    rng: np.random.Generator, ranges: WorldRanges | None = None, name: str = "random"
) -> SiteProfile:
    """Draw a site profile from the ranges (the shipped prior config by default).

    Parameters
    ----------
    rng : numpy.random.Generator
        The random generator; the same state gives the same profile.
    ranges : WorldRanges, optional
        The ranges; by default those of ``configs/prior/default.yaml``.
    name : str, default "random"
        The profile's name (its first three letters prefix the simulated patient ids).

    Returns
    -------
    SiteProfile
        A valid profile (the simulator's schema checks it).

    Examples
    --------
    >>> site = random_site(np.random.default_rng(1), name="world-1")
    >>> site == random_site(np.random.default_rng(1), name="world-1")
    True
    >>> round(sum(site.case_mix.values.values()), 6)
    1.0

    """
    r = (ranges or load_world_ranges()).site
    base = load_site(r.base)
    drawn = rng.dirichlet(list(r.case_mix.alpha.values()))
    case_values = _normalised(dict(zip(r.case_mix.alpha, drawn.tolist(), strict=True)))
    therapy = {
        cancer: _dirichlet(rng, base.therapy_mix.values[cancer], r.therapy_mix.concentration)
        for cancer in case_values
    }
    scan = r.scan_interval_days.draw_int(rng)
    lab = int(r.lab_interval_days.draw(rng))
    shortest = r.followup_months_shortest.draw(rng)
    longest = max(shortest, r.followup_months_longest.draw(rng))
    source = "random draw from the ranges of configs/prior/default.yaml (worlds.site)"
    profile = {
        "name": name,
        "description": "Randomised site of the literature prior's simulated population.",
        "case_mix": {"source": source, "values": case_values},
        "therapy_mix": {"source": source, "values": therapy},
        "schedule": {
            "source": source,
            "scan_interval_days": scan,
            "scan_jitter_days": int(scan * r.scan_jitter_fraction.draw(rng)),
            "lab_interval_days": lab,
            "lab_jitter_days": int(lab * r.lab_jitter_fraction.draw(rng)),
            "lab_before_scan_max_days": r.lab_before_scan_max_days.draw_int(rng),
            "followup_months": (round(shortest, 2), round(longest, 2)),
        },
        "labs": {
            "test_name": r.lab_test_name.draw(rng),
            "unit": r.lab_unit.draw(rng),
            "missing_fraction": r.lab_missing_fraction.draw(rng),
        },
        "missingness": {
            "source": source,
            **{key: rng_range.draw(rng) for key, rng_range in r.missingness.items()},
        },
        "label_noise": {"source": source, "value": r.label_noise.draw(rng)},
    }
    return validate_config(SiteProfile, profile, f"random site {name}")


def matching_nodes(tree: Any, path: str) -> Iterator[tuple[dict[str, Any], str, str]]:
    """``(parent, key, dotted path)`` of every node of a nested mapping that ``path`` matches.

    ``*`` matches any key at its level.

    Examples
    --------
    >>> tree = {"a": {"x": 1.0, "y": 2.0}, "b": {"x": 3.0}}
    >>> [full for _, _, full in matching_nodes(tree, "*.x")]
    ['a.x', 'b.x']

    """
    parts = [p for p in path.split(".") if p]

    def walk(node: Any, i: int, prefix: str) -> Iterator[tuple[dict[str, Any], str, str]]:
        if not isinstance(node, dict):
            return
        keys = list(node) if parts[i] == "*" else [parts[i]] if parts[i] in node else []
        for key in keys:
            full = f"{prefix}.{key}" if prefix else str(key)
            if i == len(parts) - 1:
                yield node, key, full
            else:
                yield from walk(node[key], i + 1, full)

    yield from walk(tree, 0, "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _covered(path: str, done: dict[str, Any]) -> bool:
    """Whether ``path`` or a mapping above it is already in ``done``."""
    parts = path.split(".")
    return any(".".join(parts[:i]) in done for i in range(1, len(parts) + 1))


def perturbation_plan(
    ranges: WorldRanges | None = None, base: Biology | None = None
) -> dict[str, Perturbation | FixedParameter]:
    """Which rule varies (or fixes) each biology parameter, by dotted path.

    A rule takes every parameter its path matches that no earlier rule took: a number for
    ``logit``, ``log`` and ``linear``, a mapping of numbers (a distribution) for
    ``dirichlet``. ``fixed`` entries come first. A parameter missing from the plan would
    never vary (the tests require that none is missing).

    Examples
    --------
    >>> plan = perturbation_plan()
    >>> plan["timing_months.flare.median_by_cancer.breast"].sd
    0.092
    >>> plan["findings.morphology.flare"].scale
    'dirichlet'

    """
    r = (ranges or load_world_ranges()).biology
    tree = (base or load_biology()).model_dump(mode="python")
    plan: dict[str, Perturbation | FixedParameter] = {}
    for fixed in r.fixed:
        for _, _, full in matching_nodes(tree, fixed.path):
            plan[full] = fixed
    for rule in r.perturb:
        for parent, key, full in matching_nodes(tree, rule.path):
            value = parent[key]
            if _covered(full, plan):
                continue
            flat = isinstance(value, dict) and value and all(map(_is_number, value.values()))
            if (rule.scale == "dirichlet" and flat) or (
                rule.scale != "dirichlet" and _is_number(value)
            ):
                plan[full] = rule
    return plan


def numeric_leaves(tree: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every number in a nested mapping (lists and tuples are one leaf).

    Examples
    --------
    >>> sorted(numeric_leaves({"a": {"source": "x", "v": 1.0}, "b": [0, 1]}))
    ['a.v', 'b']

    """
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from numeric_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (int, float, list, tuple)) and not isinstance(tree, bool):
        yield prefix


def _perturb(value: float, rule: Perturbation, rng: np.random.Generator) -> float:
    assert rule.sd is not None
    eps = float(rng.normal(0.0, rule.sd))
    if rule.scale == "linear":
        return value + eps
    if rule.scale == "log":
        return value * math.exp(eps)
    if value <= 0.0 or value >= 1.0:  # logit: certain events stay certain
        return value
    logit = math.log(value / (1.0 - value)) + eps
    return 1.0 / (1.0 + math.exp(-logit))


def random_biology(
    rng: np.random.Generator, ranges: WorldRanges | None = None, base: Biology | None = None
) -> Biology:
    """Draw a disease biology by perturbing the literature biology within its ranges.

    Each parameter is varied by the first rule of ``ranges.biology.perturb`` whose path
    matches it (:func:`perturbation_plan`), independently of the others; parameters
    listed as ``fixed`` keep their value.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random generator; the same state gives the same biology.
    ranges : WorldRanges, optional
        The ranges; by default those of ``configs/prior/default.yaml``.
    base : Biology, optional
        The biology to perturb; by default ``configs/simulation/biology/literature.yaml``.

    Returns
    -------
    Biology
        A valid biology (the simulator's schema checks it).

    Examples
    --------
    >>> bio = random_biology(np.random.default_rng(3))
    >>> bio == random_biology(np.random.default_rng(3))
    True
    >>> 0 < bio.flare_probability_given_response.values["egfr_tki"] < 1
    True

    """
    base = base or load_biology()
    tree = base.model_dump(mode="python")
    for path, rule in perturbation_plan(ranges, base).items():
        if not isinstance(rule, Perturbation):
            continue
        *parents, key = path.split(".")
        parent = tree
        for name in parents:
            parent = parent[name]
        if rule.scale == "dirichlet":
            assert rule.concentration is not None
            parent[key] = _dirichlet(rng, parent[key], rule.concentration)
        else:
            parent[key] = _perturb(float(parent[key]), rule, rng)
    return validate_config(Biology, tree, "random biology")


def random_world(
    seed: int, ranges: WorldRanges | None = None, name: str | None = None
) -> tuple[SiteProfile, Biology]:
    """A site profile and a biology drawn from one seed (site first, then biology).

    Examples
    --------
    >>> site, bio = random_world(7)
    >>> site.name
    'world-7'
    >>> random_world(7) == (site, bio)
    True

    """
    ranges = ranges or load_world_ranges()
    rng = np.random.default_rng(seed)
    site = random_site(rng, ranges, name=name or f"world-{seed}")
    return site, random_biology(rng, ranges)


__all__ = [
    "PRIOR_CONFIG_PATH",
    "BiologyRanges",
    "Choices",
    "DirichletMix",
    "FixedParameter",
    "Perturbation",
    "SiteRanges",
    "UniformRange",
    "WorldRanges",
    "load_world_ranges",
    "matching_nodes",
    "numeric_leaves",
    "perturbation_plan",
    "random_biology",
    "random_site",
    "random_world",
]
