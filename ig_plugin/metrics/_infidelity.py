"""Infidelity (Yeh et al., 2019), as captum's ``captum.metrics.infidelity`` defines it.

For each sample, the expected squared error between the attributions' prediction of an output
change, ``I . phi``, and the change itself, ``F(x) - F(x - I)``, over random perturbations ``I``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ig_plugin._request.checks import check_bool, check_scalar, check_seed
from ig_plugin._request.inputs import UNDECLARED, split_inputs
from ig_plugin.metrics._checks import (
    Checked,
    check_count,
    check_model_metric,
    check_perturb_fn,
)
from ig_plugin.metrics._scores import ScoredModel
from ig_plugin.metrics._streams import entropy_of, random_stream, sample_chunks

#: The default perturbations' standard deviation, in the units of X.
DEFAULT_NOISE_STDEV = 0.1

PerturbFn = Callable[[Any, np.random.Generator], tuple[Any, Any]]


def gaussian_noise(stdev: float = DEFAULT_NOISE_STDEV) -> PerturbFn:
    """A ``perturb_fn`` for :func:`infidelity`: ``I ~ N(0, stdev**2)`` on every feature, and the
    perturbed input ``x - I``.

    Parameters
    ----------
    stdev
        The noise's standard deviation, in the units of X.

    Returns
    -------
    Callable
        ``perturb_fn(rows, rng) -> (I, rows - I)``, structured like ``rows`` (an array, or a
        list or dict of arrays), in their dtypes.
    """
    scale = check_scalar("stdev", stdev, float, least=0, below=float("inf"))

    def perturb(rows: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        arrays, layout = split_inputs(rows, UNDECLARED, "rows")
        noise = [rng.normal(0.0, scale, size=x.shape).astype(x.dtype) for x in arrays]
        perturbed = [x - n for x, n in zip(arrays, noise, strict=True)]
        return layout.pack(noise), layout.pack(perturbed)

    return perturb


def infidelity(
    model: Any,
    X: Any,
    attributions: Any,
    target: Any = None,
    perturb_fn: PerturbFn | None = None,
    n_perturb_samples: int = 10,
    normalize: bool = False,
    seed: int | None = None,
    batch_size: int | str | None = None,
    *,
    memory_budget: int | None = None,
) -> np.ndarray:
    """Infidelity of attributions: how badly ``I . phi`` predicts ``F(x) - F(x - I)``.

    ``infidelity = mean over I of (sum(I * phi) - (F(x) - F(x - I)))**2``, per sample, over
    ``n_perturb_samples`` perturbations ``I`` (Yeh et al., 2019; captum's
    ``captum.metrics.infidelity``). Lower is better. For a linear model it is 0 for the
    gradient with any ``I``, and for Integrated Gradients from a baseline of 0 when ``I`` zeroes
    a subset of the features (``I = m * x`` with a 0/1 mask ``m``).

    The perturbed inputs are scored on ig_plugin's compiled forward pass, ``batch_size`` at a
    time, generated and consumed chunk by chunk: memory is bounded by ``batch_size`` (and
    ``n_perturb_samples``), whatever N.

    Parameters
    ----------
    model
        The Keras model the attributions explain.
    X
        The explained inputs, as ``explain`` takes them (an array, or a list or dict of arrays).
    attributions
        Attributions shaped like X: an array (a list or dict of arrays for several inputs), or
        the :class:`~alibi.api.interfaces.Explanation` that ``explain`` returned.
    target
        The explained output, as ``explain`` takes it; None takes the Explanation's targets (a
        regression or single-output model needs none).
    perturb_fn
        ``perturb_fn(rows, rng) -> (I, rows - I)``: perturbations of ``rows``, numpy copies of
        one sample of X (``n_perturb_samples`` rows, structured like X), drawn with ``rng``, a
        ``numpy.random.Generator``. Called once per sample, eagerly, so any numpy code works.
        Default: :func:`gaussian_noise` with a standard deviation of 0.1. Unlike captum's, it
        receives the Generator: its draws then follow ``seed``.
    n_perturb_samples
        Perturbations per sample.
    normalize
        Scale the attributions by captum's ``beta = E[(I . phi) dF] / E[(I . phi)**2]`` (per
        sample) first, which makes the score blind to the attributions' scale.
    seed
        None: fresh draws on every call. An int: sample ``i`` always gets the same ``rng``,
        derived from the seed and ``i``, whatever ``batch_size`` or the other samples.
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
        ``(N,)`` float64: each sample's infidelity.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid (attributions not shaped like X, a count below 1, ...), before
        the model runs; or ``perturb_fn`` returns arrays not shaped like its rows; or with
        ``batch_size="auto"`` ``memory_budget`` holds not one row.
    """
    checked = check_model_metric(model, X, attributions, target, batch_size, memory_budget)
    perturb = check_perturb_fn(perturb_fn) or gaussian_noise()
    n_perturb = check_count("n_perturb_samples", n_perturb_samples)
    scale_first = check_bool("normalize", normalize)
    entropy = entropy_of(check_seed(seed))
    scored = ScoredModel(
        model, checked.inputs, checked.target, checked.batch_size, checked.memory_budget
    )
    n_rows = checked.inputs.n_rows
    # Per sample: sums of (I . phi)^2, (I . phi) dF and dF^2, in float64.
    sums = np.zeros((n_rows, 3))
    for samples in sample_chunks(n_rows, n_perturb, scored.batch_size):
        predicted, points = _perturbations(perturb, checked, samples, n_perturb, entropy)
        rows = np.repeat(samples, n_perturb)
        changes = scored.at_x[rows] - scored.at(points, rows)
        terms = np.stack([predicted**2, predicted * changes, changes**2], axis=1)
        sums[samples] = terms.reshape(len(samples), n_perturb, 3).sum(axis=1)
    squares, products, changes_squared = sums.T
    if not scale_first:
        values = squares - 2 * products + changes_squared
    else:
        beta = products / np.where(squares == 0, 1.0, squares)  # captum's safe_div
        values = beta**2 * squares - 2 * beta * products + changes_squared
    result: np.ndarray = values / n_perturb
    return result


def _perturbations(
    perturb: PerturbFn,
    checked: Checked,
    samples: np.ndarray,
    n_perturb: int,
    entropy: int,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``I . phi`` ``(len(samples) * n_perturb,)`` and the perturbed points (one array per
    input) of a chunk of samples, sample-major; ``perturb_fn`` is called once per sample."""
    inputs = checked.inputs
    predicted, points = [], []
    for sample in samples:
        rows = tuple(np.repeat(x[sample : sample + 1], n_perturb, axis=0) for x in inputs.arrays)
        given = perturb(inputs.layout.pack(rows), random_stream(entropy, int(sample)))
        perturbations, perturbed = _split_result(given, rows)
        predicted.append(
            sum(
                (perturbation.reshape(n_perturb, -1) * phi[sample].reshape(1, -1)).sum(axis=1)
                for perturbation, phi in zip(perturbations, checked.attributions, strict=True)
            )
        )
        points.append(perturbed)
    stacked = tuple(np.concatenate(columns) for columns in zip(*points, strict=True))
    return np.concatenate(predicted), stacked


def _split_result(
    given: Any, rows: tuple[np.ndarray, ...]
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """What ``perturb_fn`` returned, checked: ``(I, perturbed)``, each one array per input
    shaped like ``rows``; I as float64, the perturbed points in X's dtypes."""
    if not isinstance(given, tuple) or len(given) != 2:
        raise TypeError(
            "`perturb_fn` must return a tuple (I, perturbed inputs). Received: "
            f"{type(given).__name__}."
        )
    checked = []
    for part, what in zip(given, ("I", "perturbed inputs"), strict=True):
        try:
            arrays, _ = split_inputs(part, UNDECLARED, f"perturb_fn's {what}")
        except (TypeError, ValueError) as error:
            raise TypeError(f"{error} (perturb_fn returns them structured like X)") from None
        arrays = tuple(np.asarray(a) for a in arrays)
        shapes = [a.shape for a in arrays]
        if shapes != [x.shape for x in rows]:
            raise ValueError(
                f"`perturb_fn` must return {what} shaped like its rows: "
                f"{[x.shape for x in rows]}. Received: shapes {shapes}."
            )
        if not all(a.dtype.kind in "iufb" and np.isfinite(a).all() for a in arrays):
            raise ValueError(f"`perturb_fn` returned {what} that are not all finite numbers.")
        checked.append(arrays)
    perturbations = tuple(a.astype(np.float64) for a in checked[0])
    perturbed = tuple(a.astype(x.dtype) for a, x in zip(checked[1], rows, strict=True))
    return perturbations, perturbed
