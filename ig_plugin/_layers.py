"""Which layer the explainer attributes to, and how that is recorded and found again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ig_plugin._keras import follow_path, is_layer, path_to


class LayerState(str, Enum):
    """The values of ``meta["params"]["layer"]`` that are not a layer index (as in alibi).

    Attributes
    ----------
    UNSPECIFIED
        No layer: attributions go to the model inputs.
    NON_SERIALIZABLE
        A layer object that is not in ``model.layers`` (e.g. nested in a sub-model).
    CALLABLE
        A callable ``model -> layer`` was given.
    """

    UNSPECIFIED = "unspecified"
    NON_SERIALIZABLE = "non-serializable"
    CALLABLE = "callable"


@dataclass(frozen=True)
class LayerChoice:
    """The resolved layer and what is needed to resolve it again on another model.

    Attributes
    ----------
    layer
        The layer object in the current model, or None for input attributions.
    meta
        ``meta["params"]["layer"]``: a :class:`LayerState` value or the index in ``model.layers``.
    path
        Names of the layers leading from the model to the layer (for nested layers).
    name, class_name
        The layer's name and class when it was chosen: a layer found again on a loaded model
        must have both (an index can point at another layer in a changed model).
    """

    layer: Any
    meta: int | str
    path: tuple[str, ...] = ()
    name: str | None = None
    class_name: str | None = None


def _chosen(layer: Any, meta: int | str, path: tuple[str, ...] = ()) -> LayerChoice:
    return LayerChoice(layer, meta, path, layer.name, type(layer).__name__)


def _check_in_model(model: Any, layer: Any, given: str) -> tuple[str, ...]:
    path = path_to(model, layer)
    if path is None:
        raise ValueError(
            f"`layer` must be a layer of the model being explained; {given} is not among the "
            f"model's layers or their sub-layers. Received: layer {layer.name!r}."
        )
    return path


def choose_layer(model: Any, layer: Any) -> LayerChoice:
    """Resolve the ``layer`` argument: None, a layer object, or a callable ``model -> layer``.

    Raises
    ------
    TypeError
        ``layer`` is neither a Keras layer nor a callable, or the callable returns no layer.
    ValueError
        The layer is not part of ``model``.
    """
    if layer is None:
        return LayerChoice(None, LayerState.UNSPECIFIED.value)
    if is_layer(layer):
        path = _check_in_model(model, layer, "the layer object")
        top_level = [i for i, candidate in enumerate(model.layers) if candidate is layer]
        meta = top_level[0] if top_level else LayerState.NON_SERIALIZABLE.value
        return _chosen(layer, meta, path)
    if callable(layer):
        return _chosen(_call_layer_fn(model, layer), LayerState.CALLABLE.value)
    raise TypeError(
        "`layer` must be None, a Keras layer or a callable `model -> layer`. "
        f"Received: {type(layer).__name__}"
    )


def _call_layer_fn(model: Any, layer_fn: Callable[[Any], Any]) -> Any:
    resolved = layer_fn(model)
    if not is_layer(resolved):
        raise TypeError(
            "`layer`, a callable, must return a Keras layer of the model. "
            f"Received: {type(resolved).__name__}"
        )
    _check_in_model(model, resolved, "the layer returned by the callable")
    return resolved


def find_layer_again(
    model: Any, choice: LayerChoice, layer_fn: Callable | None, same_layer: bool = False
) -> LayerChoice:
    """The same choice on another model: through the callable, the index, or the path of names.

    With ``same_layer`` (right after loading) the layer found must also have the name and class
    of the one chosen when the explainer was saved.

    Raises
    ------
    ValueError
        ``model`` has no such layer, or (``same_layer``) it has another name or class.
    """
    if choice.meta == LayerState.UNSPECIFIED.value:
        return choice
    if not isinstance(getattr(model, "layers", None), list):
        raise ValueError(
            "The explainer attributes to a layer, so the model must be a Keras model with "
            f"layers. Received: {type(model).__name__}."
        )
    if choice.meta == LayerState.CALLABLE.value and layer_fn is not None:
        found = _call_layer_fn(model, layer_fn)
    elif isinstance(choice.meta, int):
        if not -len(model.layers) <= choice.meta < len(model.layers):
            raise ValueError(
                f"The model has {len(model.layers)} layers, so it has no layer at index "
                f"{choice.meta} to attribute to."
            )
        found = model.layers[choice.meta]
    else:
        found = follow_path(model, choice.path)
        if found is None:
            raise ValueError(
                f"The model has no layer at path {'/'.join(choice.path)!r} to attribute to."
            )
    if same_layer and choice.name is not None:
        expected = (choice.name, choice.class_name)
        if (found.name, type(found).__name__) != expected:
            raise ValueError(
                f"The explainer was saved for layer {choice.name!r} ({choice.class_name}), but "
                f"on this model it finds layer {found.name!r} ({type(found).__name__}): not the "
                "model it was saved with, or a changed one. Load it with the model it explains."
            )
    return _chosen(found, choice.meta, choice.path)
