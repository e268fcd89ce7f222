"""What a model declares about its inputs and outputs: the one description that the argument
checks, saving and serving all read.

Functional and Sequential models (with an ``Input``) declare their inputs and outputs; subclassed
models declare none, and their tensors are only known once they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """One tensor a model declares.

    Attributes
    ----------
    name
        For an input: the key to pass it by in a dict and the name of its tensor in a served
        request (the ``Input``'s name, or the key of a model declared with a dict of inputs).
        For an output: its name among the model's ``output_names``.
    shape
        Its shape without the batch axis, None where the model leaves a dimension open.
    dtype
        Its dtype as a numpy dtype, or None if numpy has no such dtype (strings, bfloat16).
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype | None

    @property
    def fully_known(self) -> bool:
        """Whether every dimension but the batch axis is known."""
        return all(dimension is not None for dimension in self.shape)

    @property
    def known_shape(self) -> tuple[int, ...]:
        """``shape``, of a tensor whose dimensions are all known (see :attr:`fully_known`)."""
        return tuple(int(dimension or 0) for dimension in self.shape)

    def accepts(self, rows: tuple[int, ...]) -> bool:
        """Whether rows of shape ``rows`` (without the batch axis) fit this tensor."""
        return len(rows) == len(self.shape) and all(
            want is None or want == got for want, got in zip(self.shape, rows, strict=True)
        )


@dataclass(frozen=True)
class ModelSignature:
    """A model's declared inputs and outputs, in its order; both empty when it declares none.

    Attributes
    ----------
    inputs, outputs
        One :class:`TensorSpec` per input and per output tensor.
    takes_dict
        The model was declared with a dict of inputs, and is called with one.
    """

    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    takes_dict: bool = False

    @property
    def output(self) -> TensorSpec | None:
        """The output, for a model with exactly one output tensor."""
        return self.outputs[0] if len(self.outputs) == 1 else None

    def shapes(self) -> dict[str, Any] | None:
        """The shapes a saved explainer keeps of its model (``{"inputs": [...], "output":
        [...]}``, the format of every release), or None if the model declares them not."""
        if not self.inputs or self.output is None:
            return None
        return {
            "inputs": [list(spec.shape) for spec in self.inputs],
            "output": list(self.output.shape),
        }


def _numpy_dtype(dtype: Any) -> np.dtype | None:
    try:
        return np.dtype(getattr(dtype, "name", dtype))
    except TypeError:
        return None


def _layer_name(tensor: Any) -> str | None:
    """The name of the layer that made ``tensor`` (an ``InputLayer``'s is its input's name):
    Keras 3, tf_keras and Keras 2 all record it in the tensor's history."""
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) or getattr(history, "layer", None)
    if layer is None and isinstance(history, tuple) and history:
        layer = history[0]
    name = getattr(layer, "name", None)
    return None if name is None else str(name)


def _spec(tensor: Any, name: str | None, position: int, kind: str) -> TensorSpec:
    name = name or _layer_name(tensor) or str(getattr(tensor, "name", "")) or f"{kind}_{position}"
    return TensorSpec(
        name=name.split(":")[0],  # Keras 2 graph tensors are named "input_1:0"
        shape=tuple(None if d is None else int(d) for d in list(tensor.shape)[1:]),
        dtype=_numpy_dtype(tensor.dtype),
    )


def _tensors(model: Any, attribute: str) -> list[Any]:
    try:
        return list(getattr(model, attribute, None) or [])
    except Exception:  # some Keras versions raise on models that were never built
        return []


def signature_of(model: Any) -> ModelSignature:
    """What ``model`` declares (Keras 3, tf_keras, Keras 2); empty for a subclassed model."""
    inputs, outputs = _tensors(model, "inputs"), _tensors(model, "outputs")
    # A model declared with a dict of inputs takes them by the dict's keys, which Keras keeps
    # (Keras 3: _inputs_struct; tf_keras and Keras 2: _nested_inputs) and flattens sorted.
    structs = (getattr(model, name, None) for name in ("_inputs_struct", "_nested_inputs"))
    struct = next((s for s in structs if isinstance(s, dict)), None)
    takes_dict = struct is not None and len(struct) == len(inputs) > 0
    input_names: list[str | None] = (
        [str(key) for key in sorted(struct)] if takes_dict and struct else [None] * len(inputs)
    )
    output_names = list(getattr(model, "output_names", None) or [])
    if len(output_names) != len(outputs):
        output_names = [None] * len(outputs)
    return ModelSignature(
        inputs=tuple(
            _spec(tensor, name, i, "input")
            for i, (tensor, name) in enumerate(zip(inputs, input_names, strict=True))
        ),
        outputs=tuple(
            _spec(tensor, name, i, "output")
            for i, (tensor, name) in enumerate(zip(outputs, output_names, strict=True))
        ),
        takes_dict=takes_dict,
    )
