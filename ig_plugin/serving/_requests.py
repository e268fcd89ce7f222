"""Reading a V2 inference request into the arguments of one ``explain`` call.

Everything here is numpy and runs before any TensorFlow work: a request that cannot be explained
fails with a ValueError or TypeError naming the tensor or parameter, which the runtime answers
with HTTP 400.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlserver.codecs import NumpyCodec
from mlserver.types import Datatype, InferenceRequest, RequestInput

from ig_plugin._model.signature import TensorSpec
from ig_plugin._request.checks import is_real
from ig_plugin.serving._limits import check_request_size

#: The input tensor holding one target per sample; the other tensors are model inputs.
TARGET_TENSOR = "target"

#: The request parameters the runtime reads, and what each one is.
PARAMETERS = {
    "target": "one class index for every sample (an int)",
    "baselines": "the baseline of every feature (a number; default 0)",
    "output": "for a model with several output tensors, which one: its position or name",
    "attribute_to_layer_inputs": "with a layer explainer, attribute to the layer's inputs",
}

#: Request parameters of the V2 protocol's clients that ask nothing of an explanation: accepted
#: and ignored. tritonclient's HTTP client sends ``binary_data_output`` with every request that
#: lists no outputs (the answer is JSON all the same, which it reads), and ``priority`` and
#: ``timeout`` when asked to (scheduling hints for a queue this runtime does not have).
PROTOCOL_PARAMETERS = ("binary_data_output", "priority", "timeout")

#: V2 datatypes that hold no numbers to interpolate.
NOT_NUMBERS = ("BYTES", "BOOL")


@dataclass(frozen=True)
class RequestRules:
    """What one served model takes in a request.

    Attributes
    ----------
    inputs
        The model's declared inputs (none for a subclassed model, which then takes one tensor of
        any shape).
    parameters
        The request parameters (keys of :data:`PARAMETERS`) its explainer takes.
    explainer
        The explainer's class name, for messages.
    max_samples, max_values
        The most samples, and values in all tensors, a request may hold.
    """

    inputs: tuple[TensorSpec, ...]
    parameters: frozenset[str]
    explainer: str
    max_samples: int
    max_values: int


@dataclass(frozen=True)
class ExplainCall:
    """The arguments of one ``explain`` call, read from a request.

    Attributes
    ----------
    X
        One array for a one-input model, else a list in the model's input order.
    target
        None, one int for all samples, or an integer array with one row per sample.
    baselines
        None (zeros) or one number.
    output
        Which output tensor to explain, for a model with several.
    attribute_to_layer_inputs
        As in ``explain``.
    response_outputs
        The output tensors the request asks for, or None for all of them.
    """

    X: np.ndarray | list[np.ndarray]
    target: int | np.ndarray | None = None
    baselines: float | None = None
    output: int | str | None = None
    attribute_to_layer_inputs: bool = False
    response_outputs: tuple[str, ...] | None = None

    @property
    def arrays(self) -> list[np.ndarray]:
        return self.X if isinstance(self.X, list) else [self.X]


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return str([-1, *(-1 if dimension is None else dimension for dimension in shape)])


def _datatype(tensor: RequestInput) -> str:
    # MLServer's types keep the enum's value, or the enum when built in Python.
    return Datatype(tensor.datatype).value


def decode_tensor(tensor: RequestInput) -> np.ndarray:
    """The tensor's data as a numpy array of its datatype and shape.

    Raises
    ------
    TypeError
        The datatype holds no numbers (BYTES, BOOL).
    ValueError
        The shape has a negative dimension, or the data do not fill it or are not of the
        datatype.
    """
    datatype = _datatype(tensor)
    if datatype in NOT_NUMBERS:
        raise TypeError(
            f"Input tensor {tensor.name!r} has datatype {datatype}; explanations need numbers "
            "(FP32, FP64, or INT32/INT64 for token ids and targets)."
        )
    if any(dimension < 0 for dimension in tensor.shape):
        raise ValueError(
            f"Input tensor {tensor.name!r} has shape {tensor.shape}; a request's shapes must be "
            "concrete (no -1)."
        )
    try:
        return NumpyCodec.decode_input(tensor)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Input tensor {tensor.name!r} cannot be read as {datatype} of shape {tensor.shape} "
            f"({math.prod(tensor.shape)} values): {error}."
        ) from error


def _check_shape(array: np.ndarray, spec: TensorSpec, tensor_name: str) -> None:
    if array.ndim >= 1 and spec.accepts(array.shape[1:]):
        return
    raise ValueError(
        f"Input tensor {tensor_name!r} must have shape {_shape_text(spec.shape)} for the model "
        f"input {spec.name!r} (-1: any size; the first axis counts samples). "
        f"Received: shape {list(array.shape)}."
    )


def _check_has_samples(tensors: list[RequestInput]) -> None:
    """Refuse a tensor without samples, from its declared shape, before it is decoded."""
    for tensor in tensors:
        if tensor.shape and tensor.shape[0] == 0:
            raise ValueError(
                f"Input tensor {tensor.name!r} holds no samples (shape {tensor.shape}): send at "
                "least one."
            )


def _model_inputs(tensors: list[RequestInput], specs: tuple[TensorSpec, ...]) -> list[np.ndarray]:
    """The model's inputs in its order: any one tensor for one input, else one per input name."""
    _check_has_samples(tensors)
    if len(specs) <= 1:
        if len(tensors) != 1:
            raise ValueError(
                "The model has one input: send one input tensor (any name) besides an optional "
                f"{TARGET_TENSOR!r}. Received: {[t.name for t in tensors]}."
            )
        array = decode_tensor(tensors[0])
        if specs:
            _check_shape(array, specs[0], tensors[0].name)
        return [array]
    names = [spec.name for spec in specs]
    given = [tensor.name for tensor in tensors]
    if sorted(given) != sorted(names):
        unknown = sorted(set(given) - set(names))
        missing = [name for name in names if name not in given]
        raise ValueError(
            f"The model's inputs are {names}: send one input tensor named after each. "
            f"Received: {given} (unknown: {unknown}, missing: {missing})."
        )
    by_name = {tensor.name: tensor for tensor in tensors}
    arrays = []
    for spec in specs:
        array = decode_tensor(by_name[spec.name])
        _check_shape(array, spec, spec.name)
        arrays.append(array)
    return arrays


def _target_tensor(tensor: RequestInput) -> np.ndarray:
    datatype = _datatype(tensor)
    if datatype not in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16"):
        raise TypeError(
            f"The {TARGET_TENSOR!r} tensor must hold integers (INT32 or INT64): one class index "
            f"per sample. Received: datatype {datatype}."
        )
    target = decode_tensor(tensor)
    # [N, 1] is how clients that add a trailing axis to 1-D tensors (MLServer's NumpyCodec)
    # send one index per sample.
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    return target


def _check_applies(names: list[str], rules: RequestRules) -> None:
    if names:
        raise ValueError(
            f"The request parameters {names} do not apply to this model's {rules.explainer}, "
            f"which takes {[name for name in PARAMETERS if name in rules.parameters]}."
        )


def _parameters(request: InferenceRequest, rules: RequestRules) -> dict[str, Any]:
    extra = dict(request.parameters.model_extra or {}) if request.parameters else {}
    # Keys with a leading underscore are MLServer's own bookkeeping (e.g. decoded payloads).
    given = {
        key: value
        for key, value in extra.items()
        if not key.startswith("_") and key not in PROTOCOL_PARAMETERS
    }
    unknown = sorted(set(given) - set(PARAMETERS))
    if unknown:
        raise ValueError(
            f"Unknown request parameters {unknown}. Known parameters: {list(PARAMETERS)} "
            f"(and the protocol's {list(PROTOCOL_PARAMETERS)}, which change nothing)."
        )
    _check_applies(sorted(set(given) - rules.parameters), rules)
    baselines = given.get("baselines")
    if baselines is not None and not is_real(baselines):
        raise TypeError(
            "The request parameter `baselines` must be a number (the baseline of every "
            f"feature). Received: {baselines!r}."
        )
    return given


def decode_request(request: InferenceRequest, rules: RequestRules) -> ExplainCall:
    """Read ``request`` into an :class:`ExplainCall` for a model served by ``rules``.

    Raises
    ------
    RequestTooLarge
        The request holds more samples or values than ``rules`` allow (checked first, from the
        declared shapes).
    TypeError, ValueError
        The request does not fit the model, its explainer or the protocol; the message says
        how.
    """
    check_request_size(request.inputs, rules.max_samples, rules.max_values)
    specs = rules.inputs
    parameters = _parameters(request, rules)
    targets = [tensor for tensor in request.inputs if tensor.name == TARGET_TENSOR]
    data = [tensor for tensor in request.inputs if tensor.name != TARGET_TENSOR]
    if len(targets) > 1:
        raise ValueError(f"The request has {len(targets)} tensors named {TARGET_TENSOR!r}.")
    target: int | np.ndarray | None = parameters.get("target")
    if targets:
        if target is not None:
            raise ValueError(
                f"Give the target either as the {TARGET_TENSOR!r} tensor or as the `target` "
                "parameter, not both."
            )
        target = _target_tensor(targets[0])
    arrays = _model_inputs(data, specs)
    outputs = None
    if request.outputs:
        outputs = tuple(requested.name for requested in request.outputs)
    return ExplainCall(
        X=arrays if len(specs) > 1 else arrays[0],
        target=target,
        baselines=parameters.get("baselines"),
        output=parameters.get("output"),
        attribute_to_layer_inputs=parameters.get("attribute_to_layer_inputs", False),
        response_outputs=outputs,
    )
