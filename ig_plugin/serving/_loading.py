"""Loading what a model serves: its explainer, saved or built from the settings."""

from __future__ import annotations

from typing import Any

from ig_plugin._request.checks import check_scalar, is_int
from ig_plugin.integrated_gradients import IntegratedGradients
from ig_plugin.serving import _explainers
from ig_plugin.serving._settings import RuntimeSettings


def _layer_from_setting(model: Any, layer: Any) -> Any:
    """``init_parameters["layer"]``: a layer name or an index in ``model.layers``."""
    if layer is None:
        return None
    if isinstance(layer, str):
        return model.get_layer(layer)
    if is_int(layer):
        count = len(model.layers)
        return model.layers[check_scalar("init_parameters.layer", layer, least=-count, below=count)]
    raise TypeError(
        "`init_parameters.layer` must be a layer name (str) or an index in model.layers (int). "
        f"Received: {layer!r}."
    )


def load_explainer(settings: RuntimeSettings, model: Any) -> Any:
    """The saved explainer at ``settings.explainer_uri`` (any class the runtime serves), or a new
    IntegratedGradients from ``init_parameters``."""
    if settings.explainer_uri is not None:
        return _explainers.load_saved(settings.explainer_uri, model)
    arguments = dict(settings.init_parameters)
    arguments["layer"] = _layer_from_setting(model, arguments.get("layer"))
    return IntegratedGradients(model, **arguments)
