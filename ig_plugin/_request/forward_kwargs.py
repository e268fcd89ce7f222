"""Checking forward_kwargs and splitting them by how they travel along the path.

Numpy only. Whatever is array-like with a leading dimension of N (a numpy array, a tensor, a
list or tuple of numbers) belongs to the samples: each path point gets its own sample's row, as in
alibi. Everything else (``training=False``, a scalar, a string) is passed to every call unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ig_plugin._request.checks import describe

_PYTHON_NUMBER_DTYPES = {"f": np.dtype("float32"), "i": np.dtype("int32")}


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

    def as_dict(self) -> dict[str, Any]:
        """All of them in one dict (tensors and sequences as arrays), for the explanation."""
        return {**self.shared, **self.per_sample}


def _as_array(value: Any) -> np.ndarray | None:
    """``value`` as a numeric array if it is array-like (tensors and sequences too), else None."""
    if isinstance(value, np.ndarray):
        return value
    if not isinstance(value, (list, tuple)) and not hasattr(value, "__array__"):
        return None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged or opaque: not per-sample data
        return None
    if array.dtype.kind not in "biuf":
        return None
    if isinstance(value, (list, tuple)):
        # Python numbers get the dtypes TensorFlow gives them (float32, int32), not numpy's
        # 64-bit ones, which a model on float32 inputs would refuse (Keras 2 does).
        array = array.astype(_PYTHON_NUMBER_DTYPES.get(array.dtype.kind, array.dtype))
    return array


def split_forward_kwargs(forward_kwargs: Any, n_rows: int) -> ForwardKwargs:
    """Check forward_kwargs and split them into per-sample arrays and shared values.

    Raises
    ------
    TypeError
        forward_kwargs is not a dict with string keys.
    ValueError
        An array-like value has a leading dimension other than N.
    """
    if forward_kwargs is None:
        return ForwardKwargs(per_sample={}, shared={})
    if not isinstance(forward_kwargs, dict) or not all(isinstance(k, str) for k in forward_kwargs):
        raise TypeError(
            "`forward_kwargs` must be None or a dict with string keys. "
            f"Received: {describe(forward_kwargs)}."
        )
    per_sample: dict[str, np.ndarray] = {}
    shared: dict[str, Any] = {}
    for key, value in forward_kwargs.items():
        array = _as_array(value)
        if array is None or array.ndim == 0:
            shared[key] = value
            continue
        if array.shape[0] != n_rows:
            raise ValueError(
                f"`forward_kwargs['{key}']` must have leading dimension {n_rows} (one row "
                f"per sample in X). Received: shape {array.shape}."
            )
        per_sample[key] = array
    return ForwardKwargs(per_sample=per_sample, shared=shared)
