"""The explained output of a model at X and at perturbed copies of its samples, on the engine.

The metrics run the model only through :class:`~ig_plugin._engine.compiled.CompiledModel`: one
forward pass over X gives the output shape (and so the target rule) and ``F(x)``;
:meth:`~ig_plugin._engine.compiled.CompiledModel.scores_at` gives the explained scalar at
perturbed points, a batch at a time.

The compiled passes of a model are kept for the next metric call on the same model (tracing
costs more than scoring a few hundred points of a small model), for as long as the model lives:
the cache holds the model weakly, and its compiled passes reach the model through a weak proxy.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ig_plugin._engine.compiled import CompiledModel
from ig_plugin._engine.memory import BatchSize
from ig_plugin._engine.select import explained
from ig_plugin._model.signature import signature_of
from ig_plugin._request.forward_kwargs import ForwardKwargs
from ig_plugin._request.inputs import Inputs
from ig_plugin._request.request import ModelCall
from ig_plugin._request.targets import target_rule

_LOCK = threading.Lock()
_COMPILED: weakref.WeakKeyDictionary[Any, CompiledModel] = weakref.WeakKeyDictionary()

#: No forward_kwargs: the metrics call the model on its inputs alone.
_NO_KWARGS = ForwardKwargs({}, {})


def compiled_for(model: Any) -> CompiledModel:
    """The compiled passes of ``model``, shared by every metric call (and thread) on it."""
    with _LOCK:
        try:
            compiled = _COMPILED.get(model)
        except TypeError:  # neither hashable nor weakly referable: compile for this call
            return CompiledModel(model)
        if compiled is None:
            # A proxy, so that the cache's value does not keep its key (the model) alive.
            compiled = _COMPILED[model] = CompiledModel(weakref.proxy(model))
        return compiled


class ScoredModel:
    """The explained output of ``model`` for one metric call.

    The output's shape decides the target rule (as in ``explain``: a target is required for an
    ``(N, C)`` output): the shape the model declares, or, for a model that declares none, the
    shape of its output on X.

    ``batch_size`` None is ``"auto"``: the rows per forward pass are what ``memory_budget`` (or
    the default budget) holds of rows like X's, at the cost the traced forward pass gives
    (:meth:`~ig_plugin._engine.memory.BatchSize.scoring_rows`); :attr:`batch_size` is the count
    chosen.

    Raises
    ------
    ValueError
        The targets do not fit the model's output, or the memory budget holds not one row.
    """

    def __init__(
        self,
        model: Any,
        inputs: Inputs,
        target: np.ndarray | None,
        batch_size: int | None,
        memory_budget: int | None = None,
    ) -> None:
        self._compiled = compiled_for(model)
        self._call = ModelCall(inputs.layout)
        self._inputs = inputs
        self._at_x: np.ndarray | None = None
        declared = signature_of(model).output
        if declared is not None and declared.fully_known:
            # Checked before any tracing; no forward pass on X: the compiled pass of the points
            # serves F(x) too.
            self.rule = target_rule(target, declared.known_shape)
        batching = BatchSize(batch_size, memory_budget)
        cost = None
        if batching.is_auto:
            cost = self._compiled.point_cost(inputs.arrays, self._call, _NO_KWARGS)
        #: Rows per forward pass.
        self.batch_size = batching.scoring_rows(cost, fixed_name="batch_size")
        if declared is not None and declared.fully_known:
            return
        predictions, _ = self._compiled.forward(
            inputs.arrays, self._call, _NO_KWARGS, self.batch_size
        )
        self.rule = target_rule(target, predictions.shape[1:])
        self._at_x = explained(self.rule, predictions).astype(np.float64)

    @property
    def at_x(self) -> np.ndarray:
        """F(x): ``(N,)`` float64."""
        if self._at_x is None:
            self._at_x = self.at(self._inputs.arrays, np.arange(self._inputs.n_rows))
        return self._at_x

    def at(self, points: Sequence[np.ndarray], samples: np.ndarray) -> np.ndarray:
        """F at ``points`` (one array per input, one point per row), point ``i`` explained for
        sample ``samples[i]``'s target: ``(n,)`` float64."""
        scores = self._compiled.scores_at(
            points, samples, (), _NO_KWARGS, self.rule, self._call, self.batch_size
        )
        return scores.astype(np.float64)
