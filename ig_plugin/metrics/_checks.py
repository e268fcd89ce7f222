"""The metrics' own argument checks, in numpy, before any TensorFlow work.

X, targets and baselines are checked by the same code as ``explain``'s (:mod:`ig_plugin._request`);
what only the metrics take is checked here: attributions shaped like X (or an alibi
``Explanation``), the counts, the radius, the norm and the callables. Nothing here imports
TensorFlow or alibi: an ``Explanation`` is recognised only if alibi is already imported (an object
cannot be one otherwise).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from ig_plugin._engine.spans import span_length
from ig_plugin._model.signature import ModelSignature, signature_of
from ig_plugin._request.baselines import normalise_baselines
from ig_plugin._request.checks import (
    AUTO,
    check_callable,
    check_memory_budget,
    check_scalar,
    describe,
    is_real,
)
from ig_plugin._request.inputs import UNDECLARED, Inputs, normalise_inputs
from ig_plugin._request.targets import normalise_target

#: The most points per forward pass when ``batch_size`` is None: forward passes keep no gradient
#: tape, so more rows fit than in an explainer's gradient batch; and few calls are fastest (each
#: costs a couple of milliseconds of dispatch, more than a small model takes to score 256 rows).
MAX_BATCH_ROWS = 4096


def is_explanation(value: Any) -> bool:
    """Whether ``value`` is an alibi ``Explanation`` (without importing alibi)."""
    interfaces = sys.modules.get("alibi.api.interfaces")
    explanation = getattr(interfaces, "Explanation", None)
    return isinstance(explanation, type) and isinstance(value, explanation)


class Checked(NamedTuple):
    """The checked arguments every metric of a model's outputs shares.

    Attributes
    ----------
    inputs
        X, normalised as ``explain`` normalises it (one array per model input).
    attributions
        One float64 array per input, each with its input's shape.
    target
        The targets as an int64 array with leading dimension N, or None.
    batch_size
        Most perturbed inputs per forward pass, or None for ``"auto"`` (chosen from
        ``memory_budget`` once the model is traced).
    memory_budget
        With ``"auto"``: the budget in bytes, or None for the default.
    """

    inputs: Inputs
    attributions: tuple[np.ndarray, ...]
    target: np.ndarray | None
    batch_size: int | None
    memory_budget: int | None = None


def check_model(model: Any) -> ModelSignature:
    """A callable model, and what it declares about its inputs."""
    if not callable(model):
        raise TypeError(f"`model` must be a Keras model. Received: {describe(model)}.")
    return signature_of(model)


def default_batch_rows(inputs: Inputs) -> int:
    """``batch_size=None``: as many rows of X as 8 MiB hold (``SPAN_BYTES``, the explainers'
    span), at most :data:`MAX_BATCH_ROWS`."""
    row_bytes = sum(x[:1].nbytes for x in inputs.arrays)
    return min(MAX_BATCH_ROWS, span_length(row_bytes))


def check_scoring_batch(
    batch_size: Any, memory_budget: Any, inputs: Inputs
) -> tuple[int | None, int | None]:
    """``batch_size``: an int of at least 1, None (:func:`default_batch_rows`) or ``"auto"``
    (returned as None), and ``memory_budget``, which only ``"auto"`` takes."""
    if isinstance(batch_size, str) and batch_size == AUTO:
        return None, check_memory_budget(AUTO, memory_budget)
    if memory_budget is not None:
        raise ValueError(
            "`memory_budget` applies with batch_size='auto' only (a fixed batch size sets the "
            f"memory itself). Received: memory_budget={memory_budget!r} with "
            f"batch_size={batch_size!r}"
        )
    if batch_size is None:
        return default_batch_rows(inputs), None
    expected = "None, an int or 'auto'"
    return int(check_scalar("batch_size", batch_size, least=1, expected=expected)), None


def check_model_metric(
    model: Any,
    X: Any,
    attributions: Any,
    target: Any,
    batch_size: Any,
    memory_budget: Any = None,
) -> Checked:
    """The arguments of a metric that scores ``model`` on perturbed copies of X.

    ``target`` None takes the targets of ``attributions`` when that is an ``Explanation``.

    Raises
    ------
    TypeError, ValueError
        An argument is invalid; the message names it and says what was received.
    """
    inputs = normalise_inputs(X, check_model(model))
    checked_attributions = check_attributions(attributions, inputs)
    if target is None and is_explanation(attributions):
        target = attributions.data.get("target")
    rows, budget = check_scoring_batch(batch_size, memory_budget, inputs)
    return Checked(
        inputs=inputs,
        attributions=checked_attributions,
        target=normalise_target(target, inputs.n_rows),
        batch_size=rows,
        memory_budget=budget,
    )


def check_inputs(X: Any, signature: ModelSignature = UNDECLARED) -> Inputs:
    """X as ``explain`` takes it, checked against ``signature`` where one is known."""
    return normalise_inputs(X, signature)


def check_attributions(
    attributions: Any, inputs: Inputs, name: str = "attributions"
) -> tuple[np.ndarray, ...]:
    """One float64 array per input of X, shaped like it, from an array, a list or tuple (or a
    dict, when X is one) of arrays, or an ``Explanation``.

    Raises
    ------
    TypeError
        The structure does not match X's, or an entry is not a numeric numpy array.
    ValueError
        An entry's shape differs from its input's, or it holds NaN or infinity.
    """
    if is_explanation(attributions):
        attributions = attributions.data.get("attributions")
    values = _per_input(attributions, inputs, name)
    names = inputs.layout.names(name, len(values))
    checked = []
    for value, x, entry in zip(values, inputs.arrays, names, strict=True):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
            raise TypeError(
                f"`{entry}` must be a numpy array of numbers shaped like its input of X. "
                f"Received: {describe(value)}."
            )
        if value.shape != x.shape:
            raise ValueError(
                f"`{entry}` must be shaped like its input of X: {x.shape}. "
                f"Received: shape {value.shape}."
            )
        if not np.isfinite(value).all():
            raise ValueError(f"`{entry}` contains NaN or infinity.")
        checked.append(value.astype(np.float64))
    return tuple(checked)


def check_rows(given: Any, n_rows: int, name: str) -> tuple[np.ndarray, ...]:
    """Attributions of ``n_rows`` samples in any shape (of X, or of an attributed layer): an
    array, a list or tuple of arrays, or an ``Explanation``, as float64 arrays.

    Raises
    ------
    TypeError, ValueError
        Not numeric arrays, another number of rows, or values that are not finite.
    """
    if is_explanation(given):
        given = given.data.get("attributions")
    arrays = tuple(given) if isinstance(given, (list, tuple)) else (given,)
    for array in arrays:
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
            raise TypeError(
                f"`{name}` must return numpy arrays of numbers (or an Explanation). "
                f"Received: {describe(array)}."
            )
        if array.ndim == 0 or array.shape[0] != n_rows:
            raise ValueError(
                f"`{name}` must return one row of attributions per sample ({n_rows}). "
                f"Received: shape {array.shape}."
            )
        if not np.isfinite(array).all():
            raise ValueError(f"`{name}` returned attributions with NaN or infinity.")
    return tuple(array.astype(np.float64) for array in arrays)


def _per_input(attributions: Any, inputs: Inputs, name: str) -> tuple[Any, ...]:
    kind, count = inputs.layout.kind, len(inputs.arrays)
    if isinstance(attributions, Mapping):
        if kind != "dict" or sorted(map(str, attributions)) != sorted(inputs.layout.keys):
            raise TypeError(
                f"`{name}` as a dict must have the keys of X "
                f"({sorted(inputs.layout.keys) if kind == 'dict' else 'X is not a dict'}). "
                f"Received: keys {sorted(map(str, attributions))}."
            )
        return tuple(attributions[key] for key in inputs.layout.keys)
    if isinstance(attributions, (list, tuple)):
        if not all(isinstance(value, np.ndarray) for value in attributions):
            raise TypeError(
                f"`{name}` must be a numpy array shaped like X, one per input in a list, or an "
                f"Explanation. Received: a {type(attributions).__name__} of "
                f"{sorted({type(value).__name__ for value in attributions})}."
            )
        if len(attributions) != count:
            raise ValueError(
                f"`{name}` must hold one array per input of X ({count}). "
                f"Received: {len(attributions)} arrays."
            )
        return tuple(attributions)
    if count != 1:
        raise TypeError(
            f"`{name}` must be a list with one array per input of X ({count}), or an "
            f"Explanation. Received: {describe(attributions)}."
        )
    return (attributions,)


def check_baseline(inputs: Inputs, baseline: Any) -> tuple[np.ndarray, ...]:
    """``baseline`` as ``explain`` takes its ``baselines``: one array per input shaped like X."""
    try:
        return normalise_baselines(inputs, baseline)
    except (TypeError, ValueError) as error:
        # The checks are explain's, whose argument has a plural name.
        message = str(error).replace("`baselines", "`baseline")
        raise type(error)(message) from None


def check_count(name: str, value: Any, least: int = 1) -> int:
    return int(check_scalar(name, value, least=least))


def check_radius(perturb_radius: Any) -> float:
    """A finite number >= 0: the half-width of the uniform perturbations."""
    return float(
        check_scalar(
            "perturb_radius",
            perturb_radius,
            float,
            least=0,
            below=float("inf"),
            why=" (the largest change of a feature, in the units of X)",
        )
    )


def check_norm_ord(norm_ord: Any) -> float:
    """``"fro"`` (the Euclidean norm of the flattened attributions) or a vector norm's order
    ``p > 0`` (``np.inf`` for the largest magnitude), as a number for ``np.linalg.norm``."""
    if isinstance(norm_ord, str):
        if norm_ord == "fro":
            return 2.0
        raise ValueError(
            "Received an invalid value for `norm_ord`, expected 'fro' or a number > 0 (the "
            f"order of a vector norm, np.inf for the largest magnitude). Received: "
            f"norm_ord={norm_ord!r}"
        )
    if not is_real(norm_ord):
        raise TypeError(f"`norm_ord` must be 'fro' or a number. Received: {describe(norm_ord)}.")
    return float(check_scalar("norm_ord", norm_ord, float, above=0))


def check_grid_size(grid_size: Any) -> int | None:
    """None (every pixel its own cell) or an int >= 1."""
    if grid_size is None:
        return None
    return int(check_scalar("grid_size", grid_size, least=1, expected="None or an int"))


def check_fraction(name: str, value: Any) -> float:
    return float(check_scalar(name, value, float, above=0, below=1))


def check_perturb_fn(perturb_fn: Any) -> Callable | None:
    return check_callable("perturb_fn", perturb_fn)
