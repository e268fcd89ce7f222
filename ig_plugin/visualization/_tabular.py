"""Tabular attributions: a bar chart of features sorted by the size of their attribution."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from alibi.api.interfaces import Explanation
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ig_plugin._request.checks import check_scalar
from ig_plugin.visualization._common import (
    _NEGATIVE_RGB,
    _POSITIVE_RGB,
    _ZERO_GREY,
    _check_names,
    _hex,
    _one_sample,
)


def plot_feature_attributions(
    attributions: Explanation | ArrayLike,
    feature_names: Sequence[str] | None = None,
    *,
    sample: int = 0,
    input_index: int = 0,
    top_k: int | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A horizontal bar chart of one sample's feature attributions, the largest on top.

    Positive attributions are green bars to the right, negative ones red bars to the left; each
    bar is labelled with its value.

    Parameters
    ----------
    attributions
        An ``Explanation`` (its ``attributions[input_index][sample]`` is used, of shape
        ``(n_features,)``), or one sample's attributions as an array of that shape.
    feature_names
        One name per feature; ``"feature 0"``, ``"feature 1"``, ... by default.
    sample
        Which sample of the Explanation to plot.
    input_index
        Which model input of the Explanation to plot.
    top_k
        Plot only the ``top_k`` features with the largest ``|attribution|`` (all if there are
        fewer).
    title
        The axes title; by default the sample's index and target, from an Explanation.
    figsize
        The figure size in inches; by default it grows with the number of bars.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one bar per plotted feature.

    Raises
    ------
    TypeError
        ``attributions`` is not numeric, ``feature_names`` is not a sequence of strings, or
        ``sample`` or ``input_index`` is not an int.
    ValueError
        The attributions are not one value per feature, ``feature_names`` has the wrong length,
        ``top_k`` is not positive, or an index is out of range.

    Examples
    --------
    >>> from ig_plugin.visualization import plot_feature_attributions
    >>> fig = plot_feature_attributions([0.1, -0.5, 0.3], ["age", "dose", "weight"], top_k=2)
    >>> [label.get_text() for label in fig.axes[0].get_yticklabels()]
    ['dose', 'weight']
    """
    values, default_title = _one_sample(attributions, sample, input_index, "attributions")
    if values.ndim != 1:
        raise ValueError(
            "`attributions` must hold one value per feature: shape (n_features,) for one sample "
            f"(an Explanation's attributions of shape (N, n_features)). Received shape "
            f"{values.shape}; for images use plot_image_attributions, for tokens sum the "
            "embedding axis first."
        )
    names = (
        [f"feature {j}" for j in range(len(values))]
        if feature_names is None
        else _check_names(feature_names, len(values), "feature_names", "feature")
    )
    if top_k is not None:
        check_scalar("top_k", top_k, least=1, expected="None or an int")
    count = len(values) if top_k is None else min(int(top_k), len(values))
    order = np.argsort(-np.abs(values), kind="stable")[:count]
    shown = values[order]

    fig = Figure(figsize=figsize or (6.4, 1.4 + 0.3 * count), layout="constrained")
    ax = fig.add_subplot()
    colours = [
        _hex(_POSITIVE_RGB) if v > 0 else _hex(_NEGATIVE_RGB) if v < 0 else _ZERO_GREY
        for v in shown
    ]
    positions = np.arange(count)
    ax.barh(positions, shown, color=colours)
    ax.set_yticks(positions, [names[j] for j in order])
    ax.invert_yaxis()  # the largest |attribution| on top
    # The values as a column on the right: beside their bars, never over them.
    values_axis = ax.secondary_yaxis("right")
    values_axis.set_yticks(positions, [f"{v:+.3g}" for v in shown])
    values_axis.tick_params(length=0, labelsize="small")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("attribution (> 0 raises the output)")
    ax.set_ylabel("feature" if count == len(values) else f"top {count} of {len(values)} features")
    heading = title if title is not None else default_title
    if heading:
        ax.set_title(heading, wrap=True)
    return fig
