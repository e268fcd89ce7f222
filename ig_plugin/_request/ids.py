"""Integer ids (token ids, categories) fed to the model unchanged: whole numbers within range.

Numpy only, run before any TensorFlow work. With a layer, integer inputs are not interpolated,
they are fed to the model as they are, so a value the model would silently change must be
refused: a fraction (Keras casts 1.7 to id 1) or an id outside the vocabulary of the attributed
embedding (Keras 3 wraps -3 around to ``input_dim - 3``; TensorFlow refuses ids past the end only
on some devices).
"""

from __future__ import annotations

import numpy as np

from ig_plugin._model.keras import Vocabulary


def _check_whole(values: np.ndarray, name: str, what: str) -> None:
    if values.dtype.kind == "f" and (values != np.round(values)).any():
        raise ValueError(
            f"`{name}` must hold whole numbers for {what} (ids are not interpolated, they are "
            f"fed to the model). Received: a value "
            f"{values[values != np.round(values)].ravel()[0]!r}."
        )


def cast_whole(values: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``values`` as a new array of the integer (or bool) ``dtype``; refuses fractions and
    values outside the dtype's range, which the cast would change."""
    _check_whole(values, name, f"the integer input of dtype {dtype}")
    low, high = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    if values.size and (values.min() < low or values.max() > high):
        raise ValueError(
            f"`{name}` does not fit the input's dtype {dtype}. Received: values from "
            f"{values.min()} to {values.max()}."
        )
    return values.astype(dtype)


def check_in_vocabulary(values: np.ndarray, name: str, vocabulary: Vocabulary) -> None:
    """Refuse fractions and ids outside ``0 .. vocabulary.size - 1``."""
    _check_whole(values, name, f"the ids of the layer {vocabulary.layer_name!r}")
    if not values.size:
        return
    low, high = values.min(), values.max()
    if low < 0 or high >= vocabulary.size:
        raise ValueError(
            f"`{name}` holds ids outside the vocabulary of the layer {vocabulary.layer_name!r} "
            f"(valid ids are 0 to {vocabulary.size - 1}). Received: values from {low!r} to "
            f"{high!r}."
        )


def as_ids(
    array: np.ndarray, name: str, dtype: np.dtype | None, vocabulary: Vocabulary | None
) -> np.ndarray:
    """``array`` checked as ids: floats for an integer ``dtype`` cast to it if they are whole
    numbers in its range, and every value within ``vocabulary`` if it applies. Arrays of
    other inputs pass unchanged."""
    if dtype is not None and dtype.kind in "iub" and array.dtype.kind == "f":
        array = cast_whole(array, dtype, name)
    if vocabulary is not None:
        check_in_vocabulary(array, name, vocabulary)
    return array
