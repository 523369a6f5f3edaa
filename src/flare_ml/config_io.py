"""Load YAML configuration files into validated pydantic models.

Configuration is data: every tunable number of flare-ml lives in a YAML file under
``configs/``. This module finds those files (shipped with the package, or given by path),
parses them and validates them against a pydantic model, turning any problem into a
:class:`~flare_ml.errors.ConfigError` whose message names the file and the offending key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from flare_ml.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: the configuration folder shipped inside the package (package data, no link)
CONFIG_ROOT = Path(__file__).resolve().parent / "configs"


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    dict
        The parsed mapping.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable, not valid YAML or not a mapping.

    Examples
    --------
    >>> from flare_ml.config_io import CONFIG_ROOT, read_yaml
    >>> read_yaml(CONFIG_ROOT / "simulation" / "default.yaml")["name"]
    'default'

    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a YAML mapping at the top level")
    return data


class StrictModel(BaseModel):
    """Base of every configuration schema: unknown keys are errors, values are frozen.

    A misspelt key in a YAML file must not be silently ignored (it would leave a default
    in force that the user thinks they changed), and a validated configuration must not
    change after it has been digested into a run's record.

    Examples
    --------
    >>> class Site(StrictModel):
    ...     patients: int = 10
    >>> Site.model_validate({"patiens": 5})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Site
    patiens
      Extra inputs are not permitted ...

    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def format_validation_error(exc: ValidationError, source: str, prefix: tuple[str, ...] = ()) -> str:
    """Render a pydantic error as one line per problem, each naming the dotted key.

    ``prefix`` names where the validated mapping sits in its file (for example
    ``("cohorts", "0")``), so the key is given in full.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class C(BaseModel):
    ...     n: int
    >>> try:
    ...     C(n="x")
    ... except ValidationError as e:
    ...     print(format_validation_error(e, "c.yaml"))
    invalid configuration in c.yaml:
      - n: Input should be a valid integer, unable to parse string as an integer

    """
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        key = ".".join((*prefix, *(str(p) for p in err["loc"]))) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling)"
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


def validate_config(model: type[M], data: dict[str, Any], source: str) -> M:
    """Validate a mapping against ``model``; raise :class:`ConfigError` naming the key.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class C(BaseModel):
    ...     n: int
    >>> validate_config(C, {"n": 3}, "inline").n
    3

    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(model: type[M], path: str | Path) -> M:
    """Read and validate a YAML config file.

    Examples
    --------
    >>> from flare_ml.simulate.config import SiteProfile
    >>> load_config(SiteProfile, CONFIG_ROOT / "simulation" / "nordic.yaml").labs.unit
    'ukat/L'

    """
    return validate_config(model, read_yaml(path), str(path))
