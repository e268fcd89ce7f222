"""Loading what a model serves: the Keras model, its explainer, and the model's tensor signature."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from ig_plugin._model.loading import load_model
from ig_plugin.integrated_gradients import IntegratedGradients
from ig_plugin.serving import _explainers
from ig_plugin.serving._settings import RuntimeSettings


@dataclass(frozen=True)
class TensorSpec:
    """One tensor the model declares: its name, numpy dtype and shape without the batch axis.

    ``shape`` holds None where the model leaves a dimension open.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    @property
    def fully_known(self) -> bool:
        return all(dimension is not None for dimension in self.shape)

    @property
    def known_shape(self) -> tuple[int, ...]:
        """``shape``, for a tensor whose dimensions are all known.

        Raises
        ------
        ValueError
            A dimension is open.
        """
        if not self.fully_known:
            raise ValueError(f"Input {self.name!r} has open dimensions: {self.shape}.")
        return tuple(int(dimension) for dimension in self.shape if dimension is not None)


@dataclass(frozen=True)
class ModelSignature:
    """The model's declared inputs and, for a model with one output tensor, that output.

    Both are empty or None for a subclassed model, which declares nothing.
    """

    inputs: tuple[TensorSpec, ...]
    output: TensorSpec | None


def _name_of(tensor: Any, position: int) -> str:
    # The InputLayer's name ("pixels", "input_layer_1"): the name a V2 request uses. Keras 3,
    # tf_keras and Keras 2 all record it in the tensor's history.
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) or getattr(history, "layer", None)
    if layer is None and isinstance(history, tuple) and history:
        layer = history[0]
    name = getattr(layer, "name", None) or getattr(tensor, "name", None) or f"input_{position}"
    return str(name).split(":")[0]


def _spec(tensor: Any, position: int) -> TensorSpec:
    return TensorSpec(
        name=_name_of(tensor, position),
        dtype=np.dtype(tf.as_dtype(tensor.dtype).as_numpy_dtype),
        shape=tuple(tensor.shape)[1:],
    )


def model_signature(model: Any) -> ModelSignature:
    """What ``model`` declares about its inputs and output (nothing, if it is subclassed)."""
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    return ModelSignature(
        inputs=tuple(_spec(tensor, i) for i, tensor in enumerate(inputs)),
        output=_spec(outputs[0], 0) if len(outputs) == 1 else None,
    )


def load_keras_model(path: str) -> Any:
    """The Keras model saved at ``path`` (``extra.model_uri``), uncompiled.

    Raises
    ------
    ValueError
        Keras cannot read the file; the message holds the path and the reason.
    """
    # Keras 3 answers "File not found" for a .keras file that is not a zip archive (a corrupt or
    # truncated one): say what it is instead.
    if path.endswith(".keras") and os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} could not be loaded as a Keras model: a .keras file is a zip archive, and "
            f"this one ({os.path.getsize(path)} bytes) is not: it is corrupt, truncated, or a "
            "file of another format."
        )
    return load_model(path)


def _layer_from_setting(model: Any, layer: Any) -> Any:
    """``init_parameters["layer"]``: a layer name or an index in ``model.layers``."""
    if layer is None:
        return None
    if isinstance(layer, str):
        return model.get_layer(layer)
    if isinstance(layer, int) and not isinstance(layer, bool):
        if not -len(model.layers) <= layer < len(model.layers):
            raise ValueError(
                f"`init_parameters.layer` is {layer}, but the model has {len(model.layers)} layers."
            )
        return model.layers[layer]
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
