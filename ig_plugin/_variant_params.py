"""Checks of the arguments of :class:`~ig_plugin.ExpectedGradients` and
:class:`~ig_plugin.NoiseTunnel`, run before anything touches TensorFlow (the shared ones, such
as ``internal_batch_size``, are in :mod:`ig_plugin._params`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ig_plugin._params import check_choice, check_int, describe, is_real

#: Gauss-Legendre nodes per background row in the deterministic mode of Expected Gradients: the
#: IG default, so that mode equals the mean of ``IntegratedGradients(model)`` over the rows.
DEFAULT_DETERMINISTIC_STEPS = 50

#: The ways NoiseTunnel combines the noisy attributions (captum's names and meanings).
NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def check_n_samples(n_samples: Any) -> int:
    """A positive int (numpy's too)."""
    return check_int("n_samples", n_samples, 1)


def check_seed(seed: Any) -> int | None:
    """None (fresh draws on every explain) or a non-negative int."""
    if seed is None:
        return None
    return check_int("seed", seed, 0, "None or an int")


def check_deterministic_steps(n_steps: Any, n_samples: int | None) -> int | None:
    """``n_steps`` of Expected Gradients: Gauss-Legendre nodes per background row, only in the
    deterministic mode (``n_samples=None``), where None means the default."""
    if n_samples is not None:
        if n_steps is not None:
            raise ValueError(
                "`n_steps` applies only to the deterministic mode (n_samples=None); sampled "
                f"Expected Gradients draws its own points. Received: n_steps={n_steps!r} with "
                f"n_samples={n_samples!r}."
            )
        return None
    if n_steps is None:
        return DEFAULT_DETERMINISTIC_STEPS
    return check_int("n_steps", n_steps, 1)


def check_nt_type(nt_type: Any) -> str:
    return check_choice("nt_type", nt_type, NT_TYPES)


def check_stdevs(stdevs: Any, n_inputs: int | None = None) -> float | tuple[float, ...]:
    """A finite number >= 0, or a list or tuple of them (one per input, returned as a tuple);
    with ``n_inputs`` (the model declares its inputs) a sequence must have that many."""
    sequence = isinstance(stdevs, (tuple, list))
    values = tuple(stdevs) if sequence else (stdevs,)
    if not values or not all(is_real(value) for value in values):
        raise TypeError(
            "`stdevs` must be a number, or a list or tuple with one number per input. "
            f"Received: {describe(stdevs)}."
        )
    if not all(0 <= float(value) < np.inf for value in values):
        raise ValueError(
            "Received an invalid value for `stdevs`, expected finite numbers >= 0 (standard "
            f"deviations of the noise). Received: stdevs={stdevs!r}"
        )
    if sequence and n_inputs is not None and len(values) != n_inputs:
        raise ValueError(
            f"`stdevs` as a sequence must have one value per model input ({n_inputs}). "
            f"Received: {len(values)} values."
        )
    floats = tuple(float(value) for value in values)
    return floats if sequence else floats[0]
