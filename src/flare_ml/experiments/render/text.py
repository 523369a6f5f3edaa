"""Numbers as text and tables as Markdown: the formatting every renderer shares.

The one Markdown table writer (:func:`markdown_table`), number formats (``0.912``,
``0.900 [0.880, 0.920]``, ``0.890 ± 0.014``, ``41-100``), the scorers' names in tables,
the tuning settings in one phrase, paths as shown and the caveat at the top of every results file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.experiments.readout import mean_sd
from flare_ml.train_config import TrainConfig
from flare_ml.training import MODEL_NAME, ORACLE_NAME

#: scorers' names in tables
SCORER_LABELS: dict[str, str] = {
    MODEL_NAME: "XGBoost",
    "seed_criteria": "seed criteria",
    "pcwg3_window": "PCWG3 window",
    "alp_only": "ALP only",
    ORACLE_NAME: "oracle",
}
#: the caveat at the top of every results file
SYNTHETIC_NOTE = (
    "> **Synthetic cohorts, not for clinical use.** Every number below was computed on "
    "cohorts from flare-ml's own simulator and names the cohort it comes from."
)


def markdown_table(frame: pd.DataFrame) -> str:
    r"""A plain GitHub Markdown table (cells as given; ``|`` escaped).

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"a": ["1"], "b": ["x|y"]})))
    | a | b |
    |---|---|
    | 1 | x\|y |

    """

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(col) for col in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def fmt(value: float, digits: int = 3, sign: bool = False) -> str:
    """A number as text; ``-`` when missing.

    Examples
    --------
    >>> fmt(0.91234), fmt(-0.0004, sign=True), fmt(float("nan"))
    ('0.912', '-0.000', '-')

    """
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_ci(values: tuple[float, float, float], digits: int = 3, sign: bool = False) -> str:
    """``estimate [low, high]``.

    Examples
    --------
    >>> fmt_ci((0.9, 0.88, 0.92))
    '0.900 [0.880, 0.920]'
    >>> fmt_ci((0.02, -0.01, 0.05), sign=True)
    '+0.020 [-0.010, +0.050]'

    """
    est, low, high = values
    if not np.isfinite(est):
        return "-"
    if not (np.isfinite(low) and np.isfinite(high)):
        return fmt(est, digits, sign)
    return f"{fmt(est, digits, sign)} [{fmt(low, digits, sign)}, {fmt(high, digits, sign)}]"


def fmt_mean_sd(values: list[float] | np.ndarray, digits: int = 3, scale: float = 1.0) -> str:
    """``mean ± SD`` (just the mean with one value; ``-`` with none).

    Examples
    --------
    >>> fmt_mean_sd([0.88, 0.90])
    '0.890 ± 0.014'
    >>> fmt_mean_sd([0.031], 1, 100)
    '3.1'

    """
    mean, sd = mean_sd(values)
    if not np.isfinite(mean):
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return f"{text} ± {sd * scale:.{digits}f}" if np.isfinite(sd) else text


def pct(share: float) -> str:
    """A share as a whole percentage; ``-`` when missing.

    Examples
    --------
    >>> pct(0.666), pct(float("nan"))
    ('67%', '-')

    """
    return "-" if not np.isfinite(share) else f"{100 * share:.0f}%"


def pct_sd(values: list[float]) -> str:
    """Shares as ``mean ± SD`` in percent.

    Examples
    --------
    >>> pct_sd([0.1, 0.2])
    '15.0 ± 7.1%'

    """
    return fmt_mean_sd(values, 1, 100) + "%"


def span(values: list[float], digits: int, scale: float = 1.0, sign: bool = False) -> str:
    """``low to high`` of some values as printed, or one value when they print the same.

    Examples
    --------
    >>> span([0.41, 1.0], 0, 100), span([1.0, 0.9996], 0, 100), span([0.01, 0.05], 1, 100, True)
    ('41-100', '100', '+1.0 to +5.0')

    """
    spec = f"{'+' if sign else ''}.{digits}f"
    low, high = (format(scale * v, spec) for v in (min(values), max(values)))
    if low == high:
        return low
    return f"{low} to {high}" if sign else f"{low}-{high}"


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (POSIX separators).

    Examples
    --------
    >>> shown_path(Path.cwd() / "experiments" / "headline.yaml")
    'experiments/headline.yaml'

    """
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def tuning(train_config: TrainConfig) -> str:
    """The model's tuning settings in one phrase.

    Examples
    --------
    >>> tuning(TrainConfig())  # doctest: +ELLIPSIS
    'tuning: ... candidate parameter sets x ... patient-grouped inner folds, up to ... trees'

    """
    m = train_config.model
    return (
        f"tuning: {m.n_candidates} candidate parameter sets x {m.inner_folds} patient-grouped "
        f"inner folds, up to {m.n_estimators_max} trees"
    )


__all__ = [
    "SCORER_LABELS",
    "SYNTHETIC_NOTE",
    "fmt",
    "fmt_ci",
    "fmt_mean_sd",
    "markdown_table",
    "pct",
    "pct_sd",
    "shown_path",
    "span",
    "tuning",
]
