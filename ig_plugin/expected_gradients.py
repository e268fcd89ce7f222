"""Expected Gradients: Integrated Gradients averaged over baselines drawn from a background, as an
alibi ``Explainer`` on ig_plugin's compiled, streaming gradient loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from alibi.api.interfaces import Explanation

from ig_plugin._engine.plans import PlanPerSpan
from ig_plugin._engine.select import explained
from ig_plugin._explainer.base import ModelExplainer, whitebox_local_meta
from ig_plugin._explainer.registry import saved_explainer
from ig_plugin._integral.draws import every_row_plan, fresh_entropy, sampled_plan
from ig_plugin._integral.driver import integrate
from ig_plugin._integral.quadrature import quadrature
from ig_plugin._model.layers import choose_layer
from ig_plugin._model.signature import signature_of
from ig_plugin._request import checks
from ig_plugin._request.background import match_background, normalise_background
from ig_plugin._request.inputs import ArrayOrList
from ig_plugin._request.request import ExplainArguments, Request


@saved_explainer()
class ExpectedGradients(ModelExplainer):
    """Expected Gradients (Erion et al., 2021), the method of shap's ``GradientExplainer`` and
    captum's ``GradientShap``, for TensorFlow/Keras models.

    Integrated Gradients needs one baseline; Expected Gradients averages it over a background
    distribution instead. Sample x's attribution is the expectation, over background rows b and
    over ``alpha ~ U(0, 1)``, of ``(x - b) * dF(b + alpha * (x - b)) / dx``: the mean over b of
    ``IG(x, baseline=b)``. Its attributions add up to ``F(x) - mean over b of F(b)`` in
    expectation.

    The gradients run in ig_plugin's compiled loop, ``internal_batch_size`` points at a time, so
    memory stays flat however large N and ``n_samples`` are.

    Parameters
    ----------
    model
        A Keras model: Functional, Sequential or subclassed, with one or several inputs.
    background
        M rows to draw baselines from, shaped like the rows of X: an array ``(M, *features)``,
        or one array per model input (a list, tuple or dict by input name, like X). Typically a
        sample of the training data. It is copied, and saved with the explainer.
    n_samples
        Draws per explained sample: each takes a background row and ``alpha`` at random. None
        selects the deterministic mode: every background row at ``n_steps`` Gauss-Legendre
        nodes, the exact mean over the rows of Integrated Gradients, at a cost of
        ``M * n_steps`` gradients per sample.
    seed
        None: fresh draws on every :meth:`explain`. An int: sample ``i`` of X always gets the
        same draws, from a random stream derived from the seed and ``i``; they do not depend on
        ``internal_batch_size``, on the other samples or on how the samples are processed.
    layer
        Attribute to a layer instead of the inputs (see :class:`~ig_plugin.IntegratedGradients`):
        the paths then run from the layer's value on each background row to its value on x,
        while the model gets the real inputs x. ``forward_kwargs`` must then be shared by all
        samples (e.g. ``training=False``): the layer's values on the background are recorded
        once, without a sample's own arrays.
    target_fn
        A function applied to the model's predictions on X that returns the target of each
        sample, e.g. ``functools.partial(np.argmax, axis=1)``.
    internal_batch_size
        Most path points per gradient batch, and most samples per forward pass: peak memory
        grows with it, not with N or ``n_samples``; or ``"auto"``.
        With K targets (``explain(targets=...)``) a gradient batch holds as many points as fit
        in the memory of ``internal_batch_size`` one-target points. ``"auto"`` chooses the
        batch from ``memory_budget`` and the memory one path point costs, estimated from the
        model's activations (see :doc:`/performance`); it never changes the attributions.
    memory_budget
        With ``internal_batch_size="auto"`` only: the bytes the gradient batches may use.
        Default: a quarter of the memory available (the host's ``MemAvailable`` on a CPU; 1 GiB
        with a GPU, whose total TensorFlow does not report). A budget smaller than one path
        point costs is a ValueError.
    n_steps
        Deterministic mode only: Gauss-Legendre nodes per background row (default 50, the
        default of :class:`~ig_plugin.IntegratedGradients`, so the deterministic mode equals the
        mean over the rows of ``IntegratedGradients(model).explain(X, baselines=row)``).

    Examples
    --------
    >>> import numpy as np, keras
    >>> from ig_plugin import ExpectedGradients
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    >>> model.layers[1].set_weights([np.array([[1.0], [2.0], [3.0]])])
    >>> background = np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], dtype="float32")
    >>> explainer = ExpectedGradients(model, background, n_samples=None)
    >>> explainer.explain(np.ones((1, 3), dtype="float32")).attributions[0].round(4)
    array([[0., 0., 0.]], dtype=float32)
    """

    def __init__(
        self,
        model: Callable[..., Any],
        background: ArrayOrList,
        n_samples: int | None = 200,
        seed: int | None = None,
        layer: Any | None = None,
        target_fn: Callable | None = None,
        internal_batch_size: int | str = 100,
        *,
        n_steps: int | None = None,
        memory_budget: int | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(f"`model` must be a Keras model. Received: {type(model).__name__}")
        checks.check_callable("target_fn", target_fn)
        self.n_samples = (
            None if n_samples is None else checks.check_scalar("n_samples", n_samples, least=1)
        )
        self.n_steps = checks.check_deterministic_steps(n_steps, self.n_samples)
        self.seed = checks.check_seed(seed)
        self._set_batching(internal_batch_size, memory_budget)
        choice = choose_layer(model, layer)
        self._background = normalise_background(
            background, signature_of(model), choice.layer is not None
        )
        super().__init__(meta=whitebox_local_meta())
        self.target_fn = target_fn
        self.meta["params"].update(
            n_samples=self.n_samples,
            n_steps=self.n_steps,
            seed=self.seed,
            internal_batch_size=self.internal_batch_size,
            layer=choice.meta,
            background_rows=self.background_rows,
        )
        self._record_memory_budget()
        self._attach(model, layer, choice)

    @property
    def background(self) -> ArrayOrList:
        """The background rows, structured as given (an array, a list or a dict of arrays)."""
        packed: ArrayOrList = self._background.model_input(self._background.arrays)
        return packed

    @property
    def background_rows(self) -> int:
        """M, the number of background rows."""
        return self._background.n_rows

    def explain(
        self,
        X: ArrayOrList,
        forward_kwargs: dict | None = None,
        target: int | list | tuple | np.ndarray | None = None,
        attribute_to_layer_inputs: bool = False,
        *,
        targets: list | tuple | np.ndarray | str | None = None,
        output: int | str | None = None,
        progress_bar: bool = False,
    ) -> Explanation:
        """Attribute the model's output on each sample of X to the input (or layer) features.

        Parameters
        ----------
        X
            As for :meth:`IntegratedGradients.explain <ig_plugin.IntegratedGradients.explain>`:
            an array, or one array per model input (a list or a dict by input name, as the
            background was given), with rows shaped like the background's.
        forward_kwargs
            Extra keyword arguments for every model call. Array-likes with leading dimension N
            follow their sample: its paths and its reference outputs ``F(b)`` get its row
            (without a layer only).
        target
            Which output to explain, as for ``IntegratedGradients``: an int, one int per sample,
            or an ``(N, rank - 1)`` array for outputs of rank > 2; None for a scalar output.
        attribute_to_layer_inputs
            With a layer, attribute to its inputs instead of its outputs.
        targets
            Several targets per sample from one pass (see ``IntegratedGradients``): class
            indices, index tuples for outputs of rank > 2, or a dict by output; attributions get
            shape ``(N, K, *features)``, deltas ``(N, K)``.
        output
            For a model with several output tensors, which one to explain (index or name).
        progress_bar
            Show a tqdm progress bar over the gradient evaluations.

        Returns
        -------
        alibi.api.interfaces.Explanation
            ``data`` holds ``attributions`` (a list: one array per input or layer tensor, in its
            dtype), ``X``, ``forward_kwargs``, ``predictions`` (the model output on X),
            ``target``, ``expected_value`` (per sample, the explained output averaged over the
            background rows, shape ``(N,)``) and ``deltas``: ``sum(attributions) - (F(x) -
            expected_value)``, zero in expectation (and, up to quadrature, in the deterministic
            mode). So ``sum(attributions) + expected_value`` estimates ``F(x)``.
        """
        arguments = ExplainArguments(
            X=X,
            forward_kwargs=forward_kwargs,
            target=target,
            attribute_to_layer_inputs=attribute_to_layer_inputs,
            targets=targets,
            output=output,
            progress_bar=progress_bar,
        )
        request, background = self._prepare(arguments)
        # The start table: one row per background row (or the layer's value on it).
        predictions, paths = self._paths(request, background)
        start_outputs = paths.start_outputs(over_table=True)
        plans = self._plans(len(background[0]))
        attributions = integrate(paths, plans, request.show_progress, "Expected Gradients")
        expected_value = explained(paths.rule, start_outputs).astype(np.float64)
        changes = explained(paths.rule, predictions).astype(np.float64) - expected_value
        return self._explanation(
            arguments,
            request,
            predictions,
            paths.rule,
            attributions,
            changes,
            expected_value=expected_value,
        )

    def _prepare(self, arguments: ExplainArguments) -> tuple[Request, tuple[np.ndarray, ...]]:
        """The shared checks, and the background matched to X (its inputs, shapes, dtypes)."""
        request = self._request(arguments)
        if self.layer is not None and request.kwargs.per_sample:
            raise ValueError(
                "`forward_kwargs` with per-sample arrays cannot be combined with `layer` in "
                "ExpectedGradients: the layer's values on the background rows are recorded once "
                "for all samples. Received: per-sample arrays for "
                f"{sorted(request.kwargs.per_sample)}."
            )
        return request, match_background(self._background, request.inputs)

    def _plans(self, n_rows: int) -> PlanPerSpan:
        """The drawn pairs of this explain, span by span."""
        if self.n_samples is not None:
            entropy = fresh_entropy() if self.seed is None else self.seed
            return sampled_plan(entropy, self.n_samples, n_rows)
        # check_deterministic_steps gave the deterministic mode its step count.
        n_steps = cast(int, self.n_steps)
        return every_row_plan(n_rows, *quadrature("gausslegendre", n_steps))
