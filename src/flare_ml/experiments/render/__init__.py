"""Rendering: computed experiment results as Markdown text.

Each kind's renderer (one module per kind) turns its
:class:`~flare_ml.experiments.outputs.KindResult` into a
:class:`~flare_ml.experiments.outputs.KindOutput` of string tables, notes and findings;
:mod:`~flare_ml.experiments.render.document` assembles the results file and
:mod:`~flare_ml.experiments.render.text` holds the shared formats and the one Markdown
table writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flare_ml.experiments.outputs import KindOutput, KindResult
from flare_ml.experiments.render import (
    ablations,
    coverage,
    headline,
    learning_curve,
    literature_cases,
    robustness,
    small_cohorts,
)

#: kind name -> renderer of that kind's result
RENDERERS: dict[str, Callable[[Any], KindOutput]] = {
    "headline": headline.render,
    "ablations": ablations.render,
    "learning_curve": learning_curve.render,
    "robustness": robustness.render,
    "literature_cases": literature_cases.render,
    "coverage": coverage.render,
    "small_cohorts": small_cohorts.render,
}


def render_result(kind: str, result: KindResult) -> KindOutput:
    """Render a kind's computed result into tables and findings.

    Examples
    --------
    >>> render_result("headline", result)  # doctest: +SKIP
    KindOutput(cohorts=[...], tables=[Table(title='Summary', ...), ...], ...)

    """
    return RENDERERS[kind](result)


__all__ = ["RENDERERS", "render_result"]
