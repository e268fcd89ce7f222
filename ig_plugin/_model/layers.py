"""Which layer the explainer attributes to, and how that is recorded and found again."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ig_plugin._model.keras import follow_path, is_layer, path_to


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
        The layer's name and class when it was chosen.
    positions
        The positions of the layers of ``path`` among their parents' sub-layers.
    config
        The layer's configuration without its name (:func:`layer_config`), or None.

    A layer found again on a loaded model must be the same layer (an index can point at
    another layer in a changed model): the same class and configuration, and the same name
    where the user gave one (Keras numbers automatic names from a process-wide counter, so a
    model built again from code has other ones).
    """

    layer: Any
    meta: int | str
    path: tuple[str, ...] = ()
    name: str | None = None
    class_name: str | None = None
    # Defaults, not factories: a choice pickled by an earlier release lacks these two, and
    # unpickling falls back to the class attributes.
    positions: tuple[int, ...] = ()
    config: dict | None = None


def _snake_cases(class_name: str) -> set[str]:
    """The automatic names Keras derives from a class name (Keras 3 and tf_keras differ a bit)."""
    words = re.sub(r"\W+", "", class_name)
    keras3 = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", words))
    legacy = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", words))
    names = {keras3.lower(), legacy.lower()}
    return names | {"private" + name for name in names if name.startswith("_")}


def is_automatic_name(name: str, class_name: str) -> bool:
    """Whether ``name`` is one Keras gives a layer of ``class_name`` (``dense``, ``dense_7``)."""
    base = re.sub(r"_\d+$", "", name)
    # Keras 3 names a Functional model "functional", Sequential "sequential".
    return base in _snake_cases(class_name) | {"functional", "sequential", "model"}


#: Configuration entries that do not change what a layer computes.
_NOT_IDENTIFYING = ("name", "trainable")


def layer_config(layer: Any) -> dict | None:
    """The layer's configuration without its name, as plain JSON values; None if it has none.

    Values JSON cannot hold are kept as their type's name, so that two equal configurations
    compare equal in any process.
    """
    try:
        config = layer.get_config()
    except Exception:  # custom layers without get_config raise NotImplementedError or worse
        return None
    if not isinstance(config, dict):
        return None
    plain = {key: value for key, value in config.items() if key not in _NOT_IDENTIFYING}
    try:
        text = json.dumps(plain, sort_keys=True, default=lambda value: f"<{type(value).__name__}>")
    except (TypeError, ValueError):
        return None
    loaded: dict = json.loads(text)
    return loaded


def _chosen(
    layer: Any, meta: int | str, path: tuple[str, ...] = (), positions: tuple[int, ...] = ()
) -> LayerChoice:
    return LayerChoice(
        layer, meta, path, layer.name, type(layer).__name__, positions, layer_config(layer)
    )


def _check_in_model(model: Any, layer: Any, given: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
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
        names, positions = _check_in_model(model, layer, "the layer object")
        top_level = [i for i, candidate in enumerate(model.layers) if candidate is layer]
        meta = top_level[0] if top_level else LayerState.NON_SERIALIZABLE.value
        return _chosen(layer, meta, names, positions)
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
    """The same choice on another model: through the callable, the index, or the path.

    With ``same_layer`` (right after loading) the layer found must also be the one chosen when
    the explainer was saved: see :class:`LayerChoice`.

    Raises
    ------
    ValueError
        ``model`` has no such layer, or (``same_layer``) the layer found is another one.
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
        found = follow_path(model, choice.path, choice.positions)
        if found is None:
            raise ValueError(
                f"The model has no layer at path {'/'.join(choice.path)!r} to attribute to."
            )
    if same_layer and choice.name is not None:
        _check_same_layer(choice, found)
    return _chosen(found, choice.meta, choice.path, choice.positions)


def _check_same_layer(choice: LayerChoice, found: Any) -> None:
    """Refuse ``found`` unless it is the layer ``choice`` was made of (see :class:`LayerChoice`)."""
    name, class_name = str(choice.name), str(choice.class_name)
    reasons = []
    if type(found).__name__ != class_name:
        reasons.append(f"a {type(found).__name__}, not a {class_name}")
    elif found.name != name and not is_automatic_name(name, class_name):
        reasons.append(f"named {found.name!r}, not {choice.name!r}")
    else:
        config = layer_config(found)
        if choice.config is not None and config is not None and config != choice.config:
            keys = sorted(
                key
                for key in {*config, *choice.config}
                if config.get(key) != choice.config.get(key)
            )
            reasons.append(
                "configured differently ("
                + "; ".join(
                    f"{key}: saved {choice.config.get(key)!r}, found {config.get(key)!r}"
                    for key in keys[:3]
                )
                + ")"
            )
    if reasons:
        raise ValueError(
            f"The explainer was saved for layer {name!r} ({class_name}), but on this model it "
            f"finds layer {found.name!r} ({type(found).__name__}), "
            f"{reasons[0]}: not the model it was saved with, or a changed one. Load it with the "
            "model it explains."
        )
