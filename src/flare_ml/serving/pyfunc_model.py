"""MLflow pyfunc model of flare-ml, logged with MLflow's models-from-code.

MLflow stores this file itself (not a pickled object) as the model's code and ships the
``flare_ml`` package beside it (``code_paths``); at load it runs this file, and
:class:`FlareClassifierModel` reads the JSON bundle from the model's ``bundle`` artifact.
``predict`` takes raw timepoint rows in the data contract, in the wire format of
:mod:`flare_ml.serving.schema` (ISO dates, text categories and flags, numbers as
doubles), validates them, and returns one row per index assessment (imaging with new
bone lesions): ``patient_id``, ``assessment_date`` (ISO text), ``p_flare``, ``decision``,
``prediction_set`` and ``reasons``. Other rows are history and produce no output row.
Rows that break the data contract raise an ``MlflowException`` with error code
``INVALID_PARAMETER_VALUE`` carrying the validation message, which MLflow's scoring
server answers with HTTP 400.
"""

from __future__ import annotations

import threading
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from flare_ml.bundle import FlareModelBundle
from flare_ml.errors import FlareMLError
from flare_ml.serving.schema import WITH_REASONS_PARAM, score_wire

BUNDLE_ARTIFACT = "bundle"


class FlareClassifierModel(PythonModel):
    """Pyfunc wrapper: raw timepoint rows in, P(flare) per index assessment out.

    Examples
    --------
    >>> import mlflow
    >>> model = mlflow.pyfunc.load_model("models:/flare-classifier/latest")  # doctest: +SKIP
    >>> model.predict(rows, params={"with_reasons": False})  # doctest: +SKIP

    """

    bundle: FlareModelBundle | None = None
    _turn: threading.Lock = threading.Lock()

    def load_context(self, context: Any) -> None:
        """Load the JSON bundle from the model's ``bundle`` artifact (nothing unpickled)."""
        self.bundle = FlareModelBundle.load(context.artifacts[BUNDLE_ARTIFACT])
        # Scoring is CPU-bound Python: requests that the server runs in parallel threads
        # only fight over the GIL, so they take turns (lower median latency, same output).
        self._turn = threading.Lock()

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score every index row of ``model_input`` (other rows are history only).

        Parameters
        ----------
        context : PythonModelContext
            Unused (the bundle is loaded in :meth:`load_context`).
        model_input : pandas.DataFrame, list of dict or dict of lists
            Timepoint rows of one or more patients, whole timelines (the features of an
            index row use the patient's earlier rows sent in the same request).
        params : dict, optional
            ``{"with_reasons": False}`` skips the reasons (faster).

        Returns
        -------
        pandas.DataFrame
            One row per index row; empty (with the output columns) when there is none.

        Raises
        ------
        mlflow.exceptions.MlflowException
            ``INVALID_PARAMETER_VALUE`` (HTTP 400) when the rows break the data
            contract, with the validation message (column, rule, offending rows).

        """
        if self.bundle is None:
            raise MlflowException("the flare-ml model bundle is not loaded")
        with_reasons = True if params is None else params.get(WITH_REASONS_PARAM, True)
        frame = model_input
        if not isinstance(frame, pd.DataFrame):
            try:
                frame = pd.DataFrame(model_input)
            except (TypeError, ValueError) as error:
                raise MlflowException(
                    f"cannot read the request as timepoint rows: {error}",
                    error_code=INVALID_PARAMETER_VALUE,
                ) from None
        try:
            with self._turn:
                return score_wire(self.bundle, frame, with_reasons=bool(with_reasons))
        except FlareMLError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None


mlflow.models.set_model(FlareClassifierModel())
