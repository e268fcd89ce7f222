"""Checking the background of Expected Gradients, and matching it with each explain's X.

Numpy only, run before any TensorFlow work. The background is checked once, at construction,
against what the model declares (as X is by :mod:`ig_plugin._request.inputs`, with the same
per-array checks), and kept as a copy; each explain then checks that it fits X (same inputs,
same feature shapes) and gives it X's dtypes, refusing values the cast would change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ig_plugin._model.signature import ModelSignature
from ig_plugin._request.baselines import check_cast
from ig_plugin._request.ids import check_in_vocabulary
from ig_plugin._request.inputs import Inputs, checked_array, split_inputs


def normalise_background(background: Any, signature: ModelSignature, has_layer: bool) -> Inputs:
    """Check the background rows and return a copy of them as :class:`Inputs`.

    Parameters
    ----------
    background
        M rows like the rows of X: an array, or one array per input (list, tuple or dict).
    signature
        What the model declares (a model that declares no inputs gets the background's shapes
        checked against X at explain).
    has_layer
        Attributions go to a layer: integer rows are fed to the model unchanged.

    Raises
    ------
    TypeError
        Not an array or a structure of arrays, or arrays of a dtype that cannot be explained.
    ValueError
        No rows, NaN or infinity, shapes that do not fit the model's declared inputs, or inputs
        with different numbers of rows.
    """
    values, layout = split_inputs(background, signature, "background")
    count = len(values)
    names = layout.names("background", count)
    declared = signature.inputs
    if declared and count != len(declared):
        raise ValueError(
            f"The model has {len(declared)} input(s): `background` must hold one array per "
            f"input. Received: {count} array(s)."
        )
    # Copies: changing the caller's arrays later must not change the explainer.
    arrays = [
        np.array(
            checked_array(
                value,
                declared[position] if declared else None,
                has_layer,
                name,
                rows="a leading axis with at least one background row",
            )
        )
        for position, (value, name) in enumerate(zip(values, names, strict=True))
    ]
    rows = [array.shape[0] for array in arrays]
    if len(set(rows)) > 1:
        raise ValueError(
            f"Every array of `background` must have the same number of rows. Received: {rows} rows."
        )
    return Inputs(arrays=tuple(arrays), layout=layout)


def match_background(background: Inputs, inputs: Inputs) -> tuple[np.ndarray, ...]:
    """The background arrays in the order of X's inputs, with X's feature shapes and dtypes.

    Raises
    ------
    ValueError
        The background and X have different inputs or feature shapes, or a background value does
        not survive the cast to X's dtype (overflow, a fraction for integer ids) or is an id
        outside the attributed embedding's vocabulary.
    """
    arrays, keys = background.arrays, background.layout.keys
    if inputs.layout.kind == "dict" and background.layout.kind == "dict":
        if sorted(keys) != sorted(inputs.layout.keys):
            raise ValueError(
                f"`X` must have the keys of the background: {sorted(keys)}. "
                f"Received: keys {sorted(inputs.layout.keys)}."
            )
        arrays = tuple(arrays[keys.index(key)] for key in inputs.layout.keys)
    if len(arrays) != len(inputs.arrays):
        raise ValueError(
            f"`X` must have one array per array of the background ({len(arrays)}). "
            f"Received: {len(inputs.arrays)}."
        )
    matched = []
    for position, (x, rows, name) in enumerate(
        zip(inputs.arrays, arrays, inputs.names, strict=True)
    ):
        if x.shape[1:] != rows.shape[1:]:
            raise ValueError(
                f"`{name}` must have rows of the background's shape {rows.shape[1:]}. "
                f"Received: shape {x.shape}."
            )
        cast = check_cast(rows, x, "background")
        vocabulary = inputs.vocabulary(position)
        if vocabulary is not None:
            check_in_vocabulary(cast, "background", vocabulary)
        matched.append(cast)
    return tuple(matched)
