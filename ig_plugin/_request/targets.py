"""The target rule: which scalar of the model output is explained, for each sample.

One rule serves the gradient passes, the deltas and the checks, so they can never disagree:

- scalar output (shape ``(N,)`` or ``(N, 1)``) and no target: regression, explain the output;
- scalar output with targets: a binary classifier giving ``p``; target 1 explains ``p`` and
  target 0 explains ``1 - p``;
- vector output ``(N, C)``: target ``t`` (shape ``(N,)``) explains ``output[:, t]``;
- output of rank > 2 ``(N, d1, ..., dk)``: target ``(N, k)`` indexes the non-batch axes.

``explain(..., targets=...)`` gives K targets per sample, explained from one forward pass per path
point: K class indices of an ``(N, C)`` output, or K index tuples ``(position, class)`` of an
output of rank > 2, such as the ``(N, T, C)`` of token classification or the ``(N, T, V)`` of a
language model. Targets on several outputs of one model are :mod:`ig_plugin._request.heads`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

# The rule objects, importable from here as before they had a module of their own.
from ig_plugin._request.rules import (
    MakesItsRule,
    Rule,
    TargetKind,
    TargetRule,
    has_many_targets,
)

__all__ = [
    "ALL",
    "MakesItsRule",
    "Rule",
    "TargetKind",
    "TargetRule",
    "choose_rule",
    "every_class",
    "has_many_targets",
    "normalise_target",
    "normalise_targets",
    "predicted_class",
    "target_rule",
]


def normalise_target(target: Any, n_rows: int, name: str = "target") -> np.ndarray | None:
    """Check what the caller gave as target and return it as an int64 array with leading dim N.

    Ints (numpy ones too) are repeated for every sample; lists, tuples and arrays must have
    leading dimension ``n_rows``. Whether the values fit the model output is checked later,
    by :func:`target_rule`, once the output shape is known.
    """
    if target is None:
        return None
    if isinstance(target, (bool, np.bool_)) or not (
        isinstance(target, (int, np.integer, list, tuple, np.ndarray))
    ):
        raise TypeError(
            f"`{name}` must be an int, a list, a tuple or an integer array. "
            f"Received: {type(target).__name__} {target!r}."
        )
    array = _int_array(target, name)
    if array.ndim == 0:
        array = np.full(n_rows, array.item())
    if array.ndim > 2:
        raise ValueError(
            f"`{name}` must have shape (N,) or, for outputs of rank > 2, (N, rank - 1). "
            f"Received: shape {array.shape}."
        )
    if array.shape[0] != n_rows:
        raise ValueError(
            f"`{name}` must have one entry per sample: leading dimension {n_rows}. "
            f"Received: shape {array.shape}."
        )
    return _non_negative(array, name)


def _int_array(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nesting: numpy's message does not name the argument
        raise ValueError(
            f"`{name}` must be rectangular: one int per sample, or one row of ints per sample. "
            f"Received: {value!r}."
        ) from error
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"`{name}` must hold integers (class indices). Received: dtype {array.dtype} "
            f"(values {array.ravel()[:5].tolist()})."
        )
    return array


def _non_negative(array: np.ndarray, name: str) -> np.ndarray:
    if array.size and (array < 0).any():
        raise ValueError(
            f"`{name}` must not be negative: targets are indices into the model output. "
            f"Received: minimum {array.min()}."
        )
    return array.astype(np.int64)


#: ``targets="all"``: every class of an ``(N, C)`` output.
ALL = "all"


def normalise_targets(targets: Any, n_rows: int) -> np.ndarray | str:
    """Check ``explain(..., targets=...)``: K targets per sample, explained in one pass.

    Returns :data:`ALL`, or the targets as an int64 array of rank 1 to 3. What a 2-D array
    means depends on the output, known once the model has run (:func:`target_rule`): ``(N, K)``
    class indices of an ``(N, C)`` output, or K index tuples ``(K, rank - 1)`` shared by every
    sample of an output of higher rank. A 3-D array ``(N, K, rank - 1)`` holds each sample's own
    tuples, so its leading dimension is checked here.
    """
    if isinstance(targets, str):
        if targets != ALL:
            raise ValueError(
                f"`targets` as a string must be {ALL!r} (every class). Received: {targets!r}."
            )
        return ALL
    if not isinstance(targets, (list, tuple, np.ndarray)):
        raise TypeError(
            "`targets` must be 'all', a list or array of K class indices, an (N, K) integer "
            "array, or for outputs of rank > 2 a list of K index tuples (position, class). "
            f"Received: {type(targets).__name__} {targets!r}."
        )
    if isinstance(targets, (list, tuple)) and not targets:
        targets = np.zeros(0, np.int64)  # an empty list has no integer dtype to check
    array = _int_array(targets, "targets")
    if array.size == 0 or not 1 <= array.ndim <= 3 or (array.ndim == 3 and len(array) != n_rows):
        raise ValueError(
            f"`targets` must hold K >= 1 targets: class indices, as a 1-D list for every sample "
            f"or an array of shape ({n_rows}, K); or for outputs of rank > 2, index tuples, as a "
            f"list of K tuples for every sample or an array of shape ({n_rows}, K, rank - 1). "
            f"Received: shape {array.shape}."
        )
    return _non_negative(array, "targets")


def every_class(output_shape: tuple[int, ...], n_rows: int) -> np.ndarray:
    """``targets="all"`` for an output of shape ``(C,)`` per sample: ``(N, C)`` indices."""
    if len(output_shape) != 1 or output_shape[0] < 2:
        raise ValueError(
            "`targets='all'` needs an output of shape (N, C) with C > 1 classes. The model "
            f"output has shape {output_shape} per sample"
            + (
                "; a single output has targets 0 and 1: pass targets=[0, 1]."
                if output_shape in ((), (1,))
                else "."
            )
        )
    return np.tile(np.arange(output_shape[0], dtype=np.int64), (n_rows, 1))


def target_rule(
    target: np.ndarray | None,
    output_shape: tuple[int, ...],
    name: str = "target",
    many: bool = False,
    n_rows: int = 0,
) -> TargetRule:
    """Match a normalised target with the model's output shape (batch axis excluded).

    With ``many``, ``target`` holds K targets per sample (``explain(targets=...)``, see
    :func:`normalise_targets`) for the ``n_rows`` samples: the rule's are ``(N, K)`` class
    indices, or ``(N, K, rank - 1)`` index tuples for an output of rank > 2.

    Raises
    ------
    ValueError
        The target is missing for a vector output, or its shape or values do not fit the output.
    """
    scalar_output = output_shape in ((), (1,))
    if many:
        if target is None:
            raise ValueError("`targets` is required with many=True.")
        return _many_targets_rule(target, output_shape, scalar_output, n_rows)
    if target is None:
        if scalar_output:
            return TargetRule(TargetKind.REGRESSION, None)
        raise ValueError(
            f"`{name}` is required: the model output has shape {output_shape} per sample, so "
            "say which element to explain (e.g. target=class index, or "
            "target_fn=functools.partial(np.argmax, axis=1) on the explainer)."
        )
    if scalar_output:
        _check_shape(target, 1, output_shape, name)
        if target.max() > 1:
            raise ValueError(
                f"`{name}` must be 0 or 1 for a model with a single output (1 explains p, "
                f"0 explains 1 - p). Received: maximum {target.max()}."
            )
        return TargetRule(TargetKind.BINARY, target)
    _check_shape(target, len(output_shape), output_shape, name)
    _check_range(target.reshape(target.shape[0], -1), output_shape, name)
    kind = TargetKind.INDEX if len(output_shape) == 1 else TargetKind.MULTI_INDEX
    return TargetRule(kind, target)


def _many_targets_rule(
    target: np.ndarray, output_shape: tuple[int, ...], scalar_output: bool, n_rows: int
) -> TargetRule:
    """K targets per sample (see :func:`normalise_targets`); shared ones copied to every
    sample."""
    if scalar_output or len(output_shape) == 1:
        depth, per_sample, example = 0, f"({n_rows}, K)", "class indices"
    else:
        depth = len(output_shape)
        per_sample = f"({n_rows}, K, {depth})"
        example = f"index tuples of length {depth}, one index per output axis (position, class)"
    shared = target.ndim == (2 if depth else 1)
    if shared:
        target = np.repeat(target[np.newaxis], n_rows, axis=0)
    if (
        target.shape[0] != n_rows
        or target.ndim != (3 if depth else 2)
        or (depth and target.shape[2] != depth)
    ):
        given = "a list of K tuples for every sample" if depth else "a 1-D list for every sample"
        raise ValueError(
            f"`targets` for a model output of shape {output_shape} per sample must be K "
            f"{example}: {given}, or an array of shape {per_sample}. Received: shape "
            f"{target.shape[1:] if shared else target.shape}."
        )
    if scalar_output:
        if target.max() > 1:
            raise ValueError(
                "`targets` must be 0 or 1 for a model with a single output (1 explains p, 0 "
                f"explains 1 - p). Received: maximum {target.max()}."
            )
        return TargetRule(TargetKind.BINARY, target)
    _check_range(target.reshape(-1, max(depth, 1)), output_shape, "targets")
    return TargetRule(TargetKind.MULTI_INDEX if depth else TargetKind.INDEX, target)


def _check_range(indices: np.ndarray, output_shape: tuple[int, ...], name: str) -> None:
    """``indices`` ``(n, len(output_shape))``, one column per output axis."""
    too_large = indices.max(axis=0) >= np.asarray(output_shape)
    if too_large.any():
        raise ValueError(
            f"`{name}` is out of range for the model output shape {output_shape}. "
            f"Received: maximum {indices.max(axis=0).tolist()}."
        )


def _check_shape(target: np.ndarray, rank: int, output_shape: tuple[int, ...], name: str) -> None:
    expected = (target.shape[0],) if rank == 1 else (target.shape[0], rank)
    if target.shape != expected:
        raise ValueError(
            f"`{name}` must have shape {expected} for a model output of shape {output_shape} "
            f"per sample. Received: shape {target.shape}."
        )


def predicted_class(predictions: np.ndarray) -> np.ndarray | None:
    """The target of a sample given none, as a ``target_fn``: the class a classifier predicts.

    The argmax of an ``(N, C)`` output with ``C > 1``; None otherwise (a regression or
    single-output model explains its output itself; an output of rank > 2 needs a target). The
    command line, Ray and the server explain requests without targets by it.
    """
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        return np.argmax(predictions, axis=1)
    return None


def choose_rule(
    target: np.ndarray | None,
    targets: np.ndarray | str | MakesItsRule | None,
    target_fn: Any,
    predictions: Any,
) -> Rule:
    """The rule of one explain, from its ``target``, its ``targets`` or the ``target_fn``.

    ``target`` and ``targets`` are normalised (:func:`normalise_target`,
    :func:`normalise_targets`, or targets on several outputs); at most one of the three is
    given. ``target_fn`` receives the predictions on X.

    Raises
    ------
    TypeError, ValueError
        The targets do not fit the model's output, or ``target_fn`` returns something that is not
        one target per sample.
    """
    if isinstance(targets, MakesItsRule):
        return targets.rule(predictions)
    output_shape, n_rows = predictions.shape[1:], len(predictions)
    if targets is not None:
        if isinstance(targets, str):
            targets = every_class(output_shape, n_rows)
        return target_rule(targets, output_shape, "targets", many=True, n_rows=n_rows)
    if target_fn is None:
        return target_rule(target, output_shape)
    given = target_fn(predictions)
    if given is None:  # a target_fn may decide the output needs no target (predicted_class)
        return target_rule(None, output_shape)
    name = "target_fn(predictions)"
    chosen = normalise_target(given, n_rows, name)
    rule = target_rule(chosen, output_shape, name)
    if rule.kind is TargetKind.BINARY:
        # alibi warns too: argmax over a single column is always 0, which explains 1 - p.
        zeros = np.count_nonzero(chosen == 0)
        warnings.warn(
            f"The model has a single output per sample, and `target_fn` chose target 0 (which "
            f"explains 1 - p) for {zeros} of {n_rows} samples and target 1 (p) for the "
            "others. A target_fn such as argmax over one column always gives 0: for a sigmoid "
            "classifier pass target=1 (or 0) to explain, and no target_fn; for a regression "
            "model neither.",
            UserWarning,
            stacklevel=4,
        )
    return rule
