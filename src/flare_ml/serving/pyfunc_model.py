"""MLflow pyfunc model of flare-ml, logged with MLflow's models-from-code.

MLflow stores this file itself (not a pickled object) as the model's code; at load it
runs it, and :class:`FlareClassifierModel` reads the JSON bundle from the model's
artifacts. ``predict`` takes raw timepoint rows in the data contract and returns one row
per index assessment.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from flare_ml.bundle import FlareModelBundle

BUNDLE_ARTIFACT = "bundle"


class FlareClassifierModel(PythonModel):
    """Pyfunc wrapper: raw timepoint rows in, P(flare) per index assessment out."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the JSON bundle from the model's artifacts."""
        self.bundle = FlareModelBundle.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Score every index row of ``model_input`` (other rows are history only)."""
        return self.bundle.predict(model_input)


mlflow.models.set_model(FlareClassifierModel())
