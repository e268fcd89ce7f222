"""Explaining a dataset batch by batch: the model and the explainer are loaded once, then every
batch of rows goes through the same ``explain``.

The command line without Ray runs :class:`BatchExplainer` in its own process; with Ray, every
actor of the pool runs one (behind a :class:`CheckedBatchExplainer`, which first checks the
command's rows against the model it loads). One class for both is what makes their outputs the
same, row for row. TensorFlow is imported when a worker is built, not when this module is
imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ig_plugin._batch.model_check import ModelCheck, RowsToCheck
from ig_plugin._batch.overlap import CallsAtOnce
from ig_plugin._integral.quadrature import MIN_STEPS
from ig_plugin._model.loading import load_model
from ig_plugin._request import checks
from ig_plugin._request.targets import predicted_class

#: The columns a worker adds to each batch (``target`` only when a target was explained).
ATTRIBUTIONS, DELTA, PREDICTION, TARGET = "attributions", "delta", "prediction", "target"
#: The only column of a :class:`CheckedBatchExplainer`'s answer when the rows do not fit.
REFUSED = "refused"
#: The errors a user can fix: bad arguments, a model file that is missing, unreadable or not a
#: model, rows or targets that do not fit it. A :class:`CheckedBatchExplainer` answers with them
#: instead of raising, and the command line ends on them with one line (exit code 2).
FIXABLE_ERRORS = (ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError)
#: Explain calls a worker runs at once (see :mod:`ig_plugin._batch.overlap`), unless one at a
#: time is what it must do (see :attr:`BatchExplainer.calls_at_once`).
CALLS_AT_ONCE = 2


@dataclass(frozen=True)
class Columns:
    """Where a batch keeps what the worker needs.

    Attributes
    ----------
    features
        The column holding each row's model input (a tensor column), or several scalar columns
        stacked in this order into one feature vector per row.
    target
        A column of targets (an int per row, or a row of indices), or None: then the explainer's
        ``target_fn``, else the class a classifier predicts
        (:func:`~ig_plugin._request.targets.predicted_class`), else none.
    row_id
        A column copied unchanged to the output, so rows can be matched after Ray reorders them.
    """

    features: str | tuple[str, ...] = "features"
    target: str | None = None
    row_id: str = "row_id"

    def required(self) -> list[str]:
        names = [self.features] if isinstance(self.features, str) else list(self.features)
        return [*names, *([self.target] if self.target else []), self.row_id]


@dataclass(frozen=True)
class ExplainerSettings:
    """The arguments of a default explainer; None leaves the explainer's own default.

    Only for a new explainer: a saved one brings its own settings.
    """

    n_steps: int | None = None
    method: str | None = None
    internal_batch_size: int | str | None = None
    memory_budget: int | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def check_for(
        self, explainer_uri: str | os.PathLike | None, spelling: Callable[[str], str] = str
    ) -> None:
        """Check the settings for an explainer saved at ``explainer_uri`` (None: a new one),
        before any model is loaded: they apply to a new explainer only, and the core's checks.

        ``spelling`` names a setting in the message (``--n-steps`` on the command line).

        Raises
        ------
        TypeError, ValueError
            Settings are given with a saved explainer, or one is invalid.
        """
        if explainer_uri is not None and self.given():
            names = ", ".join(spelling(name) for name in self.given())
            raise ValueError(
                f"{names} apply to a new explainer only: the saved explainer "
                f"{os.fspath(explainer_uri)!r} brings its own settings."
            )
        method = checks.check_choice("method", self.method or "gausslegendre", sorted(MIN_STEPS))
        if self.n_steps is not None:
            checks.check_n_steps(self.n_steps, method, MIN_STEPS)
        if self.internal_batch_size is not None:
            checks.check_internal_batch_size(self.internal_batch_size)
        if self.memory_budget is not None and self.internal_batch_size != checks.AUTO:
            raise ValueError(
                f"{spelling('memory_budget')} applies with {spelling('internal_batch_size')} "
                f"'auto' only (a fixed batch size sets the memory itself). Received: "
                f"{spelling('memory_budget')} {self.memory_budget!r} with "
                f"{spelling('internal_batch_size')} {self.internal_batch_size!r}."
            )
        checks.check_memory_budget(checks.AUTO, self.memory_budget)


class BatchExplainer:
    """Loads a model and an explainer once and explains batches of rows.

    Parameters
    ----------
    model_uri
        A Keras model file (.keras or .h5) this process can read.
    explainer_uri
        A folder written by the ``save`` of any ig_plugin explainer (IntegratedGradients,
        ExpectedGradients, NoiseTunnel, XRAI, ...), or None for a new IntegratedGradients built
        from ``settings``.
    settings
        The new explainer's arguments; must be empty with ``explainer_uri``.
    columns
        Which batch columns hold the features, the targets and the row ids.
    intra_op_threads
        TensorFlow's intra-op threads in this process (set before TensorFlow runs anything), so
        that actors sharing a machine do not fight over its cores; None leaves TensorFlow's
        default (all cores).
    rows_per_explain
        Most rows per ``explain`` call: a batch with more (Ray hands an actor several batches
        at once) is explained that many rows at a time; None explains each batch whole.

    Attributes
    ----------
    model_check
        What the rows and targets must fit, to check a dataset before its first batch.
    calls_at_once
        Explain calls run at once, each on its own rows (answers keep the rows' order):
        :data:`CALLS_AT_ONCE`, which fills cores that one call on a small model leaves idle, or
        1 where a second call would overstep what the worker was given: an explainer with
        ``internal_batch_size="auto"`` sizes each call's gradient batches to its whole memory
        budget, and a worker limited to one intra-op thread is a Ray actor given one CPU, whose
        neighbours use the others.
    """

    def __init__(
        self,
        model_uri: str | os.PathLike,
        explainer_uri: str | os.PathLike | None = None,
        settings: ExplainerSettings = ExplainerSettings(),  # frozen: a shared default is safe
        columns: Columns = Columns(),
        intra_op_threads: int | None = None,
        rows_per_explain: int | None = None,
    ) -> None:
        settings.check_for(explainer_uri)
        self.rows_per_explain = rows_per_explain
        import tensorflow as tf

        from ig_plugin._explainer.registry import load_saved, model_explainer
        from ig_plugin.integrated_gradients import IntegratedGradients

        if intra_op_threads is not None:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
            except RuntimeError:  # TensorFlow already ran in this process: its pools are made
                pass
        self.model = load_model(model_uri)
        if explainer_uri is None:
            self.explainer = IntegratedGradients(self.model, **settings.given())
        else:  # any saved ig_plugin explainer, loaded by the class its folder names
            self.explainer = load_saved(explainer_uri, self.model)
        # The explainer of the model (the wrapped one, for NoiseTunnel and XRAI): its layer
        # and target_fn are the ones that apply.
        self._model_explainer = model_explainer(self.explainer)
        if columns.target is not None and self._model_explainer.target_fn is not None:
            raise ValueError(
                "The saved explainer has a target_fn, which picks the targets itself: pass no "
                "targets with it."
            )
        if columns.target is None and self._model_explainer.target_fn is None:
            # Rows without targets: a classifier explains the class it predicts, chosen from the
            # predictions explain computes anyway (and its explanations' meta says so).
            self.explainer = self.explainer.with_target_fn(predicted_class)
            self._model_explainer = model_explainer(self.explainer)
        self.columns = columns
        one_at_a_time = intra_op_threads == 1 or (
            self._model_explainer.internal_batch_size == checks.AUTO
        )
        # Threads made once, kept for every batch (Ray calls an actor's worker many times).
        self._calls = CallsAtOnce(1 if one_at_a_time else CALLS_AT_ONCE)
        self.calls_at_once = self._calls.calls
        self.model_check = ModelCheck(
            self.model,
            takes_ids=self._model_explainer.layer is not None,
            explains_predicted_class=self._model_explainer.target_fn is predicted_class,
        )

    def features(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The model input of a batch: one column, or scalar columns stacked side by side."""
        names = self.columns.features
        if isinstance(names, str):
            return np.asarray(batch[names])
        return np.stack([np.asarray(batch[name]) for name in names], axis=1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Explain one batch: its row ids with the attributions, deltas, predictions, targets
        (``rows_per_explain`` rows per ``explain`` call, :attr:`calls_at_once` calls at once)."""
        n_rows = len(batch[self.columns.row_id])
        step = self.rows_per_explain or n_rows
        if n_rows <= step:
            return self._explain(batch)
        pieces = (
            {name: values[first : first + step] for name, values in batch.items()}
            for first in range(0, n_rows, step)
        )
        parts = list(self.explain_batches(pieces))
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def explain_batches(
        self, batches: Iterable[dict[str, np.ndarray]]
    ) -> Iterator[dict[str, np.ndarray]]:
        """Explain batches one ``explain`` call each, :attr:`calls_at_once` calls at once:
        each batch's answer as :meth:`__call__` gives it, in the order of ``batches``."""
        return self._calls.map(self._explain, batches)

    def _explain(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        X = self.features(batch)
        target = None if self.columns.target is None else np.asarray(batch[self.columns.target])
        explanation = self.explainer.explain(X, target=target)
        (attributions,) = explanation.attributions  # one input, one attributed tensor
        result = {
            self.columns.row_id: np.asarray(batch[self.columns.row_id]),
            ATTRIBUTIONS: attributions,
            DELTA: explanation.deltas,
            PREDICTION: explanation.predictions,
        }
        if explanation.target is not None:
            result[TARGET] = explanation.target
        return result


class CheckedBatchExplainer:
    """A :class:`BatchExplainer` that first checks given rows against its model: the command
    line's worker on Ray, where the actors are the only processes that load the model.

    An error the user can fix (:data:`FIXABLE_ERRORS`: the model cannot be loaded, or the rows
    or targets do not fit it) is not raised: every batch is answered with it instead, as the one
    value of a :data:`REFUSED` column, for the command to raise. An error raised in a Ray actor
    reaches the command only inside Ray's own report of it, after Ray has printed tracebacks
    from its processes.

    Parameters
    ----------
    rows_check
        The rows to check, before any batch.
    worker_class
        The worker to build and check with.
    **worker_arguments
        ``worker_class``'s arguments.

    Attributes
    ----------
    refusal
        The error's message, on one line; None when the rows fit.
    """

    def __init__(
        self,
        rows_check: RowsToCheck,
        worker_class: type[BatchExplainer] = BatchExplainer,
        **worker_arguments: Any,
    ) -> None:
        self.worker: BatchExplainer | None = None
        self.refusal: str | None = None
        try:
            worker = worker_class(**worker_arguments)
            worker.model_check.check_rows(rows_check)
        except FIXABLE_ERRORS as error:
            self.refusal = " ".join(str(error).split())
        else:
            self.worker = worker

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The worker's answer to ``batch``, or the refusal."""
        if self.worker is None:
            return {REFUSED: np.array([self.refusal])}
        return self.worker(batch)
