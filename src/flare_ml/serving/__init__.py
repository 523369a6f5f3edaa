"""Serving flare-ml models: the MLflow pyfunc model, batch scoring and Spark.

All three load the same registered artifact, a :class:`~flare_ml.bundle.FlareModelBundle`
of JSON files wrapped in an MLflow pyfunc model logged from code, and score through it.
"""
