"""The Integrated Gradients explainer: an alibi ``Explainer`` for TensorFlow/Keras models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation

from ig_plugin._engine.plans import IdgiPlans, shared_steps, uniform_points
from ig_plugin._explainer.base import ModelExplainer, whitebox_local_meta
from ig_plugin._explainer.registry import saved_explainer
from ig_plugin._integral.completeness import output_changes
from ig_plugin._integral.driver import integrate, integrate_refined
from ig_plugin._integral.quadrature import MIN_STEPS, quadrature
from ig_plugin._model.layers import choose_layer
from ig_plugin._request import checks
from ig_plugin._request.baselines import normalise_baselines
from ig_plugin._request.inputs import ArrayOrList
from ig_plugin._request.request import ExplainArguments, Request


@saved_explainer()
class IntegratedGradients(ModelExplainer):
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
        Number of points on each path (at least 2 for ``"riemann_trapezoid"``), or ``"auto"``:
        each sample's path is halved where its integrand is rough (where ReLU units switch),
        until its estimated integration error, summed over the features, is at most
        ``tolerance * max(|F(x) - F(x')|, 1e-12)``; the explanation then holds each sample's
        ``n_steps`` and ``error_estimates`` (see the "Choosing steps" page). With numba
        installed (``ig_plugin[fast]``) the rounds' host work is compiled: the same steps,
        faster on small models, after a compile of about 7 s on a machine's first use.
    internal_batch_size
        Most path points per gradient batch, and most samples per forward pass: peak memory
        grows with it, not with ``N * n_steps``; or ``"auto"``.
        With K targets (``explain(targets=...)``) a gradient batch holds as many points as fit
        in the memory of ``internal_batch_size`` one-target points. ``"auto"`` chooses the
        batch from ``memory_budget`` and the memory one path point costs, estimated from the
        model's activations (see :doc:`/performance`); it never changes the attributions.
    memory_budget
        With ``internal_batch_size="auto"`` only: the bytes the gradient batches may use.
        Default: a quarter of the memory available (the host's ``MemAvailable`` on a CPU; 1 GiB
        with a GPU, whose total TensorFlow does not report). A budget smaller than one path
        point costs is a ValueError.
    tolerance
        With ``n_steps="auto"`` only: the error allowed relative to ``|F(x) - F(x')|``
        (default 1e-3).
    max_steps
        With ``n_steps="auto"`` only: the most gradient evaluations per sample (default 1024;
        the first round takes 9, or 5 or 3 where ``max_steps`` is lower, and each halving of a
        piece of the path 2 more). Samples that
        reach it keep their most refined attributions, with one warning saying how many.
    idgi
        Integrated Decomposed Gradients (Yang et al., 2023) on the straight line: the gradients
        at the ``n_steps + 1`` uniform points ``x_i`` from the baseline to x (both included)
        give each interval's output change ``F(x_{i+1}) - F(x_i)`` to the features in
        proportion to ``g_i**2 / sum(g_i**2)``. The attributions add up to
        ``F(x) - F(x')`` exactly, for any ``n_steps``. IDGI has no quadrature rule: ``method``
        must be left at its default, and ``n_steps`` must be an int (not ``"auto"``).

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

    #: Explainers saved by 0.1.0 have no ``idgi`` of their own.
    idgi: bool = False

    def __init__(
        self,
        model: Callable[..., Any],
        layer: Any | None = None,
        target_fn: Callable | None = None,
        method: str = "gausslegendre",
        n_steps: int | str = 50,
        internal_batch_size: int | str = 100,
        *,
        tolerance: float | None = None,
        max_steps: int | None = None,
        idgi: bool = False,
        memory_budget: int | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(f"`model` must be a Keras model. Received: {type(model).__name__}")
        checks.check_callable("target_fn", target_fn)
        self.method = checks.check_choice("method", method, sorted(MIN_STEPS))
        self.n_steps = checks.check_n_steps(n_steps, self.method, MIN_STEPS)
        self._set_batching(internal_batch_size, memory_budget)
        self.tolerance, self.max_steps = checks.check_auto_settings(
            self.n_steps, tolerance, max_steps
        )
        self.idgi = checks.check_idgi(idgi, self.method, self.n_steps)
        choice = choose_layer(model, layer)
        super().__init__(meta=whitebox_local_meta())
        self.target_fn = target_fn
        self.meta["params"].update(
            method=self.method,
            n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size,
            layer=choice.meta,
        )
        # Only where it departs from alibi's IG: by default the params are alibi's own.
        if self.idgi:
            self.meta["params"].update(idgi=True)
        if self.n_steps == checks.AUTO:
            self.meta["params"].update(tolerance=self.tolerance, max_steps=self.max_steps)
        self._record_memory_budget()
        self._attach(model, layer, choice)

    def explain(
        self,
        X: ArrayOrList,
        forward_kwargs: dict | None = None,
        baselines: Any = None,
        target: int | list | tuple | np.ndarray | None = None,
        attribute_to_layer_inputs: bool = False,
        *,
        targets: list | tuple | np.ndarray | str | None = None,
        output: int | str | None = None,
        progress_bar: bool = False,
    ) -> Explanation:
        """Attribute the model's output on each sample of X to the input features.

        Parameters
        ----------
        X
            A numpy array, or one array per model input: a list or tuple in the model's input
            order, or a dict by input name. Floats; integers too where the model declares a
            float input (they are explained as that float), or with a layer.
        forward_kwargs
            Extra keyword arguments for every model call. Array-likes with leading dimension N
            (arrays, tensors, lists) follow their sample along the path; other values
            (``training=False``) are passed unchanged. No attributions are computed for them.
        baselines
            Start of each path: None (zeros), a real number, or an array shaped like X or with
            leading dimension 1; for several inputs, a list (or a dict, when X is one) with one
            such entry per input.
        target
            Which output to explain: an int, or one int per sample (list, tuple or array); for
            outputs of rank > 2, an ``(N, rank - 1)`` array of indices. For a single-output
            model, target 1 explains ``p`` and 0 explains ``1 - p``; None explains the output
            itself (regression).
        attribute_to_layer_inputs
            With a layer, attribute to its inputs instead of its outputs; ignored without one
            (as in alibi).
        targets
            Several targets per sample, explained in one pass (one forward pass per path point
            for all of them): a list of K class indices for every sample, an ``(N, K)`` int
            array, or ``"all"`` (every class of an ``(N, C)`` output); for an output of rank
            r > 2 (token classification ``(N, T, C)``, a language model's ``(N, T, V)``), K
            index tuples such as ``(position, class)``: a list of K tuples for every sample, or
            an ``(N, K, r - 1)`` int array. Exclusive with ``target`` and ``target_fn``.
            Attributions get shape ``(N, K, *feature_shape)``, ``deltas`` ``(N, K)`` and
            ``target`` ``(N, K)`` or ``(N, K, r - 1)``. A dict ``{output: targets}`` explains
            several outputs of the model in the same pass (an intent and per-token tags; start
            and end logits): its keys name outputs as ``output`` does, its values are each
            output's targets as above; the K axis holds every output's targets in the dict's
            order, ``target`` and ``predictions`` become dicts by output, and ``data["heads"]``
            names the output of each of the K.
        output
            For a model with several output tensors (a list or dict), which one to explain: its
            position, or its name (a dict key or one of ``model.output_names``). Required for
            such models unless ``targets`` is a dict by output; ``target``, ``predictions`` and
            ``deltas`` then refer to that output. A model that returns a container of one
            tensor (a Hugging Face model's output holding only ``logits``) needs none.
        progress_bar
            Show a tqdm progress bar over the path points.

        Returns
        -------
        alibi.api.interfaces.Explanation
            ``data`` holds ``attributions`` (a list: one array per input, with the input's shape
            and dtype), ``X``, ``forward_kwargs``, ``baselines``, ``predictions``, ``deltas``
            (shape ``(N,)``: sum of attributions minus ``F(x) - F(baseline)``) and ``target``;
            with ``n_steps="auto"`` also ``n_steps`` and ``error_estimates``, shape ``(N,)``
            (``(N, K)`` for the error estimates with ``targets``).
        """
        arguments = ExplainArguments(
            X=X,
            forward_kwargs=forward_kwargs,
            baselines=baselines,
            target=target,
            attribute_to_layer_inputs=attribute_to_layer_inputs,
            targets=targets,
            output=output,
            progress_bar=progress_bar,
        )
        return self._explain(arguments)

    def _explain(self, arguments: ExplainArguments) -> Explanation:
        """:meth:`explain` on ``arguments`` as given; :mod:`ig_plugin.text` passes one that
        ``explain`` does not take (an output transform)."""
        request, baselines = self._prepare(arguments)
        predictions, paths = self._paths(request, baselines)
        changes, rounding = output_changes(paths.rule, predictions, paths.start_outputs())
        data: dict[str, Any] = {}
        if self.tolerance is not None and self.max_steps is not None:  # n_steps="auto"
            attributions, data["n_steps"], data["error_estimates"] = integrate_refined(
                paths, changes, rounding, self.tolerance, self.max_steps, request.show_progress
            )
        elif self.idgi:
            idgi_plans = IdgiPlans(uniform_points(int(self.n_steps)))
            attributions = integrate(paths, idgi_plans, request.show_progress, "IDGI")
        else:
            plans = shared_steps(*quadrature(self.method, int(self.n_steps)))
            attributions = integrate(paths, plans, request.show_progress, "IG")
        return self._explanation(
            arguments,
            request,
            predictions,
            paths.rule,
            attributions,
            changes,
            baselines=request.inputs.model_input(baselines),
            **data,
        )

    def _prepare(self, arguments: ExplainArguments) -> tuple[Request, tuple[np.ndarray, ...]]:
        """The shared checks, and one baseline array per input, shaped and typed like X."""
        request = self._request(arguments)
        return request, normalise_baselines(request.inputs, arguments.baselines)
