"""Writing an explanation as a V2 inference response of typed tensors.

Each array becomes one output tensor with the array's own shape and datatype: the attributions
keep their input's float dtype, ``deltas`` and ``target`` keep their leading sample axis alone
(MLServer's codec would add a trailing axis to 1-D arrays; the shape is set back here). The
per-sample arrays that only some explanations hold (:data:`OPTIONAL_OUTPUTS`) are added when the
explanation has them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from alibi.api.interfaces import Explanation
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceResponse, ResponseOutput

from ig_plugin._model.signature import TensorSpec

#: Per-sample arrays of ``Explanation.data`` that only some explanations hold, sent as tensors of
#: the same names: ``n_steps`` and ``error_estimates`` of ``n_steps="auto"``, Expected
#: Gradients' ``expected_value``, and XRAI's ``regions`` (each pixel's region rank).
OPTIONAL_OUTPUTS = ("n_steps", "error_estimates", "expected_value", "regions")


def attribution_names(n_tensors: int, specs: Sequence[TensorSpec], to_layer: bool) -> list[str]:
    """The response names of the attributions: ``attributions`` when there is one tensor.

    Several model inputs give ``attributions_<input name>``; several tensors of a layer give
    ``attributions_<position>``.
    """
    if n_tensors == 1:
        return ["attributions"]
    if not to_layer and len(specs) == n_tensors:
        return [f"attributions_{spec.name}" for spec in specs]
    return [f"attributions_{position}" for position in range(n_tensors)]


def _tensor(name: str, array: np.ndarray) -> ResponseOutput:
    output = NumpyCodec.encode_output(name, array)
    output.shape = list(array.shape)
    return output


def encode_response(
    explanation: Explanation,
    specs: Sequence[TensorSpec],
    to_layer: bool,
    model_name: str,
    model_version: str | None,
    wanted: Sequence[str] | None = None,
) -> InferenceResponse:
    """The response to one request.

    Parameters
    ----------
    explanation
        What ``explain`` returned.
    specs
        The model's inputs, which name the attributions of several inputs.
    to_layer
        Whether the attributions belong to a layer rather than the model inputs.
    model_name, model_version
        The served model's name and version.
    wanted
        The output tensors the request asks for, or None for all of them.

    Raises
    ------
    ValueError
        ``wanted`` names a tensor the response does not have.
    """
    attributions = explanation.data["attributions"]
    arrays = dict(
        zip(attribution_names(len(attributions), specs, to_layer), attributions, strict=True)
    )
    arrays["deltas"] = np.asarray(explanation.data["deltas"])
    arrays["predictions"] = np.asarray(explanation.data["predictions"])
    if explanation.data["target"] is not None:
        arrays["target"] = np.asarray(explanation.data["target"])
    for name in OPTIONAL_OUTPUTS:
        if explanation.data.get(name) is not None:
            arrays[name] = np.asarray(explanation.data[name])
    names = list(arrays) if wanted is None else list(wanted)
    unknown = [name for name in names if name not in arrays]
    if unknown:
        raise ValueError(
            f"The request asks for outputs {unknown}, which this explanation does not have. "
            f"Available: {list(arrays)}."
        )
    return InferenceResponse(
        model_name=model_name,
        model_version=model_version,
        outputs=[_tensor(name, arrays[name]) for name in names],
    )
