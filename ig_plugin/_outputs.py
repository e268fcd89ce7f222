"""Picking the explained output tensor of a model with several outputs.

A model may return one tensor, a list or tuple of tensors, or a dict of them. The caller picks one
with ``explain(..., output=...)``: an index, or a name (a dict key, or one of the model's
``output_names``). The same rule runs on concrete outputs and while tracing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from ig_plugin._params import is_int

OutputPick = int | str | None


def check_pick(output: Any) -> OutputPick:
    """Check the type of the ``output`` argument before any TensorFlow work."""
    if output is None or isinstance(output, str):
        return output
    if is_int(output) and output >= 0:
        return int(output)
    raise TypeError(
        "`output` must be None, a non-negative int (the output's position) or a str (its "
        f"name). Received: {output!r}"
    )


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


def select_output(outputs: Any, model: Any, pick: OutputPick) -> tf.Tensor:
    """The output tensor that ``pick`` names among ``outputs``.

    Raises
    ------
    ValueError
        Several outputs and no pick, or a pick that names none of them or a nested output.
    """
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
