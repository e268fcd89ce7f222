"""The picture of a generation's attributions: a heatmap of generated tokens by positions."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ig_plugin.text._tokens import token_labels
from ig_plugin.visualization import ATTRIBUTION_CMAP


def plot_generation(
    matrix: np.ndarray, ids: np.ndarray, prompt_length: int, vocabulary: Any, sample: int
) -> Figure:
    """One sample's ``(G, T)`` matrix as a heatmap on a scale centred at zero; a dashed line
    marks the end of the prompt. See :meth:`GenerationAttributions.plot
    <ig_plugin.text.GenerationAttributions.plot>`."""
    labels = token_labels(ids, vocabulary)
    n_generated, length = matrix.shape
    figure = Figure(
        figsize=(max(4.0, 0.42 * length + 2.5), max(2.5, 0.38 * n_generated + 1.8)),
        layout="constrained",
    )
    axes = figure.add_subplot()
    scale = float(np.abs(matrix).max(initial=0.0)) or 1.0
    image = axes.imshow(
        matrix, cmap=ATTRIBUTION_CMAP, vmin=-scale, vmax=scale, aspect="auto", interpolation="none"
    )
    axes.set_xticks(range(length), labels=labels, rotation=90)
    axes.set_yticks(range(n_generated), labels=labels[prompt_length:])
    axes.axvline(prompt_length - 0.5, color="#555555", linestyle="--", linewidth=1)
    axes.set_xlabel("position attributed to (dashed: end of the prompt)")
    axes.set_ylabel("generated token")
    axes.set_title(f"sample {sample}: attributions of log p(token | the tokens before it)")
    figure.colorbar(image, ax=axes, label="attribution", shrink=0.9)
    return figure
