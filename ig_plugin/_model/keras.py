"""Recognising Keras layers and finding them in a model, whichever Keras made them (Keras 3,
tf_keras, Keras 2).

Checks go per object against the Layer classes of every Keras already imported, never through
``tf.keras`` alone: with ``TF_USE_LEGACY_KERAS`` unset, ``tf.keras`` is Keras 3, yet a Hugging
Face model's layers are tf_keras layers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


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
    """The layers directly inside ``layer``: a model's ``layers``, or a custom layer's own.

    A custom layer lists its sub-layers differently in each Keras: Keras 3 keeps them in
    ``_layers``; tf_keras and Keras 2 only through ``_flatten_layers`` (a Hugging Face model's
    ``embeddings`` is such a layer), which Keras 3 has too.
    """
    found = getattr(layer, "layers", None)
    if found is None:
        flatten = getattr(layer, "_flatten_layers", None)
        if callable(flatten):
            found = list(flatten(include_self=False, recursive=False))
        else:
            found = getattr(layer, "_layers", None) or []
    return [child for child in found if is_layer(child)]


#: A layer's place below a model: the names of the layers leading to it, and their positions
#: among their parents' sub-layers (positions find it again where names are automatic).
LayerPath = tuple[tuple[str, ...], tuple[int, ...]]


def walk_layers(root: Any) -> Iterator[tuple[LayerPath, Any]]:
    """Every layer below ``root``, depth first, with its path from ``root``."""
    seen: set[int] = set()
    stack: list[tuple[LayerPath, Any]] = [(((), ()), root)]
    while stack:
        (names, positions), layer = stack.pop()
        children = list(enumerate(sublayers(layer)))
        for position, child in reversed(children):
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = ((*names, child.name), (*positions, position))
            yield child_path, child
            stack.append((child_path, child))


def path_to(root: Any, target: Any) -> LayerPath | None:
    """The path from ``root`` to the layer object ``target``, or None if absent."""
    for path, layer in walk_layers(root):
        if layer is target:
            return path
    return None


def follow_path(root: Any, names: tuple[str, ...], positions: tuple[int, ...] = ()) -> Any | None:
    """The layer reached from ``root`` by the layer names ``names``, or None.

    Where a name is not found and ``positions`` are known, the layer at the same position is
    taken: a model built again from code gets new automatic names (``dense_7`` becomes
    ``dense_10``), so the caller checks what it found (:func:`ig_plugin._layers.find_layer_again`).
    """
    layer = root
    for depth, name in enumerate(names):
        children = sublayers(layer)
        layer = next((child for child in children if child.name == name), None)
        if layer is None and depth < len(positions) and positions[depth] < len(children):
            layer = children[positions[depth]]
        if layer is None:
            return None
    return layer


@dataclass(frozen=True)
class Vocabulary:
    """The ids an embedding takes: ``0`` to ``size - 1``.

    Attributes
    ----------
    size
        The number of ids (the embedding's ``input_dim``).
    layer_name
        The embedding's name, for messages.
    position
        The model input whose ids reach the embedding, or None where the model does not say
        (subclassed models): then the model's only input, or its only integer input.
    """

    size: int
    layer_name: str
    position: int | None = None

    def covers(self, position: int, n_inputs: int, integer_inputs: list[int]) -> bool:
        """Whether the ids of input ``position`` (of ``n_inputs``, of which ``integer_inputs``
        hold integers) are the embedding's."""
        if self.position is not None:
            return position == self.position
        return n_inputs == 1 or integer_inputs == [position]


#: Attributes in which an embedding says how many ids it takes: Keras' ``Embedding``
#: (``input_dim``), KerasHub's token embeddings (``vocabulary_size``), Hugging Face's
#: (``vocab_size``).
_VOCABULARY_ATTRIBUTES = ("input_dim", "vocabulary_size", "vocab_size")


def vocabulary_of(model: Any, layer: Any) -> Vocabulary | None:
    """The ids ``layer`` takes, if it is an embedding that says, and which input feeds it.

    In a Functional model the input is the one whose tensor the layer takes; a layer fed by
    something else (a lookup, an offset) has no vocabulary for the model's inputs. Elsewhere
    (subclassed models) the model does not say which input it is.
    """
    sizes = (getattr(layer, name, None) for name in _VOCABULARY_ATTRIBUTES)
    size = next((s for s in sizes if isinstance(s, int) and not isinstance(s, bool)), None)
    if size is None or size < 1:
        return None
    try:
        tensors = list(getattr(model, "inputs", None) or [])
        fed = layer.input if tensors else None
    except Exception:  # never called on symbolic inputs (subclassed models), or shared
        tensors, fed = [], None
    if not tensors or fed is None:
        return Vocabulary(size, str(layer.name))
    position = next((i for i, tensor in enumerate(tensors) if tensor is fed), None)
    return None if position is None else Vocabulary(size, str(layer.name), position)
