"""One served explainer: the model, its explainer, what a request may give it, and the rule for a
request without a target.

Shared by every request of the model, from several threads at once: it holds no per-request
state, and the explainers are safe to call concurrently.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation

from ig_plugin._model.loading import load_model
from ig_plugin._model.signature import ModelSignature, signature_of
from ig_plugin._request.targets import predicted_class
from ig_plugin.serving import _explainers, _loading
from ig_plugin.serving._limits import DEFAULT_MAX_SAMPLES, DEFAULT_MAX_VALUES
from ig_plugin.serving._requests import PARAMETERS, ExplainCall, RequestRules
from ig_plugin.serving._settings import RuntimeSettings

logger = logging.getLogger(__name__)

#: Sample counts of the warm-up explanations: two sizes, so the compiled functions are traced
#: for any number of samples (``reduce_retracing`` generalises the second trace).
WARMUP_SIZES = (1, 2)


class _WarmupTracingFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warnings in warming-up threads.

    A warm-up traces every compiled function on purpose (each pass, two sizes), which trips
    TensorFlow's detector of accidental retracing; its advice does not apply there. Other
    threads, and so real requests, keep the warning.
    """

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads or "retracing" not in record.getMessage()


_WARMUP_FILTER = _WarmupTracingFilter()
logging.getLogger("tensorflow").addFilter(_WARMUP_FILTER)


@contextlib.contextmanager
def _tracing_on_purpose() -> Iterator[None]:
    thread = threading.get_ident()
    _WARMUP_FILTER.threads.add(thread)
    try:
        yield
    finally:
        _WARMUP_FILTER.threads.discard(thread)


@dataclass(repr=False)
class ServedExplainer:
    """A Keras model and its explainer, as served.

    Attributes
    ----------
    model
        The Keras model.
    explainer
        Its explainer: any ig_plugin explainer (:mod:`ig_plugin._explainer.registry`).
    signature
        What the model declares about its inputs and output.
    max_samples, max_values
        The most samples, and values in all tensors, a request may hold.
    """

    model: Any
    explainer: Any
    signature: ModelSignature
    max_samples: int = DEFAULT_MAX_SAMPLES
    max_values: int = DEFAULT_MAX_VALUES

    def __post_init__(self) -> None:
        # The explainer of the model (the wrapped one, for NoiseTunnel and XRAI): its layer,
        # target_fn, internal_batch_size and explain arguments are the ones that apply.
        self._model_explainer = _explainers.model_explainer(self.explainer)
        arguments = _explainers.explain_arguments(self.explainer)
        self._takes = arguments
        self.rules = RequestRules(
            inputs=self.signature.inputs,
            parameters=frozenset(name for name in PARAMETERS if name in arguments),
            explainer=type(self.explainer).__name__,
            max_samples=self.max_samples,
            max_values=self.max_values,
        )
        # A request without a target explains what the model predicts (a classifier's class),
        # chosen from the predictions explain computes anyway: a copy with that target_fn,
        # sharing the compiled passes. An explainer's own target_fn comes first.
        self._by_prediction = self.explainer
        if self._model_explainer.target_fn is None:
            self._by_prediction = self.explainer.with_target_fn(predicted_class)

    @classmethod
    def load(cls, settings: RuntimeSettings) -> ServedExplainer:
        """Load the model and the explainer that ``settings`` name, and warm them up if asked."""
        model = load_model(settings.model_uri)
        explainer = _loading.load_explainer(settings, model)
        served = cls(
            model,
            explainer,
            signature_of(model),
            settings.max_request_samples,
            settings.max_request_values,
        )
        if settings.warmup:
            served.warm_up()
        return served

    @property
    def to_layer(self) -> bool:
        """Whether attributions go to a layer rather than the model inputs."""
        return self._model_explainer.layer is not None

    def explain(self, call: ExplainCall) -> Explanation:
        """Explain one request's inputs with its target, baselines and output.

        Without a target, the explainer's ``target_fn`` applies if it has one; else a
        classifier explains the class it predicts, and a regression or single-output model its
        output itself (:func:`~ig_plugin._request.targets.predicted_class`).
        """
        arguments: dict[str, Any] = {
            "attribute_to_layer_inputs": call.attribute_to_layer_inputs,
            "output": call.output,
        }
        # Only what the explainer's explain takes (Guided IG and Blur IG take no layer or
        # output arguments); decode_request has refused a request that gives the others.
        arguments = {name: value for name, value in arguments.items() if name in self._takes}
        if call.baselines is not None:  # decode_request let it through: the explainer takes it
            arguments["baselines"] = call.baselines
        if call.target is not None:
            return self.explainer.explain(call.X, target=call.target, **arguments)
        return self._by_prediction.explain(call.X, **arguments)

    def warm_up(self) -> None:
        """Explain zero inputs, so that no request pays for tracing.

        Skipped, with a log line, when the model does not declare the full shape of its inputs
        (nothing to make zeros of) or when a zero input cannot be explained without request
        arguments (a model with several outputs needs ``output``).
        """
        inputs = self.signature.inputs
        if not inputs or not all(spec.fully_known and spec.dtype is not None for spec in inputs):
            logger.info("No warm-up: the model does not declare the full shape of its inputs.")
            return
        with _tracing_on_purpose():
            for n_samples in WARMUP_SIZES:
                arrays = [np.zeros((n_samples, *spec.known_shape), spec.dtype) for spec in inputs]
                try:
                    self.explain(ExplainCall(X=arrays if len(arrays) > 1 else arrays[0]))
                except (ValueError, TypeError) as error:
                    logger.info(
                        "No warm-up: a zero input cannot be explained by default: %s", error
                    )
                    return
