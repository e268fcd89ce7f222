"""Checking and normalising the baselines: where each path starts.

Numpy only, run before any TensorFlow work. Each input gets a new array with its shape and dtype;
the checks run on the values as the model will see them, after the cast to the input's dtype, so
that a baseline that overflows it (1e39 for float32) or that an integer input would truncate
(2.7 for token ids) is refused instead of giving NaN or silently another baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ig_plugin._request.checks import describe, is_real
from ig_plugin._request.ids import cast_whole, check_in_vocabulary
from ig_plugin._request.inputs import Inputs


def check_cast(values: np.ndarray, x: np.ndarray, name: str) -> np.ndarray:
    """``values`` (finite) cast to x's dtype; refuses what the cast would change."""
    if x.dtype.kind in "iub":
        return cast_whole(values, x.dtype, name)
    with np.errstate(over="ignore"):
        cast = values.astype(x.dtype)
    if not np.isfinite(cast).all():
        raise ValueError(
            f"`{name}` overflows the input's dtype {x.dtype} (largest "
            f"{np.finfo(x.dtype).max:.4g}). Received: largest magnitude {np.abs(values).max()!r}."
        )
    return cast


def _baseline_for(x: np.ndarray, baseline: Any, name: str) -> np.ndarray:
    """One input's baseline as a new array with x's shape and dtype."""
    if baseline is None:
        return np.zeros_like(x)
    if is_real(baseline):
        if not np.isfinite(baseline):
            raise ValueError(f"`{name}` must be finite. Received: {baseline!r}.")
        return np.full_like(x, check_cast(np.asarray(baseline), x, name))
    if not isinstance(baseline, np.ndarray):
        raise TypeError(
            f"`{name}` must be None, a real number or a numpy array. "
            f"Received: {describe(baseline)}."
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
    # astype copies (check_cast always casts), so the caller's array is never aliased or changed.
    cast = check_cast(baseline, x, name)
    return cast if cast.shape == x.shape else np.broadcast_to(cast, x.shape).copy()


def _per_input(inputs: Inputs, baselines: Any) -> tuple[Any, ...] | None:
    """One entry per input from a list, tuple or dict of baselines; None for a single value."""
    kind, keys, count = inputs.layout.kind, inputs.layout.keys, len(inputs.arrays)
    if isinstance(baselines, Mapping):
        if kind != "dict":
            raise TypeError(
                "`baselines` can be a dict only when `X` is one. Received: a dict for X given "
                f"as a {'single array' if kind == 'single' else 'list'}."
            )
        if sorted(baselines) != sorted(keys):
            raise ValueError(
                f"`baselines` must have the keys of `X`: {sorted(keys)}. "
                f"Received: keys {sorted(baselines)}."
            )
        return tuple(baselines[key] for key in keys)
    if isinstance(baselines, (list, tuple)):
        if kind == "single":
            raise TypeError(
                "`baselines` must be None, a real number or a numpy array when `X` is a single "
                f"array. Received: a {type(baselines).__name__} of length {len(baselines)}."
            )
        if len(baselines) != count:
            raise ValueError(
                f"`baselines` must have one entry per input: {count}. "
                f"Received: {len(baselines)} entries."
            )
        return tuple(baselines)
    if kind != "single" and isinstance(baselines, np.ndarray) and baselines.ndim > 0:
        raise TypeError(
            "`baselines` must have one entry per input (a list, or a dict like `X`) when `X` "
            f"holds several. Received: {describe(baselines)}."
        )
    return None


def normalise_baselines(inputs: Inputs, baselines: Any) -> tuple[np.ndarray, ...]:
    """Return one new baseline array per input, shaped and typed like that input.

    ``baselines`` is None (zeros), a real number, or an array shaped like the input or with
    leading dimension 1; for several inputs, a list or tuple with one such entry per input (or
    a dict by name when X is a dict); a single number or None applies to every input.

    Raises
    ------
    TypeError
        A baseline is neither None, a number nor an array, or its structure does not match X.
    ValueError
        A baseline has the wrong shape, is not finite, overflows the input's dtype, or is not a
        whole number (or out of the dtype's range, or of the attributed embedding's vocabulary)
        for an integer input.
    """
    entries = _per_input(inputs, baselines)
    if entries is None:
        entries = (baselines,) * len(inputs.arrays)
        names = ["baselines"] * len(inputs.arrays)
    else:
        names = [f"baselines{name[1:]}" for name in inputs.names]  # X[0] -> baselines[0]
    normalised = []
    for position, (x, entry, name) in enumerate(zip(inputs.arrays, entries, names, strict=True)):
        baseline = _baseline_for(x, entry, name)
        vocabulary = inputs.vocabulary(position)
        if vocabulary is not None:
            check_in_vocabulary(baseline, name, vocabulary)
        normalised.append(baseline)
    return tuple(normalised)
