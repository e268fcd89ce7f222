"""ig_plugin: Integrated Gradients for TensorFlow/Keras models, as an alibi explainer."""

from ig_plugin._layers import LayerState
from ig_plugin._version import __version__
from ig_plugin.integrated_gradients import IntegratedGradients

__all__ = ["IntegratedGradients", "LayerState", "__version__"]
