"""Guided Integrated Gradients: a path that follows the model's gradients, as an alibi
``Explainer`` on ig_plugin's engine, every sample of a batch stepped together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation

from ig_plugin._engine.select import explained
from ig_plugin._explainer.base import ModelExplainer
from ig_plugin._explainer.registry import saved_explainer
from ig_plugin._integral.completeness import output_changes
from ig_plugin._integral.guided import GuidedSettings, guided_attributions
from ig_plugin._request import checks
from ig_plugin._request.baselines import normalise_baselines
from ig_plugin._request.request import ExplainArguments, Request, check_one_float_input


@saved_explainer()
class GuidedIntegratedGradients(ModelExplainer):
    """Guided Integrated Gradients (Kapishnikov et al., CVPR 2021) for TensorFlow/Keras models.

    Integrated Gradients integrates along the straight line from the baseline to x, through
    points where the model's gradients can be large for features that do not matter to the
    prediction (noise in image saliency maps). Guided IG chooses the path instead: at every one
    of ``n_steps`` steps, the ``fraction`` of features with the smallest absolute gradient move
    toward x, none further than ``max_dist`` (as a fraction of the path) from the straight line,
    until the path's L1 distance to x has shrunk by ``1 / n_steps``. The attributions add the
    gradient times each move; they add up to ``F(x) - F(x')`` up to the steps' discretisation.

    The semantics are those of PAIR saliency's ``GuidedIG`` (0.2.1): on the same model, inputs
    and settings the attributions agree with it. PAIR walks one sample at a time; here the
    samples of X walk together, one compiled gradient pass per step for all of them. The choice
    of features at each step is discontinuous in the gradients, so the last-digit differences
    of float32 gradients computed in batches of another size can send a sample along a slightly
    different path (see :doc:`path_methods`).

    On a linear model, and with ``fraction=1`` (every feature moves together: the straight line
    with a left Riemann sum), Guided IG is Integrated Gradients.

    Parameters
    ----------
    model
        A Keras model with one input (any feature shape) and one output tensor.
    n_steps
        The steps from the baseline to x: one gradient pass per step.
    fraction
        The fraction of features, in (0, 1], moved at every round of a step: those with the
        smallest absolute gradient.
    max_dist
        How far, in [0, 1], a feature's position along the path may run ahead of the straight
        line's (``alpha + max_dist``) or fall behind it (``alpha - max_dist``). 0 keeps to the
        straight line (Integrated Gradients); 1 allows any point between baseline and x.
    target_fn
        A function applied to the model's predictions on X that returns the target of each
        sample, e.g. ``functools.partial(np.argmax, axis=1)``.
    internal_batch_size
        Most samples stepped together (one gradient pass per step for each block of them), and
        most samples per forward pass: the walks' memory grows with it, not with N; or
        ``"auto"``, chosen from ``memory_budget`` as for :class:`~ig_plugin.IntegratedGradients`.
    idgi
        Sum the guided path's steps as IDGI (Yang et al., 2023): step ``i``'s output change
        ``F(x_{i+1}) - F(x_i)`` goes to the features in proportion to ``g_i**2 / |g_i|**2``,
        ``g_i`` the gradient at the step's start ``x_i``. The attributions then add up to
        ``F(x) - F(x')`` exactly.
    memory_budget
        With ``internal_batch_size="auto"`` only: the bytes the gradient batches may use (see
        :class:`~ig_plugin.IntegratedGradients`).

    Examples
    --------
    >>> import numpy as np, keras
    >>> from ig_plugin import GuidedIntegratedGradients
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    >>> model.layers[1].set_weights([np.array([[1.0], [2.0], [3.0]])])
    >>> explainer = GuidedIntegratedGradients(model, n_steps=10)
    >>> explainer.explain(np.ones((1, 3), dtype="float32")).attributions[0].round(4)
    array([[1., 2., 3.]], dtype=float32)
    """

    def __init__(
        self,
        model: Callable[..., Any],
        n_steps: int = 200,
        fraction: float = 0.25,
        max_dist: float = 0.02,
        target_fn: Callable | None = None,
        internal_batch_size: int | str = 100,
        idgi: bool = False,
        memory_budget: int | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(f"`model` must be a Keras model. Received: {type(model).__name__}")
        checks.check_callable("target_fn", target_fn)
        self.settings = GuidedSettings(
            n_steps=checks.check_scalar("n_steps", n_steps, least=1),
            fraction=checks.check_scalar("fraction", fraction, float, above=0, most=1),
            max_dist=checks.check_scalar("max_dist", max_dist, float, least=0, most=1),
            idgi=checks.check_bool("idgi", idgi),
        )
        self._init_on_input(
            model, target_fn, self.settings._asdict(), internal_batch_size, memory_budget
        )

    def explain(
        self,
        X: np.ndarray,
        baselines: Any = None,
        target: int | list | tuple | np.ndarray | None = None,
        forward_kwargs: dict | None = None,
    ) -> Explanation:
        """Attribute the model's output on each sample of X to its features along guided paths.

        Parameters
        ----------
        X
            A numpy array ``(N, *features)`` of floats, the model's one input.
        baselines
            Start of each path: None (zeros), a real number, or an array shaped like X or with
            leading dimension 1.
        target
            Which output to explain: an int, or one int per sample; for outputs of rank > 2 an
            ``(N, rank - 1)`` array of indices; None explains a scalar output itself.
        forward_kwargs
            Extra keyword arguments for every model call; arrays with leading dimension N
            follow their sample.

        Returns
        -------
        alibi.api.interfaces.Explanation
            ``data`` holds ``attributions`` (a list of one array shaped and typed like X),
            ``X``, ``forward_kwargs``, ``baselines``, ``predictions``, ``target`` and ``deltas``
            (``(N,)``: sum of attributions minus ``F(x) - F(baseline)``).
        """
        arguments = ExplainArguments(
            X=X, baselines=baselines, target=target, forward_kwargs=forward_kwargs
        )
        request, starts = self._prepare(arguments)
        predictions, paths = self._paths(request, starts)
        changes, _ = output_changes(paths.rule, predictions, paths.start_outputs())
        end_outputs = explained(paths.rule, predictions).astype(np.float64)
        attributions = guided_attributions(paths, self.settings, end_outputs)
        return self._explanation(
            arguments,
            request,
            predictions,
            paths.rule,
            [attributions],
            changes,
            baselines=request.inputs.model_input(starts),
        )

    def _prepare(self, arguments: ExplainArguments) -> tuple[Request, tuple[np.ndarray, ...]]:
        """The shared checks, one input of floats, and the baselines shaped like X."""
        request = self._request(arguments)
        check_one_float_input(request, type(self).__name__)
        return request, normalise_baselines(request.inputs, arguments.baselines)
