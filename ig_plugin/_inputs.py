"""Checking and normalising what ``explain`` receives: X, baselines and forward_kwargs.

Everything here is numpy and runs before any TensorFlow work, so that bad input fails fast with a
message that names the argument. X is normalised once into a tuple of arrays (one per model input)
and given back in the caller's structure only when the explanation is built.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

ArrayOrList = Union[np.ndarray, "list[np.ndarray]", "tuple[np.ndarray, ...]"]

LAYER_HINT = (
    "Integer inputs (token ids, categories) cannot be interpolated between a baseline and x; "
    "attribute to a layer instead, e.g. layer=lambda model: model.layers[1] for the embedding."
)


@dataclass(frozen=True)
class Inputs:
    """The model inputs of one ``explain`` call, normalised.

    Attributes
    ----------
    arrays
        One array per model input, each with leading dimension ``n_samples``.
    as_list
        Whether the caller passed a list or tuple, so the model is called with a list and
        list-shaped results are given back per input.
    """

    arrays: tuple[np.ndarray, ...]
    as_list: bool

    @property
    def n_samples(self) -> int:
        return int(self.arrays[0].shape[0])

    def model_input(self, arrays: Any) -> Any:
        """Arrange per-input values the way the model expects them (a list or a single value)."""
        return list(arrays) if self.as_list else arrays[0]


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}" if np.isscalar(value) else type(value).__name__


def normalise_inputs(X: Any, allow_integer: bool = False) -> Inputs:
    """Check X and return it as :class:`Inputs`.

    Parameters
    ----------
    X
        A numpy array, or a list or tuple of numpy arrays (one per model input).
    allow_integer
        Accept integer inputs; true only when attributions go to a layer, where the path runs in
        the layer's space and the integer ids are fed to the model unchanged.

    Raises
    ------
    TypeError
        X is not an array or a sequence of arrays, or an array has a dtype that cannot be
        interpolated.
    ValueError
        X is empty, has no batch axis, holds NaN or infinity, or its inputs disagree on the number
        of samples.
    """
    as_list = isinstance(X, (list, tuple))
    arrays = tuple(X) if as_list else (X,)
    if as_list and not arrays:
        raise ValueError("`X` must hold at least one input array. Received: an empty sequence.")
    for position, array in enumerate(arrays):
        name = f"X[{position}]" if as_list else "X"
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"`{name}` must be a numpy array (use np.asarray to convert). "
                f"Received: {_describe(array)}."
            )
        if array.ndim == 0 or array.shape[0] == 0:
            raise ValueError(
                f"`{name}` must have a leading batch axis with at least one sample. "
                f"Received: shape {array.shape}."
            )
        kind = array.dtype.kind
        if kind in "iub":
            if not allow_integer:
                raise TypeError(
                    f"`{name}` has dtype {array.dtype}, but input attributions need a float "
                    f"input. {LAYER_HINT}"
                )
        elif kind != "f":
            raise TypeError(f"`{name}` must hold real numbers. Received: dtype {array.dtype}.")
        elif not np.isfinite(array).all():
            raise ValueError(f"`{name}` contains NaN or infinity; attributions would be undefined.")
    sizes = [array.shape[0] for array in arrays]
    if len(set(sizes)) > 1:
        raise ValueError(
            f"All inputs in `X` must have the same number of samples (leading dimension). "
            f"Received: leading dimensions {sizes}."
        )
    return Inputs(arrays=arrays, as_list=as_list)


def _is_real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _baseline_for(x: np.ndarray, baseline: Any, name: str) -> np.ndarray:
    """One input's baseline as a new array with x's shape and dtype."""
    if baseline is None:
        return np.zeros_like(x)
    if _is_real_number(baseline):
        if not np.isfinite(baseline):
            raise ValueError(f"`{name}` must be finite. Received: {baseline!r}.")
        return np.full_like(x, baseline)
    if not isinstance(baseline, np.ndarray):
        raise TypeError(
            f"`{name}` must be None, a real number or a numpy array. "
            f"Received: {_describe(baseline)}."
        )
    if baseline.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must hold real numbers. Received: dtype {baseline.dtype}.")
    if baseline.ndim == 0:
        return _baseline_for(x, baseline.item(), name)
    one_row = (1, *x.shape[1:])
    if baseline.shape not in (x.shape, one_row):
        raise ValueError(
            f"`{name}` must have the input's shape {x.shape} or {one_row} (broadcast to every "
            f"sample). Received: shape {baseline.shape}."
        )
    if not np.isfinite(baseline).all():
        raise ValueError(f"`{name}` contains NaN or infinity.")
    # astype and broadcast_to + array both copy: the caller's array is never aliased or changed.
    return np.array(np.broadcast_to(baseline, x.shape), dtype=x.dtype)


def normalise_baselines(inputs: Inputs, baselines: Any) -> tuple[np.ndarray, ...]:
    """Return one new baseline array per input, shaped and typed like that input.

    ``baselines`` is None (zeros), a real number, or an array shaped like the input or with
    leading dimension 1; for several inputs, a list or tuple with one such entry per input
    (a single number or None applies to every input).
    """
    arrays = inputs.arrays
    if isinstance(baselines, (list, tuple)):
        if not inputs.as_list:
            raise TypeError(
                "`baselines` must be None, a real number or a numpy array when `X` is a single "
                f"array. Received: a {type(baselines).__name__} of length {len(baselines)}."
            )
        if len(baselines) != len(arrays):
            raise ValueError(
                f"`baselines` must have one entry per input: {len(arrays)}. "
                f"Received: {len(baselines)} entries."
            )
        return tuple(
            _baseline_for(x, b, f"baselines[{i}]")
            for i, (x, b) in enumerate(zip(arrays, baselines, strict=True))
        )
    if inputs.as_list and isinstance(baselines, np.ndarray) and baselines.ndim > 0:
        raise TypeError(
            "`baselines` must be a list with one entry per input when `X` is a list. "
            f"Received: {_describe(baselines)}."
        )
    return tuple(_baseline_for(x, baselines, "baselines") for x in arrays)


@dataclass(frozen=True)
class ForwardKwargs:
    """forward_kwargs split by how they travel along the path.

    Attributes
    ----------
    per_sample
        Arrays with leading dimension N: each path point gets its own sample's row.
    shared
        Everything else (``training=False``, scalars): passed to every model call unchanged.
    """

    per_sample: dict[str, np.ndarray]
    shared: dict[str, Any]


def split_forward_kwargs(forward_kwargs: Any, n_samples: int) -> ForwardKwargs:
    """Check forward_kwargs and split them into per-sample arrays and shared values."""
    if forward_kwargs is None:
        return ForwardKwargs(per_sample={}, shared={})
    if not isinstance(forward_kwargs, dict) or not all(isinstance(k, str) for k in forward_kwargs):
        raise TypeError(
            "`forward_kwargs` must be None or a dict with string keys. "
            f"Received: {_describe(forward_kwargs)}."
        )
    per_sample: dict[str, np.ndarray] = {}
    shared: dict[str, Any] = {}
    for key, value in forward_kwargs.items():
        if isinstance(value, np.ndarray) and value.ndim > 0:
            if value.shape[0] != n_samples:
                raise ValueError(
                    f"`forward_kwargs['{key}']` must have leading dimension {n_samples} (one row "
                    f"per sample in X). Received: shape {value.shape}."
                )
            per_sample[key] = value
        else:
            shared[key] = value
    return ForwardKwargs(per_sample=per_sample, shared=shared)
