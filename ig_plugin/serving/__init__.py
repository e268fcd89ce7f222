"""Serving explanations with MLServer: ``pip install "ig_plugin[serve]"``.

``IntegratedGradientsRuntime`` is an MLServer runtime (an ``mlserver.MLModel``): name it as the
``implementation`` in a model-settings.json and MLServer answers V2 inference requests with
attributions. ``LocalServer`` runs ``mlserver start`` on 127.0.0.1 for examples and tests. See
the "Deploying" page of the documentation.

The names are imported on first use (PEP 562): ``LocalServer`` alone, and the process that
starts MLServer for it, do not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ig_plugin.serving._local import LocalServer
    from ig_plugin.serving._runtime import IntegratedGradientsRuntime

#: Public name -> the module that defines it.
_LAZY = {
    "IntegratedGradientsRuntime": "ig_plugin.serving._runtime",
    "LocalServer": "ig_plugin.serving._local",
}

__all__ = ["IntegratedGradientsRuntime", "LocalServer"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ig_plugin.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
