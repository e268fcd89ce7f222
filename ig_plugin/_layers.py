"""How the explainer records which layer it attributes to."""

from __future__ import annotations

from enum import Enum


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
