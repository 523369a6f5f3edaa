"""The results file: header, cohorts, a kind's rendered tables, computed findings.

The file carries no date, run id or timing, so that a rerun with the same seed and
software reproduces it byte for byte; the header names the command, the MLflow
experiment, the seed, a digest of everything configured and the software versions.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import xgboost

from flare_ml import __version__
from flare_ml.experiments.config import ExperimentConfig
from flare_ml.experiments.outputs import KindOutput
from flare_ml.experiments.render.text import SYNTHETIC_NOTE, markdown_table, shown_path
from flare_ml.train_config import DEFAULT_TRAIN_CONFIG

TITLES: dict[str, str] = {
    "headline": "Headline: model vs rules vs oracle",
    "ablations": "Ablations: drop one clinical signal at a time",
    "learning_curve": "Learning curve: training cohort size",
    "robustness": "Robustness: missing ALP, label noise, schedule and case-mix shift",
    "literature_cases": "Literature cases: the model's reading of published courses",
    "small_cohorts": "Small cohorts: prior, adapted prior and baselines at a site's sizes",
    "coverage": "Conformal coverage across sites: transported vs site-calibrated",
}


def software_versions() -> str:
    """Versions that decide the numbers (same versions + same seed = same file).

    Examples
    --------
    >>> software_versions().startswith("flare-ml ")
    True

    """
    return (
        f"flare-ml {__version__}, xgboost {xgboost.__version__}, scikit-learn "
        f"{sklearn.__version__}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"Python {platform.python_version()}"
    )


def render_markdown(
    name: str,
    config: ExperimentConfig,
    config_path: Path,
    digest: str,
    output: KindOutput,
) -> str:
    """The results file: header, cohorts, tables, computed findings. No date, no run id.

    Examples
    --------
    >>> from flare_ml.experiments.config import load_params
    >>> from flare_ml.experiments.outputs import Table
    >>> cfg = ExperimentConfig(kind="literature_cases", experiment_name="x", seed=1,
    ...                        params=load_params("literature_cases", {}))
    >>> out = KindOutput([("training", "simulated site default (20 patients, seed 1)")],
    ...                  [Table("T", pd.DataFrame({"a": ["1"]}))], [])
    >>> text = render_markdown("x", cfg, Path("x.yaml"), "0" * 64, out)
    >>> text.splitlines()[0]
    "# Literature cases: the model's reading of published courses (`x`)"

    """
    training = config.training
    train_source = (
        f"`{shown_path(Path(training.config))}`"
        if training.config
        else f"shipped `configs/train/{DEFAULT_TRAIN_CONFIG.name}`"
    )
    overrides = ", ".join(f"{k}={v}" for k, v in training.model.items()) or "none"
    lines = [
        f"# {TITLES[config.kind]} (`{name}`)",
        "",
        SYNTHETIC_NOTE,
        "",
    ]
    if config.description.strip():
        lines += [" ".join(config.description.split()), ""]
    header = pd.DataFrame(
        [
            ("command", f"`flare-ml experiment run {shown_path(config_path)}`"),
            ("kind", f"`{config.kind}`"),
            (
                "MLflow",
                f"experiment `{config.experiment_name}`: one parent run `{name}`, one nested "
                "run per condition (run ids and wall time are there, not here)",
            ),
            ("seed", str(config.seed)),
            (
                "config digest",
                f"`sha256:{digest[:16]}` (experiment, training config, sites, biology)",
            ),
            ("training config", f"{train_source}; model overrides: {overrides}"),
            (
                "confidence intervals",
                f"95%, patient-level bootstrap, {config.bootstrap_resamples} resamples "
                "(paired between scorers)"
                if config.bootstrap_resamples
                else "none (bootstrap_resamples: 0)",
            ),
            ("software", software_versions()),
            (
                "date",
                "none on purpose: rerunning the command with the same seed and software "
                "reproduces this file byte for byte",
            ),
        ],
        columns=["", "value"],
    )
    lines += [markdown_table(header), "", "## Cohorts", ""]
    lines += [f"- {role}: {label}" for role, label in output.cohorts]
    for table in output.tables:
        lines += ["", f"## {table.title}", "", markdown_table(table.frame)]
        if table.notes:
            lines += [""] + [f"{note}" for note in table.notes]
    if output.findings:
        lines += ["", "## Findings (computed from the tables above)", ""]
        lines += [f"- {finding}" for finding in output.findings]
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["TITLES", "render_markdown", "software_versions"]
