"""Which scalar of the model's outputs is explained: the output tensor, then the target's element.

One rule serves the gradient passes, the deltas and the checks, so they can never disagree: the
compiled passes call it while tracing, and :func:`explained` applies it to outputs already on the
host. The rule's plain description (:class:`~ig_plugin._request.targets.TargetRule`, the
``output`` pick) comes from the request checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ig_plugin._request.heads import Picks
from ig_plugin._request.request import ModelCall
from ig_plugin._request.rules import Rule, TargetKind


def select_scalar(
    kind: TargetKind | tuple[TargetKind, ...],
    outputs: Any,
    target_rows: Any,
    many: bool = False,
) -> tf.Tensor:
    """TensorFlow side of the rule; ``target_rows`` holds the targets of ``outputs``' rows.

    Returns ``(n,)``, or ``(n, K)`` when each row has K targets (``many``: said, not read off
    the targets' rank, which a compiled function may leave unknown). With several heads,
    ``kind``, ``outputs`` and ``target_rows`` are tuples, one entry per head, and the heads'
    targets are concatenated on one K axis.
    """
    if isinstance(kind, tuple):
        return tf.concat(
            [
                select_scalar(k, o, t, many=True)
                for k, o, t in zip(kind, outputs, target_rows, strict=True)
            ],
            axis=1,
        )
    if kind is TargetKind.REGRESSION:
        return tf.reshape(outputs, [-1])
    if kind is TargetKind.BINARY:
        p = tf.reshape(outputs, [-1])
        t = tf.cast(target_rows, p.dtype)
        if many:
            p = p[:, tf.newaxis]
        # t = 1 gives p, t = 0 gives 1 - p: the gradient's sign follows the target.
        return t * p + (1 - t) * (1 - p)
    # batch_dims=1: row i's targets index row i; K targets per row give K values.
    if kind is TargetKind.INDEX:
        return tf.gather(outputs, target_rows, batch_dims=1)
    return tf.gather_nd(outputs, target_rows, batch_dims=1)


def _names(outputs: Any, model: Any) -> list[str]:
    if isinstance(outputs, Mapping):
        return [str(key) for key in outputs]
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == len(outputs) else [str(i) for i in range(len(outputs))]


def _nested(value: Any) -> str:
    count = len(value) if isinstance(value, (Mapping, Sequence)) else 1
    return f"a {type(value).__name__} of {count} values"


def _what(value: Any) -> str:
    if tf.is_tensor(value) or hasattr(value, "shape"):
        return f"of shape {tuple(value.shape[1:])}"
    return f"({_nested(value)}, not a tensor)"


def _listing(outputs: Any, model: Any) -> str:
    values = list(outputs.values()) if isinstance(outputs, Mapping) else list(outputs)
    return ", ".join(
        f"[{i}] {name!r} {_what(value)}"
        for i, (name, value) in enumerate(zip(_names(outputs, model), values, strict=True))
    )


def select_output(outputs: Any, model: Any, pick: Picks) -> Any:
    """The output tensor that ``pick`` names among ``outputs``; a tuple of them for a tuple of
    picks (several heads). A container of one tensor (a Hugging Face model's output holding
    only ``logits``) needs no pick.

    Raises
    ------
    ValueError
        Several outputs and no pick, or a pick that names none of them or a nested output.
    """
    if isinstance(pick, tuple):
        return tuple(select_output(outputs, model, one) for one in pick)
    if pick is None and isinstance(outputs, (Mapping, Sequence)) and len(outputs) == 1:
        only = next(iter(outputs.values())) if isinstance(outputs, Mapping) else outputs[0]
        if tf.is_tensor(only):
            return only
    if tf.is_tensor(outputs):
        single_names = list(getattr(model, "output_names", None) or [])[:1]
        if pick in (None, 0) or (isinstance(pick, str) and pick in single_names):
            return outputs
        raise ValueError(
            f"`output` is {pick!r}, but the model has a single output tensor: leave output=None."
        )
    if not isinstance(outputs, (Mapping, Sequence)):
        raise TypeError(f"The model returned a {type(outputs).__name__}, not tensors.")
    if pick is None:
        raise ValueError(
            f"The model has {len(outputs)} outputs: {_listing(outputs, model)}. Say which to "
            "explain with explain(..., output=index or name)."
        )
    names = _names(outputs, model)
    values = list(outputs.values()) if isinstance(outputs, Mapping) else list(outputs)
    picked = None
    if isinstance(pick, str) and pick in names:
        picked = values[names.index(pick)]
    elif isinstance(pick, int) and pick < len(values):
        picked = values[pick]
    if picked is not None:
        if not tf.is_tensor(picked):
            raise ValueError(
                f"`output` {pick!r} names {_nested(picked)}, not one tensor; pick a tensor among "
                f"the model's outputs: {_listing(outputs, model)}."
            )
        return picked
    raise ValueError(
        f"`output` {pick!r} names none of the model's {len(outputs)} outputs: "
        f"{_listing(outputs, model)}."
    )


def transformed(selected: Any, transform: str | None) -> Any:
    """The picked output(s) as explained: unchanged, or log-probabilities over the last axis."""
    if transform is None:
        return selected
    return tf.nest.map_structure(lambda tensor: tf.nn.log_softmax(tensor, axis=-1), selected)


def select(outputs: Any, model: Any, call: ModelCall) -> Any:
    """What the explain explains of the model's outputs: the picked tensor (one per head),
    transformed."""
    return transformed(select_output(outputs, model, call.pick), call.transform)


def explained(rule: Rule, outputs: Any) -> np.ndarray:
    """The explained scalar of each row of model outputs (one array per head, with several), in
    their dtype: ``(N,)``, or ``(N, K)`` with several targets."""
    targets = None if rule.target is None else tf.nest.map_structure(tf.constant, rule.target)
    values = tf.nest.map_structure(tf.constant, outputs)
    selected = select_scalar(rule.kind, values, targets, rule.many)
    result: np.ndarray = selected.numpy()
    return result
