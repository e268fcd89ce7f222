"""The target rule: which scalar of the model output is explained, for each sample.

One rule serves the gradient passes, the deltas and the checks, so they can never disagree:

- scalar output (shape ``(N,)`` or ``(N, 1)``) and no target: regression, explain the output;
- scalar output with targets: a binary classifier giving ``p``; target 1 explains ``p`` and
  target 0 explains ``1 - p``;
- vector output ``(N, C)``: target ``t`` (shape ``(N,)``) explains ``output[:, t]``;
- output of rank > 2 ``(N, d1, ..., dk)``: target ``(N, k)`` indexes the non-batch axes.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np


class TargetKind(enum.Enum):
    REGRESSION = "regression"
    BINARY = "binary"
    INDEX = "index"
    MULTI_INDEX = "multi_index"


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

    Returns :data:`ALL`, or an int64 array ``(N, K)``: a 1-D list or array of K class indices
    is used for every sample. Whether they fit the output is checked by :func:`target_rule`.
    """
    if isinstance(targets, str):
        if targets != ALL:
            raise ValueError(
                f"`targets` as a string must be {ALL!r} (every class). Received: {targets!r}."
            )
        return ALL
    if not isinstance(targets, (list, tuple, np.ndarray)):
        raise TypeError(
            "`targets` must be 'all', a list or array of K class indices, or an (N, K) integer "
            f"array. Received: {type(targets).__name__} {targets!r}."
        )
    if isinstance(targets, (list, tuple)) and not targets:
        targets = np.zeros(0, np.int64)  # an empty list has no integer dtype to check
    array = _int_array(targets, "targets")
    if array.ndim == 1:
        array = np.broadcast_to(array, (n_rows, array.size))
    if array.ndim != 2 or array.shape[0] != n_rows or array.shape[1] == 0:
        raise ValueError(
            f"`targets` must hold K >= 1 class indices, as a 1-D list for every sample or an "
            f"array of shape ({n_rows}, K). Received: shape {np.shape(targets)}."
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


@dataclass(frozen=True)
class TargetRule:
    """How one scalar per sample is taken from the model output.

    Attributes
    ----------
    kind
        Which of the four cases of the module docstring applies.
    target
        int64 indices, shape ``(N,)`` or ``(N, k)``; None for regression.
    """

    kind: TargetKind
    target: np.ndarray | None

    @property
    def many(self) -> bool:
        """Several targets per sample (``explain(targets=...)``): ``target`` is ``(N, K)``."""
        return self.target is not None and has_many_targets(self.kind, self.target.ndim)

    @property
    def n_targets(self) -> int:
        """K, the targets per sample: ``target.shape[1]`` with several, else 1."""
        return self.target.shape[1] if self.many and self.target is not None else 1

    def points_per_chunk(self, batch_size: int) -> int:
        """Path points per gradient batch when each point counts once per target."""
        return max(1, batch_size // self.n_targets)

    def rows(self, samples: np.ndarray | slice) -> TargetRule:
        """The rule for some of the samples only."""
        return self if self.target is None else TargetRule(self.kind, self.target[samples])


def has_many_targets(kind: TargetKind, target_rank: int) -> bool:
    """Whether targets of this rank (batch axis included) name several outputs per sample.

    One target per sample has rank 1, or 2 for outputs of rank > 2 (an index per axis); K
    targets per sample add an axis after the batch.
    """
    return target_rank > (2 if kind is TargetKind.MULTI_INDEX else 1)


def target_rule(
    target: np.ndarray | None,
    output_shape: tuple[int, ...],
    name: str = "target",
    many: bool = False,
) -> TargetRule:
    """Match a normalised target with the model's output shape (batch axis excluded).

    With ``many``, ``target`` is ``(N, K)``: K targets per sample (``explain(targets=...)``),
    for outputs of shape ``(C,)`` or a single output.

    Raises
    ------
    ValueError
        The target is missing for a vector output, or its shape or values do not fit the output.
    """
    scalar_output = output_shape in ((), (1,))
    if many:
        return _many_targets_rule(target, output_shape, scalar_output)
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
    columns = target.reshape(target.shape[0], -1)
    too_large = columns.max(axis=0) >= np.asarray(output_shape)
    if too_large.any():
        raise ValueError(
            f"`{name}` is out of range for the model output shape {output_shape}. "
            f"Received: maximum {columns.max(axis=0).tolist()}."
        )
    kind = TargetKind.INDEX if len(output_shape) == 1 else TargetKind.MULTI_INDEX
    return TargetRule(kind, target)


def _many_targets_rule(
    target: Any, output_shape: tuple[int, ...], scalar_output: bool
) -> TargetRule:
    if scalar_output:
        if target.max() > 1:
            raise ValueError(
                "`targets` must be 0 or 1 for a model with a single output (1 explains p, 0 "
                f"explains 1 - p). Received: maximum {target.max()}."
            )
        return TargetRule(TargetKind.BINARY, target)
    if len(output_shape) != 1:
        raise ValueError(
            f"`targets` needs an output of shape (N, C); this model's output has shape "
            f"{output_shape} per sample: explain its elements one by one with `target`."
        )
    if target.max() >= output_shape[0]:
        raise ValueError(
            f"`targets` is out of range for the model output shape {output_shape}. "
            f"Received: maximum {target.max()}."
        )
    return TargetRule(TargetKind.INDEX, target)


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
    targets: np.ndarray | str | None,
    target_fn: Any,
    predictions: np.ndarray,
) -> TargetRule:
    """The rule of one explain, from its ``target``, its ``targets`` or the ``target_fn``.

    ``target`` and ``targets`` are normalised (:func:`normalise_target`,
    :func:`normalise_targets`); at most one of the three is given. ``target_fn`` receives the
    predictions on X.

    Raises
    ------
    TypeError, ValueError
        The targets do not fit the model's output, or ``target_fn`` returns something that is not
        one target per sample.
    """
    output_shape, n_rows = predictions.shape[1:], len(predictions)
    if targets is not None:
        if isinstance(targets, str):
            targets = every_class(output_shape, n_rows)
        return target_rule(targets, output_shape, "targets", many=True)
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
