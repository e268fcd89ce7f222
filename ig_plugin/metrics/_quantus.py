"""ig_plugin's explainers as Quantus' ``explain_func``: signed attributions, batched, on the
compiled engine.

Quantus' own TensorFlow route to Integrated Gradients goes through tf-explain, which returns the
mean path gradient without the ``(x - x')`` factor, unsigned, one sample at a time (Quantus issue
139); this one returns ig_plugin's attributions of the whole batch.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ig_plugin._model.signature import signature_of
from ig_plugin._request.checks import describe

#: Keywords Quantus adds to every call of an explain_func, which an explainer does not take.
_QUANTUS_KEYWORDS = ("device",)


def quantus_explain_func(explainer_class: Any, **init_kwargs: Any) -> Callable[..., np.ndarray]:
    """An ``explain_func`` for Quantus' metrics that explains with an ig_plugin explainer.

    ``quantus_explain_func(IntegratedGradients, n_steps=64)`` returns ``explain_func(model,
    inputs, targets, **kwargs)``, which explains ``inputs`` (a batch) for ``targets`` (one class
    index per sample) with ``IntegratedGradients(model, n_steps=64)`` and returns the signed
    attributions as a numpy array shaped like ``inputs``. Quantus calls it once per batch; the
    explainer is built once per model (kept for the last model it was called with), so its
    compiled passes are traced once, not per batch. Leave Quantus' ``abs`` and ``normalise``
    off to evaluate signed attributions.

    Channel order: Quantus holds images channel-first, ``(N, C, H, W)``, and gives a Keras model
    (wrapped by Quantus) its batches channel-last, as Keras models take them. Inputs whose shape
    does not fit the model but does once the axis after the batch is moved last are taken as
    channel-first: they are moved for the model, and the attributions moved back. Pass
    ``channel_first=True`` or ``False`` among Quantus' ``explain_func_kwargs`` to say it instead
    of letting the shapes decide. Attributions computed beforehand with ``explain`` (Keras'
    channel-last) are passed to Quantus as ``a_batch=np.moveaxis(attributions, -1, 1)``, beside
    ``x_batch=np.moveaxis(X, -1, 1)`` and ``channel_first=True``.

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
        ``explain_func(model, inputs, targets, **kwargs) -> np.ndarray``; ``kwargs`` go to the
        explainer's ``explain`` (``baselines``, ...), except Quantus' ``device``.

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
        channel_first = kwargs.pop("channel_first", None)
        X = np.asarray(inputs)
        moved = _channel_first(model, X) if channel_first is None else bool(channel_first)
        if moved:
            X = np.moveaxis(X, 1, -1)
        explanation = explainers.get(model).explain(X, target=_class_indices(targets), **kwargs)
        attributions = np.asarray(explanation.attributions[0], dtype=np.float64)
        return np.moveaxis(attributions, -1, 1) if moved else attributions

    explain_func.__doc__ = f"Quantus explain_func: explains with {describe(explainer_class)}."
    return explain_func


class _LastModel:
    """The explainer of the last model seen, built anew for another model (thread-safe)."""

    def __init__(self, build: Callable[..., Any], init_kwargs: dict[str, Any]) -> None:
        self._build, self._init_kwargs = build, init_kwargs
        self._lock = threading.Lock()
        self._model: Callable[[], Any] = lambda: None
        self._explainer: Any = None

    def get(self, model: Any) -> Any:
        with self._lock:
            if self._model() is not model:
                self._explainer = self._build(model, **self._init_kwargs)
                try:
                    self._model = weakref.ref(model)
                except TypeError:  # not weakly referable: build again next time
                    self._model = lambda: None
            return self._explainer


def _channel_first(model: Any, X: np.ndarray) -> bool:
    """Whether X's rows fit the model only with the axis after the batch moved last."""
    declared = signature_of(model).inputs
    if len(declared) != 1 or X.ndim < 3:
        return False
    spec = declared[0]
    return not spec.accepts(X.shape[1:]) and spec.accepts(np.moveaxis(X, 1, -1).shape[1:])


def _class_indices(targets: Any) -> Any:
    """Quantus' labels as int64 class indices (it may hold them as floats); None stays None."""
    if targets is None:
        return None
    array = np.asarray(targets)
    if array.dtype.kind == "f" and np.array_equal(array, np.round(array)):
        array = array.astype(np.int64)
    return array if array.ndim else array.item()
