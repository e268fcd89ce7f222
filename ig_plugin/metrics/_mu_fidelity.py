"""MuFidelity (Bhatt et al., 2020), as xplique's ``MuFidelity`` defines it: the correlation, over
random subsets of features, between the attributions' sum over a subset and the output's drop
when that subset is set to the baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from ig_plugin._request.checks import check_seed
from ig_plugin.metrics._cells import Cells
from ig_plugin.metrics._checks import (
    check_baseline,
    check_count,
    check_fraction,
    check_grid_size,
    check_model_metric,
)
from ig_plugin.metrics._correlation import spearman_rows
from ig_plugin.metrics._scores import ScoredModel
from ig_plugin.metrics._streams import entropy_of, random_stream, sample_chunks


def mu_fidelity(
    model: Any,
    X: Any,
    attributions: Any,
    target: Any = None,
    baseline: Any = 0.0,
    grid_size: int | None = 9,
    subset_percent: float = 0.2,
    n_samples: int = 128,
    seed: int | None = None,
    *,
    batch_size: int | str | None = None,
    memory_budget: int | None = None,
) -> np.ndarray:
    """MuFidelity: do the attributions of a subset of features predict what removing it costs?

    For each sample, ``n_samples`` random subsets S of its cells are set to the baseline; the
    score is Spearman's correlation, over the subsets, between ``sum of phi over S`` and the drop
    ``F(x) - F(x with S at the baseline)`` (Bhatt et al., 2020; xplique's ``MuFidelity``). Higher
    is better; 1 for a linear model explained exactly (Integrated Gradients from the baseline).
    A sample whose drops or sums are all equal gets 0, as in xplique.

    The cells: for images ``(N, H, W, C)``, a ``grid_size x grid_size`` grid of super-pixels
    (pixel ``(h, w)`` in row ``h * grid_size // H`` and column ``w * grid_size // W``, all
    channels together), or every pixel with ``grid_size=None``; for other inputs every position
    (a table's value, a sequence's step with its channels), and ``grid_size`` does not apply
    (xplique's MuFidelity fails on tabular data). A subset holds exactly
    ``int(n_cells * subset_percent)`` cells.

    The subsets of sample ``i`` come from a random stream of its own (``seed`` and ``i``); they
    are scored on ig_plugin's compiled forward pass ``batch_size`` points at a time, so memory
    is bounded by ``batch_size`` (and ``n_samples``), whatever N.

    Parameters
    ----------
    model
        The Keras model the attributions explain.
    X
        The explained inputs, as ``explain`` takes them.
    attributions
        Attributions shaped like X (an array, a list or dict of arrays), or the
        :class:`~alibi.api.interfaces.Explanation` that ``explain`` returned.
    target
        The explained output, as ``explain`` takes it; None takes the Explanation's targets.
    baseline
        The value of a removed feature, as ``explain``'s ``baselines``.
    grid_size
        Cells per side of an image's grid (at most its height and width), or None.
    subset_percent
        The share of the cells in each subset, in (0, 1).
    n_samples
        Subsets per sample (at least 2, to correlate).
    seed
        None: fresh subsets on every call; an int: the same subsets for the same X.
    batch_size
        Most points per forward pass; None: as many as 8 MiB of inputs hold, at most 4,096;
        ``"auto"``: as many as ``memory_budget`` holds, at what one scored row costs (estimated
        from the traced model, as ``internal_batch_size="auto"`` of the explainers), at most
        4,096. The scores do not depend on it.
    memory_budget
        With ``batch_size="auto"`` only: the budget in bytes; None: a quarter of the memory
        available (1 GiB with a GPU).

    Returns
    -------
    np.ndarray
        ``(N,)`` float64: each sample's correlation, in [-1, 1].

    Raises
    ------
    TypeError, ValueError
        An argument is invalid, before the model runs; among them a subset of no cell
        (``subset_percent`` too small for the number of cells); or with ``batch_size="auto"``
        ``memory_budget`` holds not one row.
    """
    checked = check_model_metric(model, X, attributions, target, batch_size, memory_budget)
    baselines = check_baseline(checked.inputs, baseline)
    grid = check_grid_size(grid_size)
    share = check_fraction("subset_percent", subset_percent)
    n_subsets = check_count("n_samples", n_samples, least=2)
    entropy = entropy_of(check_seed(seed))
    arrays = checked.inputs.arrays
    cells = Cells([x.shape[1:] for x in arrays], grid)
    subset_size = int(cells.n_cells * share)
    if subset_size < 1:
        raise ValueError(
            f"Received an invalid value for `subset_percent`: a subset would hold "
            f"int({cells.n_cells} cells * {share}) = 0 cells. Pass a larger share (at least "
            f"{1 / cells.n_cells:.3g}). Received: subset_percent={subset_percent!r}"
        )
    cell_sums = cells.sums(checked.attributions)  # (N, n_cells)

    scored = ScoredModel(
        model, checked.inputs, checked.target, checked.batch_size, checked.memory_budget
    )
    n_rows = checked.inputs.n_rows
    correlations = np.empty(n_rows)
    for samples in sample_chunks(n_rows, n_subsets, scored.batch_size):
        subsets = np.concatenate(
            [_subsets(entropy, int(i), n_subsets, cells.n_cells, subset_size) for i in samples]
        )  # (len(samples) * n_subsets, n_cells), sample-major
        rows = np.repeat(samples, n_subsets)
        drops = scored.at_x[rows] - scored.at(cells.blend(arrays, baselines, subsets, rows), rows)
        sums = (cell_sums[rows] * subsets).sum(axis=1)
        shape = (len(samples), n_subsets)
        correlations[samples] = spearman_rows(sums.reshape(shape), drops.reshape(shape))
    return correlations


def _subsets(entropy: int, sample: int, n_subsets: int, n_cells: int, size: int) -> np.ndarray:
    """``(n_subsets, n_cells)`` bool: ``size`` cells chosen uniformly per row, from the
    sample's own stream."""
    order = np.argsort(random_stream(entropy, sample).random((n_subsets, n_cells)), axis=1)
    chosen = np.zeros((n_subsets, n_cells), dtype=bool)
    np.put_along_axis(chosen, order[:, :size], True, axis=1)
    return chosen
