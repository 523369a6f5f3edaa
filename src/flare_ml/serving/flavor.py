"""The flare-ml MLflow flavor: log, load, requirements and signature of the served model.

Like an MLflow flavor module (``mlflow.xgboost``), this one module holds everything about
the model as MLflow stores it: :func:`log_model` logs the pyfunc model from code
(:mod:`flare_ml.serving.pyfunc_model`, never pickled) with the JSON bundle as artifact,
:func:`model_signature` and :func:`input_example` describe its wire format,
:func:`model_requirements` pins what it needs, and :func:`load_bundle` reads the bundle
back from a ``models:/`` or ``runs:/`` URI, an MLflow model folder or a bundle folder.
:func:`configure_tracking` resolves the tracking store (embedded ``sqlite:///mlflow.db``
by default). Batch scoring, Spark, training and the CLI all load and log through here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from flare_ml.bundle import MANIFEST, OUTPUT_COLUMNS, FlareModelBundle
from flare_ml.cases import seed_case_timeline
from flare_ml.data import contract as c
from flare_ml.errors import FlareMLError
from flare_ml.serving.schema import WITH_REASONS_PARAM, to_wire_format, wire_type
from flare_ml.train_config import DEFAULT_TRACKING_URI

PYFUNC_CODE = Path(__file__).resolve().parent / "pyfunc_model.py"
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def configure_tracking(uri: str | None = None) -> str:
    """Use ``uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///mlflow.db``."""
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(chosen)
    return chosen


@contextlib.contextmanager
def quiet_artifact_downloads() -> Iterator[None]:
    """Turn off MLflow's artifact download progress bars for the ``with`` block.

    MLflow prints a "Downloading artifacts" progress line per update when it fetches a
    model; this sets ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false`` for the block only and
    restores the environment afterwards. A value the user set is left alone.

    Examples
    --------
    >>> name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    >>> before = os.environ.pop(name, None)
    >>> with quiet_artifact_downloads():
    ...     os.environ[name]
    'false'
    >>> name in os.environ
    False
    >>> if before is not None:
    ...     os.environ[name] = before

    """
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _sqlite_path(store: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking store, or None for any other kind of store."""
    prefix = "sqlite:///"
    return Path(store[len(prefix) :]) if store.startswith(prefix) else None


def load_bundle(model_uri: str, tracking_uri: str | None = None) -> FlareModelBundle:
    """Load the JSON bundle behind a model URI, an MLflow model folder or a bundle folder.

    MLflow's artifact download progress is silenced while loading
    (:func:`quiet_artifact_downloads`).

    Raises
    ------
    FlareMLError
        When nothing loadable is found at ``model_uri``.

    """
    path = Path(model_uri)
    if (path / MANIFEST).exists():
        return FlareModelBundle.load(path)
    store = configure_tracking(tracking_uri)
    local_store = _sqlite_path(store)
    if local_store is not None and not local_store.exists():
        # MLflow would create an empty store here and then fail to find the model
        raise FlareMLError(
            f"cannot load model {model_uri!r}: there is no tracking store {store} "
            f"({local_store} does not exist). Run in the folder where `make demo` or "
            "`flare-ml train` ran, set MLFLOW_TRACKING_URI, or give a bundle folder such as "
            "outputs/latest/model"
        )
    try:
        with quiet_artifact_downloads():
            model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # MLflow raises many exception types for a bad URI
        raise FlareMLError(
            f"cannot load model {model_uri!r} from the tracking store {store}: "
            f"{str(exc).splitlines()[0]}. Run in the folder where `make demo` or `flare-ml "
            "train` ran (the default store is mlflow.db there), set MLFLOW_TRACKING_URI, or "
            "give a bundle folder such as outputs/latest/model"
        ) from None
    python_model = model.unwrap_python_model()
    bundle = getattr(python_model, "bundle", None)
    if not isinstance(bundle, FlareModelBundle):
        raise FlareMLError(f"{model_uri!r} is not a flare-ml model")
    return bundle


def input_schema() -> Any:
    """Build the served model's input schema: one ColSpec per contract column.

    Returns
    -------
    mlflow.types.Schema
        Columns in contract order; the required contract columns are required, the
        others (``row_type``, the flags, ``sld_mm``, ``alp_u_l``, ``outcome``) optional.

    Examples
    --------
    >>> schema = input_schema()
    >>> schema.required_input_names()[:3]
    ['patient_id', 'treatment_start_date', 'assessment_date']

    """
    return Schema(
        [
            ColSpec(wire_type(col), col, required=col in c.REQUIRED_COLUMNS)
            for col in c.CONTRACT_COLUMNS
        ]
    )


def output_schema() -> Any:
    """Build the served model's output schema (one row per index assessment).

    Examples
    --------
    >>> output_schema().input_names()
    ['patient_id', 'assessment_date', 'p_flare', 'decision', 'prediction_set', 'reasons']

    """
    return Schema(
        [ColSpec("double" if col == "p_flare" else "string", col) for col in OUTPUT_COLUMNS]
    )


def params_schema() -> Any:
    """Build the inference parameters: ``with_reasons`` (boolean, default True).

    Examples
    --------
    >>> params_schema().params[0].name
    'with_reasons'

    """
    return ParamSchema([ParamSpec(WITH_REASONS_PARAM, "boolean", True)])


def model_signature() -> Any:
    """Build the full MLflow signature of the served model (inputs, outputs, params).

    Examples
    --------
    >>> signature = model_signature()
    >>> signature.inputs.input_names()[0], signature.params.params[0].default
    ('patient_id', True)

    """
    return ModelSignature(inputs=input_schema(), outputs=output_schema(), params=params_schema())


def input_example() -> pd.DataFrame:
    """Return a synthetic input example: the literature seed case, never a training row.

    Examples
    --------
    >>> input_example()["row_type"].tolist()
    ['imaging', 'lab', 'lab', 'imaging', 'imaging', 'imaging']

    """
    wire = to_wire_format(seed_case_timeline().drop(columns=[c.OUTCOME]))
    # missing numbers as None (object columns) so that the stored JSON says null, not NaN
    for col in (*c.FLOAT_COLUMNS, *c.INT_COLUMNS):
        wire[col] = pd.Series(
            [None if pd.isna(v) else float(v) for v in wire[col]], index=wire.index, dtype=object
        )
    return wire


#: files and folders never shipped with the model's code
_CODE_IGNORE = ("__pycache__", "*.pyc", "*.pyo", "*.egg-info", ".mypy_cache", ".ruff_cache")


def _clean_copy(source: Path, target: Path) -> Path:
    """Copy a folder without caches or compiled files (so no pickled bytecode ships)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*_CODE_IGNORE))
    return target


def log_model(bundle_dir: Path, registered_model_name: str | None) -> Any:
    """Log the pyfunc model (models-from-code + JSON bundle) and register it.

    The model is :mod:`flare_ml.serving.pyfunc_model` (stored as code, not pickled),
    the ``flare_ml`` package as ``code_paths`` (copied without ``__pycache__``), the
    bundle's JSON files as the ``bundle`` artifact, the explicit signature of
    :func:`flare_ml.serving.schema.model_signature`, the synthetic seed case as input
    example, and pinned pip requirements. Works inside or outside an active run.

    Parameters
    ----------
    bundle_dir : Path
        A folder written by :meth:`flare_ml.bundle.FlareModelBundle.save`.
    registered_model_name : str or None
        Register a new version of this model (``flare-classifier``); None skips it.

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_uri``, ``registered_model_version`` and the rest.

    Examples
    --------
    >>> info = log_model(bundle_dir, "flare-classifier")  # doctest: +SKIP
    >>> mlflow.pyfunc.load_model(info.model_uri)  # doctest: +SKIP

    """
    bundle_dir = Path(bundle_dir)
    if not (bundle_dir / MANIFEST).exists():
        raise FileNotFoundError(f"{bundle_dir} is not a flare-ml model bundle (no {MANIFEST})")
    with tempfile.TemporaryDirectory(prefix="flare-ml-log-") as tmp:
        code = _clean_copy(PACKAGE_DIR, Path(tmp) / "code" / PACKAGE_DIR.name)
        bundle = Path(tmp) / "bundle"
        bundle.mkdir()
        for path in sorted(bundle_dir.glob("*.json")):
            (bundle / path.name).write_bytes(path.read_bytes())
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code / "serving" / PYFUNC_CODE.name),
            artifacts={"bundle": str(bundle)},
            code_paths=[str(code)],
            signature=model_signature(),
            input_example=input_example(),
            pip_requirements=model_requirements(),
            registered_model_name=registered_model_name,
        )


def model_requirements() -> list[str]:
    """List the pinned requirements of the served model (the package's runtime dependencies).

    Examples
    --------
    >>> any(r.startswith("xgboost-cpu==") for r in model_requirements())
    True

    """
    names = [
        "mlflow",
        "numpy",
        "pandas",
        "pyarrow",
        "scikit-learn",
        "xgboost-cpu",
        "scipy",
        "pandera",
        "pydantic",
        "pyyaml",
        "rich",
        "typer",
    ]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # an optional distribution that is absent stays unpinned
            pins.append(name)
    return pins


def resolve_bundle(model: FlareModelBundle | str | os.PathLike[str]) -> FlareModelBundle:
    """Return the bundle itself, or load it from a model URI, MLflow model or bundle folder.

    Examples
    --------
    >>> resolve_bundle("models:/flare-classifier/latest")  # doctest: +SKIP

    """
    if isinstance(model, FlareModelBundle):
        return model
    return load_bundle(str(model))
