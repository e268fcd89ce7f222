"""ig_plugin's explainers as Quantus' ``explain_func``: signed attributions, batched, on the
compiled engine.

Quantus' own TensorFlow route to Integrated Gradients goes through tf-explain, which returns the
mean path gradient without the ``(x - x')`` factor, unsigned, one sample at a time (Quantus issue
139); this one returns ig_plugin's attributions of the whole batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ig_plugin._request.checks import describe

#: Keywords Quantus adds to every call of an explain_func, which an explainer does not take.
_QUANTUS_KEYWORDS = ("device",)


def quantus_explain_func(explainer_class: Any, **init_kwargs: Any) -> Callable[..., np.ndarray]:
    """An ``explain_func`` for Quantus' metrics that explains with an ig_plugin explainer.

    ``quantus_explain_func(IntegratedGradients, n_steps=64)`` returns ``explain_func(model,
    inputs, targets, **kwargs)``, which explains the batch ``inputs`` for ``targets`` (one class
    index per sample) with ``IntegratedGradients(model, n_steps=64)`` and returns the signed
    attributions as a numpy array. Quantus calls it once per batch; the explainer is built once
    per model (kept for the last model it was called with), so its compiled passes are traced
    once, not per batch. Leave Quantus' ``abs`` and ``normalise`` off to evaluate signed
    attributions.

    Channel order (Quantus 0.6.0): pass a Keras model's images to a Quantus metric as Keras
    takes them, channel-last, with ``channel_first=False``. Quantus holds them channel-first
    inside, gives the model and this ``explain_func`` channel-last batches, and expects
    channel-first attributions back, which this function returns: images ``(N, H, W, C)`` get
    attributions ``(N, 1, H, W)``, each pixel's attributions summed over its channels (Quantus
    broadcasts them over the channels). The sum is forced for ``C > 1``: Quantus compares the
    attributions of an ``explain_func`` with the channel-last batch and refuses any
    ``(N, C, H, W)`` array then. Attributions computed beforehand with ``explain`` keep every
    channel as ``a_batch=np.moveaxis(attributions, -1, 1)`` (with ``x_batch`` channel-last and
    ``channel_first=False``). Other inputs (tables, sequences) are returned as they are.

    Parameters
    ----------
    explainer_class
        An ig_plugin explainer class, or any callable ``(model, **init_kwargs) -> explainer``
        (e.g. ``lambda model: NoiseTunnel(IntegratedGradients(model), seed=0)``).
    **init_kwargs
        Passed to ``explainer_class`` with the model.

    Returns
    -------
    Callable
        ``explain_func(model, inputs, targets, **kwargs) -> np.ndarray`` (float64); ``kwargs`` go
        to the explainer's ``explain`` (``baselines``, ...), except Quantus' ``device``.

    Raises
    ------
    TypeError
        ``explainer_class`` is not callable.
    """
    if not callable(explainer_class):
        raise TypeError(
            "`explainer_class` must be an ig_plugin explainer class or a callable "
            f"(model, **init_kwargs) -> explainer. Received: {describe(explainer_class)}."
        )
    explainers = _LastModel(explainer_class, init_kwargs)

    def explain_func(model: Any, inputs: Any, targets: Any, **kwargs: Any) -> np.ndarray:
        for keyword in _QUANTUS_KEYWORDS:
            kwargs.pop(keyword, None)
        explainer = explainers.get(model)
        explanation = explainer.explain(
            np.asarray(inputs), target=_class_indices(targets), **kwargs
        )
        return quantus_layout(np.asarray(explanation.attributions[0], dtype=np.float64))

    explain_func.__doc__ = f"Quantus explain_func: explains with {describe(explainer_class)}."
    return explain_func


def quantus_layout(attributions: np.ndarray) -> np.ndarray:
    """Attributions of Keras images ``(N, H, W, C)`` as Quantus takes them from an
    ``explain_func``: ``(N, 1, H, W)``, summed over the channels; others unchanged."""
    if attributions.ndim != 4:
        return attributions
    return attributions.sum(axis=-1)[:, np.newaxis]


class _LastModel:
    """The explainer of the last model seen (which it keeps alive), built anew for another
    model; one lock, so that threads sharing an ``explain_func`` build it once."""

    def __init__(self, build: Callable[..., Any], init_kwargs: dict[str, Any]) -> None:
        self._build, self._init_kwargs = build, init_kwargs
        self._lock = threading.Lock()
        self._model: Any = None
        self._explainer: Any = None

    def get(self, model: Any) -> Any:
        with self._lock:
            # The same object with other weights (Quantus randomizes a clone in place) keeps its
            # explainer: the compiled passes read the weights when they run.
            if self._model is not model:
                self._explainer = self._build(model, **self._init_kwargs)
                self._model = model
            return self._explainer


def _class_indices(targets: Any) -> Any:
    """Quantus' labels as int64 class indices (it may hold them as floats); None stays None."""
    if targets is None:
        return None
    array = np.asarray(targets)
    if array.dtype.kind == "f" and np.array_equal(array, np.round(array)):
        array = array.astype(np.int64)
    return array if array.ndim else array.item()
