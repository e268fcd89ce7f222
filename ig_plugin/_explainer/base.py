"""What every explainer of one Keras model shares: the model and the layer, finding the layer
again on another model, compiled passes built once per model, ``target_fn``, the steps of an
``explain`` that every method takes (checking the shared arguments, the path ends and the target
rule, the explanation), pickling without TensorFlow objects, copies, and saving and loading in
alibi's layout.

:class:`ModelExplainer` is the base of every public explainer of a model
(:class:`~ig_plugin.IntegratedGradients`, :class:`~ig_plugin.ExpectedGradients`, ...). A
subclass checks its batch size with :meth:`ModelExplainer._set_batching` and calls
:meth:`ModelExplainer._attach` in its ``__init__``, after alibi's ``Explainer.__init__`` (an
explainer of the model's input alone can end its ``__init__`` with
:meth:`ModelExplainer._init_on_input`, which does all that), keeps its own settings as plain
Python or numpy values (those are what a save writes), and implements
:meth:`ModelExplainer._prepare`, the checks of its ``explain``'s arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from alibi.api.interfaces import Explainer, Explanation

from ig_plugin._engine.compiled import CompiledModel
from ig_plugin._engine.memory import BatchSize, PointCost
from ig_plugin._explainer import saving
from ig_plugin._integral.completeness import attribution_sums, warn_if_not_differentiable
from ig_plugin._integral.driver import Paths
from ig_plugin._model.layers import LayerChoice, LayerState, choose_layer, find_layer_again
from ig_plugin._model.signature import signature_of
from ig_plugin._request.checks import (
    AUTO,
    check_callable,
    check_internal_batch_size,
    check_memory_budget,
    describe_callable,
)
from ig_plugin._request.request import ExplainArguments, Request, prepare_request
from ig_plugin._request.targets import Rule, choose_rule
from ig_plugin._version import __version__

_COMPILE_LOCK = threading.Lock()

#: The state that is a TensorFlow object, or holds one: never pickled, never deep-copied.
_MODEL_STATE = ("_compiled", "model", "layer")

Self = TypeVar("Self", bound="ModelExplainer")


def whitebox_local_meta() -> dict:
    """A fresh alibi ``meta`` for an explainer of ours: white-box, local explanations.

    alibi's ``Base`` fills in ``name`` and ``version``; the explainer adds its ``params``.
    """
    return {
        "name": None,
        "type": ["whitebox"],
        "explanations": ["local"],
        "params": {},
        "version": None,
    }


class ModelExplainer(Explainer):
    """An alibi ``Explainer`` of one Keras model, optionally attributing to one of its layers."""

    model: Any
    layer: Any
    internal_batch_size: int | str
    # A class default: explainers saved before memory_budget existed load without one.
    memory_budget: int | None = None

    def _attach(self, model: Any, layer: Any, choice: LayerChoice) -> None:
        """Keep the model and the layer ``choice`` made from the ``layer`` argument."""
        if choice.meta == LayerState.CALLABLE.value:
            self.callable_layer = layer  # alibi's attribute name: alibi.saving reads it
        self._layer_choice = choice
        self.model, self.layer = model, choice.layer
        self._signature = signature_of(model).shapes()

    def _init_on_input(
        self,
        model: Any,
        target_fn: Callable | None,
        params: dict[str, Any],
        internal_batch_size: Any,
        memory_budget: Any,
    ) -> None:
        """The end of ``__init__`` for an explainer of the model's input, which takes no
        ``layer`` (Guided IG, Blur IG), once it has checked its own settings: check and keep
        the batch size, start alibi's ``Explainer`` with ``target_fn``, record ``params`` (the
        explainer's own settings, plain values) and the batch size in ``meta["params"]``, and
        attach the model.

        Those explainers built the same way from their settings, so it is written once; one
        that also takes a layer, or records its params in another order, writes its own.
        """
        self._set_batching(internal_batch_size, memory_budget)
        choice = choose_layer(model, None)
        super().__init__(meta=whitebox_local_meta())
        self.target_fn = target_fn
        self.meta["params"].update(**params, internal_batch_size=self.internal_batch_size)
        self._record_memory_budget()
        self._attach(model, None, choice)

    @property
    def target_fn(self) -> Callable | None:
        """The function that picks each sample's target from the predictions, or None.

        Setting it also updates ``meta["params"]["target_fn"]`` (its name): the two never
        disagree.
        """
        target_fn: Callable | None = self.__dict__.get("_target_fn")
        return target_fn

    @target_fn.setter
    def target_fn(self, target_fn: Callable | None) -> None:
        self._target_fn = check_callable("target_fn", target_fn)
        self.meta["params"]["target_fn"] = describe_callable(target_fn)

    def with_target_fn(self: Self, target_fn: Callable | None) -> Self:
        """A copy of this explainer with another ``target_fn``, sharing the model, the layer and
        the compiled passes (so it traces nothing anew)."""
        clone = copy.copy(self)
        clone.__dict__["_compiled"] = self._compiled_model()
        clone.meta = copy.deepcopy(self.meta)
        clone.params = clone.meta["params"]  # alibi exposes meta's keys as attributes
        clone.target_fn = target_fn
        return clone

    @property
    def predictor(self) -> Any:
        """The model (the name ``alibi.saving.save_explainer`` reads and sets)."""
        return self.model

    @predictor.setter
    def predictor(self, model: Any) -> None:
        self.model = model

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
            layer found is not the saved one (another class or configuration, or another name
            where the user gave one).
        """
        if not callable(predictor):
            raise TypeError(
                f"`predictor` must be a Keras model. Received: {type(predictor).__name__}"
            )
        loaded = self.__dict__.get("_loaded", False)
        if loaded:
            saving.check_signature(self._signature, predictor)
        choice = find_layer_again(
            predictor, self._layer_choice, getattr(self, "callable_layer", None), loaded
        )
        # Checked in full: only now is the explainer no longer one fresh from a file.
        self.__dict__.pop("_loaded", None)
        self._layer_choice = choice
        self.model, self.layer = predictor, choice.layer
        self._signature = signature_of(predictor).shapes() or self._signature

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

    def _check_has_model(self) -> None:
        if self.model is None:
            raise ValueError(
                "This explainer has no model: it was unpickled or loaded without one. Call "
                f"reset_predictor(model) first, or load it with {type(self).__name__}.load."
            )

    # -- the steps of an explain ---------------------------------------------------------------

    def validate(self, X: Any, *args: Any, **kwargs: Any) -> None:
        """Check :meth:`explain`'s arguments (the same ones, by position or name) without
        explaining, and without running the model.

        Raises the errors :meth:`explain` would raise before any TensorFlow work (a server can
        refuse a bad request before it queues it). Whether a target fits the model's output is
        known only once the model has run, so :meth:`explain` can still refuse that.

        Raises
        ------
        TypeError, ValueError
            An argument is invalid; the message names it and says what was received.
        """
        self._prepare(self._bind(X, *args, **kwargs))

    def _bind(self, *args: Any, **kwargs: Any) -> ExplainArguments:
        """:meth:`explain`'s arguments as :class:`ExplainArguments`; a TypeError for arguments
        it does not take, as calling it would raise."""
        bound = inspect.signature(self.explain).bind(*args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        for parameter in bound.signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:  # an explain that wraps another
                given.update(given.pop(parameter.name, {}))
        return ExplainArguments(**given)

    def _prepare(self, arguments: ExplainArguments) -> Any:
        """Check ``arguments`` as :meth:`explain` does before any TensorFlow work, and return
        what it needs of them. Subclasses check their own arguments after
        :meth:`_request`'s shared ones."""
        return self._request(arguments)

    def _request(self, arguments: ExplainArguments) -> Request:
        """The arguments every explainer shares, checked (:func:`prepare_request`)."""
        return prepare_request(self, arguments)

    def _set_batching(self, internal_batch_size: Any, memory_budget: Any) -> None:
        """Check ``internal_batch_size`` (an int, or "auto") and ``memory_budget`` (bytes, with
        "auto" only) and keep them: every explainer of a model takes both, with the same
        meaning, so they are checked in one place. Called by ``__init__``, before alibi's
        ``Explainer.__init__``, so that a bad value is refused before anything is built."""
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        self.memory_budget = check_memory_budget(self.internal_batch_size, memory_budget)

    def _record_memory_budget(self) -> None:
        """Add ``memory_budget`` to ``meta["params"]`` when ``internal_batch_size`` is "auto".

        Only then: with a fixed size the budget means nothing, and the params stay the ones
        alibi's explainer of the same name records. Called by ``__init__`` once the params the
        budget follows are in ``meta``."""
        if self.internal_batch_size == AUTO:
            self.meta["params"].update(memory_budget=self.memory_budget)

    @property
    def _batching(self) -> BatchSize:
        """``internal_batch_size`` and ``memory_budget`` as the passes take them."""
        fixed = None if self.internal_batch_size == AUTO else int(self.internal_batch_size)
        return BatchSize(fixed, self.memory_budget)

    def _auto_cost(self, compiled: CompiledModel, request: Request) -> PointCost | None:
        """What a path point costs in memory, when "auto" needs it to size the forward passes
        (else None: it is measured later if several targets need it)."""
        if not self._batching.is_auto:
            return None
        return compiled.point_cost(request.inputs.arrays, request.call, request.kwargs)

    def _forward_rows(self, compiled: CompiledModel, request: Request) -> int:
        """Rows per forward pass on ``request``'s inputs."""
        return self._batching.forward_rows(self._auto_cost(compiled, request))

    def _paths(self, request: Request, starts: tuple[np.ndarray, ...]) -> tuple[Any, Paths]:
        """Run the model on X: its predictions, and the paths from ``starts`` (one per sample,
        or a table of start rows) to X with the target rule that the predictions decide."""
        compiled = self._compiled_model()
        batch = self._batching
        cost = self._auto_cost(compiled, request)
        predictions, ends = compiled.path_ends(
            request.inputs.arrays, starts, request.kwargs, batch.forward_rows(cost), request.call
        )
        rule = choose_rule(request.target, request.targets, self.target_fn, predictions)
        if cost is None and rule.n_targets > 1:
            # A chunk of K-target points holds fewer points than one of one-target points.
            cost = compiled.point_cost(request.inputs.arrays, request.call, request.kwargs)
        if cost is not None:
            # A path point is a row of the attributed tensors (the layer's values, with one).
            cost = dataclasses.replace(cost, point_bytes=sum(a[:1].nbytes for a in ends.ends))
        paths = Paths(compiled, ends, request.kwargs, rule, request.call, batch, cost)
        return predictions, paths

    def _explanation(
        self,
        arguments: ExplainArguments,
        request: Request,
        predictions: Any,
        rule: Rule,
        attributions: list[np.ndarray],
        changes: np.ndarray,
        **data: Any,
    ) -> Explanation:
        """The :class:`Explanation` of one explain: alibi's data keys, ``deltas`` from the
        output ``changes`` the attributions must add up to, and the method's own ``data``."""
        warn_if_not_differentiable(attributions, changes, rule.many)
        shared = {
            "attributions": attributions,
            "X": arguments.X,
            "forward_kwargs": request.kwargs.as_dict(),
            "deltas": attribution_sums(attributions, rule.many) - changes,
            **rule.reported(predictions),  # predictions and target (by head, with several)
        }
        return Explanation(meta=copy.deepcopy(self.meta), data={**shared, **data})

    # -- pickling and copies -------------------------------------------------------------------

    def __getstate__(self) -> dict:
        # Plain Python state only: the model, the layer and the compiled functions are
        # TensorFlow objects; they are left out here and rebuilt from the model given at load.
        state = self.__dict__.copy()
        for name in _MODEL_STATE:
            state.pop(name, None)
        state["_layer_choice"] = dataclasses.replace(self._layer_choice, layer=None)
        state["_saved_with"] = __version__
        return state

    def __setstate__(self, state: dict) -> None:
        saving.warn_if_other_version(state.pop("_saved_with", None))
        if "target_fn" in state:  # saved by 0.1.0, before target_fn became a property
            state["_target_fn"] = state.pop("target_fn")
        self.__dict__.update(state, model=None, layer=None, _loaded=True)

    def __copy__(self: Self) -> Self:
        # The copy explains the same model: share it (and the layer), compile afresh.
        clone = type(self).__new__(type(self))
        clone.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_compiled"})
        return clone

    def __deepcopy__(self: Self, memo: dict) -> Self:
        # Plain state is copied; the model and its layer are shared, never deep-copied.
        shared = {*_MODEL_STATE, "_layer_choice"}
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            if key not in shared:
                clone.__dict__[key] = copy.deepcopy(value, memo)
        clone.__dict__.update(model=self.model, layer=self.layer, _layer_choice=self._layer_choice)
        return clone

    # -- saving --------------------------------------------------------------------------------

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
        saving.save(self, path)

    @classmethod
    def load(cls: type[Self], path: str | os.PathLike, predictor: Any) -> Self:
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
        explainer: Self = saving.load(cls, path, predictor)
        return explainer
