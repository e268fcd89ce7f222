"""Image attributions: each image beside a heatmap on one scale centred at zero."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ig_plugin._request.checks import check_scalar
from ig_plugin.visualization._common import (
    _SIGN_LABELS,
    ATTRIBUTION_CMAP,
    _check_names,
    _check_percentile,
    _check_samples,
    _check_sign,
    _describe,
    _unpack,
)


def _apply_sign(values: np.ndarray, sign: str) -> np.ndarray:
    if sign == "positive":
        return np.maximum(values, 0.0)
    if sign == "negative":
        return np.minimum(values, 0.0)
    if sign == "absolute":
        return np.abs(values)
    return values


def _symmetric_limit(values: np.ndarray, clip_percentile: float) -> float:
    """The colour scale's half-width: a percentile of |values|, never zero."""
    magnitude = np.abs(values)
    limit = float(np.percentile(magnitude, clip_percentile)) if magnitude.size else 0.0
    if limit <= 0.0:  # mostly zeros: fall back to the largest value, or to 1 if all are zero
        limit = float(magnitude.max(initial=0.0)) or 1.0
    return limit


def _extend(values: np.ndarray, limit: float) -> str:
    """Colour bar arrows for the sides where values were clipped."""
    above, below = bool((values > limit).any()), bool((values < -limit).any())
    return {(True, True): "both", (True, False): "max", (False, True): "min"}.get(
        (above, below), "neither"
    )


# --- images ---------------------------------------------------------------------------------------


def _check_images(images: Any, heat_shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[:3] != heat_shape:
        raise ValueError(
            f"{name} must have shape (N, H, W) or (N, H, W, C) with the attributions' N, H and "
            f"W {heat_shape}. Received shape {np.shape(images)}. For layer attributions, pass "
            "the attributions array alone (heatmaps only) or matching `images`."
        )
    if array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{name} must have 1, 3 or 4 channels (channels last). Received shape {array.shape}."
        )
    return array


def _refuse_one_image(array: np.ndarray, name: str) -> None:
    """A 3-D array is read as N grey images; refuse one that is plainly one (H, W, C) image."""
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4) and min(array.shape[:2]) > 4:
        raise ValueError(
            f"`{name}` of shape {array.shape} looks like one image (H, W, C), but a 3-D array "
            f"is read as N grey images (N, H, W). Pass one image with its batch axis: "
            f"{name}[np.newaxis]."
        )


def _displayable(image: np.ndarray) -> np.ndarray:
    """A grey image as 2-D, an RGB(A) float image rescaled into [0, 1] if it leaves that range."""
    if image.shape[-1] == 1:
        return image[..., 0]
    if image.dtype.kind == "f" and (image.min() < 0 or image.max() > 1):
        span = image.max() - image.min()
        return (image - image.min()) / (span if span > 0 else 1.0)
    return image


def plot_image_attributions(
    attributions: Explanation | ArrayLike,
    images: ArrayLike | None = None,
    *,
    samples: Sequence[int] | None = None,
    input_index: int = 0,
    sign: str = "all",
    clip_percentile: float = 99.0,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    cmap: str | Colormap = ATTRIBUTION_CMAP,
    image_cmap: str | Colormap = "gray",
    panel_size: float = 2.0,
) -> Figure:
    """Each image beside a heatmap of its attributions, in a grid, on one shared colour scale.

    The heatmap shows the attributions summed over the channels, with a diverging colour map
    centred at zero (``vmin == -vmax``). The scale's half-width is the ``clip_percentile``
    percentile of the absolute heatmap values of all plotted samples, so one outlier does not
    wash out the rest; clipped values take the end colours, and arrows on the colour bar say so.

    Parameters
    ----------
    attributions
        An ``Explanation`` (its ``attributions[input_index]`` and, by default, its ``X`` are
        used) or an array of shape ``(N, H, W)`` or ``(N, H, W, C)``, channels last.
    images
        The images, shape ``(N, H, W)`` or ``(N, H, W, C)`` with C in 1, 3, 4; by default the
        Explanation's ``X``. Without images (arrays given and ``images=None``), only the
        heatmaps are drawn.
    samples
        Indices of the samples to plot; all by default.
    input_index
        Which model input of the Explanation to plot.
    sign
        ``"all"``; ``"positive"`` or ``"negative"`` to keep one sign (the other is set to zero);
        ``"absolute"`` for magnitudes.
    clip_percentile
        Percentile in (0, 100] of the absolute values that sets the colour scale; 100 clips
        nothing.
    titles
        One title per plotted sample; by default its index (and its target, from an
        Explanation).
    ncols
        Samples per row of the grid.
    cmap
        Colour map of the heatmaps: a diverging one.
    image_cmap
        Colour map of grey images (e.g. ``"gray_r"`` for dark ink on white).
    panel_size
        Width and height of each panel, in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels per sample (image, heatmap; one without images), then the colour bar.

    Raises
    ------
    TypeError
        ``attributions`` is not numeric, ``samples`` is not a sequence of ints, ``titles`` is
        not a sequence of strings, or ``clip_percentile`` is not a number.
    ValueError
        Bad shapes (one ``(H, W, C)`` image without its batch axis among them), an unknown
        ``sign``, ``clip_percentile`` outside (0, 100], an index out of range, or ``titles`` of
        the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> from ig_plugin.visualization import plot_image_attributions
    >>> rng = np.random.default_rng(0)
    >>> images, attributions = rng.random((3, 8, 8, 1)), rng.normal(size=(3, 8, 8, 1))
    >>> fig = plot_image_attributions(attributions, images, clip_percentile=99)
    >>> len(fig.axes)  # an image and a heatmap per sample, and the colour bar
    7
    >>> fig.axes[1].get_title()
    'attribution'
    >>> fig.savefig("attributions.png")  # doctest: +SKIP
    """
    values, X, target = _unpack(attributions, input_index, "attributions")
    if not isinstance(attributions, Explanation):
        _refuse_one_image(values, "attributions")
        if images is not None:
            _refuse_one_image(np.asarray(images), "images")
    if values.ndim not in (3, 4):
        raise ValueError(
            "`attributions` must have shape (N, H, W) or (N, H, W, C), channels last. "
            f"Received shape {values.shape}."
        )
    heat = values.sum(axis=-1) if values.ndim == 4 else values  # (N, H, W)
    if images is not None:
        shown = _check_images(images, heat.shape, "`images`")
    elif X is not None:
        shown = _check_images(X, heat.shape, "The Explanation's X (the default `images`)")
    else:
        shown = None
    indices = _check_samples(samples, len(heat))
    labels = _check_names(
        [_describe(i, target) for i in indices] if titles is None else titles,
        len(indices),
        "titles",
        "plotted sample",
    )
    check_scalar("ncols", ncols, least=1)
    check_scalar("panel_size", panel_size, float, above=0, below=np.inf)
    sign = _check_sign(sign)
    heat = _apply_sign(heat[indices], sign)  # (n_plotted, H, W)
    limit = _symmetric_limit(heat, _check_percentile(clip_percentile))
    norm = Normalize(vmin=-limit, vmax=limit)

    fig, grid = _grid(len(indices), ncols, 1 if shown is None else 2, float(panel_size))
    for panels, index, values, label in zip(grid, indices, heat, labels, strict=True):
        if shown is not None:
            panels[0].imshow(_displayable(shown[index]), cmap=image_cmap, interpolation="nearest")
            panels[0].set_title(label)
        mappable = panels[-1].imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
        panels[-1].set_title(_SIGN_LABELS[sign] if shown is not None else label)
    fig.colorbar(
        mappable,
        ax=[ax for panels in grid for ax in panels],
        extend=_extend(heat, limit),
        shrink=0.9 if len(indices) > ncols else 1.0,
        label=f"{_SIGN_LABELS[sign]}\n(> 0 raises the output)",
    )
    return fig


def _grid(count: int, ncols: int, per_sample: int, panel_size: float) -> tuple[Figure, list]:
    """A figure and, for each of ``count`` samples, its ``per_sample`` axes without ticks."""
    cols = min(ncols, count)
    rows = -(-count // cols)
    fig = Figure(
        figsize=(per_sample * cols * panel_size + 1.2, rows * panel_size + 0.4),
        layout="constrained",
    )
    axes = fig.subplots(rows, per_sample * cols, squeeze=False).reshape(-1, per_sample)
    for ax in axes[count:].flat:  # the unused end of the last row
        ax.remove()
    for ax in axes[:count].flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, list(axes[:count])
