"""The ``output`` argument: which output tensor of a model with several is explained.

A model may return one tensor, a list or tuple of tensors, or a dict of them. The caller picks one
with ``explain(..., output=...)``: an index, or a name (a dict key, or one of the model's
``output_names``). Only its type is known before the model runs; the engine applies it
(:func:`ig_plugin._engine.select.select_output`). Targets on several outputs at once are
:mod:`ig_plugin._request.heads`.

An output transform turns the picked output into what is explained: ``"log_softmax"`` makes a
language model's logits log-probabilities (:func:`ig_plugin.text.attribute_generation`).
"""

from __future__ import annotations

from typing import Any

from ig_plugin._request.checks import is_int

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


#: The output transforms the engine knows (:func:`ig_plugin._engine.select.transformed`).
TRANSFORMS = ("log_softmax",)


def check_transform(transform: Any) -> str | None:
    """Check an output transform: None, or one of :data:`TRANSFORMS`."""
    if transform is None or transform in TRANSFORMS:
        return transform  # type: ignore[no-any-return]
    raise ValueError(
        f"`output_transform` must be None or one of {list(TRANSFORMS)}. Received: {transform!r}."
    )
