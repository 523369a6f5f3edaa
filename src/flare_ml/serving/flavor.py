"""The flare-ml MLflow flavor: log, load, requirements and signature of the served model.

Like an MLflow flavor module (``mlflow.xgboost``), this one module holds everything about
the model as MLflow stores it: :func:`log_model` logs the pyfunc model from code
(:mod:`flare_ml.serving.pyfunc_model`, never pickled) with the JSON bundle as artifact,
:func:`model_signature` and :func:`input_example` describe its wire format,
:func:`model_requirements` pins what it needs, and :func:`load_bundle` reads the bundle
back from a ``models:/`` or ``runs:/`` URI, an MLflow model folder or a bundle folder.
A registered version gets a description and tags read from its bundle
(:func:`model_description`, :func:`registration_tags`: training cohort, decision policy,
config digest, commit, version) and, on request, an alias such as ``champion``
(:func:`describe_registered_version`). :func:`configure_tracking` resolves the tracking
store (embedded ``sqlite:///mlflow.db`` by default). Batch scoring, Spark, training and
the CLI all load and log through here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
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

from flare_ml import __version__
from flare_ml.bundle import MANIFEST, OUTPUT_COLUMNS, FlareModelBundle
from flare_ml.cases import seed_case_timeline
from flare_ml.data import contract as c
from flare_ml.errors import FlareMLError
from flare_ml.serving.schema import WITH_REASONS_PARAM, to_wire_format, wire_type
from flare_ml.train_config import DEFAULT_TRACKING_URI

PYFUNC_CODE = Path(__file__).resolve().parent / "pyfunc_model.py"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: the model URI of the literature prior shipped in the package (flare_ml.prior.PRIOR_DIR)
PRIOR_MODEL = "prior"


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

    ``prior`` (:data:`PRIOR_MODEL`) is the literature prior shipped in the package; it
    needs no tracking store (a bundle folder of that name in the working directory wins).
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
    if model_uri == PRIOR_MODEL:
        from flare_ml.prior import load_prior

        return load_prior()
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


def log_model(
    bundle_dir: Path,
    registered_model_name: str | None,
    *,
    alias: str | None = None,
    config_digest: str | None = None,
) -> Any:
    """Log the pyfunc model (models-from-code + JSON bundle) and register it.

    The model is :mod:`flare_ml.serving.pyfunc_model` (stored as code, not pickled),
    the ``flare_ml`` package as ``code_paths`` (copied without ``__pycache__``), the
    bundle's JSON files as the ``bundle`` artifact, the explicit signature of
    :func:`flare_ml.serving.schema.model_signature`, the synthetic seed case as input
    example, and pinned pip requirements. Works inside or outside an active run. A
    registered version gets its description, tags and alias from
    :func:`describe_registered_version`.

    Parameters
    ----------
    bundle_dir : Path
        A folder written by :meth:`flare_ml.bundle.FlareModelBundle.save`.
    registered_model_name : str or None
        Register a new version of this model (``flare-classifier``); None skips it.
    alias : str, optional
        Point this alias of the registered model (e.g. ``champion``) at the new version.
    config_digest : str, optional
        Digest of the training config; default: the bundle's ``config_digest`` metadata.

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_uri``, ``registered_model_version`` and the rest.

    Examples
    --------
    >>> info = log_model(bundle_dir, "flare-classifier", alias="champion")  # doctest: +SKIP
    >>> mlflow.pyfunc.load_model("models:/flare-classifier@champion")  # doctest: +SKIP

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
        with quiet_artifact_downloads():  # MLflow reloads the model to check the example
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code / "serving" / PYFUNC_CODE.name),
                artifacts={"bundle": str(bundle)},
                code_paths=[str(code)],
                signature=model_signature(),
                input_example=input_example(),
                pip_requirements=model_requirements(),
                registered_model_name=registered_model_name,
            )
    version = getattr(info, "registered_model_version", None)
    if registered_model_name and version is not None:
        describe_registered_version(
            registered_model_name,
            str(version),
            FlareModelBundle.load(bundle_dir),
            alias=alias,
            config_digest=config_digest,
        )
    return info


#: what every registered model says about itself (set once, on its first version)
REGISTERED_MODEL_DESCRIPTION = (
    "flare-ml: P(flare) versus true progression at a scan with new bone lesions, with a "
    "decision (flare, progression or uncertain), a conformal prediction set and the top "
    "reasons. Every version is built from SIMULATED cohorts of the flare-ml simulator; not "
    "validated on patients and not for clinical use. Each version's description names its "
    "training cohort and decision policy; the tags name the commit and config digest."
)


def git_commit(path: str | os.PathLike[str] = PACKAGE_DIR) -> str:
    """The git commit of the source tree that holds ``path``, else ``"unknown"``.

    Only a package whose own files are tracked by git counts (an installed wheel in a
    virtual environment inside some repository does not), and a missing ``git`` or any
    git error gives ``"unknown"``, never an exception.

    Examples
    --------
    >>> git_commit(tempfile.gettempdir())
    'unknown'

    """
    folder = Path(path)
    git = ["git", "-C", str(folder)]
    try:
        tracked = subprocess.run(
            [*git, "ls-files", "--error-unmatch", "--", "."],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if tracked.returncode != 0:
            return "unknown"
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = head.stdout.strip()
    return sha if head.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else "unknown"


def _training_cohort(bundle: FlareModelBundle) -> tuple[str, str, dict[str, Any]]:
    """The training cohort's label (without "training: "), site and fingerprint counts."""
    meta = bundle.metadata
    label = str(meta.get("training_label") or "unknown cohort").removeprefix("training: ")
    site = re.search(r"simulated site (\S+)", label)
    counts = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    return label, site.group(1) if site else label, counts


def _policy_text(bundle: FlareModelBundle) -> str:
    """The decision policy in words, from the bundle's error budget and threshold."""
    if bundle.budget is None:
        return f"decision = flare when P(flare) >= {bundle.threshold:.3f}, else progression"
    return (
        f"{bundle.budget.describe()} (class-conditional conformal thresholds; holds on "
        f"patients like its calibration patients); decision = flare when P(flare) >= "
        f"{bundle.threshold:.3f}; 'uncertain' when the prediction set holds both outcomes"
    )


def model_description(bundle: FlareModelBundle) -> str:
    """The description of a registered version: cohort, counts, policy, simulated data.

    Parameters
    ----------
    bundle : FlareModelBundle
        The registered model's bundle (its metadata names the training cohort).

    Examples
    --------
    >>> from flare_ml.training import fit_bundle
    >>> from flare_ml.simulate import simulate_cohort
    >>> bundle = fit_bundle(simulate_cohort(200, seed=3).timepoints, n_candidates=1,
    ...                     outer_folds=None)
    >>> bundle.metadata.update({"training_label": "training: simulated site nordic "
    ...                         "(200 patients, seed 3)"})
    >>> text = model_description(bundle)
    >>> "simulated site nordic" in text and "not for clinical use" in text
    True

    """
    label, _, counts = _training_cohort(bundle)
    source = "simulated data (flare-ml simulator)" if "simulated" in label else "data"
    numbers = [
        f"{counts[key]} {name}"
        for key, name in (("n_patients", "patients"), ("n_index_rows", "index rows"))
        if key in counts and f"{counts[key]} {name}" not in label
    ]
    if "n_flare" in counts and "n_progression" in counts:
        numbers.append(
            f"{counts['n_flare']} flares and {counts['n_progression']} progressions as outcomes"
        )
    site = bundle.metadata.get("site_calibration")
    recalibrated = (
        f" Conformal thresholds recalibrated on {site.get('label', 'a site cohort')}."
        if isinstance(site, dict)
        else ""
    )
    return (
        "flare-ml flare-vs-progression classifier (calibrated XGBoost with class-conditional "
        f"conformal sets), flare-ml {__version__}. Trained on {source}: {label}"
        f"{', with ' + ', '.join(numbers) if numbers else ''}.{recalibrated} Decision policy: "
        f"{_policy_text(bundle)}. Built from simulated data; not validated on "
        "patients and not for clinical use."
    )


def registration_tags(bundle: FlareModelBundle, config_digest: str | None = None) -> dict[str, str]:
    """Tags of a registered version: commit, config digest, training cohort, version.

    ``config_digest`` defaults to the bundle's ``config_digest`` metadata, else
    ``"unknown"``; the commit comes from :func:`git_commit`.

    Examples
    --------
    >>> from flare_ml.training import fit_bundle
    >>> from flare_ml.simulate import simulate_cohort
    >>> bundle = fit_bundle(simulate_cohort(200, seed=3).timepoints, n_candidates=1,
    ...                     outer_folds=None)
    >>> tags = registration_tags(bundle, "abc")
    >>> tags["flare_ml.config_digest"], tags["flare_ml.version"] == __version__
    ('abc', True)

    """
    label, site, counts = _training_cohort(bundle)
    digest = config_digest or bundle.metadata.get("config_digest") or "unknown"
    tags = {
        "flare_ml.version": __version__,
        "flare_ml.git_commit": git_commit(),
        "flare_ml.config_digest": str(digest),
        "flare_ml.training_cohort": label,
        "flare_ml.training_site": site,
        "flare_ml.data": "synthetic" if "simulated" in label else "unknown",
        "flare_ml.clinical_use": "no",
    }
    for key in ("n_patients", "n_index_rows"):
        if key in counts:
            tags[f"flare_ml.training_{key.removeprefix('n_')}"] = str(counts[key])
    return tags


def describe_registered_version(
    name: str,
    version: str,
    bundle: FlareModelBundle,
    *,
    alias: str | None = None,
    config_digest: str | None = None,
) -> dict[str, str]:
    """Give a registered version its description and tags, and optionally an alias.

    The version gets :func:`model_description` and :func:`registration_tags`; the
    registered model gets the same tags (they follow its latest registration) and, when
    it has none yet, :data:`REGISTERED_MODEL_DESCRIPTION`. ``alias`` (e.g. ``champion``)
    is moved to this version, so ``models:/NAME@ALIAS`` loads it. Uses the current
    tracking URI. Returns the tags.

    Examples
    --------
    >>> describe_registered_version("flare-classifier", "3", bundle,
    ...                             alias="champion")  # doctest: +SKIP

    """
    client = mlflow.MlflowClient()
    tags = registration_tags(bundle, config_digest)
    client.update_model_version(name, version, description=model_description(bundle))
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_tag(name, key, value)
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=REGISTERED_MODEL_DESCRIPTION)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return tags


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
