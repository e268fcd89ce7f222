"""ig_plugin: Integrated Gradients for TensorFlow/Keras models, as an alibi explainer."""

from ig_plugin._layers import LayerState
from ig_plugin._version import __version__
from ig_plugin.expected_gradients import ExpectedGradients
from ig_plugin.integrated_gradients import IntegratedGradients
from ig_plugin.noise_tunnel import NoiseTunnel

__all__ = ["ExpectedGradients", "IntegratedGradients", "LayerState", "NoiseTunnel", "__version__"]
