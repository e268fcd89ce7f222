"""The explanation function a metric calls on perturbed inputs: an ig_plugin explainer, or any
callable ``(X, target) -> attributions``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ig_plugin._model.signature import ModelSignature, signature_of
from ig_plugin._request.checks import describe
from ig_plugin._request.inputs import UNDECLARED, Inputs
from ig_plugin.metrics._checks import check_rows, is_explanation

_NAME = "explain_fn(X, target)"


class ExplainFn:
    """``explain_fn`` checked, and called the one way the metrics call it.

    Parameters
    ----------
    explain_fn
        An explainer (an object with an ``explain(X, target=...)`` method returning an alibi
        ``Explanation``: ig_plugin's, or alibi's own), or a callable ``(X, target) ->
        attributions`` returning an array (one per input, for several) or an ``Explanation``.
    """

    def __init__(self, explain_fn: Any) -> None:
        explain = getattr(explain_fn, "explain", None)
        if not callable(explain) and not callable(explain_fn):
            raise TypeError(
                "`explain_fn` must be an explainer (with an explain method) or a callable "
                f"(X, target) -> attributions. Received: {describe(explain_fn)}."
            )
        self._explainer = explain_fn if callable(explain) else None
        self._function = explain_fn

    @property
    def signature(self) -> ModelSignature:
        """What the explained model declares (nothing known for a plain callable)."""
        model = getattr(self._explainer, "model", None)
        return UNDECLARED if model is None else signature_of(model)

    def validate(self, X: Any, target: Any) -> None:
        """The explainer's own checks of X and target, where it has them (before any
        TensorFlow work)."""
        validate = getattr(self._explainer, "validate", None)
        if callable(validate):
            validate(X, target=target)

    def first(self, inputs: Inputs, target: Any) -> tuple[tuple[np.ndarray, ...], ExplainFn, Any]:
        """The attributions of X itself, and how to explain its perturbed copies: the same
        explainer, or, when a ``target_fn`` chose X's targets, a copy of it without one that is
        given those targets (a perturbation must not change which output is explained)."""
        given = self._explain(inputs.model_input(inputs.arrays), target)
        attributions = check_rows(given, inputs.n_rows, _NAME)
        chosen = given.data.get("target") if is_explanation(given) else None
        with_target_fn = getattr(self._explainer, "with_target_fn", None)
        if target is None and chosen is not None and callable(with_target_fn):
            return attributions, ExplainFn(with_target_fn(None)), chosen
        return attributions, self, target

    def __call__(self, inputs: Inputs, target: Any) -> tuple[np.ndarray, ...]:
        """The attributions of ``inputs`` for ``target``: one float64 array per input (or per
        attributed layer tensor), a row per sample."""
        given = self._explain(inputs.model_input(inputs.arrays), target)
        return check_rows(given, inputs.n_rows, _NAME)

    def _explain(self, X: Any, target: Any) -> Any:
        if self._explainer is not None:
            return self._explainer.explain(X, target=target)
        return self._function(X, target)
