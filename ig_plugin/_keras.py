"""Recognising Keras objects and what a model declares, whichever Keras made them (Keras 3,
tf_keras, Keras 2).

Checks go per object against the Layer classes of every Keras already imported, never through
``tf.keras`` alone: with ``TF_USE_LEGACY_KERAS`` unset, ``tf.keras`` is Keras 3, yet a Hugging
Face model's layers are tf_keras layers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


def _layer_classes() -> tuple[type, ...]:
    classes = []
    # Only Kerases that are already imported can have made the object: no import is triggered.
    for module_name in ("keras", "tf_keras", "tensorflow.python.keras"):
        module = sys.modules.get(module_name)
        layer_class = getattr(getattr(module, "layers", None), "Layer", None)
        if isinstance(layer_class, type):
            classes.append(layer_class)
    return tuple(classes)


def is_layer(obj: Any) -> bool:
    """Whether ``obj`` is a Keras layer (a model is a layer too)."""
    return isinstance(obj, _layer_classes())


def sublayers(layer: Any) -> list[Any]:
    """The layers directly inside ``layer``: a model's ``layers``, or a custom layer's own."""
    found = getattr(layer, "layers", None)
    if found is None:
        found = getattr(layer, "_layers", None) or []
    return [child for child in found if is_layer(child)]


def walk_layers(root: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every layer below ``root``, depth first, with its path of names from ``root``."""
    seen: set[int] = set()
    stack: list[tuple[tuple[str, ...], Any]] = [((), root)]
    while stack:
        path, layer = stack.pop()
        for child in reversed(sublayers(layer)):
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = (*path, child.name)
            yield child_path, child
            stack.append((child_path, child))


def path_to(root: Any, target: Any) -> tuple[str, ...] | None:
    """The names leading from ``root`` to the layer object ``target``, or None if absent."""
    for path, layer in walk_layers(root):
        if layer is target:
            return path
    return None


def follow_path(root: Any, path: tuple[str, ...]) -> Any | None:
    """The layer reached from ``root`` by the names in ``path``, or None."""
    layer = root
    for name in path:
        layer = next((child for child in sublayers(layer) if child.name == name), None)
        if layer is None:
            return None
    return layer


@dataclass(frozen=True)
class DeclaredInput:
    """One input as a Functional or Sequential model declares it.

    Attributes
    ----------
    name
        The input tensor's name (the key to pass it by in a dict).
    shape
        Its shape without the batch axis, None where the model leaves a dimension open.
    dtype
        Its dtype as a numpy dtype, or None if numpy has no such dtype (e.g. strings).
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype | None


def _numpy_dtype(dtype: Any) -> np.dtype | None:
    try:
        return np.dtype(getattr(dtype, "name", dtype))
    except TypeError:
        return None


def declared_inputs(model: Any) -> list[DeclaredInput] | None:
    """The inputs a model declares (Keras 3, tf_keras, Keras 2), or None if it declares none.

    Subclassed models and Sequential models without an ``Input`` declare none.
    """
    try:
        tensors = getattr(model, "inputs", None)
    except Exception:  # some Keras versions raise on models that were never built
        return None
    if not tensors:
        return None
    # A model declared with a dict of inputs takes them by the dict's keys, which Keras keeps
    # (Keras 3: _inputs_struct; tf_keras and Keras 2: _nested_inputs) and flattens sorted.
    structs = (getattr(model, name, None) for name in ("_inputs_struct", "_nested_inputs"))
    struct = next((s for s in structs if isinstance(s, dict)), None)
    if struct is not None and len(struct) == len(tensors):
        names = [str(key) for key in sorted(struct)]
    else:
        names = [str(getattr(t, "name", "")) for t in tensors]
    return [
        DeclaredInput(
            name=name,
            shape=tuple(None if d is None else int(d) for d in list(t.shape)[1:]),
            dtype=_numpy_dtype(t.dtype),
        )
        for name, t in zip(names, tensors, strict=True)
    ]


def load_model(model_uri: str | os.PathLike) -> Any:
    """Load a saved Keras model, uncompiled (explaining needs no optimizer or loss), with the
    Keras that ``tf.keras`` is in this process.

    Keras 3 reads ``.keras`` and ``.h5`` files; tf_keras and Keras 2 read SavedModel folders too.

    Raises
    ------
    FileNotFoundError
        Nothing is at ``model_uri``.
    ValueError
        Keras cannot read it; the message holds Keras's reason.
    """
    import tensorflow as tf  # here: importing this module must not import TensorFlow

    path = os.fspath(model_uri)
    if not os.path.exists(path):
        raise FileNotFoundError(f"The model file {path!r} does not exist.")
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a file it cannot read
        raise ValueError(f"{path!r} could not be loaded as a Keras model: {error}") from None
