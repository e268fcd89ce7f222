"""Blur Integrated Gradients: a path through the Gaussian scale space of an image, as an alibi
``Explainer`` on ig_plugin's compiled gradient loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from alibi.api.interfaces import Explanation

from ig_plugin._engine.blur import gaussian_blur
from ig_plugin._explainer.base import ModelExplainer
from ig_plugin._explainer.registry import saved_explainer
from ig_plugin._integral.blur_path import BlurSettings, blur_plans, sigmas
from ig_plugin._integral.completeness import output_changes
from ig_plugin._integral.driver import integrate
from ig_plugin._request import checks
from ig_plugin._request.request import ExplainArguments, Request, check_one_float_input


@saved_explainer()
class BlurIntegratedGradients(ModelExplainer):
    """Blur Integrated Gradients (Xu et al., CVPR 2020) for TensorFlow/Keras image models.

    Integrated Gradients needs a baseline, and a black or random image adds information (edges,
    colours) that is not in x. Blur IG has none: its path runs from the image x through ever
    more blurred versions of it, ``blur(x, sigma)`` for sigma from 0 to ``max_sigma``, so every
    point removes information (fine detail first); the attributions say how the explained
    output depends on the detail that the blur removes at each scale:
    ``sum_i -(sigma_{i+1} - sigma_i) * direction_i * gradient(blur(x, sigma_i))``, with the
    finite-difference direction ``(blur(x, sigma_i + grad_step) - blur(x, sigma_i)) /
    grad_step``. They add up to about ``F(x) - F(blur(x, max_sigma))``.

    The semantics are those of PAIR saliency's ``BlurIG`` (0.2.1), whose blur is
    ``scipy.ndimage.gaussian_filter(x, [sigma, sigma, 0], mode="constant")``; here the blur runs
    in TensorFlow with the same kernels (truncated at ``int(4 * sigma + 0.5)`` pixels, zeros
    beyond the edges, over height and width only), inside ig_plugin's compiled loop, every
    sample of X together.

    On a linear model ``F = sum w * x`` the attributions are
    ``w * sum_i -(sigma_{i+1} - sigma_i) * direction_i``, which approaches
    ``w * (x - blur(x, max_sigma))`` as the steps and ``grad_step`` shrink; with ``idgi`` it is
    ``w**2 / |w|**2 * (F(x) - F(blur(x, max_sigma)))`` exactly.

    Parameters
    ----------
    model
        A Keras model with one input, images ``(N, H, W, C)`` (channels last), and one output
        tensor.
    max_sigma
        The largest blur, in pixels: where the path ends. With ``sqrt`` the sigmas are
        ``sqrt(i * max_sigma / n_steps)``, as in PAIR, so the path ends at
        ``sqrt(max_sigma)``.
    n_steps
        The points on the path: one gradient per point.
    grad_step
        The step in sigma of the finite-difference direction.
    sqrt
        Space the sigmas as the square roots of evenly spaced variances (PAIR's ``sqrt``),
        which puts more points at small blurs.
    target_fn
        A function applied to the model's predictions on X that returns the target of each
        sample, e.g. ``functools.partial(np.argmax, axis=1)``.
    internal_batch_size
        Most path points per gradient batch, and most samples per forward pass: peak memory
        grows with it, not with N or ``n_steps``; or ``"auto"``, chosen from
        ``memory_budget`` as for :class:`~ig_plugin.IntegratedGradients`.
    idgi
        Sum the path's points as IDGI (Yang et al., 2023): the ``n_steps + 1`` points
        ``x_i = blur(x, sigma_i)`` from x to ``blur(x, max_sigma)``, each interval's output
        change going to the features in proportion to ``g_i**2 / |g_i|**2``. The attributions
        then add up to ``F(x) - F(blur(x, max_sigma))`` exactly; ``grad_step`` is not used.
    memory_budget
        With ``internal_batch_size="auto"`` only: the bytes the gradient batches may use (see
        :class:`~ig_plugin.IntegratedGradients`).
    """

    def __init__(
        self,
        model: Callable[..., Any],
        max_sigma: float = 50.0,
        n_steps: int = 100,
        grad_step: float = 0.01,
        sqrt: bool = False,
        target_fn: Callable | None = None,
        internal_batch_size: int | str = 100,
        idgi: bool = False,
        memory_budget: int | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(f"`model` must be a Keras model. Received: {type(model).__name__}")
        checks.check_callable("target_fn", target_fn)
        self.settings = BlurSettings(
            max_sigma=checks.check_scalar("max_sigma", max_sigma, float, above=0),
            n_steps=checks.check_scalar("n_steps", n_steps, least=1),
            grad_step=checks.check_scalar("grad_step", grad_step, float, above=0),
            sqrt=checks.check_bool("sqrt", sqrt),
            idgi=checks.check_bool("idgi", idgi),
        )
        self._init_on_input(
            model, target_fn, self.settings._asdict(), internal_batch_size, memory_budget
        )

    def explain(
        self,
        X: np.ndarray,
        target: int | list | tuple | np.ndarray | None = None,
        forward_kwargs: dict | None = None,
    ) -> Explanation:
        """Attribute the model's output on each image of X along its blur path.

        Parameters
        ----------
        X
            Images ``(N, H, W, C)`` of floats, blurred over H and W.
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
            ``X``, ``forward_kwargs``, ``baselines`` (the most blurred images
            ``blur(x, max_sigma)``, where the paths end; ``sqrt(max_sigma)`` with ``sqrt``),
            ``predictions``, ``target`` and ``deltas``: ``(N,)``, sum of attributions minus
            ``F(x) - F(baselines)``.
        """
        arguments = ExplainArguments(X=X, target=target, forward_kwargs=forward_kwargs)
        request, _ = self._prepare(arguments)
        blurred = self._most_blurred(request.inputs.arrays[0])
        predictions, paths = self._paths(request, (blurred,))
        changes, _ = output_changes(paths.rule, predictions, paths.start_outputs())
        attributions = integrate(paths, blur_plans(self.settings), request.show_progress, "Blur IG")
        return self._explanation(
            arguments, request, predictions, paths.rule, attributions, changes, baselines=blurred
        )

    def _prepare(self, arguments: ExplainArguments) -> tuple[Request, tuple[np.ndarray, ...]]:
        """The shared checks, and X as one input of float images ``(N, H, W, C)``; no path
        starts to check (they are X's blurred images, made later, in TensorFlow)."""
        request = self._request(arguments)
        check_one_float_input(request, type(self).__name__)
        images = request.inputs.arrays[0]
        if images.ndim != 4:
            raise ValueError(
                "BlurIntegratedGradients explains images: X must have shape (N, H, W, C), "
                f"blurred over H and W. Received: X of shape {images.shape}."
            )
        return request, ()

    def _most_blurred(self, images: np.ndarray) -> np.ndarray:
        """Every image at the path's last sigma (``max_sigma``; its square root with
        ``sqrt``, as in PAIR), in X's dtype, a batch at a time."""
        last = tf.constant(sigmas(self.settings)[-1], tf.float64)
        parts = []
        # Blurred before the passes, in blocks of whole images: the fixed batch size, or with
        # "auto" as many as 8 MiB holds (a blur costs a few copies of its images).
        block = self._batching.points or max(1, (8 << 20) // max(1, images[:1].nbytes))
        for first in range(0, len(images), block):
            batch = images[first : first + block]
            blurred = gaussian_blur(tf.constant(batch), tf.fill([len(batch)], last))
            parts.append(blurred.numpy().astype(images.dtype))
        return np.concatenate(parts)
