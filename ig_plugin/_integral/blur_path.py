"""Blur IG's path on the host: PAIR saliency's sigma schedule, and the plan that lays out the
blurred points (:class:`~ig_plugin._engine.plans.BlurSteps`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ig_plugin._engine.plans import BlurSteps, IdgiPlans, SamePlan


class BlurSettings(NamedTuple):
    """Blur IG's settings: the largest sigma, the steps, the finite-difference step in sigma,
    the square-root spacing of the sigmas, and whether IDGI sums the steps."""

    max_sigma: float
    n_steps: int
    grad_step: float
    sqrt: bool
    idgi: bool = False


def sigmas(settings: BlurSettings) -> np.ndarray:
    """PAIR's ``n_steps + 1`` sigmas from 0 to ``max_sigma``: evenly spaced, or (``sqrt``) the
    square roots of evenly spaced variances ``i * max_sigma / n_steps``."""
    fractions = np.arange(settings.n_steps + 1, dtype=np.float64) * settings.max_sigma
    spaced = fractions / settings.n_steps
    return np.sqrt(spaced) if settings.sqrt else spaced


def blur_plans(settings: BlurSettings) -> SamePlan | IdgiPlans:
    """The plan of every span: Blur IG's ``n_steps`` points (sigmas ``s_0 .. s_{n-1}``, each
    integrated over ``[s_i, s_{i+1}]``), or with IDGI all ``n_steps + 1`` points, from the
    image to its most blurred version (so IDGI's sign is -1)."""
    path = sigmas(settings)
    scales = -np.diff(path) / settings.grad_step
    if settings.idgi:
        steps = BlurSteps(path, np.float64(settings.grad_step), np.append(scales, 0.0))
        return IdgiPlans(SamePlan(steps), sign=-1.0)
    return SamePlan(BlurSteps(path[:-1], np.float64(settings.grad_step), scales))
