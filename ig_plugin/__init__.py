"""ig_plugin: Integrated Gradients for TensorFlow/Keras models, as an alibi explainer.

The public names are imported on first use (PEP 562): ``import ig_plugin`` alone, as the
``ig-plugin`` command does before parsing its arguments, does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ig_plugin._version import __version__

if TYPE_CHECKING:
    from ig_plugin._layers import LayerState
    from ig_plugin.integrated_gradients import IntegratedGradients

#: Public name -> the module that defines it.
_LAZY = {
    "IntegratedGradients": "ig_plugin.integrated_gradients",
    "LayerState": "ig_plugin._layers",
}

__all__ = ["IntegratedGradients", "LayerState", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ig_plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
