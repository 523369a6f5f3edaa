"""Serving flare-ml models: the MLflow pyfunc model, batch scoring and Spark.

All three score through one :class:`~flare_ml.bundle.FlareModelBundle` of JSON files, so
their answers are identical: :mod:`flare_ml.serving.pyfunc_model` is the MLflow model
logged from code (what ``mlflow models serve`` runs), :mod:`flare_ml.serving.schema` its
wire format and signature, :mod:`flare_ml.serving.batch` streams a cohort file in chunks
of whole patients (``flare-ml score``), and :mod:`flare_ml.spark` scores a Spark
DataFrame grouped by patient.
"""
