"""Deletion and insertion curves (Petsiuk et al., 2018), as xplique's ``Deletion`` and
``Insertion`` define them: features in order of decreasing attribution are replaced by the
baseline (deletion) or put into it (insertion), a fraction at a time, and the model's output for
the target is read at every step."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ig_plugin.metrics._cells import Cells
from ig_plugin.metrics._checks import (
    check_baseline,
    check_count,
    check_model_metric,
)
from ig_plugin.metrics._scores import ScoredModel


class Curves(NamedTuple):
    """The output of each sample along a deletion or insertion.

    Attributes
    ----------
    fractions
        ``(steps + 1,)``: the fraction of the steps taken, ``k / steps`` (at step k,
        ``floor(k * D / steps)`` of the D features are deleted or inserted).
    scores
        ``(N, steps + 1)``: the explained output of each sample at each step (float64).
    auc
        ``(N,)``: the area under each sample's curve, by the trapezoid rule over ``fractions``.
        Lower is better for deletion (the output falls fast when the most important features
        go), higher for insertion.
    """

    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray


def trapezoid(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The trapezoid rule along the last axis of ``values`` over ``points``."""
    widths = np.diff(points)
    area: np.ndarray = ((values[..., 1:] + values[..., :-1]) / 2 * widths).sum(axis=-1)
    return area


def _doc(kind: str, moves: str, start: str, better: str) -> str:
    return f"""{kind.capitalize()} curve: the model's output as the features with the largest
    attributions {moves}, a fraction at a time (Petsiuk et al., 2018; xplique's
    ``{kind.capitalize()}``).

    The features are ranked by decreasing attribution, ``np.argsort(-a, kind="stable")`` over the
    flattened features of each sample (ties go to the lower index): a feature is a value of a
    table ``(N, D)``, or a position with all its channels for inputs of rank 3 or more (a pixel
    of an image ``(N, H, W, C)``, ranked by the sum of its channels' attributions), the features
    of several inputs ranked together. At step ``k`` of ``steps`` the first
    ``floor(k * D / steps)`` of the D features are moved, starting from {start}. {better}

    The ``N * (steps + 1)`` points are built chunk by chunk and scored on ig_plugin's compiled
    forward pass, ``batch_size`` at a time: memory is bounded by ``batch_size``, whatever N.

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
        The value of a deleted feature: a number, or an array shaped like X or like one sample
        of it (for several inputs, one per input), as ``explain``'s ``baselines``.
    steps
        The steps from no feature to all of them (>= 1).
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
    Curves
        ``fractions`` ``(steps + 1,)``, ``scores`` ``(N, steps + 1)`` and ``auc`` ``(N,)``.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid (attributions not shaped like X, steps below 1, ...), before the
        model runs; or with ``batch_size="auto"`` ``memory_budget`` holds not one row.
    """


def deletion(
    model: Any,
    X: Any,
    attributions: Any,
    target: Any = None,
    baseline: Any = 0.0,
    steps: int = 10,
    batch_size: int | str | None = None,
    *,
    memory_budget: int | None = None,
) -> Curves:
    return _curves(
        model, X, attributions, target, baseline, steps, batch_size, memory_budget, delete=True
    )


def insertion(
    model: Any,
    X: Any,
    attributions: Any,
    target: Any = None,
    baseline: Any = 0.0,
    steps: int = 10,
    batch_size: int | str | None = None,
    *,
    memory_budget: int | None = None,
) -> Curves:
    return _curves(
        model, X, attributions, target, baseline, steps, batch_size, memory_budget, delete=False
    )


deletion.__doc__ = _doc(
    "deletion",
    "are replaced by the baseline",
    "X (step 0 scores X itself, step ``steps`` the baseline)",
    "A faithful attribution makes the output fall fast: a small area under the curve.",
)
insertion.__doc__ = _doc(
    "insertion",
    "are put into the baseline",
    "the baseline (step 0 scores the baseline, step ``steps`` X itself)",
    "A faithful attribution makes the output rise fast: a large area under the curve.",
)


def _curves(
    model: Any,
    X: Any,
    attributions: Any,
    target: Any,
    baseline: Any,
    steps: Any,
    batch_size: Any,
    memory_budget: Any,
    delete: bool,
) -> Curves:
    checked = check_model_metric(model, X, attributions, target, batch_size, memory_budget)
    baselines = check_baseline(checked.inputs, baseline)
    n_steps = check_count("steps", steps)
    arrays = checked.inputs.arrays
    cells = Cells([x.shape[1:] for x in arrays])
    importance = cells.sums(checked.attributions)  # (N, D)
    n_rows, n_features = importance.shape
    order = np.argsort(-importance, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_features)[np.newaxis], axis=1)
    counts = np.arange(n_steps + 1) * n_features // n_steps  # features moved at each step
    keep, put = (arrays, baselines) if delete else (baselines, arrays)

    scored = ScoredModel(
        model, checked.inputs, checked.target, checked.batch_size, checked.memory_budget
    )
    scores = np.empty(n_rows * (n_steps + 1))
    for first in range(0, len(scores), scored.batch_size):
        pairs = np.arange(first, min(first + scored.batch_size, len(scores)))
        samples, step = np.divmod(pairs, n_steps + 1)
        moved = rank[samples] < counts[step][:, np.newaxis]  # (n_pairs, D)
        scores[pairs] = scored.at(cells.blend(keep, put, moved, samples), samples)
    fractions = np.arange(n_steps + 1) / n_steps
    curves = scores.reshape(n_rows, n_steps + 1)
    return Curves(fractions, curves, trapezoid(curves, fractions))
