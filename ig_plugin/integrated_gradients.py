"""The Integrated Gradients explainer: an alibi ``Explainer`` for TensorFlow/Keras models."""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from alibi.api.interfaces import Explainer, Explanation
from tqdm.auto import tqdm

from ig_plugin import _params, _saving
from ig_plugin._baselines import normalise_baselines
from ig_plugin._compiled import CompiledModel, ModelCall, PathEnds
from ig_plugin._forward_kwargs import split_forward_kwargs
from ig_plugin._inputs import ArrayOrList, normalise_inputs
from ig_plugin._keras import declared_inputs
from ig_plugin._layers import LayerState, choose_layer, find_layer_again
from ig_plugin._outputs import check_pick
from ig_plugin._progress import reporting
from ig_plugin._quadrature import quadrature
from ig_plugin._spans import attribute_in_spans, span_length
from ig_plugin._targets import TargetKind, TargetRule, normalise_target, target_rule
from ig_plugin._version import __version__

_COMPILE_LOCK = threading.Lock()

#: alibi's metadata for this explainer; ``name`` and ``version`` are filled in by alibi's ``Base``.
DEFAULT_META: dict = {
    "name": None,
    "type": ["whitebox"],
    "explanations": ["local"],
    "params": {},
    "version": None,
}


class IntegratedGradients(Explainer):
    """Integrated Gradients (Sundararajan et al., 2017) for TensorFlow/Keras models.

    A drop-in for ``alibi.explainers.IntegratedGradients``: the same arguments, the same
    :class:`~alibi.api.interfaces.Explanation`, without alibi's known bugs, and computed by
    compiled, streaming gradient passes whose memory is bounded by ``internal_batch_size``.

    Parameters
    ----------
    model
        A Keras model: Functional, Sequential or subclassed, with one or several inputs and one
        output tensor.
    layer
        Attribute to a layer instead of the model inputs: a Keras layer of the model (nested
        layers too), or a callable ``model -> layer`` (the form that saving and
        :meth:`reset_predictor` can always find again, e.g.
        ``lambda model: model.layers[1]``). The path then runs in the layer's space, from its
        value at the baseline to its value at x, while the model gets the real inputs: branches
        that bypass the layer see x. Needed for integer inputs such as token ids (attribute to
        the embedding).
    target_fn
        A function applied to the model's predictions on X (a numpy array) that returns the
        target of each sample, e.g. ``functools.partial(np.argmax, axis=1)``. Cannot be combined
        with ``target`` in :meth:`explain`.
    method
        Quadrature rule for the path integral: ``"gausslegendre"`` (the default and the most
        accurate for smooth models), ``"riemann_left"``, ``"riemann_right"``,
        ``"riemann_middle"`` or ``"riemann_trapezoid"`` (weights summing to 1, unlike alibi's).
    n_steps
        Number of points on each path (at least 2 for ``"riemann_trapezoid"``).
    internal_batch_size
        Most path points per gradient batch, and most samples per forward pass: peak memory
        grows with it, not with ``N * n_steps``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from ig_plugin import IntegratedGradients
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    >>> model.layers[1].set_weights([np.array([[1.0], [2.0], [3.0]])])
    >>> explanation = IntegratedGradients(model).explain(np.ones((1, 3), dtype="float32"))
    >>> explanation.attributions[0].round(4)
    array([[1., 2., 3.]], dtype=float32)
    """

    def __init__(
        self,
        model: Callable[..., Any],
        layer: Any | None = None,
        target_fn: Callable | None = None,
        method: str = "gausslegendre",
        n_steps: int = 50,
        internal_batch_size: int = 100,
    ) -> None:
        if not callable(model):
            raise TypeError(f"`model` must be a Keras model. Received: {type(model).__name__}")
        self.target_fn = _params.check_target_fn(target_fn)
        self.method = _params.check_method(method)
        self.n_steps = _params.check_n_steps(n_steps, self.method)
        self.internal_batch_size = _params.check_internal_batch_size(internal_batch_size)
        choice = choose_layer(model, layer)
        super().__init__(meta=copy.deepcopy(DEFAULT_META))
        self.meta["params"].update(
            target_fn=_params.describe_callable(self.target_fn),
            method=self.method,
            n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size,
            layer=choice.meta,
        )
        if choice.meta == LayerState.CALLABLE.value:
            self.callable_layer = layer  # alibi's attribute name: alibi.saving reads it
        self._layer_choice = choice
        self.model, self.layer = model, choice.layer
        self._signature = _saving.static_signature(model)

    def reset_predictor(self, predictor: Callable[..., Any]) -> None:
        """Explain ``predictor`` from now on (e.g. after loading a saved explainer).

        The layer, if any, is found again in ``predictor``: through the callable, at the same
        index in ``predictor.layers``, or by the same path of layer names for a nested layer.

        Parameters
        ----------
        predictor
            The new Keras model.

        Raises
        ------
        TypeError
            ``predictor`` is not callable.
        ValueError
            ``predictor`` has no layer where the explainer's layer was; or, right after
            loading, its declared input or output shapes differ from the saved model's, or the
            layer found has another name or class than the saved one.
        """
        if not callable(predictor):
            raise TypeError(
                f"`predictor` must be a Keras model. Received: {type(predictor).__name__}"
            )
        loaded = self.__dict__.get("_loaded", False)
        if loaded:
            _saving.check_signature(self._signature, predictor)
        choice = find_layer_again(
            predictor, self._layer_choice, getattr(self, "callable_layer", None), loaded
        )
        # Checked in full: only now is the explainer no longer one fresh from a file.
        self.__dict__.pop("_loaded", None)
        self._layer_choice = choice
        self.model, self.layer = predictor, choice.layer
        self._signature = _saving.static_signature(predictor) or self._signature

    def _compiled_model(self) -> CompiledModel:
        # Rebuilt whenever model or layer changed, also when assigned directly as alibi.saving does.
        with _COMPILE_LOCK:  # threads explaining at once share one set of traces
            compiled = self.__dict__.get("_compiled")
            if (
                compiled is None
                or compiled.model is not self.model
                or compiled.layer is not self.layer
            ):
                compiled = self._compiled = CompiledModel(self.model, self.layer)
            return compiled

    def __getstate__(self) -> dict:
        # Plain Python state only: the model, the layer and the compiled functions are
        # TensorFlow objects; they are left out here and rebuilt from the model given at load.
        state = self.__dict__.copy()
        for name in ("_compiled", "model", "layer"):
            state.pop(name, None)
        state["_layer_choice"] = dataclasses.replace(self._layer_choice, layer=None)
        state["_saved_with"] = __version__
        return state

    def __copy__(self) -> IntegratedGradients:
        # The copy explains the same model: share it (and the layer), compile afresh.
        clone = type(self).__new__(type(self))
        clone.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_compiled"})
        return clone

    def __deepcopy__(self, memo: dict) -> IntegratedGradients:
        # Plain state is copied; the model and its layer are shared, never deep-copied.
        shared = {"model", "layer", "_layer_choice", "_compiled"}
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            if key not in shared:
                clone.__dict__[key] = copy.deepcopy(value, memo)
        clone.__dict__.update(model=self.model, layer=self.layer, _layer_choice=self._layer_choice)
        return clone

    def __setstate__(self, state: dict) -> None:
        _saving.warn_if_other_version(state.pop("_saved_with", None))
        self.__dict__.update(state, model=None, layer=None, _loaded=True)

    def save(self, path: str | os.PathLike) -> None:
        """Save the explainer to the folder ``path``, in alibi's layout.

        The model is not saved: pass it to :meth:`load`. ``alibi.saving.load_explainer`` reads
        the folder too. Unlike alibi, a layer nested in a sub-model can be saved; it is found
        again by its path of layer names.

        Parameters
        ----------
        path
            A folder; created if missing. Its ``meta.dill`` and ``explainer.dill`` are replaced.
        """
        _saving.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, predictor: Any) -> IntegratedGradients:
        """Load an explainer saved with :meth:`save` (or ``alibi.saving.save_explainer``).

        Loading unpickles the folder's files, which can run code: load only folders you trust.

        Parameters
        ----------
        path
            The folder the explainer was saved to.
        predictor
            The model to explain; it must have the saved layer and, where it declares them, the
            saved input and output shapes. It is not changed.

        Raises
        ------
        FileNotFoundError
            The folder or one of its files is missing.
        ValueError
            A file cannot be read, the folder holds another explainer, or the model does not
            fit (a missing layer, other input or output shapes).
        """
        explainer: IntegratedGradients = _saving.load(cls, path, predictor)
        return explainer

    def explain(
        self,
        X: ArrayOrList,
        forward_kwargs: dict | None = None,
        baselines: Any = None,
        target: int | list | tuple | np.ndarray | None = None,
        attribute_to_layer_inputs: bool = False,
        *,
        output: int | str | None = None,
        progress_bar: bool = False,
    ) -> Explanation:
        """Attribute the model's output on each sample of X to the input features.

        Parameters
        ----------
        X
            A numpy array, or a list of arrays for a model with several inputs; float dtypes.
        forward_kwargs
            Extra keyword arguments for every model call. Arrays with leading dimension N
            follow their sample along the path; other values (``training=False``) are passed
            unchanged. No attributions are computed for them.
        baselines
            Start of each path: None (zeros), a real number, or an array shaped like X or with
            leading dimension 1; for several inputs, a list with one such entry per input.
        target
            Which output to explain: an int, or one int per sample (list, tuple or array); for
            outputs of rank > 2, an ``(N, rank - 1)`` array of indices. For a single-output
            model, target 1 explains ``p`` and 0 explains ``1 - p``; None explains the output
            itself (regression).
        attribute_to_layer_inputs
            With a layer, attribute to its inputs instead of its outputs; ignored without one
            (as in alibi).
        output
            For a model with several output tensors (a list or dict), which one to explain: its
            position, or its name (a dict key or one of ``model.output_names``). Required for
            such models; ``target``, ``predictions`` and ``deltas`` then refer to that output.
        progress_bar
            Show a tqdm progress bar over the path points.

        Returns
        -------
        alibi.api.interfaces.Explanation
            ``data`` holds ``attributions`` (a list: one array per input, with the input's shape
            and dtype), ``X``, ``forward_kwargs``, ``baselines``, ``predictions``, ``deltas``
            (shape ``(N,)``: sum of attributions minus ``F(x) - F(baseline)``) and ``target``.
        """
        if self.model is None:
            raise ValueError(
                "This explainer has no model: it was unpickled or loaded without one. "
                "Call reset_predictor(model) first, or load it with IntegratedGradients.load."
            )
        if target is not None and self.target_fn is not None:
            raise ValueError(
                "Pass either `target` or the explainer's `target_fn`, not both. "
                f"Received: target={target!r} with target_fn={self.meta['params']['target_fn']}."
            )
        to_inputs = _params.check_bool("attribute_to_layer_inputs", attribute_to_layer_inputs)
        show_progress = _params.check_bool("progress_bar", progress_bar)
        pick = check_pick(output)
        inputs = normalise_inputs(X, declared_inputs(self.model), self.layer is not None)
        n_samples = inputs.n_samples
        baseline_arrays = normalise_baselines(inputs, baselines)
        kwargs = split_forward_kwargs(forward_kwargs, n_samples)
        target_array = normalise_target(target, n_samples)
        call = ModelCall(inputs.layout, pick, to_inputs and self.layer is not None)

        compiled = self._compiled_model()
        batch = self.internal_batch_size
        predictions, starts, ends = compiled.path_ends(inputs, baseline_arrays, kwargs, batch, call)
        rule = self._target_rule(target_array, predictions, n_samples)
        path_ends = PathEnds(starts, ends, inputs.arrays)
        with (
            tqdm(
                total=n_samples * self.n_steps, disable=not show_progress, desc="IG", unit="point"
            ) as bar,
            reporting(bar.update if show_progress else None) as progress,
        ):
            attribute = compiled.attribution_fn(
                path_ends,
                kwargs,
                rule,
                call,
                quadrature(self.method, self.n_steps),
                batch,
                progress,
            )
            copied = (*starts, *ends, *(inputs.arrays if self.layer is not None else ()))
            length = span_length(sum(a[:1].nbytes for a in copied))
            attributions = attribute_in_spans(attribute, n_samples, length)
        if self.layer is None:
            start_outputs, _ = compiled.forward(baseline_arrays, call, kwargs, batch)
        else:
            # The same definition as the gradient passes: real inputs, the layer at its start.
            start_outputs, _ = compiled.forward(
                inputs.arrays, call, kwargs, batch, mode="substitute", layer_values=starts
            )
        changes = _output_changes(rule, predictions, start_outputs)
        _warn_if_not_differentiable(attributions, changes)
        data = {
            "attributions": attributions,
            "X": X,
            "forward_kwargs": kwargs.as_dict(),
            "baselines": inputs.model_input(baseline_arrays),
            "predictions": predictions,
            "deltas": _attribution_sums(attributions) - changes,
            "target": rule.target,
        }
        return Explanation(meta=copy.deepcopy(self.meta), data=data)

    def _target_rule(
        self, target: np.ndarray | None, predictions: np.ndarray, n_samples: int
    ) -> TargetRule:
        """The target rule for these predictions: from ``target``, or the ``target_fn``."""
        if self.target_fn is None:
            return target_rule(target, predictions.shape[1:])
        name = "target_fn(predictions)"
        chosen = normalise_target(self.target_fn(predictions), n_samples, name)
        rule = target_rule(chosen, predictions.shape[1:], name)
        if rule.kind is TargetKind.BINARY:
            # alibi warns too: argmax over a single column is always 0, which explains 1 - p.
            zeros = np.count_nonzero(rule.target == 0)
            warnings.warn(
                f"The model has a single output per sample, and `target_fn` chose target 0 (which "
                f"explains 1 - p) for {zeros} of {n_samples} samples and target 1 (p) for the "
                "others. A target_fn such as argmax over one column always gives 0: for a sigmoid "
                "classifier pass target=1 (or 0) to explain, and no target_fn; for a regression "
                "model neither.",
                UserWarning,
                stacklevel=3,
            )
        return rule


def _attribution_sums(attributions: list[np.ndarray]) -> np.ndarray:
    """Each sample's sum of attributions over every attributed tensor, float64, shape ``(N,)``."""
    return sum(a.reshape(a.shape[0], -1).sum(axis=1, dtype=np.float64) for a in attributions)


def _output_changes(
    rule: TargetRule, end_outputs: np.ndarray, start_outputs: np.ndarray
) -> np.ndarray:
    """``F(end) - F(start)`` of the explained scalar, per sample, float64, shape ``(N,)``."""
    targets = None if rule.target is None else tf.constant(rule.target)
    f_end = rule.select(tf.constant(end_outputs), targets).numpy().astype(np.float64)
    f_start = rule.select(tf.constant(start_outputs), targets).numpy()
    return f_end - f_start


def _warn_if_not_differentiable(attributions: list[np.ndarray], changes: np.ndarray) -> None:
    """Warn about samples whose gradients were all zero although their output changed.

    That is what a path that TensorFlow cannot differentiate gives (a cast to an integer, a
    rounding, an argmax inside the model): all-zero attributions that look like an answer.
    """
    all_zero = np.logical_and.reduce([~a.reshape(a.shape[0], -1).any(axis=1) for a in attributions])
    silent = all_zero & (np.abs(changes) > 1e-6)
    if silent.any():
        first = int(np.flatnonzero(silent)[0])
        warnings.warn(
            f"{int(silent.sum())} of {len(changes)} samples got all-zero attributions although "
            f"the explained output changed between baseline and input (sample {first}: by "
            f"{changes[first]:.4g}). Gradients do not flow along the path: the model may cast to "
            "an integer, round or take an argmax between the inputs and this output.",
            UserWarning,
            stacklevel=3,
        )
