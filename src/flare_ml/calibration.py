"""Probability calibrators that can be saved as plain JSON.

A gradient-boosted model's scores are often over- or under-confident; flare-ml chooses
between no calibration, Platt's sigmoid and isotonic regression by cross-validation inside
the training data (see :mod:`flare_ml.models`). The calibrators here wrap scikit-learn's
``LogisticRegression`` and ``IsotonicRegression`` but keep only the few learned numbers, so
a served model stores them as JSON rather than as a pickled object.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

CalibrationMethod = Literal["none", "sigmoid", "isotonic"]
METHODS: tuple[CalibrationMethod, ...] = ("none", "sigmoid", "isotonic")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class ProbabilityCalibrator:
    """Map raw P(flare) scores to calibrated probabilities.

    Parameters
    ----------
    method : {"none", "sigmoid", "isotonic"}
        ``sigmoid`` fits Platt scaling on the logit of the score; ``isotonic`` a
        monotone step function; ``none`` returns the score unchanged.

    Attributes
    ----------
    params_ : dict
        The learned numbers (``a`` and ``b`` for sigmoid; ``x`` and ``y`` thresholds for
        isotonic), JSON-serialisable.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=500)
    >>> y = (rng.uniform(size=500) < p**2).astype(int)
    >>> cal = ProbabilityCalibrator("isotonic").fit(p, y)
    >>> restored = ProbabilityCalibrator.from_dict(cal.to_dict())
    >>> bool(np.allclose(cal.transform(p), restored.transform(p)))
    True

    """

    def __init__(self, method: CalibrationMethod = "none") -> None:
        if method not in METHODS:
            raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
        self.method = method

    def fit(self, scores: np.ndarray, y: np.ndarray) -> ProbabilityCalibrator:
        """Learn the mapping from raw scores to outcome frequencies (y: 1 = flare)."""
        scores = np.asarray(scores, dtype=float)
        y = np.asarray(y, dtype=int)
        if self.method == "sigmoid":
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(scores)[:, None], y)
            self.params_ = {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
        elif self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            iso.fit(scores, y)
            self.params_ = {
                "x": iso.X_thresholds_.tolist(),
                "y": iso.y_thresholds_.tolist(),
            }
        else:
            self.params_ = {}
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores."""
        scores = np.asarray(scores, dtype=float)
        if self.method == "sigmoid":
            z = self.params_["a"] * _logit(scores) + self.params_["b"]
            return 1.0 / (1.0 + np.exp(-z))
        if self.method == "isotonic":
            return np.interp(scores, self.params_["x"], self.params_["y"])
        return scores

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"method": self.method, "params": self.params_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ProbabilityCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output."""
        cal = cls(state["method"])
        cal.params_ = dict(state["params"])
        return cal
