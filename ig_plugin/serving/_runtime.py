"""The MLServer runtime: loads a model and its explainer, answers V2 requests with attributions."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import tensorflow as tf
from mlserver import MLModel
from mlserver.codecs.numpy import to_datatype
from mlserver.errors import InferenceError, MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor

from ig_plugin._model.signature import TensorSpec
from ig_plugin.serving._explaining import ServedExplainer
from ig_plugin.serving._limits import RequestTooLarge
from ig_plugin.serving._requests import decode_request
from ig_plugin.serving._responses import OPTIONAL_OUTPUTS, encode_response
from ig_plugin.serving._settings import read_settings

T = TypeVar("T")

#: What a bad request raises: ig_plugin's argument errors, the request checks, and TensorFlow's
#: own refusal of a value (a token id beyond the vocabulary). They become HTTP 400.
BAD_REQUEST_ERRORS = (ValueError, TypeError, tf.errors.InvalidArgumentError)

RESPONSE_NAMES = ("attributions", "deltas", "predictions", "target", *OPTIONAL_OUTPUTS)


def _message(error: BaseException) -> str:
    if not isinstance(error, tf.errors.OpError):
        return str(error)
    # A graph error's message is "Graph execution error:", the Python stack that defined the
    # failing node, then the reason, then the node's name: keep the reason.
    reasons = [
        line
        for line in error.message.splitlines()
        if line.strip()
        and not line.startswith((" ", "\t", "Graph execution error", "Detected at node"))
    ]
    reason = reasons[-1] if reasons else error.message
    return f"TensorFlow could not run the model on this input: {reason}"


def _metadata(spec: TensorSpec) -> MetadataTensor:
    return MetadataTensor(
        name=spec.name,
        datatype=to_datatype(spec.dtype),
        shape=[-1, *(-1 if dimension is None else dimension for dimension in spec.shape)],
    )


class IntegratedGradientsRuntime(MLModel):
    """An MLServer runtime that serves the explanations of a Keras model by any saved ig_plugin
    explainer: IntegratedGradients, ExpectedGradients or NoiseTunnel.

    Configured by ``model-settings.json``::

        {"name": "digits-ig",
         "implementation": "ig_plugin.serving.IntegratedGradientsRuntime",
         "parameters": {"uri": "explainer/",
                        "extra": {"model_uri": "model.keras"}}}

    ``uri`` is a folder written by an explainer's ``save`` (by default the settings' own
    folder), loaded by the class its ``meta.dill`` names; ``extra.init_parameters`` instead (the
    constructor's arguments, ``layer`` as a name or index) builds a fresh IntegratedGradients.
    Relative paths start at the settings' folder. ``extra.warmup`` (default
    true) explains zero inputs at load, so the first request costs what later ones do;
    ``extra.explain_threads`` (default 4) bounds the explanations computed at once;
    ``extra.max_request_samples`` (default 1000) and ``extra.max_request_values`` (default
    1,000,000) bound a request, which gets HTTP 413 beyond them.

    A request holds one input tensor for a one-input model, else one per model input named
    after it; optionally a ``target`` tensor (one int per sample) or the parameters ``target``,
    ``baselines`` (a number; not for ExpectedGradients, whose paths start at its background),
    ``output`` and ``attribute_to_layer_inputs``. Without a target, the explainer's
    ``target_fn`` applies, else argmax for a classifier. The response holds ``attributions``
    (``attributions_<input name>`` for several inputs), ``deltas``, ``predictions`` and
    ``target``, as typed tensors, and ``n_steps`` and ``error_estimates`` (``n_steps="auto"``)
    or ``expected_value`` (ExpectedGradients) when the explanation has them. A request that
    cannot be explained gets HTTP 400 with the reason.
    """

    async def load(self) -> bool:
        """Load the model and the explainer, and warm them up; MLServer calls it once.

        Raises
        ------
        FileNotFoundError, TypeError, ValueError
            The settings are incomplete or wrong, or the model does not fit the explainer.
        """
        settings = read_settings(self.settings)
        self._executor = ThreadPoolExecutor(
            max_workers=settings.explain_threads, thread_name_prefix=f"ig-{self.name}"
        )
        # Loading and warming up block for seconds: off the event loop, which serves the
        # health checks and the other models meanwhile.
        self._served = await self._in_thread(ServedExplainer.load, settings)
        signature = self._served.signature
        if (
            not self.settings.inputs
            and signature.inputs
            and all(spec.dtype is not None for spec in signature.inputs)
        ):
            self.inputs = [_metadata(spec) for spec in signature.inputs]
        return True

    async def unload(self) -> bool:
        """Let the running explanations finish and release the threads."""
        # Also called after a failed load, which may have stopped before making the executor.
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True)
        return True

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Explain one V2 request; MLServer calls it for ``POST /v2/models/<name>/infer``.

        Raises
        ------
        mlserver.errors.InferenceError
            The request cannot be explained (HTTP 400, gRPC INVALID_ARGUMENT), with the reason.
        mlserver.errors.MLServerError
            The request holds more samples or values than the settings allow (HTTP 413).
        """
        try:
            return await self._in_thread(self._respond, payload)
        except RequestTooLarge as error:
            # Before BAD_REQUEST_ERRORS, which holds its base class ValueError.
            raise MLServerError(str(error), status_code=413) from error
        except BAD_REQUEST_ERRORS as error:
            raise InferenceError(_message(error)) from error

    def _respond(self, payload: InferenceRequest) -> InferenceResponse:
        # All of it in a worker thread: decoding and encoding large tensors is CPU work too.
        served = self._served
        call = decode_request(payload, served.rules)
        for name in call.response_outputs or ():
            if name not in RESPONSE_NAMES and not name.startswith("attributions_"):
                raise ValueError(
                    f"The request asks for the output {name!r}; a response holds "
                    f"{list(RESPONSE_NAMES)} (attributions_<name> for several inputs)."
                )
        explanation = served.explain(call)
        return encode_response(
            explanation,
            served.signature.inputs,
            served.to_layer,
            self.name,
            self.version,
            call.response_outputs,
        )
