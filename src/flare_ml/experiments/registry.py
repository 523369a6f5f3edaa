"""The experiment registry: kind name -> the function that computes that kind.

Each kind module in :mod:`flare_ml.experiments.kinds` registers its computation with
:func:`register`; the runner looks kinds up with :func:`compute_for`. The registry sits
below the kinds (it imports only the shared types), so every kind can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flare_ml.errors import ConfigError
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import KindResult

Compute = Callable[[Context], KindResult]
C = TypeVar("C", bound=Compute)

#: kind name -> computation; filled by the kind modules as they are imported
REGISTRY: dict[str, Compute] = {}


def register(kind: str) -> Callable[[C], C]:
    """Register a kind's computation under its name (a decorator).

    Examples
    --------
    >>> @register("example_kind")
    ... def compute(ctx):
    ...     return KindResult([], [])
    >>> compute_for("example_kind") is compute
    True
    >>> del REGISTRY["example_kind"]

    """

    def add(compute: C) -> C:
        if kind in REGISTRY and REGISTRY[kind] is not compute:
            raise ValueError(f"experiment kind {kind!r} is registered twice")
        REGISTRY[kind] = compute
        return compute

    return add


def compute_for(kind: str) -> Compute:
    """The computation registered for ``kind``; a :class:`ConfigError` for unknown kinds.

    Examples
    --------
    >>> compute_for("sweep")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flare_ml.errors.ConfigError: unknown experiment kind 'sweep'; registered: ...

    """
    try:
        return REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise ConfigError(f"unknown experiment kind {kind!r}; registered: {known}") from None


__all__ = ["REGISTRY", "Compute", "compute_for", "register"]
