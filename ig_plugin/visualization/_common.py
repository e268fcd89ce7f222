"""Checks, colours and argument unpacking shared by the picture kinds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation
from matplotlib.colors import LinearSegmentedColormap

from ig_plugin._request.checks import check_choice, check_scalar

# Colour bar label of each sign mode.
_SIGN_LABELS = {
    "all": "attribution",
    "positive": "positive attribution",
    "negative": "negative attribution",
    "absolute": "|attribution|",
}
#: The sign modes of :func:`plot_image_attributions`.
SIGNS = tuple(_SIGN_LABELS)

_POSITIVE_RGB = (26, 150, 65)
_NEGATIVE_RGB = (215, 48, 39)
_ZERO_GREY = "#9e9e9e"
_MAX_ALPHA = 0.8  # strongest token background: keeps black text readable

#: Diverging colour map, red (negative) through white (zero) to green (positive).
ATTRIBUTION_CMAP = LinearSegmentedColormap.from_list(
    "ig_attributions",
    [tuple(c / 255 for c in _NEGATIVE_RGB), (1.0, 1.0, 1.0), tuple(c / 255 for c in _POSITIVE_RGB)],
)


# --- argument checks ------------------------------------------------------------------------------


def _check_index(value: Any, size: int, name: str) -> int:
    return int(check_scalar(name, value, least=0, below=size))


def _check_samples(samples: Any, size: int) -> list[int]:
    if samples is None:
        return list(range(size))
    if isinstance(samples, str) or not isinstance(samples, Sequence | np.ndarray):
        raise TypeError(
            f"`samples` must be None or a sequence of ints. Received: {type(samples).__name__}"
        )
    if len(samples) == 0:
        raise ValueError("`samples` must name at least one sample. Received: samples=[]")
    return [_check_index(i, size, "samples") for i in samples]


def _check_sign(sign: Any) -> str:
    return check_choice("sign", sign, SIGNS)


def _check_percentile(clip_percentile: Any) -> float:
    return float(check_scalar("clip_percentile", clip_percentile, float, above=0, most=100))


def _check_names(names: Any, count: int, name: str, what: str) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise TypeError(f"`{name}` must be a sequence of strings. Received: {type(names).__name__}")
    if len(names) != count:
        raise ValueError(
            f"`{name}` must have one entry per {what}: expected {count}, received {len(names)}."
        )
    return [str(n) for n in names]


def _as_floats(values: Any, name: str) -> np.ndarray:
    if values is None or isinstance(values, str | bytes):
        raise TypeError(
            f"`{name}` must be an alibi Explanation or an array of numbers. "
            f"Received: {type(values).__name__}"
        )
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`{name}` must be an alibi Explanation or an array of numbers. "
            f"Received: {type(values).__name__}"
        ) from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return array


# --- reading an Explanation -----------------------------------------------------------------------


def _unpack(source: Any, input_index: Any, name: str) -> tuple[np.ndarray, Any, Any]:
    """``(attributions, X, target)`` of one input of an Explanation; ``(array, None, None)``."""
    if not isinstance(source, Explanation):
        return _as_floats(source, name), None, None
    attributions = source.data.get("attributions")
    if not isinstance(attributions, list | tuple) or not attributions:
        raise ValueError(f"`{name}` is an Explanation without a list of attributions.")
    index = _check_index(input_index, len(attributions), "input_index")
    X = source.data.get("X")
    if isinstance(X, list | tuple):
        X = X[index] if len(X) == len(attributions) else None
    target = source.data.get("target")
    return _as_floats(attributions[index], f"{name}.attributions[{index}]"), X, target


def _describe(sample: int, target: Any) -> str:
    """A panel title: the sample's index and, for one int per sample, its target."""
    if target is not None:
        target = np.asarray(target)
        if target.ndim == 1 and sample < len(target):
            return f"sample {sample}, target {target[sample]}"
    return f"sample {sample}"


def _one_sample(source: Any, sample: Any, input_index: Any, name: str) -> tuple[np.ndarray, str]:
    """One sample's attributions and a default title (an array is taken as one sample)."""
    values, _, target = _unpack(source, input_index, name)
    if not isinstance(source, Explanation):
        return values, ""
    index = _check_index(sample, len(values), "sample")
    return values[index], _describe(index, target)


# --- scales ---------------------------------------------------------------------------------------


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)
