"""ig_plugin: Integrated Gradients for TensorFlow/Keras models, as an alibi explainer.

The public names are imported on first use (PEP 562): ``import ig_plugin`` alone, as the
``ig-plugin`` command does before parsing its arguments, does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ig_plugin._explainer.moved_modules import register
from ig_plugin._version import __version__

if TYPE_CHECKING:
    from ig_plugin._model.layers import LayerState
    from ig_plugin.blur_integrated_gradients import BlurIntegratedGradients
    from ig_plugin.expected_gradients import ExpectedGradients
    from ig_plugin.guided_integrated_gradients import GuidedIntegratedGradients
    from ig_plugin.integrated_gradients import IntegratedGradients
    from ig_plugin.noise_tunnel import NoiseTunnel
    from ig_plugin.xrai import XRAI

#: Public name -> the module that defines it.
_LAZY = {
    "BlurIntegratedGradients": "ig_plugin.blur_integrated_gradients",
    "ExpectedGradients": "ig_plugin.expected_gradients",
    "GuidedIntegratedGradients": "ig_plugin.guided_integrated_gradients",
    "IntegratedGradients": "ig_plugin.integrated_gradients",
    "LayerState": "ig_plugin._model.layers",
    "NoiseTunnel": "ig_plugin.noise_tunnel",
    "XRAI": "ig_plugin.xrai",
}

# Explainers saved by 0.1.0 name two private modules that have moved.
register()

__all__ = [
    "XRAI",
    "BlurIntegratedGradients",
    "ExpectedGradients",
    "GuidedIntegratedGradients",
    "IntegratedGradients",
    "LayerState",
    "NoiseTunnel",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ig_plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
