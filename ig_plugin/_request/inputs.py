"""Checking and normalising X: its structure, dtypes and shapes, against what the model declares.

Everything here is numpy and runs before any TensorFlow work, so that bad input fails fast with a
message that names the argument. X is normalised once into a tuple of arrays (one per model input)
and a :class:`Layout` that packs per-input values back the way the model takes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Union

import numpy as np

from ig_plugin._model.keras import Vocabulary
from ig_plugin._model.signature import ModelSignature, TensorSpec
from ig_plugin._request.checks import describe
from ig_plugin._request.ids import as_ids

#: The signature of a model that declares nothing: X's shapes and dtypes are not checked.
UNDECLARED = ModelSignature()

ArrayOrList = Union[
    np.ndarray, "list[np.ndarray]", "tuple[np.ndarray, ...]", "dict[str, np.ndarray]"
]

LAYER_HINT = (
    "Integer inputs (token ids, categories) cannot be interpolated between a baseline and x; "
    "attribute to a layer instead, e.g. layer=lambda model: model.layers[1] for the embedding."
)

#: What X's arrays may hold, for messages.
ACCEPTED_DTYPES = (
    "float16, float32 or float64; integers too where the model declares a float input, or "
    "with a layer"
)


class Layout(NamedTuple):
    """How the caller gave per-input values (one value, a list, or a dict by name), and how they
    are handed to the model.

    A NamedTuple of plain values, so that compiled functions taking it as an argument trace once
    per layout, not once per call.
    """

    kind: str  # "single", "list" or "dict"
    keys: tuple[str, ...] = ()
    #: With a dict: the model takes a dict too (declared with one, or declaring nothing). A model
    #: declared with a list of inputs gets a list in its order (its inputs' names, which the keys
    #: are, need not be the names Keras matches a dict against).
    dict_for_model: bool = True

    def pack(self, values: Sequence[Any]) -> Any:
        """Arrange one value per input the way the caller gave them."""
        if self.kind == "single":
            return values[0]
        if self.kind == "dict":
            return dict(zip(self.keys, values, strict=True))
        return list(values)

    def pack_for_model(self, values: Sequence[Any]) -> Any:
        """Arrange one value per input the way the model takes them."""
        if self.kind == "dict" and not self.dict_for_model:
            return list(values)
        return self.pack(values)

    def names(self, argument: str, count: int) -> tuple[str, ...]:
        """How to name each of ``count`` inputs of ``argument`` in messages: ``X``, ``X[0]``
        or ``X['name']``."""
        if self.kind == "single":
            return (argument,)
        if self.kind == "dict":
            return tuple(f"{argument}[{key!r}]" for key in self.keys)
        return tuple(f"{argument}[{i}]" for i in range(count))


@dataclass(frozen=True)
class Inputs:
    """The model inputs of one ``explain`` call, normalised.

    Attributes
    ----------
    arrays
        One array per model input, each with leading dimension ``n_rows``, in the model's
        input order; integer arrays for float inputs are already converted.
    layout
        How the model takes them (the caller's structure: an array, a list or a dict).
    vocabularies
        Per input, the vocabulary its ids must stay in (for the input that feeds the attributed
        embedding), or None; empty when no input has one. Baselines obey it too.
    """

    arrays: tuple[np.ndarray, ...]
    layout: Layout
    vocabularies: tuple[Vocabulary | None, ...] = ()

    def vocabulary(self, position: int) -> Vocabulary | None:
        """The vocabulary of input ``position``'s ids, if one applies."""
        return self.vocabularies[position] if self.vocabularies else None

    @property
    def n_rows(self) -> int:
        """N: the samples explained, the leading dimension of every array."""
        return int(self.arrays[0].shape[0])

    @property
    def names(self) -> tuple[str, ...]:
        """How to name each input in messages: ``X``, ``X[0]`` or ``X['name']``."""
        return self.layout.names("X", len(self.arrays))

    def model_input(self, arrays: Sequence[Any]) -> Any:
        """Arrange per-input values the way the model takes them (for the explanation's data)."""
        return self.layout.pack(arrays)


def split_inputs(
    X: Any, signature: ModelSignature, argument: str = "X"
) -> tuple[tuple[Any, ...], Layout]:
    """The caller's X (or another argument shaped like it, named ``argument`` in messages) as
    one value per input, in the model's input order, and its layout."""
    declared = signature.inputs
    if isinstance(X, np.ndarray):
        return (X,), Layout("single")
    if isinstance(X, Mapping):
        if not X or not all(isinstance(key, str) for key in X):
            raise TypeError(
                f"`{argument}` as a dict must map input names (str) to arrays. "
                f"Received: keys {list(X)[:5]}."
            )
        keys = list(X)
        if declared:
            names = [d.name for d in declared]
            if sorted(keys) != sorted(names):
                raise ValueError(
                    f"The model has {len(names)} input(s), named {names}: `{argument}` as a dict "
                    f"must have exactly these keys. Received: keys {keys}."
                )
            keys = names  # the model's own order: attributions follow it
        layout = Layout("dict", tuple(keys), signature.takes_dict or not declared)
        return tuple(X[key] for key in keys), layout
    if isinstance(X, (list, tuple)):
        if not X:
            raise ValueError(
                f"`{argument}` must hold at least one input array. Received: an empty sequence."
            )
        if not any(isinstance(value, np.ndarray) for value in X):
            raise TypeError(
                f"`{argument}` must be a numpy array, or a list, tuple or dict of numpy arrays "
                f"with one per model input. Received: a {type(X).__name__} of "
                f"{type(X[0]).__name__}s; for one input, pass np.asarray({argument})."
            )
        return tuple(X), Layout("list")
    raise TypeError(
        f"`{argument}` must be a numpy array, or a list, tuple or dict of numpy arrays with one "
        f"per model input. Received: {describe(X)}."
    )


def _expected_shape(declared: TensorSpec) -> str:
    return "(" + ", ".join(["N", *("None" if d is None else str(d) for d in declared.shape)]) + ")"


def checked_array(
    value: Any,
    spec: TensorSpec | None,
    has_layer: bool,
    name: str,
    rows: str = "a leading batch axis with at least one sample",
) -> np.ndarray:
    """One array of X (or of a background) checked against its declared input and cast to the
    model's dtype; ``rows`` says what its leading axis must hold, for the message."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"`{name}` must be a numpy array (use np.asarray to convert). "
            f"Received: {describe(value)}."
        )
    if value.ndim == 0 or value.shape[0] == 0:
        raise ValueError(f"`{name}` must have {rows}. Received: shape {value.shape}.")
    if spec is not None:
        check_shape(value.shape, spec, f"`{name}`")
    return _as_model_dtype(value, spec, has_layer, name)


def check_shape(shape: tuple[int, ...], declared: TensorSpec, subject: str) -> None:
    """Refuse rows that do not fit ``declared``: ``shape`` has the batch axis first, and
    ``subject`` names the array in the message (```X``` or ``DATA 'rows.npy'``).

    Raises
    ------
    ValueError
        The rows have another rank, or a dimension the model fixes differs.
    """
    if declared.accepts(tuple(shape[1:])):
        return
    hint = ""
    if len(shape) == len(declared.shape) and tuple(shape) == declared.shape:
        hint = " One sample still needs its batch axis: pass X[np.newaxis]."
    raise ValueError(
        f"{subject} must have shape {_expected_shape(declared)} for the model's input "
        f"{declared.name!r} (N samples; None: any size). Received: shape {tuple(shape)}.{hint}"
    )


def _check_count(arrays: tuple, layout: Layout, declared: Sequence[TensorSpec]) -> None:
    if len(arrays) == len(declared):
        return
    listing = ", ".join(f"{d.name!r} {_expected_shape(d)}" for d in declared)
    given = "a single array" if layout.kind == "single" else f"{len(arrays)} arrays"
    raise ValueError(
        f"The model has {len(declared)} input(s): {listing}. Pass `X` as one array per input "
        f"(a list in that order, or a dict by name). Received: {given}."
    )


def _as_model_dtype(
    array: np.ndarray, declared: TensorSpec | None, has_layer: bool, name: str
) -> np.ndarray:
    """Check the array's dtype; integers for a declared float input become that float."""
    kind = array.dtype.kind
    if kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"`{name}` contains NaN or infinity; attributions would be undefined.")
        return array
    if kind not in "iub":
        raise TypeError(
            f"`{name}` must hold real numbers: {ACCEPTED_DTYPES}. Received: dtype {array.dtype}"
            f"; convert with {name}.astype('float32')."
        )
    if has_layer:
        return array  # fed to the model unchanged; the path runs in the layer's space
    if declared is None or declared.dtype is None:
        raise TypeError(
            f"`{name}` has dtype {array.dtype} and the model declares no input dtype. Convert "
            f"it with {name}.astype('float32') if the model takes real numbers (images), or "
            f"attribute to a layer if it takes ids. {LAYER_HINT}"
        )
    if declared.dtype.kind == "f":
        return array.astype(declared.dtype)  # e.g. uint8 images: the model casts them too
    raise TypeError(
        f"`{name}` has dtype {array.dtype} for the model's integer input {declared.name!r} "
        f"(dtype {declared.dtype}), which input attributions cannot follow. {LAYER_HINT}"
    )


def normalise_inputs(
    X: Any,
    signature: ModelSignature = UNDECLARED,
    has_layer: bool = False,
    vocabulary: Vocabulary | None = None,
) -> Inputs:
    """Check X and return it as :class:`Inputs`.

    Parameters
    ----------
    X
        A numpy array, or a list, tuple or dict (by input name) of numpy arrays.
    signature
        What the model declares (:func:`ig_plugin._model.signature.signature_of`); a model that
        declares no inputs gets X's shapes and dtypes unchecked.
    has_layer
        Attributions go to a layer: integer inputs are fed to the model unchanged, so they must
        be whole numbers (floats for a declared integer input are cast to it).
    vocabulary
        The ids the attributed layer takes (an embedding's), if it says: the ids of the input
        that feeds it must be within it.

    Raises
    ------
    TypeError
        X is not an array or a structure of arrays, or an array has a dtype that cannot be
        explained.
    ValueError
        X is empty, has no batch axis, holds NaN or infinity, does not fit the model's declared
        inputs, its inputs disagree on the number of samples, or ids are fractions or outside
        the vocabulary.
    """
    values, layout = split_inputs(X, signature, "X")
    names = layout.names("X", len(values))
    declared = signature.inputs
    if declared:
        _check_count(values, layout, declared)
    specs = [declared[position] if declared else None for position in range(len(values))]
    arrays = [
        checked_array(value, spec, has_layer, name)
        for value, spec, name in zip(values, specs, names, strict=True)
    ]
    sizes = [array.shape[0] for array in arrays]
    if len(set(sizes)) > 1:
        raise ValueError(
            f"All inputs in `X` must have the same number of samples (leading dimension). "
            f"Received: leading dimensions {sizes}."
        )
    if not has_layer:
        return Inputs(arrays=tuple(arrays), layout=layout)
    dtypes = [None if spec is None else spec.dtype for spec in specs]
    integer = [
        position
        for position, (array, dtype) in enumerate(zip(arrays, dtypes, strict=True))
        if (dtype if dtype is not None else array.dtype).kind in "iu"
    ]
    vocabularies = tuple(
        vocabulary
        if vocabulary is not None and vocabulary.covers(position, len(arrays), integer)
        else None
        for position in range(len(arrays))
    )
    arrays = [
        as_ids(array, name, dtype, known)
        for array, name, dtype, known in zip(arrays, names, dtypes, vocabularies, strict=True)
    ]
    return Inputs(
        arrays=tuple(arrays),
        layout=layout,
        vocabularies=vocabularies if any(vocabularies) else (),
    )
