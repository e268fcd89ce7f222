"""What every explainer of one Keras model shares: the model and the layer, finding the layer
again on another model, compiled passes built once per model, pickling without TensorFlow
objects, copies, and saving and loading in alibi's layout.

:class:`ModelExplainer` is the base of :class:`~ig_plugin.IntegratedGradients` and
:class:`~ig_plugin.ExpectedGradients`. A subclass calls
:meth:`ModelExplainer._attach` in its ``__init__``, after alibi's ``Explainer.__init__``, and
keeps its own settings as plain Python or numpy values: those are what a save writes.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from alibi.api.interfaces import Explainer

from ig_plugin import _saving
from ig_plugin._compiled import CompiledModel
from ig_plugin._layers import LayerChoice, LayerState, find_layer_again
from ig_plugin._version import __version__

_COMPILE_LOCK = threading.Lock()

#: The state that is a TensorFlow object, or holds one: never pickled, never deep-copied.
_MODEL_STATE = ("_compiled", "model", "layer")

Self = TypeVar("Self", bound="ModelExplainer")


class ModelExplainer(Explainer):
    """An alibi ``Explainer`` of one Keras model, optionally attributing to one of its layers."""

    model: Any
    layer: Any

    def _attach(self, model: Any, layer: Any, choice: LayerChoice) -> None:
        """Keep the model and the layer ``choice`` made from the ``layer`` argument."""
        if choice.meta == LayerState.CALLABLE.value:
            self.callable_layer = layer  # alibi's attribute name: alibi.saving reads it
        self._layer_choice = choice
        self.model, self.layer = model, choice.layer
        self._signature = _saving.static_signature(model)

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

    def _check_has_model(self) -> None:
        if self.model is None:
            raise ValueError(
                "This explainer has no model: it was unpickled or loaded without one. Call "
                f"reset_predictor(model) first, or load it with {type(self).__name__}.load."
            )

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
        _saving.warn_if_other_version(state.pop("_saved_with", None))
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
        _saving.save(self, path)

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
        explainer: Self = _saving.load(cls, path, predictor)
        return explainer
