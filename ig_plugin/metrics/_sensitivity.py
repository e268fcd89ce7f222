"""Max-sensitivity (Yeh et al., 2019), as captum's ``captum.metrics.sensitivity_max`` defines it.

For each sample, the largest relative change of its attributions over small perturbations of
its input: ``max over d of norm(phi(x + d) - phi(x)) / norm(phi(x))``, ``d`` uniform in the
L-infinity ball of radius ``perturb_radius``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ig_plugin._engine.memory import BatchSize
from ig_plugin._request.checks import check_seed
from ig_plugin._request.inputs import Inputs
from ig_plugin._request.targets import normalise_target
from ig_plugin.metrics._checks import (
    MAX_BATCH_ROWS,
    check_count,
    check_inputs,
    check_norm_ord,
    check_radius,
    check_scoring_batch,
)
from ig_plugin.metrics._explaining import ExplainFn
from ig_plugin.metrics._streams import entropy_of, random_stream, sample_chunks


def sensitivity_max(
    explain_fn: Any,
    X: Any,
    target: Any = None,
    perturb_radius: float = 0.02,
    n_perturb_samples: int = 10,
    norm_ord: str | float = "fro",
    seed: int | None = None,
    *,
    batch_size: int | str | None = None,
    memory_budget: int | None = None,
) -> np.ndarray:
    """Max-sensitivity of an explanation method: how much its attributions move when the input
    moves a little.

    ``sensitivity = max over d of norm(phi(x + d) - phi(x)) / norm(phi(x))`` per sample, over
    ``n_perturb_samples`` perturbations ``d`` drawn uniformly in ``[-perturb_radius,
    perturb_radius]`` for every feature (Yeh et al., 2019; captum's
    ``captum.metrics.sensitivity_max``, whose default perturbation this is). The norms are taken
    over all the features of all inputs together; a sample whose attributions are all zero is
    divided by 1, as in captum. Lower is better. For a linear model, Integrated Gradients from a
    baseline of 0 gives ``phi = w * x``, so the ratio is ``norm(w * d) / norm(w * x)``.

    Parameters
    ----------
    explain_fn
        What is evaluated: an ig_plugin explainer (``IntegratedGradients``,
        ``ExpectedGradients``, ``NoiseTunnel``, ...), whose ``explain`` then runs on the
        perturbed copies, or a callable ``explain_fn(X_rows, target_rows) -> attributions``
        (an array with a row per sample, one per input for several, or an ``Explanation``).
        Layer attributions work too: the norms are taken over whatever is attributed.
    X
        The inputs, as ``explain`` takes them.
    target
        As ``explain`` takes it; each perturbed copy of a sample is explained for that sample's
        target. With None and an explainer whose ``target_fn`` chooses the targets, they are
        chosen on X and kept for the perturbed copies.
    perturb_radius
        The largest change of a feature, in the units of X (>= 0).
    n_perturb_samples
        Perturbations per sample.
    norm_ord
        ``"fro"`` (Euclidean, captum's default) or the order ``p > 0`` of a vector norm
        (``np.inf``: the largest magnitude).
    seed
        None: fresh draws on every call. An int: the perturbations depend only on the seed, X,
        ``perturb_radius`` and ``n_perturb_samples`` (sample ``i`` draws from a stream of its
        own), not on ``batch_size`` or ``explain_fn``.
    batch_size
        Most perturbed copies per ``explain_fn`` call (None: as many as 8 MiB of inputs hold, at
        most 4,096): memory holds that many copies and their attributions, whatever N.
        ``"auto"``: as many as ``memory_budget`` holds, at most 4,096, at what one copy costs
        (its inputs and the noise drawn for them, and its attributions as ``explain_fn``
        returns them and as the metric compares them), measured on the attributions of X's
        first sample. The values do not depend on it. The explainer's own
        ``internal_batch_size`` (``"auto"`` with a ``memory_budget`` of its own, for one) sizes
        its gradient batches within a call.
    memory_budget
        With ``batch_size="auto"`` only: the budget in bytes; None: a quarter of the memory
        available (1 GiB with a GPU).

    Returns
    -------
    np.ndarray
        ``(N,)`` float64: each sample's largest relative change.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid (a negative radius, a count below 1, X or target that the
        explainer refuses, ...), before any explaining; or with ``batch_size="auto"``
        ``memory_budget`` holds not one perturbed copy.
    """
    explain = ExplainFn(explain_fn)
    inputs = check_inputs(X, explain.signature)
    normalised_target = normalise_target(target, inputs.n_rows)
    radius = check_radius(perturb_radius)
    n_perturb = check_count("n_perturb_samples", n_perturb_samples)
    order = check_norm_ord(norm_ord)
    entropy = entropy_of(check_seed(seed))
    rows_per_call, budget = check_scoring_batch(batch_size, memory_budget, inputs)
    explain.validate(X, target)
    if rows_per_call is None:
        first = None if normalised_target is None else normalised_target[:1]
        rows_per_call = _copies_per_call(explain, _rows(inputs, np.arange(1)), first, budget)

    n_rows = inputs.n_rows
    largest = np.zeros(n_rows)
    for samples in sample_chunks(n_rows, n_perturb, rows_per_call):
        chunk = _rows(inputs, samples)
        chunk_target = None if normalised_target is None else normalised_target[samples]
        original, explain_copies, copies_target = explain.first(chunk, chunk_target)
        noisy = _perturbed(chunk, samples, n_perturb, radius, entropy)
        if copies_target is not None:
            copies_target = np.repeat(np.asarray(copies_target), n_perturb, axis=0)
        moved = explain_copies(noisy, copies_target)
        ratios = _relative_changes(original, moved, n_perturb, order)
        largest[samples] = ratios.reshape(len(samples), n_perturb).max(axis=1)
    return largest


def _copies_per_call(
    explain: ExplainFn, first: Inputs, target: np.ndarray | None, budget: int | None
) -> int:
    """``batch_size="auto"``: the perturbed copies ``budget`` (or the default budget) holds, at
    most :data:`MAX_BATCH_ROWS`, at what one copy costs: its inputs in X's dtypes and the
    float64 noise drawn for them and added in float64, and its attributions as ``explain_fn``
    returns them (float32 at least) and as float64 three times (taken, flattened and
    compared); the attributions' size is that of X's ``first`` sample's."""
    attributions = explain(first, target)
    input_bytes = sum(x[0].size * (16 + x.dtype.itemsize) for x in first.arrays)
    copy_bytes = input_bytes + sum(a[0].size * (4 + 3 * 8) for a in attributions)
    available = BatchSize(None, budget).budget()
    if available < copy_bytes:
        raise ValueError(
            f"`memory_budget` is {available:,} bytes, less than one perturbed copy costs (about "
            f"{copy_bytes:,} bytes, with its attributions): give a larger memory_budget, or a "
            "fixed batch_size."
        )
    return min(MAX_BATCH_ROWS, available // copy_bytes)


def _rows(inputs: Inputs, samples: np.ndarray) -> Inputs:
    """The samples ``samples`` of X, as X was given."""
    return Inputs(tuple(x[samples] for x in inputs.arrays), inputs.layout)


def _perturbed(
    chunk: Inputs, samples: np.ndarray, n_perturb: int, radius: float, entropy: int
) -> Inputs:
    """``n_perturb`` copies of each sample of ``chunk`` plus uniform noise in ``[-radius,
    radius]`` from the sample's own stream, sample-major, in X's dtypes."""
    copies: list[list[np.ndarray]] = [[] for _ in chunk.arrays]
    for offset, sample in enumerate(samples):
        stream = random_stream(entropy, int(sample))
        for position, x in enumerate(chunk.arrays):
            noise = stream.uniform(-radius, radius, size=(n_perturb, *x.shape[1:]))
            copies[position].append((x[offset] + noise).astype(x.dtype))
    return Inputs(tuple(np.concatenate(parts) for parts in copies), chunk.layout)


def _relative_changes(
    original: tuple[np.ndarray, ...],
    moved: tuple[np.ndarray, ...],
    n_perturb: int,
    order: float,
) -> np.ndarray:
    """``norm(phi(x + d) - phi(x)) / norm(phi(x))`` per perturbed copy, over every feature of
    every input; a zero ``norm(phi(x))`` divides by 1."""
    n_copies = len(moved[0])
    shapes = [a.shape[1:] for a in original], [a.shape[1:] for a in moved]
    if shapes[0] != shapes[1]:
        raise ValueError(
            "`explain_fn` must return attributions of one shape for X and its perturbed copies. "
            f"Received: shapes {shapes[0]} for X and {shapes[1]} for the copies (per sample)."
        )
    flat_original = np.concatenate([a.reshape(len(a), -1) for a in original], axis=1)
    flat_moved = np.concatenate([a.reshape(n_copies, -1) for a in moved], axis=1)
    changes = flat_moved - np.repeat(flat_original, n_perturb, axis=0)
    scale = np.linalg.norm(flat_original, ord=order, axis=1)
    scale = np.repeat(np.where(scale == 0, 1.0, scale), n_perturb)
    ratios: np.ndarray = np.linalg.norm(changes, ord=order, axis=1) / scale
    return ratios
